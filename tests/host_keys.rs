//! Host key verification against known_hosts: strict by default, accept-new on request, changed
//! keys always refused.

use crate::harness::{Project, RunOutput, SshLab, GLOBAL_KNOWN_HOSTS};

fn project(lab: &SshLab) -> Project {
    Project::new()
        .recipe("t.rhai", "fn t() { run(\"true\"); info(\"connected\"); }")
        .inventory("lab.toml", &lab.inventory_toml())
}

/// The `SHA256:...` fingerprint of lab host `i`'s key, as `ssh-keygen -l` prints it.
fn fingerprint(lab: &SshLab, i: usize) -> String {
    let file = lab.dir().join(format!("fingerprint-{i}.pub"));
    std::fs::write(&file, lab.host(i).host_pubkey_line() + "\n").unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&file)
        .output()
        .expect("ssh-keygen -l");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("ssh-keygen -l: {text}"))
        .to_string()
}

/// The refusal rigs prints for an unknown key of lab host `i`, advising to add it to `known_hosts`.
fn unknown_key_message(lab: &SshLab, i: usize, known_hosts: &std::path::Path) -> String {
    format!(
        "host key for [127.0.0.1]:{} is not known (ssh-ed25519 {}); refusing to connect. \
         Verify the fingerprint with the host's owner, then run once with \
         --host-key-policy accept-new, or add it with `ssh-keyscan` to {}",
        lab.host(i).port,
        fingerprint(lab, i),
        known_hosts.display()
    )
}

/// Runs task `t` on the lab with the default known_hosts files, checking that rigs refuses host
/// 0's key as unknown and advises adding it to `advised`.
fn assert_unknown_by_default(lab: &SshLab, p: &Project, advised: &std::path::Path) {
    let out = p.clone().args(["env:lab", "t"]).run();
    out.assert_code(1);
    let expected = unknown_key_message(lab, 0, advised);
    assert!(out.stderr.contains(&expected), "{expected}\n{}", out.stderr);
}

/// Runs task `t` on the lab with the default known_hosts files, checking that rigs reaches h1.
fn assert_connects_by_default(p: &Project) {
    let out = p.clone().args(["env:lab", "t"]).run();
    out.assert_code(0);
    assert!(out.stderr.contains("[h1] connected"), "{}", out.stderr);
}

/// Runs task `t` on the lab under `--host-key-policy accept-new`, with `flag file` before that.
fn run_accepting_new(p: &Project, flag: &str, file: &str) -> RunOutput {
    p.clone()
        .args([
            flag,
            file,
            "--host-key-policy",
            "accept-new",
            "env:lab",
            "t",
        ])
        .run()
}

/// The type and key fields of a public key that is no lab host's, made in `p`'s folder.
fn another_key(p: &Project) -> String {
    let other = p.path().join("other");
    crate::harness::keygen(&other);
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let key: Vec<&str> = pubkey.split_whitespace().take(2).collect();
    key.join(" ")
}

/// Runs task `t` on lab host 0 under `--host-key-policy accept-new` with `flag file`, and checks
/// that rigs refuses the host's key as changed, naming the entry it `differs_from` (and what
/// follows in the message), without connecting.
fn assert_refused_as_changed(
    lab: &SshLab,
    p: &Project,
    flag: &str,
    file: &str,
    differs_from: &str,
) {
    let out = run_accepting_new(p, flag, file);
    out.assert_code(1);
    let expected = format!(
        "HOST KEY CHANGED for [127.0.0.1]:{}: the server offered {}, which differs from \
         {differs_from}",
        lab.host(0).port,
        fingerprint(lab, 0)
    );
    assert!(out.stderr.contains(&expected), "{expected}\n{}", out.stderr);
    assert_eq!(lab.host(0).accepted_connections(), 0);
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
    let expected = unknown_key_message(&lab, 0, std::path::Path::new("known_hosts"));
    assert!(out.stderr.contains(&expected), "{expected}\n{}", out.stderr);
    assert!(!out.stderr.contains("[h1] connected"), "{}", out.stderr);
    assert_eq!(
        lab.host(0).accepted_connections(),
        0,
        "{}",
        lab.host(0).log()
    );
}

