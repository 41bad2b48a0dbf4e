//! Real Docker engines behind real sshd hosts, a controller engine, and a real registry with
//! password auth.
//!
//! Each simulated host gets its own `dockerd` (own data-root, exec-root, daemon.json, socket and
//! pidfile, no bridge and no iptables changes, so nothing on the machine's network moves) and an
//! sshd whose sessions see it as `DOCKER_HOST`, with the engine's own `docker` client first on
//! their `PATH`. One `docker-registry` with htpasswd auth listens on 127.0.0.1, which engines
//! trust without TLS.
//!
//! One more engine, the controller's, is reached only through its socket: it stands for the
//! machine `rigs` runs on. The test images are built and pushed there and stay there, so image
//! shipping has a real source, while every host engine starts empty.
//!
//! A lab runs either [`Engine`]: the classic one or the modern one with the containerd image
//! store, whose dockerd starts a containerd of its own (its state in the engine's folders, like
//! the classic dockerd's). The hosts and the controller may run different ones, as a controller
//! with a current Docker shipping to old hosts does. A modern controller pushes OCI manifests.
//!
//! The images share a base, a busybox-static root made with `docker import` (tagged
//! `{registry}/base:1`, outside the app repository whose tags tests count). `app:v1`, `app:v2` and
//! `app:broken` are each that base plus one small committed layer: v1 and v2 run busybox httpd
//! serving `/version`, broken exits at once. Their first diff ID is the same, which is what lets
//! tests see that a host already holding one version needs only the top layer of the next.
//! [`DockerLab::big_image`] adds an incompressible layer of a chosen size for transfer tests.
//!
//! An offline host's engine runs in a network namespace of its own with only loopback up: the
//! registry's 127.0.0.1 port is not there, so a pull fails at once with "connection refused",
//! as on an air-gapped machine. Its socket is still a file in the lab folder, so its sshd (in the
//! main namespace) drives it like any other. The namespace has no name and vanishes with its
//! last process; `unshare` and the shell exec into `dockerd`, so the PID the lab holds and the
//! one in the pidfile are dockerd's own (checked at start).
//!
//! Compose projects need the Compose v2 CLI plugin wherever `docker compose` runs: on the hosts'
//! sessions (found in `~/.docker/cli-plugins`, as the sessions set `HOME` but not
//! `DOCKER_CONFIG`), in the tests' own client configurations, and in a compose project's home
//! on the controller. The lab links the modern engine's plugin into all of them; the classic
//! engine ships none, and [`LabOptions::compose`] off leaves it out on modern hosts too, for a
//! fleet whose machines have Docker but not Compose v2. The plugin is linked, not copied: it is
//! 60 MB, and every lab would otherwise write it once per host.
//!
//! Everything is stopped by PID when the lab is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::engine::Engine;
use super::sshd::SshLab;

pub const REGISTRY_USER: &str = "deployer";
pub const REGISTRY_PASSWORD: &str = "Reg1stry-s3cret pass";

/// httpd under a shell that ends on SIGTERM: as PID 1, httpd alone ignores it, and every
/// `docker stop` would sit out its 10 s timeout.
const HTTPD: &str =
    r#"["/bin/sh", "-c", "trap 'exit 0' TERM; /bin/httpd -f -p 8080 -h /www & wait"]"#;
const FAIL_AT_ONCE: &str = r#"["/bin/sh", "-c", "echo starting; exit 1"]"#;
const WORKER: &str = r#"["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]"#;
/// Up long enough to pass a glance at `docker ps`, down before a deploy's health window ends.
const CRASH_SOON: &str =
    r#"["/bin/sh", "-c", "trap 'exit 0' TERM; /bin/httpd -f -p 8080 -h /www & sleep 2; exit 1"]"#;

/// Which engines a lab runs, and which hosts are offline.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Hosts (0-based) whose engine cannot reach the registry or any other network.
    pub offline: Vec<usize>,
    /// Every host's engine.
    pub hosts: Engine,
    /// The controller's engine, where the test images are built.
    pub controller: Engine,
    /// Whether modern hosts' sessions find the Compose v2 plugin (classic hosts never do).
    pub compose: bool,
}

impl LabOptions {
    /// Every host and the controller on `engine`, all online.
    pub fn on(engine: Engine) -> LabOptions {
        LabOptions::fleet(engine, engine)
    }

