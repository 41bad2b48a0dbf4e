//! The one system account the tests need: `rigs-test`, with a password and a sudoers entry that
//! requires it. Password logins and `sudo -S` can only be tested against a real account.
//!
//! Created once (idempotently, under a lock, as root); never removed, so reruns are cheap.

use std::process::Command;
use std::sync::Mutex;

pub const TEST_USER: &str = "rigs-test";
pub const TEST_PASSWORD: &str = "rigs-Test-pw-7";

static LOCK: Mutex<()> = Mutex::new(());

/// Makes sure the account exists with the known password and a password-requiring sudo rule.
pub fn ensure_test_user() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        is_root(),
        "the password and sudo tests create the `{TEST_USER}` account and need root"
    );
    assert!(
        std::path::Path::new("/usr/bin/sudo").exists(),
        "sudo is missing: run tests/run.sh, which installs it"
    );
    let exists = Command::new("id")
        .arg(TEST_USER)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !exists {
        let out = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", TEST_USER])
            .output()
            .expect("useradd");
        assert!(
            out.status.success(),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut chpasswd = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("chpasswd");
    use std::io::Write;
    chpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{TEST_USER}:{TEST_PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
    let rule = format!("{TEST_USER} ALL=(ALL:ALL) ALL\n");
    let path = "/etc/sudoers.d/rigs-test";
    if std::fs::read_to_string(path).ok().as_deref() != Some(rule.as_str()) {
        std::fs::write(path, rule).expect("write sudoers rule");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o440)).unwrap();
    }
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}
