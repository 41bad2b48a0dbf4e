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
    address: String,
    pub port: u16,
    pub log_path: PathBuf,
    host_key: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

impl LabHost {
    /// A host with its own folder and host key under `dir`; not started yet.
    pub(crate) fn new(name: &str, dir: &Path) -> LabHost {
        let host_dir = dir.join(name);
        std::fs::create_dir_all(&host_dir).unwrap();
        let host_key = host_dir.join("host_ed25519");
        keygen(&host_key);
        LabHost {
            name: name.to_string(),
            address: "127.0.0.1".to_string(),
            port: 0,
            log_path: host_dir.join("sshd.log"),
            host_key,
            config: host_dir.join("sshd_config"),
            child: None,
        }
    }

    pub fn addr(&self) -> &str {
        &self.address
    }

    /// Starts sshd for this host, inside network namespace `netns` listening on `address` when
    /// given, else on 127.0.0.1.
    pub(crate) fn launch(&mut self, authorized: &Path, extra: &str, netns: Option<(&str, &str)>) {
        if let Some((_, address)) = netns {
            self.address = address.to_string();
        }
        launch(self, authorized, extra, netns);
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
        if let Some(pid) = self.pid() {
            for p in descendants(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &p.to_string()])
                    .status();
            }
        }
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
        SshLab::start_with(n, "")
    }

    /// Like [`SshLab::start`], with `extra` sshd_config lines taking precedence over the lab's
    /// defaults (sshd keeps the first value it reads for a keyword).
    pub fn start_with(n: usize, extra: &str) -> SshLab {
        SshLab::start_each(n, |_| extra.to_string())
    }

    /// Like [`SshLab::start_with`], with extra config lines of its own for each host.
    pub fn start_each(n: usize, extra: impl Fn(usize) -> String) -> SshLab {
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

        let mut hosts: Vec<LabHost> = (1..=n)
            .map(|i| LabHost::new(&format!("h{i}"), dir.path()))
            .collect();
        for (i, host) in hosts.iter_mut().enumerate() {
            launch(host, &authorized, &extra(i), None);
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

    /// Lets `public_key` log in too (every host shares one authorized_keys file).
    pub fn authorize(&self, public_key: &Path) {
        let mut keys = std::fs::read_to_string(self.dir.path().join("authorized_keys")).unwrap();
        keys.push_str(&std::fs::read_to_string(public_key).unwrap());
        std::fs::write(self.dir.path().join("authorized_keys"), keys).unwrap();
    }

    /// Kills every process of host `i`: its sshd and all sessions, as a crashed machine would.
    pub fn crash(&mut self, i: usize) {
        let host = &mut self.hosts[i];
        if let Some(pid) = host.pid() {
            for child in descendants(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &child.to_string()])
                    .status();
            }
        }
        host.stop();
    }

    /// Freezes every process of host `i` (SIGSTOP): the machine stops answering without closing
    /// anything, as a hung host or a dropped network does. Dropping the lab kills them.
    pub fn freeze(&mut self, i: usize) {
        if let Some(pid) = self.hosts[i].pid() {
            let mut all = descendants(pid);
            all.push(pid);
            for p in all {
                let _ = Command::new("kill")
                    .args(["-STOP", &p.to_string()])
                    .status();
            }
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

    /// A project with `recipe` as `t.rhai` and this lab's inventory, its arguments starting with
    /// `--known-hosts known_hosts`: a file in its folder that knows every lab host's key.
    pub fn project_with_recipe(&self, recipe: &str) -> super::Project {
        let p = super::Project::new()
            .recipe("t.rhai", recipe)
            .inventory("lab.toml", &self.inventory_toml());
        self.write_known_hosts(&p.path().join("known_hosts"));
        p.args(["--known-hosts", "known_hosts"])
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

/// Every process below `pid` in the process tree, read from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces; the parent follows it.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|v| v.parse().ok()) {
            parents.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// A loopback port where nothing listened a moment ago, for a server the test starts next.
///
/// Another process may take the port before that server binds it: whoever starts a server on it
/// must check that its own server answers there (as [`SshLab`] does with sshd's log, and the
/// docker lab with the registry's) and retry with another port if not. For a port that must stay
/// closed, use [`ClosedPort`].
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback port held bound but not listening for as long as this value lives: connecting to
/// it is refused, and no other process can start listening on it meanwhile.
pub struct ClosedPort {
    /// Closing it frees the port.
    _socket: std::os::fd::OwnedFd,
    port: u16,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket calls on a descriptor this function owns; `addr` outlives them.
        unsafe {
            let raw = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
            let fd = std::os::fd::OwnedFd::from_raw_fd(raw);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let bound = libc::bind(raw, &addr as *const _ as *const libc::sockaddr, len);
            assert!(bound == 0, "bind: {}", std::io::Error::last_os_error());
            let mut len = len;
            let named =
                libc::getsockname(raw, &mut addr as *mut _ as *mut libc::sockaddr, &mut len);
            assert!(
                named == 0,
                "getsockname: {}",
                std::io::Error::last_os_error()
            );
            ClosedPort {
                _socket: fd,
                port: u16::from_be(addr.sin_port),
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Default for ClosedPort {
    fn default() -> ClosedPort {
        ClosedPort::new()
    }
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

pub(crate) fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts sshd on a free port; a port taken between probing and binding is retried.
fn launch(host: &mut LabHost, authorized: &Path, extra: &str, netns: Option<(&str, &str)>) {
    for _ in 0..5 {
        // In a network namespace the port cannot be probed from here; a random high one is used.
        let port = match netns {
            None => unused_port(),
            Some(_) => 20000 + (std::process::id() as u16 % 20000) + (rand_u16() % 5000),
        };
        let listen = netns.map_or("127.0.0.1", |(_, addr)| addr);
        let dir = host.config.parent().unwrap();
        let config = format!(
            "{extra}\n\
             ListenAddress {listen}:{port}\n\
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
        let mut command = match netns {
            None => Command::new(SSHD),
            Some((ns, _)) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, SSHD]);
                c
            }
        };
        let child = command
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
        if wait_for_banner(host, listen, port, netns.map(|(ns, _)| ns)) {
            return;
        }
        host.stop();
    }
    panic!("sshd for {} did not start:\n{}", host.name, host.log());
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (nanos ^ (nanos >> 16)) as u16
}

fn wait_for_banner(host: &mut LabHost, addr: &str, port: u16, netns: Option<&str>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(child) = host.child.as_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
        }
        if netns.is_some() {
            // Only the log can tell from outside the namespace that sshd is listening.
            if host
                .log()
                .contains(&format!("Server listening on {addr} port {port}."))
            {
                return true;
            }
        } else if host
            .log()
            .contains(&format!("Server listening on {addr} port {port}."))
        {
            // This sshd's own log says it holds the port (another server that took the port
            // first would make it log "Bind to port ... failed" and exit instead); its banner
            // then says it accepts connections.
            if let Ok(mut stream) = TcpStream::connect((addr, port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 8];
                if stream.read_exact(&mut buf).is_ok() && &buf == b"SSH-2.0-" {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