    /// A controller on one engine and hosts on another, all online.
    pub fn fleet(controller: Engine, hosts: Engine) -> LabOptions {
        LabOptions {
            offline: Vec::new(),
            hosts,
            controller,
            compose: true,
        }
    }
}

pub struct DockerLab {
    // Dropping stops the hosts, then every engine at once, then (field order) the registry.
    pub ssh: SshLab,
    /// The hosts' engine kind.
    engine: Engine,
    engines: Vec<Dockerd>,
    controller: Dockerd,
    registry: Option<Registry>,
    /// The token service of a registry switched to bearer-token auth.
    token_service: Option<TokenService>,
    dir: tempfile::TempDir,
}

/// One running engine: a dockerd (and the containerd it started) with its folders.
struct Dockerd {
    kind: Engine,
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
    /// `n` online hosts and the controller, all on `engine`.
    pub fn start(n: usize, engine: Engine) -> DockerLab {
        DockerLab::start_with(n, &LabOptions::on(engine))
    }

    pub fn start_with(n: usize, options: &LabOptions) -> DockerLab {
        options.hosts.assert_installed();
        options.controller.assert_installed();
        for tool in [
            "/usr/bin/docker-registry",
            "/bin/busybox",
            "/usr/bin/unshare",
        ] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: run tests/run.sh, which installs it"
            );
        }
        if let Some(i) = options.offline.iter().find(|&&i| i >= n) {
            panic!("offline host {i} is not in a lab of {n}");
        }
        // The engines' sockets belong to the test account's group, and the inventory logs in as it.
        super::user::ensure_test_user();
        let dir = tempfile::Builder::new()
            .prefix("rigs-docker-")
            .tempdir()
            .unwrap();
        let mut controller =
            Dockerd::start(options.controller, &dir.path().join("controller"), false);
        let mut engines: Vec<Dockerd> = (0..n)
            .map(|i| {
                Dockerd::start(
                    options.hosts,
                    &dir.path().join(format!("e{}", i + 1)),
                    options.offline.contains(&i),
                )
            })
            .collect();
        let registry = Registry::start(&dir.path().join("registry"));
        controller.wait_ready();
        for e in &mut engines {
            e.wait_ready();
        }
        let sockets: Vec<String> = engines
            .iter()
            .map(|e| e.socket.display().to_string())
            .collect();
        let paths: Vec<String> = engines
            .iter()
            .map(|e| format!("{}:/usr/local/bin:/usr/bin:/bin", e.bin().display()))
            .collect();
        // Each host gets a home folder of its own, as separate machines have: locks, history
        // and kept parts of one lab never meet another's, or another host's.
        let homes: Vec<PathBuf> = (0..n)
            .map(|i| {
                let home = dir.path().join(format!("home-h{}", i + 1));
                std::fs::create_dir_all(&home).unwrap();
                let chown = Command::new("chown")
                    .arg(format!("{}:", super::user::TEST_USER))
                    .arg(&home)
                    .status()
                    .unwrap();
                assert!(chown.success(), "chown {}", home.display());
                if options.compose {
                    if let Some(plugin) = options.hosts.compose_plugin() {
                        link_plugin(&plugin, &home.join(".docker"), true);
                    }
                }
                home
            })
            .collect();
        for i in 0..n {
            if let Some(plugin) = options.hosts.compose_plugin() {
                link_plugin(&plugin, &dir.path().join(format!("client-{i}")), false);
            }
        }
        if let Some(plugin) = options.controller.compose_plugin() {
            link_plugin(&plugin, &dir.path().join("client-controller"), false);
        }
        let ssh = SshLab::start_each(n, |i| {
            format!(
                "SetEnv DOCKER_HOST=unix://{} HOME={} PATH={}",
                sockets[i],
                homes[i].display(),
                paths[i]
            )
        });
        let lab = DockerLab {
            ssh,
            engine: options.hosts,
            engines,
            controller,
            registry: Some(registry),
            token_service: None,
            dir,
        };
        lab.publish_images();
        lab
    }

    /// The hosts' engine.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The controller's engine.
    pub fn controller_engine(&self) -> Engine {
        self.controller.kind
    }

    /// `PATH` for rigs on the controller: the controller engine's `docker` client first.
    pub fn controller_path(&self) -> String {
        let rest = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_string());
        format!("{}:{rest}", self.controller.bin().display())
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

    /// The base every test image is built on; in the registry and on the controller only.
    pub fn base_image(&self) -> String {
        format!("{}/base:1", self.registry())
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

    /// Serves the registry again, on the same port and storage, with bearer-token auth instead
    /// of basic: it sends every client to a token service of the lab's, which takes the test
    /// login over basic auth and answers with a JWT for the scope asked, signed with a key
    /// whose certificate the registry trusts.
    pub fn use_token_auth(&mut self) {
        let port = self.registry_port();
        let dir = self.dir.path().join("registry");
        self.registry = None;
        let service = TokenService::start(&dir.join("token"));
        let auth = format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {TOKEN_AUDIENCE}\n    \
             issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
            service.port,
            service.cert.display()
        );
        self.registry = Some(Registry::start_token(&dir, port, &auth));
        self.token_service = Some(service);
    }

    /// What the token service gave out, in order: who asked (the `User-Agent`) and for what
    /// scope ("" for a login).
    pub fn tokens_issued(&self) -> Vec<(String, String)> {
        self.token_service
            .as_ref()
            .map(|t| t.issued.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// The HTTP status the registry answers `GET /v2/` with the test login sent as basic auth.
    pub fn basic_auth_status(&self) -> String {
        let out = curl_with_login(
            Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-K", "-"])
                .arg(format!("http://{}/v2/", self.registry())),
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// A project with the repository's standard recipes (`recipes/docker.rhai`) and an inventory
    /// of this lab's hosts with the app's variables (logged in to the lab registry), plus
    /// `extra_vars` in `[vars]`.
    pub fn standard_project(&self, extra_vars: &str) -> super::Project {
        let recipes = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/docker.rhai");
        let mut inventory = self.inventory_toml();
        inventory.push_str(&format!(
            "\n[vars]\nimage = \"{}\"\ncontainer = \"app\"\nregistry = \"{}\"\nregistry_user = \"{REGISTRY_USER}\"\nnetwork = \"none\"\n{extra_vars}",
            self.image(),
            self.registry()
        ));
        let p = super::Project::new()
            .recipe("docker.rhai", &std::fs::read_to_string(recipes).unwrap())
            .inventory("lab.toml", &inventory)
            .env("REGISTRY_PASSWORD", REGISTRY_PASSWORD);
        self.ssh
            .write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
        p
    }

    /// A project for a Docker Compose deploy: the standard recipes, this lab's hosts logged in
    /// to the lab registry (`registry`, `registry_user` and `REGISTRY_PASSWORD`, none of the
    /// single-container variables) plus `extra_vars` in `[vars]`, and `files` (path in the
    /// project, text) written in, e.g. `("deploy/compose.yaml", yaml)`.
    ///
    /// rigs runs as on the controller: the controller engine's client first on its `PATH`, its
    /// engine as `DOCKER_HOST`, and the Compose plugin in the project's home when the
    /// controller's client has one.
    pub fn compose_project(&self, files: &[(&str, &str)], extra_vars: &str) -> super::Project {
        let recipes = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/docker.rhai");
        let mut inventory = self.inventory_toml();
        inventory.push_str(&format!(
            "\n[vars]\nregistry = \"{}\"\nregistry_user = \"{REGISTRY_USER}\"\n{extra_vars}",
            self.registry()
        ));
        let mut p = super::Project::new()
            .recipe("docker.rhai", &std::fs::read_to_string(recipes).unwrap())
            .inventory("lab.toml", &inventory)
            .env("REGISTRY_PASSWORD", REGISTRY_PASSWORD)
            .env("DOCKER_HOST", &self.controller_docker_host())
            .env("PATH", &self.controller_path());
        for (path, text) in files {
            p = p.file(path, text);
        }
        self.ssh
            .write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
        if let Some(plugin) = self.controller.kind.compose_plugin() {
            link_plugin(&plugin, &p.path().join("home/.docker"), false);
        }
        p
    }

    /// Runs `docker compose ARGS` in the folder `dir` against host `i`'s engine, with the test
    /// client configuration: to look at a project as the host's own `docker compose` sees it.
    pub fn compose(&self, i: usize, dir: impl AsRef<Path>, args: &[&str]) -> Output {
        self.docker_command(i)
            .arg("compose")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("run docker compose")
    }

    /// Every container of compose project `project` on host `i`, running or not, sorted: its
    /// service, its state (`running`, `exited`, `restarting`...) and the ID of the image it runs.
    pub fn containers(&self, i: usize, project: &str) -> Vec<(String, String, String)> {
        let ids = self.docker_ok(
            i,
            &[
                "ps",
                "-aq",
                "--no-trunc",
                "--filter",
                &format!("label=com.docker.compose.project={project}"),
            ],
        );
        if ids.is_empty() {
            return Vec::new();
        }
        let mut args = vec![
            "inspect",
            "--format",
            "{{index .Config.Labels \"com.docker.compose.service\"}} {{.State.Status}} {{.Image}}",
        ];
        args.extend(ids.lines());
        let mut found: Vec<(String, String, String)> = self
            .docker_ok(i, &args)
            .lines()
            .map(|l| {
                let mut parts = l.splitn(3, ' ');
                let mut next = || parts.next().unwrap_or("").to_string();
                (next(), next(), next())
            })
            .collect();
        found.sort();
        found
    }

    /// Builds `{registry}/worker:1` on the controller and pushes it: the base running a loop that
    /// never ends on its own but stops at once on SIGTERM, a service with no port to check.
    /// Returns the reference.
    pub fn worker_image(&self) -> String {
        let reference = format!("{}/worker:1", self.registry());
        self.commit_on_base(&reference, WORKER, &[]);
        self.controller_docker_ok(&["push", &reference]);
        reference
    }

    /// Builds `{image}:{tag}` on the controller and pushes it: it serves `/version` (saying
    /// `tag`) as v1 does, for about 2 s, then exits 1. With a restart policy and no
    /// healthcheck, a deploy sees it running and then crash-looping. Returns the reference.
    pub fn crashing_image(&self, tag: &str) -> String {
        let version = self.dir.path().join(format!("version-{tag}"));
        std::fs::write(&version, format!("{tag}\n")).unwrap();
        let reference = format!("{}:{tag}", self.image());
        self.commit_on_base(&reference, CRASH_SOON, &[(&version, "/www/version")]);
        self.controller_docker_ok(&["push", &reference]);
        reference
    }

    /// Host `i`'s home folder, where rigs keeps its locks, history and kept parts there.
    pub fn home(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("home-h{}", i + 1))
    }

    /// The docker client configuration (registry login) the tests use for host `i`.
    pub fn client_config(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("client-{i}"))
    }

    /// The docker client configuration of the controller engine, logged in to the registry.
    pub fn controller_client_config(&self) -> PathBuf {
        self.dir.path().join("client-controller")
    }

    /// `DOCKER_HOST` for host `i`'s engine.
    pub fn docker_host(&self, i: usize) -> String {
        self.engines[i].docker_host()
    }

    /// `DOCKER_HOST` for the controller engine, where the test images are.
    pub fn controller_docker_host(&self) -> String {
        self.controller.docker_host()
    }

    /// Runs the docker CLI against host `i`'s engine directly (for assertions).
    pub fn docker(&self, i: usize, args: &[&str]) -> Output {
        self.docker_command(i)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    /// The docker CLI of host `i`'s engine, set to reach it with the test client configuration.
    pub fn docker_command(&self, i: usize) -> Command {
        self.engines[i].command(&self.client_config(i))
    }

    /// The docker CLI of the controller's engine, set to reach it, logged in to the registry.
    pub fn controller_docker_command(&self) -> Command {
        self.controller.command(&self.controller_client_config())
    }

    pub fn docker_ok(&self, i: usize, args: &[&str]) -> String {
        ok(args, self.docker(i, args))
    }

    /// Runs the docker CLI against the controller engine.
    pub fn controller_docker(&self, args: &[&str]) -> Output {
        self.controller_docker_command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    pub fn controller_docker_ok(&self, args: &[&str]) -> String {
        ok(args, self.controller_docker(args))
    }

    /// The image ID `reference` names on host `i`, or "" when the host does not have it.
    pub fn image_id(&self, i: usize, reference: &str) -> String {
        image_id(self.docker(i, &["image", "inspect", "--format", "{{.Id}}", reference]))
    }

    /// The image ID `reference` names on the controller, or "" when it does not have it.
    pub fn controller_image_id(&self, reference: &str) -> String {
        image_id(self.controller_docker(&["image", "inspect", "--format", "{{.Id}}", reference]))
    }

    /// Asserts that host `i` holds `reference` as the controller does: the same image ID when both
    /// run the same kind of engine, else (an image's ID is its config's digest on a classic
    /// engine, its manifest's on a modern one) the same layers.
    #[track_caller]
    pub fn assert_image_as_on_controller(&self, i: usize, reference: &str) {
        let id = self.image_id(i, reference);
        assert_ne!(id, "", "host {i} does not hold {reference}");
        if self.engine() == self.controller_engine() {
            assert_eq!(
                id,
                self.controller_image_id(reference),
                "{reference} on host {i}"
            );
        } else {
            assert_eq!(
                self.diff_ids(Some(i), reference),
                self.diff_ids(None, reference),
                "{reference}'s layers on host {i}"
            );
        }
    }

    /// The diff IDs of `reference`'s layers, base first, on host `i` (`None`: the controller).
    pub fn diff_ids(&self, i: Option<usize>, reference: &str) -> Vec<String> {
        let args = [
            "image",
            "inspect",
            "--format",
            "{{range .RootFS.Layers}}{{println .}}{{end}}",
            reference,
        ];
        let out = match i {
            Some(i) => self.docker_ok(i, &args),
            None => self.controller_docker_ok(&args),
        };
        out.lines().map(str::to_string).collect()
    }

    /// Asserts that host `i`'s engine cannot reach the registry: a pull fails at once because
    /// nothing answers, not because of credentials.
    #[track_caller]
    pub fn assert_offline(&self, i: usize) {
        let started = Instant::now();
        let out = self.docker(i, &["pull", &format!("{}:v1", self.image())]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "host {i} pulled from the registry");
        assert!(
            stderr.contains("connection refused"),
            "host {i} reached the registry: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "host {i}'s pull took {:?} to fail",
            started.elapsed()
        );
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

    /// Builds `{image}:{tag}` on the controller only: the base plus one layer holding
    /// `megabytes` MB of random (incompressible) data and `/www/version` saying `tag`; it serves
    /// like v1. Returns the reference.
    pub fn big_image(&self, tag: &str, megabytes: usize) -> String {
        let files = self.dir.path().join(format!("big-{tag}"));
        std::fs::create_dir_all(&files).unwrap();
        let data = files.join("data");
        let mut random = std::fs::File::open("/dev/urandom").unwrap();
        let mut out = std::fs::File::create(&data).unwrap();
        let bytes = std::io::copy(
            &mut std::io::Read::take(&mut random, megabytes as u64 * 1024 * 1024),
            &mut out,
        )
        .unwrap();
        assert_eq!(bytes, megabytes as u64 * 1024 * 1024);
        drop(out);
        let version = files.join("version");
        std::fs::write(&version, format!("{tag}\n")).unwrap();
        let reference = format!("{}:{tag}", self.image());
        self.commit_on_base(
            &reference,
            HTTPD,
            &[(&data, "/data.bin"), (&version, "/www/version")],
        );
        std::fs::remove_dir_all(&files).unwrap();
        reference
    }

    /// Builds `{image}:{tag}` on the controller, the base plus `/www/version` saying `tag`,
    /// serving like v1, and pushes it to the registry: one more version of the app, newer than
    /// every other.
    pub fn push_version(&self, tag: &str) -> String {
        let version = self.dir.path().join(format!("version-{tag}"));
        std::fs::write(&version, format!("{tag}\n")).unwrap();
        let reference = format!("{}:{tag}", self.image());
        self.commit_on_base(&reference, HTTPD, &[(&version, "/www/version")]);
        self.controller_docker_ok(&["push", &reference]);
        reference
    }

    /// The digest the registry gives for `app:{tag}`, a manifest list or index too (the
    /// `Docker-Content-Digest` of a HEAD request; the login goes to curl on stdin).
    pub fn registry_digest(&self, tag: &str) -> String {
        let out = curl_with_login(
            Command::new("curl")
                .args(["-sSfI", "-K", "-"])
                .args([
                    "-H",
                    "Accept: application/vnd.docker.distribution.manifest.list.v2+json",
                    "-H",
                    "Accept: application/vnd.oci.image.index.v1+json",
                    "-H",
                    "Accept: application/vnd.docker.distribution.manifest.v2+json",
                    "-H",
                    "Accept: application/vnd.oci.image.manifest.v1+json",
                ])
                .arg(format!("http://{}/v2/app/manifests/{tag}", self.registry()))
                .stderr(Stdio::piped()),
        );
        let headers = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "HEAD app:{tag}: {}{headers}",
            String::from_utf8_lossy(&out.stderr)
        );
        headers
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("docker-content-digest")
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no digest for app:{tag}: {headers}"))
    }

    /// The folder first on host `i`'s `PATH`, holding the `docker` its sessions run.
    pub fn host_bin(&self, i: usize) -> PathBuf {
        self.engines[i].bin()
    }

    /// Builds the base and the test images on the controller and pushes them. The controller
    /// stays logged in; the hosts' client configurations are left untouched.
    fn publish_images(&self) {
        let root = self.dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("www")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for applet in [
            "sh", "httpd", "wget", "cat", "env", "sleep", "echo", "ls", "nc",
        ] {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
        let base = self.base_image();
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let imported = self
            .controller_docker_command()
            .args(["import", "--change", r#"CMD ["/bin/sh"]"#, "-", &base])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(
            tar.wait().unwrap().success(),
            "tar of the test image root failed"
        );
        ok(&["import"], imported);

        let image = self.image();
        let mut references = vec![base];
        for (tag, cmd) in [("v1", HTTPD), ("v2", HTTPD), ("broken", FAIL_AT_ONCE)] {
            let version = self.dir.path().join(format!("version-{tag}"));
            std::fs::write(&version, format!("{tag}\n")).unwrap();
            let reference = format!("{image}:{tag}");
            self.commit_on_base(&reference, cmd, &[(&version, "/www/version")]);
            references.push(reference);
        }

        ok(
            &["login"],
            self.registry_login(self.controller_docker_command()),
        );
        // The base first, so that the app's pushes find its layer already in the registry, then
        // one app tag, which mounts that layer into the app's repository. Pushes that mount the
        // same blob into one repository at once can make the registry answer a HEAD with a 500
        // (seen from the modern engine's containerd pusher, which does not share such uploads).
        self.controller_docker_ok(&["push", &references[0]]);
        self.controller_docker_ok(&["push", &references[1]]);
        let pushes: Vec<Child> = references[2..]
            .iter()
            .map(|r| {
                self.controller_docker_command()
                    .args(["push", r])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for push in pushes {
            ok(&["push"], push.wait_with_output().unwrap());
        }
    }

    /// Commits `reference` on the controller: the base with `files` (host path, path in the
    /// image) copied in, as one layer, running `cmd`.
    fn commit_on_base(&self, reference: &str, cmd: &str, files: &[(&Path, &str)]) {
        let container =
            self.controller_docker_ok(&["create", "--network", "none", &self.base_image()]);
        for (from, to) in files {
            self.controller_docker_ok(&[
                "cp",
                &from.display().to_string(),
                &format!("{container}:{to}"),
            ]);
        }
        self.controller_docker_ok(&[
            "commit",
            "--change",
            &format!("CMD {cmd}"),
            &container,
            reference,
        ]);
        self.controller_docker_ok(&["rm", &container]);
    }

    /// Logs host `i`'s test client in to the lab registry.
    pub fn docker_login(&self, i: usize) -> Output {
        self.registry_login(self.docker_command(i))
    }

    /// Runs `docker login` to the lab registry with the test login, the password on its stdin.
    fn registry_login(&self, mut docker: Command) -> Output {
        output_with_stdin(
            docker
                .args([
                    "login",
                    "--username",
                    REGISTRY_USER,
                    "--password-stdin",
                    &self.registry(),
                ])
                .stderr(Stdio::piped()),
            REGISTRY_PASSWORD,
        )
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

/// Links the Compose v2 `plugin` into the docker client configuration folder `config`
/// (`config/cli-plugins/docker-compose`); with `for_test_user`, the folders it makes belong to
/// the test account, whose `docker login` writes `config.json` next to them.
fn link_plugin(plugin: &Path, config: &Path, for_test_user: bool) {
    let plugins = config.join("cli-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::os::unix::fs::symlink(plugin, plugins.join("docker-compose")).unwrap();
    if for_test_user {
        let chown = Command::new("chown")
            .arg("-h")
            .arg(format!("{}:", super::user::TEST_USER))
            .arg(config)
            .arg(&plugins)
            .arg(plugins.join("docker-compose"))
            .status()
            .unwrap();
        assert!(chown.success(), "chown {}", config.display());
    }
}

/// Runs `curl`, whose arguments read a config from stdin (`-K -`), with the test login as that
/// config, so that the password is on no command line.
fn curl_with_login(curl: &mut Command) -> Output {
    output_with_stdin(
        curl,
        &format!("user = \"{REGISTRY_USER}:{REGISTRY_PASSWORD}\"\n"),
    )
}

/// Runs `cmd` with `input` on its stdin and waits for it, its stdout captured (and its stderr
/// where the caller piped it).
fn output_with_stdin(cmd: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[track_caller]
fn ok(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn image_id(out: Output) -> String {
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    } else {
        String::new()
    }
}

impl Dockerd {
    /// Starts a `kind` dockerd under `dir`; an `offline` one in a new network namespace with
    /// only loopback up. `dir/bin` holds the engine's `docker` client, for the `PATH` of those
    /// who talk to it.
    fn start(kind: Engine, dir: &Path, offline: bool) -> Dockerd {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::os::unix::fs::symlink(kind.docker(), dir.join("bin/docker")).unwrap();
        std::fs::write(dir.join("daemon.json"), kind.daemon_json()).unwrap();
        let socket = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let mut command = if offline {
            let mut c = Command::new("unshare");
            c.args([
                "--net",
                "sh",
                "-c",
                "ip link set lo up && exec \"$@\"",
                "sh",
            ])
            .arg(kind.dockerd());
            c
        } else {
            Command::new(kind.dockerd())
        };
        if let Some(path) = kind.daemon_path() {
            command.env("PATH", path);
        }
        let child = command
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
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
            .unwrap_or_else(|e| panic!("start {}: {e}", kind.dockerd().display()));
        Dockerd {
            kind,
            child: Some(child),
            socket,
            root: dir.to_path_buf(),
        }
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The folder holding this engine's `docker` client (alone).
    fn bin(&self) -> PathBuf {
        self.root.join("bin")
    }

    /// This engine's docker client, set to reach it with client configuration `config`.
    fn command(&self, config: &Path) -> Command {
        let mut command = Command::new(self.kind.docker());
        command
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", config);
        command
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new(self.kind.docker())
                .args(["version", "--format", "{{.Server.Version}}"])
                .env("DOCKER_HOST", self.docker_host())
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                self.assert_image_store();
                let pid =
                    std::fs::read_to_string(self.root.join("dockerd.pid")).unwrap_or_default();
                let child = self.child.as_ref().map(Child::id);
                assert_eq!(
                    pid.trim().parse::<u32>().ok(),
                    child,
                    "the pidfile does not name the dockerd the lab started"
                );
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

    /// Checks that the engine keeps its images where its kind does: the containerd image store
    /// for a modern engine, a graph driver for a classic one.
    fn assert_image_store(&self) {
        let out = Command::new(self.kind.docker())
            .args(["info", "--format", "{{.Driver}} {{json .DriverStatus}}"])
            .env("DOCKER_HOST", self.docker_host())
            .output()
            .expect("docker info");
        let info = String::from_utf8_lossy(&out.stdout);
        let containerd = info.contains("io.containerd.snapshotter.v1");
        assert_eq!(
            containerd,
            self.kind == Engine::Modern,
            "the {} engine at {} reports its image store as: {info}",
            self.kind.name(),
            self.root.display()
        );
    }
}

impl Drop for DockerLab {
    /// The hosts first, then every engine at once: a dockerd takes about a second to stop.
    fn drop(&mut self) {
        for i in 0..self.ssh.hosts().len() {
            self.ssh.crash(i);
        }
        std::thread::scope(|s| {
            for engine in self.engines.iter_mut().chain([&mut self.controller]) {
                s.spawn(|| engine.stop());
            }
        });
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Dockerd {
    /// Stops the engine, its containers and its containerd, and unmounts what is left; once.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Containers first, so dockerd's shutdown is quick and leaves no mounts behind; then
        // the networks they used (a Compose project's `PROJECT_default`): an engine that stops
        // leaves its bridges in the machine's network namespace, where every other lab's engine
        // counts them as taken, and Docker's 31 default address pools run out.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(
                "ids=$(\"$0\" ps -aq); [ -z \"$ids\" ] || \"$0\" rm -f $ids; \
                 \"$0\" network prune -f >/dev/null 2>&1",
            )
            .arg(self.kind.docker())
            .env("DOCKER_HOST", self.docker_host())
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
        // A dockerd that had to be killed leaves its containerd and shims running.
        for pid in processes_naming(&self.root) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
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

/// The processes whose command line names a path inside `dir`, from /proc.
fn processes_naming(dir: &Path) -> Vec<u32> {
    let needle = format!("{}/", dir.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if pid != std::process::id() && String::from_utf8_lossy(&cmdline).contains(&needle) {
            found.push(pid);
        }
    }
    found
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        // The registry checks the hash on every request: bcrypt's lowest cost keeps pushes quick.
        let hash = Command::new("python3")
            .args(["-c", "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))", REGISTRY_PASSWORD])
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
            // This registry's own log says it holds the port: a listener that another process
            // started there first would make it fail to bind and exit instead.
            let listening = format!("msg=\"listening on 127.0.0.1:{port}\"");
            while Instant::now() < deadline {
                let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
                if log.contains(&listening)
                    && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                {
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

impl Registry {
    /// The registry on `port` and its storage in `dir`, with the `auth` section given (its own
    /// config and log files, so the first registry's access log stays as it was).
    fn start_token(dir: &Path, port: u16, auth: &str) -> Registry {
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n{auth}",
            root = dir.join("data").display(),
        );
        std::fs::write(dir.join("config-token.yml"), config).unwrap();
        let log_path = dir.join("registry-token.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config-token.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let listening = format!("msg=\"listening on 127.0.0.1:{port}\"");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if text.contains(&listening)
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Registry {
                    child,
                    port,
                    log: log_path,
                };
            }
            if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                panic!("docker-registry with token auth did not start: {text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `service` (the tokens' audience) and `issuer` the token registry expects.
const TOKEN_AUDIENCE: &str = "rigs-test-registry";
const TOKEN_ISSUER: &str = "rigs-test-token-service";

/// A registry token service as Docker's token auth specifies it, on loopback: `GET /token` with
/// the test login as basic auth answers `{"token": JWT}`, the JWT granting the scopes asked
/// (`repository:NAME:ACTIONS`), signed RS256 by `openssl` with a key of its own, its certificate
/// in the header (`x5c`) and in the registry's `rootcertbundle`. Any other login gets 401.
struct TokenService {
    port: u16,
    cert: PathBuf,
    issued: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenService {
    fn start(dir: &Path) -> TokenService {
        std::fs::create_dir_all(dir).unwrap();
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=rigs-test-token-service", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl");
        assert!(
            made.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        // A PEM certificate's body is the base64 of its DER: what `x5c` holds.
        let chain: String = std::fs::read_to_string(&cert)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let issued = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (issued, stop) = (issued.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (key, chain, issued) = (key.clone(), chain.clone(), issued.clone());
                            std::thread::spawn(move || answer(stream, &key, &chain, &issued));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        TokenService {
            port,
            cert,
            issued,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one token request on `stream`.
fn answer(
    mut stream: std::net::TcpStream,
    key: &Path,
    chain: &str,
    issued: &std::sync::Mutex<Vec<(String, String)>>,
) {
    use std::io::{Read, Write};
    use std::time::{SystemTime, UNIX_EPOCH};
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.lines();
    let target = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let login = format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}");
    let basic = format!("Basic {}", data_encoding::BASE64.encode(login.as_bytes()));
    let reply = |stream: &mut std::net::TcpStream, status: &str, body: &str| {
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    let Some(rest) = target.strip_prefix("/token") else {
        return reply(&mut stream, "404 Not Found", "{}");
    };
    let query = rest.strip_prefix('?').unwrap_or("");
    if header("authorization") != basic {
        return reply(
            &mut stream,
            "401 Unauthorized",
            r#"{"details":"wrong login"}"#,
        );
    }
    let scopes: Vec<String> = query
        .split('&')
        .filter_map(|p| p.strip_prefix("scope="))
        .map(percent_decode)
        .collect();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let b64 =
        |v: &serde_json::Value| data_encoding::BASE64URL_NOPAD.encode(v.to_string().as_bytes());
    let input = format!(
        "{}.{}",
        b64(&serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [chain]})),
        b64(&serde_json::json!({
            "iss": TOKEN_ISSUER, "sub": REGISTRY_USER, "aud": TOKEN_AUDIENCE,
            "iat": now.as_secs(), "nbf": now.as_secs() - 10, "exp": now.as_secs() + 300,
            "jti": format!("{}", now.as_nanos()), "access": access,
        }))
    );
    let mut sign = Command::new("openssl")
        .args(["dgst", "-sha256", "-binary", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl dgst");
    sign.stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let signature = sign.wait_with_output().unwrap();
    assert!(signature.status.success(), "openssl dgst -sign failed");
    let token = format!(
        "{input}.{}",
        data_encoding::BASE64URL_NOPAD.encode(&signature.stdout)
    );
    issued
        .lock()
        .unwrap()
        .push((header("user-agent"), scopes.join(" ")));
    let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
    reply(&mut stream, "200 OK", &body.to_string());
}

/// `%XX` escapes and `+` decoded, as in a query string.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
                continue;
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
