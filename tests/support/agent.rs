//! A real `ssh-agent` holding one key, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SshAgent {
    child: Child,
    socket: PathBuf,
}

impl SshAgent {
    pub fn start(socket: &Path, key: &Path) -> SshAgent {
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent (openssh-client)");
        let agent = SshAgent {
            child,
            socket: socket.to_path_buf(),
        };
        // The socket file appears before the agent listens on it: retry until the key is added.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = Command::new("ssh-add")
                .arg(key)
                .env("SSH_AUTH_SOCK", socket)
                .output()
                .expect("ssh-add");
            if out.status.success() {
                return agent;
            }
            assert!(
                Instant::now() < deadline,
                "ssh-add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