#[test]
fn default_known_hosts_is_in_home() {
    let lab = SshLab::start(1);
    let p = project(&lab);
    let ssh_dir = p.path().join("home/.ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let home_file = ssh_dir.join("known_hosts");
    assert_unknown_by_default(&lab, &p, &home_file);
    lab.write_known_hosts(&home_file);
    assert_connects_by_default(&p);
}

#[test]
fn accept_new_records_the_key_then_strict_accepts_it() {
    let lab = SshLab::start(2);
    let p = project(&lab);
    let kh = p.path().join("kh/known_hosts");
    let out = run_accepting_new(&p, "--known-hosts", "kh/known_hosts");
    out.assert_code(0);
    let recorded = std::fs::read_to_string(&kh).unwrap();
    for i in 0..2 {
        assert!(recorded.contains(&lab.known_hosts_line(i)), "{recorded}");
    }
    let again = p
        .clone()
        .args(["--known-hosts", "kh/known_hosts", "env:lab", "t"])
        .run();
    again.assert_code(0);
    assert!(
        again.stderr.contains("[h1] connected") && again.stderr.contains("[h2] connected"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), recorded);
}

#[test]
fn changed_key_is_refused_even_under_accept_new() {
    let lab = SshLab::start(1);
    let p = project(&lab);
    let key = another_key(&p);
    let p_known_hosts = p.path().join("known_hosts");
    std::fs::write(
        p.path().join("known_hosts"),
        format!("# first line\n[127.0.0.1]:{} {key}\n", lab.host(0).port),
    )
    .unwrap();
    assert_refused_as_changed(
        &lab,
        &p,
        "--known-hosts",
        "known_hosts",
        "known_hosts:2. This may be an attack",
    );
    // Nothing was learned in its place.
    assert_eq!(
        std::fs::read_to_string(p_known_hosts)
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn hashed_known_hosts_entries_are_accepted() {
    let lab = SshLab::start(1);
    let p = project(&lab);
    let kh = p.path().join("known_hosts");
    lab.write_hashed_known_hosts(&kh);
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let out = p
        .args(["--known-hosts", "known_hosts", "env:lab", "t"])
        .run();
    out.assert_code(0);
    assert!(out.stderr.contains("[h1] connected"), "{}", out.stderr);
}

#[test]
fn keys_in_the_global_known_hosts_file_are_honoured() {
    let lab = SshLab::start(1);
    let p = project(&lab);
    let global = p.path().join(GLOBAL_KNOWN_HOSTS);
    // The harness' global file (RIGS_GLOBAL_KNOWN_HOSTS) starts empty: the host is unknown.
    let user_file = p.path().join("home/.ssh/known_hosts");
    assert_unknown_by_default(&lab, &p, &user_file);

    lab.write_known_hosts(&global);
    assert_connects_by_default(&p);
    // Read, never written: the user's file was not created either.
    assert!(!user_file.exists());
    assert_eq!(
        std::fs::read_to_string(&global).unwrap(),
        lab.known_hosts_line(0) + "\n"
    );
}

#[test]
fn the_global_known_hosts_flag_wins_over_the_variable_and_is_never_written() {
    let lab = SshLab::start(1);
    let p = project(&lab);
    lab.write_known_hosts(&p.path().join(GLOBAL_KNOWN_HOSTS));
    // Another key for the host in the file the flag names: the flag's file is the one read.
    let stale = format!("[127.0.0.1]:{} {}\n", lab.host(0).port, another_key(&p));
    std::fs::write(p.path().join("fleet_known_hosts"), &stale).unwrap();
    assert_refused_as_changed(
        &lab,
        &p,
        "--global-known-hosts",
        "fleet_known_hosts",
        "fleet_known_hosts:1.",
    );

    // An empty global file and accept-new: the key is learned into the user's file only.
    let dir = p.path().to_path_buf();
    std::fs::write(dir.join("empty"), "").unwrap();
    let out = run_accepting_new(&p, "--global-known-hosts", "empty");
    out.assert_code(0);
    assert!(out.stderr.contains("[h1] connected"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dir.join("empty")).unwrap(), "");
    assert_eq!(
        std::fs::read_to_string(dir.join("home/.ssh/known_hosts")).unwrap(),
        lab.known_hosts_line(0) + "\n"
    );
}
