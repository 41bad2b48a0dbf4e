//! Real OpenSSH servers on 127.0.0.1, one `sshd` process per simulated host.
//!
//! Each host has its own host key, config, pidfile and log under a temporary folder; all hosts
//! accept one client key. `LogLevel VERBOSE` makes sshd log every accepted key, which is how tests
//! count SSH connections. Processes are killed by PID when the lab is dropped, so a failing test
//! never leaves servers behind and the machine's own sshd service is never involved.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

pub struct LabHost {
    pub name: String,
    pub port: u16,
    pub log_path: PathBuf,
    host_key: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

impl LabHost {
    pub fn addr(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The `ssh-ed25519 AAAA...` text of this host's key.
    pub fn host_pubkey_line(&self) -> String {
        let text =
            std::fs::read_to_string(self.host_key.with_extension("pub")).expect("host public key");
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// How many SSH logins this host has accepted so far.
    pub fn accepted_connections(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    /// Stops the host, so that connecting to it is refused.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LabHost {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct SshLab {
    dir: tempfile::TempDir,
    hosts: Vec<LabHost>,
    client_key: PathBuf,
    user: String,
}

impl SshLab {
    /// Starts `n` hosts named `h1`..`hN`.
    pub fn start(n: usize) -> SshLab {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: run the README's test command (tests/run.sh), which installs openssh-server"
        );
        std::fs::create_dir_all("/run/sshd")
            .expect("create /run/sshd (sshd's privilege separation folder)");
        let dir = tempfile::Builder::new()
            .prefix("rigs-lab-")
            .tempdir()
            .expect("lab dir");
        let client_key = dir.path().join("client_ed25519");
        keygen(&client_key);
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized).expect("authorized_keys");
        let user = current_user();

        let mut hosts = Vec::with_capacity(n);
        for i in 1..=n {
            let name = format!("h{i}");
            let host_dir = dir.path().join(&name);
            std::fs::create_dir_all(&host_dir).unwrap();
            let host_key = host_dir.join("host_ed25519");
            keygen(&host_key);
            hosts.push(LabHost {
                name,
                port: 0,
                log_path: host_dir.join("sshd.log"),
                host_key,
                config: host_dir.join("sshd_config"),
                child: None,
            });
        }
        for host in &mut hosts {
            launch(host, &authorized);
        }
        SshLab {
            dir,
            hosts,
            client_key,
            user,
        }
    }

    pub fn host(&self, i: usize) -> &LabHost {
        &self.hosts[i]
    }

    pub fn host_mut(&mut self, i: usize) -> &mut LabHost {
        &mut self.hosts[i]
    }

    pub fn hosts(&self) -> &[LabHost] {
        &self.hosts
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn client_key_path(&self) -> &Path {
        &self.client_key
    }

    /// Asserts how many SSH logins every host has accepted.
    #[track_caller]
    pub fn assert_connections(&self, expected: usize) {
        for h in &self.hosts {
            assert_eq!(
                h.accepted_connections(),
                expected,
                "{}: {}",
                h.name,
                h.log()
            );
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn known_hosts_line(&self, i: usize) -> String {
        let h = &self.hosts[i];
        format!("[{}]:{} {}", h.addr(), h.port, h.host_pubkey_line())
    }

    pub fn write_known_hosts(&self, path: &Path) {
        let text: String = (0..self.hosts.len())
            .map(|i| self.known_hosts_line(i) + "\n")
            .collect();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).expect("write known_hosts");
    }

    /// known_hosts with hashed host names, as `HashKnownHosts yes` writes them.
    pub fn write_hashed_known_hosts(&self, path: &Path) {
        self.write_known_hosts(path);
        let out = Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(path)
            .output()
            .expect("ssh-keygen -H");
        assert!(
            out.status.success(),
            "ssh-keygen -H: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(path.with_extension("old"));
    }

    /// An inventory with environment `lab` holding every host.
    pub fn inventory_toml(&self) -> String {
        let names: Vec<String> = self
            .hosts
            .iter()
            .map(|h| format!("\"{}\"", h.name))
            .collect();
        let mut text = format!(
            "[defaults]\nuser = \"{}\"\n\n[env.lab]\nhosts = [{}]\n",
            self.user,
            names.join(", ")
        );
        for h in &self.hosts {
            text.push_str(&format!(
                "\n[hosts.{}]\naddress = \"{}\"\nport = {}\nidentity = \"{}\"\n",
                h.name,
                h.addr(),
                h.port,
                self.client_key.display()
            ));
        }
        text
    }
}

/// A loopback port where nothing listens.
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A new ed25519 key pair without passphrase at `path` and `path.pub`.
pub fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "rigs-test", "-f"])
        .arg(path)
        .output()
        .expect("run ssh-keygen (openssh-client)");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts sshd on a free port; a port taken between probing and binding is retried.
fn launch(host: &mut LabHost, authorized: &Path) {
    for _ in 0..5 {
        let port = unused_port();
        let dir = host.config.parent().unwrap();
        let config = format!(
            "ListenAddress 127.0.0.1:{port}\n\
             HostKey {key}\n\
             PidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {authorized}\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\n\
             LogLevel VERBOSE\n\
             MaxStartups 200:30:400\n\
             MaxSessions 100\n\
             Subsystem sftp internal-sftp\n",
            key = host.host_key.display(),
            dir = dir.display(),
            authorized = authorized.display(),
        );
        std::fs::write(&host.config, config).unwrap();
        let _ = std::fs::remove_file(&host.log_path);
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&host.config)
            .arg("-E")
            .arg(&host.log_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        host.child = Some(child);
        host.port = port;
        if wait_for_banner(host, port) {
            return;
        }
        host.stop();
    }
    panic!("sshd for {} did not start:\n{}", host.name, host.log());
}

fn wait_for_banner(host: &mut LabHost, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(child) = host.child.as_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 8];
            if stream.read_exact(&mut buf).is_ok() && &buf == b"SSH-2.0-" {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
