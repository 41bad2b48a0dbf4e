//! Host key verification against known_hosts: strict by default, accept-new on request, changed
//! keys always refused.

use crate::harness::{Project, SshLab};

fn project(lab: &SshLab) -> Project {
    Project::new()
        .recipe("t.rhai", "fn t() { run(\"true\"); }")
        .inventory("lab.toml", &lab.inventory_toml())
}

#[test]
fn unknown_host_key_is_refused_with_fingerprint_and_advice() {
    let lab = SshLab::start(1);
    let p = project(&lab);
    std::fs::write(p.path().join("known_hosts"), "").unwrap();
    let out = p
        .args(["--known-hosts", "known_hosts", "env:lab", "t"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("is not known (ssh-ed25519 SHA256:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--host-key-policy accept-new"),
        "{}",
        out.stderr
    );
    assert!(
        lab.host(0).log().contains("Connection closed") || lab.host(0).accepted_connections() == 0
    );
    assert_eq!(lab.host(0).accepted_connections(), 0);
}

#[test]
fn default_known_hosts_is_in_home() {
    let lab = SshLab::start(1);
    let p = project(&lab);
    let ssh_dir = p.path().join("home/.ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    lab.write_known_hosts(&ssh_dir.join("known_hosts"));
    p.args(["env:lab", "t"]).run().assert_code(0);
}

#[test]
fn accept_new_records_the_key_then_strict_accepts_it() {
    let lab = SshLab::start(2);
    let p = project(&lab);
    let kh = p.path().join("kh/known_hosts");
    let out = p
        .clone()
        .args([
            "--known-hosts",
            "kh/known_hosts",
            "--host-key-policy",
            "accept-new",
            "env:lab",
            "t",
        ])
        .run();
    out.assert_code(0);
    let recorded = std::fs::read_to_string(&kh).unwrap();
    for i in 0..2 {
        assert!(recorded.contains(&lab.known_hosts_line(i)), "{recorded}");
    }
    let again = p
        .args(["--known-hosts", "kh/known_hosts", "env:lab", "t"])
        .run();
    again.assert_code(0);
}

#[test]
fn changed_key_is_refused_even_under_accept_new() {
    let lab = SshLab::start(1);
    let p = project(&lab);
    let other = p.path().join("other");
    crate::harness::keygen(&other);
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let key: Vec<&str> = pubkey.split_whitespace().take(2).collect();
    std::fs::write(
        p.path().join("known_hosts"),
        format!(
            "# first line\n[127.0.0.1]:{} {}\n",
            lab.host(0).port,
            key.join(" ")
        ),
    )
    .unwrap();
    let out = p
        .args([
            "--known-hosts",
            "known_hosts",
            "--host-key-policy",
            "accept-new",
            "env:lab",
            "t",
        ])
        .run();
    out.assert_code(1);
    assert!(out.stderr.contains("HOST KEY CHANGED"), "{}", out.stderr);
    assert!(out.stderr.contains("known_hosts:2"), "{}", out.stderr);
    assert_eq!(lab.host(0).accepted_connections(), 0);
}

#[test]
fn hashed_known_hosts_entries_are_accepted() {
    let lab = SshLab::start(1);
    let p = project(&lab);
    let kh = p.path().join("known_hosts");
    lab.write_hashed_known_hosts(&kh);
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    p.args(["--known-hosts", "known_hosts", "env:lab", "t"])
        .run()
        .assert_code(0);
}
