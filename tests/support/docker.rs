//! Real Docker engines behind real sshd hosts, and a real registry with password auth.
//!
//! Each simulated host gets its own `dockerd` (own data-root, exec-root, socket and pidfile, no
//! bridge and no iptables changes, so nothing on the machine's network moves) and an sshd whose
//! sessions see it as `DOCKER_HOST`. One `docker-registry` with htpasswd auth listens on
//! 127.0.0.1, which engines trust without TLS. Test images are made with `docker import` from a
//! busybox-static root: `app:v1` and `app:v2` run busybox httpd serving `/version`, `app:broken`
//! exits at once. Everything is stopped by PID when the lab is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::sshd::SshLab;

pub const REGISTRY_USER: &str = "deployer";
pub const REGISTRY_PASSWORD: &str = "Reg1stry-s3cret pass";

pub struct DockerLab {
    // Field order is drop order: hosts go first, then engines, then the registry.
    pub ssh: SshLab,
    engines: Vec<Engine>,
    registry: Option<Registry>,
    dir: tempfile::TempDir,
}

struct Engine {
    child: Option<Child>,
    socket: PathBuf,
    root: PathBuf,
}

struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl DockerLab {
    pub fn start(n: usize) -> DockerLab {
        for tool in [
            "/usr/sbin/dockerd",
            "/usr/bin/docker",
            "/usr/bin/docker-registry",
            "/bin/busybox",
        ] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: run tests/run.sh, which installs it"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("rigs-docker-")
            .tempdir()
            .unwrap();
        let mut engines: Vec<Engine> = (0..n)
            .map(|i| Engine::start(&dir.path().join(format!("e{}", i + 1))))
            .collect();
        for e in &mut engines {
            e.wait_ready();
        }
        let sockets: Vec<String> = engines
            .iter()
            .map(|e| e.socket.display().to_string())
            .collect();
        let ssh = SshLab::start_each(n, |i| format!("SetEnv DOCKER_HOST=unix://{}", sockets[i]));
        let registry = Registry::start(&dir.path().join("registry"));
        let lab = DockerLab {
            ssh,
            engines,
            registry: Some(registry),
            dir,
        };
        lab.publish_images();
        lab
    }

    /// An inventory with environment `lab` holding every host, logged in to as the test account.
    pub fn inventory_toml(&self) -> String {
        self.ssh.inventory_toml().replace(
            &format!("user = \"{}\"", self.ssh.user()),
            &format!("user = \"{}\"", super::user::TEST_USER),
        )
    }

    pub fn registry_port(&self) -> u16 {
        self.registry.as_ref().map(|r| r.port).unwrap_or(0)
    }

    pub fn registry(&self) -> String {
        format!("127.0.0.1:{}", self.registry_port())
    }

    /// The test app's repository in the lab registry.
    pub fn image(&self) -> String {
        format!("{}/app", self.registry())
    }

    /// How many blob uploads the registry has started so far (from its access log).
    pub fn blob_uploads(&self) -> usize {
        let log = self
            .registry
            .as_ref()
            .map(|r| std::fs::read_to_string(&r.log).unwrap_or_default())
            .unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("/blobs/uploads/") && l.contains("POST"))
            .count()
    }

    /// Stops the registry, to prove something works without it.
    pub fn stop_registry(&mut self) {
        self.registry = None;
    }

    /// The docker client configuration (registry login) the tests use for host `i`.
    pub fn client_config(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("client-{i}"))
    }

    /// Runs the docker CLI against host `i`'s engine directly (for assertions).
    pub fn docker(&self, i: usize, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.engines[i].socket.display()),
            )
            .env("DOCKER_CONFIG", self.dir.path().join(format!("client-{i}")))
            .output()
            .expect("run docker")
    }

    pub fn docker_ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.docker(i, args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// What the app in container `name` on host `i` answers at /version.
    pub fn app_version(&self, i: usize, name: &str) -> String {
        self.docker_ok(
            i,
            &[
                "exec",
                name,
                "wget",
                "-qO-",
                "http://127.0.0.1:8080/version",
            ],
        )
    }

    /// Imports the test images into the first engine, pushes them, and removes them there again,
    /// so that every host starts empty.
    fn publish_images(&self) {
        let root = self.dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("www")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for applet in ["sh", "httpd", "wget", "cat", "env", "sleep", "echo", "ls"] {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
        let image = self.image();
        let login = self.docker_login(0);
        assert!(
            login.status.success(),
            "login: {}",
            String::from_utf8_lossy(&login.stderr)
        );
        for (tag, cmd) in [
            ("v1", r#"["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]"#),
            ("v2", r#"["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]"#),
            ("broken", r#"["/bin/sh", "-c", "echo starting; exit 1"]"#),
        ] {
            std::fs::write(root.join("www/version"), format!("{tag}\n")).unwrap();
            let mut tar = Command::new("tar")
                .arg("-C")
                .arg(&root)
                .args(["-c", "."])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let imported = Command::new("docker")
                .args([
                    "import",
                    "--change",
                    &format!("CMD {cmd}"),
                    "-",
                    &format!("{image}:{tag}"),
                ])
                .env(
                    "DOCKER_HOST",
                    format!("unix://{}", self.engines[0].socket.display()),
                )
                .stdin(tar.stdout.take().unwrap())
                .output()
                .unwrap();
            assert!(
                tar.wait().unwrap().success(),
                "tar of the test image root failed"
            );
            assert!(
                imported.status.success(),
                "import: {}",
                String::from_utf8_lossy(&imported.stderr)
            );
            self.docker_ok(0, &["push", &format!("{image}:{tag}")]);
            self.docker_ok(0, &["rmi", &format!("{image}:{tag}")]);
        }
        self.docker_ok(0, &["logout", &self.registry()]);
    }

    /// Logs host `i`'s test client in to the lab registry.
    pub fn docker_login(&self, i: usize) -> Output {
        let mut child = Command::new("docker")
            .args([
                "login",
                "--username",
                REGISTRY_USER,
                "--password-stdin",
                &self.registry(),
            ])
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.engines[i].socket.display()),
            )
            .env("DOCKER_CONFIG", self.dir.path().join(format!("client-{i}")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(REGISTRY_PASSWORD.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// The image IDs on host `i` that no tag points at.
    pub fn dangling(&self, i: usize) -> String {
        self.docker_ok(i, &["images", "--filter", "dangling=true", "--quiet"])
    }

    /// `repo:tag` of every image of the app on host `i`.
    pub fn app_tags(&self, i: usize) -> Vec<String> {
        let out = self.docker_ok(i, &["images", "--format", "{{.Tag}}", &self.image()]);
        let mut tags: Vec<String> = out.lines().map(str::to_string).collect();
        tags.sort();
        tags
    }
}

impl Engine {
    fn start(dir: &Path) -> Engine {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip6tables=false",
                "--group",
                super::user::TEST_USER,
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd (docker.io)");
        Engine {
            child: Some(child),
            socket,
            root: dir.to_path_buf(),
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new("docker")
                .args(["version", "--format", "{{.Server.Version}}"])
                .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "dockerd exited: {}",
                    std::fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                std::fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Containers first, so dockerd's shutdown is quick and leaves no mounts behind.
        let _ = Command::new("sh")
            .arg("-c")
            .arg("ids=$(docker ps -aq); [ -z \"$ids\" ] || docker rm -f $ids")
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .output();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        // Anything still mounted under the engine's folders would keep it from being removed.
        if let Ok(mounts) = std::fs::read_to_string("/proc/mounts") {
            let root = self.root.display().to_string();
            for target in mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(1))
                .filter(|t| t.starts_with(&root))
            {
                let _ = Command::new("umount").args(["-l", target]).status();
            }
        }
    }
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let hash = Command::new("python3")
            .args(["-c", "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))", REGISTRY_PASSWORD])
            .output()
            .expect("python3 for a bcrypt htpasswd entry");
        assert!(
            hash.status.success(),
            "bcrypt: {}",
            String::from_utf8_lossy(&hash.stderr)
        );
        std::fs::write(
            dir.join("htpasswd"),
            format!("{REGISTRY_USER}:{}", String::from_utf8_lossy(&hash.stdout)),
        )
        .unwrap();
        for _ in 0..5 {
            let port = super::unused_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: rigs-test\n    path: {htpasswd}\n",
                root = dir.join("data").display(),
                htpasswd = dir.join("htpasswd").display()
            );
            std::fs::write(dir.join("config.yml"), config).unwrap();
            let log = std::fs::File::create(dir.join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(dir.join("config.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry {
                        child,
                        port,
                        log: dir.join("registry.log"),
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start: {}",
            std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
