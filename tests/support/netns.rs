//! A target that only a bastion can reach, built from a network namespace the test creates.
//!
//! The namespace gets a veth pair to the test's own namespace. Inside it run two sshd: the
//! bastion, listening on the namespace's veth address (reachable from the controller), and the
//! target, listening on the namespace's own loopback, which nothing outside the namespace can
//! reach. A connection to the target must therefore go through the bastion. Everything is
//! removed when the lab is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::sshd::{current_user, keygen, LabHost};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct BastionLab {
    _dir: tempfile::TempDir,
    netns: String,
    pub bastion: LabHost,
    /// With [`BastionLab::start_two_hops`]: a second bastion on the namespace's loopback, which
    /// only the first one can reach (listening beside the target).
    pub inner: Option<LabHost>,
    pub target: LabHost,
    client_key: PathBuf,
    user: String,
}

impl BastionLab {
    pub fn start() -> BastionLab {
        BastionLab::start_with(false)
    }

    /// A lab with an inner bastion as well, for chains through different jump hosts.
    pub fn start_two_hops() -> BastionLab {
        BastionLab::start_with(true)
    }

    fn start_with(two_hops: bool) -> BastionLab {
        let id = std::process::id() % 10_000 * 10 + NEXT.fetch_add(1, Ordering::Relaxed) % 10;
        let netns = format!("rigs-t{id}");
        let outer = format!("rg{id}a");
        let inner = format!("rg{id}b");
        // A /30 per lab, from the test-only range 10.231.0.0/16.
        let subnet = (id % 16_000) * 4;
        let (a, b) = (subnet / 256, subnet % 256);
        let outer_addr = format!("10.231.{a}.{}", b + 1);
        let inner_addr = format!("10.231.{a}.{}", b + 2);
        let _ = Command::new("ip").args(["netns", "del", &netns]).output();
        for args in [
            vec!["netns", "add", &netns],
            vec![
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ],
            vec!["link", "set", &inner, "netns", &netns],
            vec!["addr", "add", &format!("{outer_addr}/30"), "dev", &outer],
            vec!["link", "set", &outer, "up"],
            vec![
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{inner_addr}/30"),
                "dev",
                &inner,
            ],
            vec!["-n", &netns, "link", "set", &inner, "up"],
            vec!["-n", &netns, "link", "set", "lo", "up"],
        ] {
            ip(&args);
        }

        let dir = tempfile::Builder::new()
            .prefix("rigs-bastion-")
            .tempdir()
            .unwrap();
        let client_key = dir.path().join("client_ed25519");
        keygen(&client_key);
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized).unwrap();
        let mut bastion = LabHost::new("bastion", dir.path());
        // The bastion forwards; the target does not have to.
        bastion.launch(
            &authorized,
            "AllowTcpForwarding yes",
            Some((&netns, &inner_addr)),
        );
        let inner = two_hops.then(|| {
            let mut inner = LabHost::new("inner", dir.path());
            inner.launch(
                &authorized,
                "AllowTcpForwarding yes",
                Some((&netns, "127.0.0.1")),
            );
            inner
        });
        let mut target = LabHost::new("target", dir.path());
        target.launch(&authorized, "", Some((&netns, "127.0.0.1")));
        BastionLab {
            _dir: dir,
            netns,
            bastion,
            inner,
            target,
            client_key,
            user: current_user(),
        }
    }

    pub fn client_key_path(&self) -> &Path {
        &self.client_key
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// known_hosts lines for every server, as the controller names them.
    pub fn write_known_hosts(&self, path: &Path) {
        let line = |h: &LabHost| format!("[{}]:{} {}\n", h.addr(), h.port, h.host_pubkey_line());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let inner = self.inner.as_ref().map(line).unwrap_or_default();
        std::fs::write(path, line(&self.bastion) + &inner + &line(&self.target)).unwrap();
    }
}

impl Drop for BastionLab {
    fn drop(&mut self) {
        self.bastion.stop();
        if let Some(inner) = &mut self.inner {
            inner.stop();
        }
        self.target.stop();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
