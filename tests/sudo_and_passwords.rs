//! Password logins and sudo with a password, against the real `rigs-test` account.

use crate::harness::{ensure_test_user, Project, SshLab, TEST_PASSWORD, TEST_USER};

fn project(lab: &SshLab, recipe: &str) -> Project {
    let mut inventory = format!("[defaults]\nuser = \"{TEST_USER}\"\n[env.lab]\nhosts = [");
    let names: Vec<String> = lab
        .hosts()
        .iter()
        .map(|h| format!("\"{}\"", h.name))
        .collect();
    inventory.push_str(&names.join(", "));
    inventory.push_str("]\n");
    for h in lab.hosts() {
        inventory.push_str(&format!(
            "[hosts.{}]\naddress = \"127.0.0.1\"\nport = {}\nidentity = \"{}\"\n",
            h.name,
            h.port,
            lab.client_key_path().display()
        ));
    }
    let p = Project::new()
        .recipe("t.rhai", recipe)
        .inventory("lab.toml", &inventory);
    lab.write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    p
}

#[test]
fn password_only_host() {
    ensure_test_user();
    let lab = SshLab::start_with(1, "PasswordAuthentication yes\nPubkeyAuthentication no");
    let recipe = "fn who() { run(\"whoami\"); }";
    let out = project(&lab, recipe)
        .env("RIGS_PASSWORD", TEST_PASSWORD)
        .args(["env:lab", "who"])
        .run();
    out.assert_code(0);
    assert!(
        out.stdout.contains(&format!("[h1] {TEST_USER}")),
        "{}",
        out.stdout
    );

    let out = project(&lab, recipe)
        .env("RIGS_PASSWORD", "not-the-password")
        .args(["env:lab", "who"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("authentication failed") && out.stderr.contains(", password)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("not-the-password"), "{}", out.stderr);

    let out = project(&lab, recipe).args(["env:lab", "who"]).run();
    out.assert_code(1);
    assert!(out.stderr.contains("--ask-pass"), "{}", out.stderr);
}

#[test]
fn sudo_with_password_on_three_hosts_in_parallel() {
    ensure_test_user();
    let lab = SshLab::start(3);
    let recipe = r#"
fn root() {
    let r = sudo("id -u; ps -eo args", #{ quiet: true });
    if !r.stdout.starts_with("0\n") { fail(`not root: ${r.stdout}`); }
    info("uid " + r.stdout.split("\n")[0]);
    if r.stdout.contains(secret("RIGS_SUDO_PASSWORD")) { fail("password visible in the process list"); }
    let piped = sudo("cat", #{ stdin: "data for the command" });
    let as_nobody = sudo("id -un", #{ user: "nobody", quiet: true });
    info("as " + as_nobody.stdout);
}
"#;
    let out = project(&lab, recipe)
        .env("RIGS_SUDO_PASSWORD", TEST_PASSWORD)
        .args(["env:lab", "root"])
        .run();
    out.assert_code(0);
    for h in ["h1", "h2", "h3"] {
        assert!(
            out.stderr.contains(&format!("[{h}] uid 0")),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!("[{h}] as nobody")),
            "{}",
            out.stderr
        );
        assert!(
            out.stdout.contains(&format!("[{h}] data for the command")),
            "{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains(TEST_PASSWORD) && !out.stderr.contains(TEST_PASSWORD));
    assert!(out.stderr.contains("$ sudo id -u"), "{}", out.stderr);
}

#[test]
fn wrong_or_missing_sudo_password_fails_fast() {
    ensure_test_user();
    let lab = SshLab::start(1);
    let recipe = "fn root() { sudo(\"true\"); }";
    let out = project(&lab, recipe)
        .env("RIGS_SUDO_PASSWORD", "wrong-pw")
        .args(["env:lab", "root"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("sudo: incorrect password"),
        "{}",
        out.stderr
    );

    let out = project(&lab, recipe).args(["env:lab", "root"]).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("sudo needs a password"),
        "{}",
        out.stderr
    );
}

#[test]
fn ad_hoc_sudo() {
    ensure_test_user();
    let lab = SshLab::start(1);
    let out = project(&lab, "fn t() {}")
        .env("RIGS_SUDO_PASSWORD", TEST_PASSWORD)
        .args(["env:lab", "--sudo", "--", "whoami"])
        .run();
    out.assert_code(0);
    assert!(out.stdout.contains("[h1] root"), "{}", out.stdout);
}

#[test]
fn ask_pass_prompts_on_the_terminal_without_echo() {
    ensure_test_user();
    let lab = SshLab::start_with(2, "PasswordAuthentication yes\nPubkeyAuthentication no");
    let out = project(&lab, "fn who() { run(\"whoami\"); }")
        .args(["--ask-pass", "--output", "plain", "env:lab", "who"])
        .run_in_terminal(&format!("{TEST_PASSWORD}\n"));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.matches("SSH password:").count(),
        1,
        "asked once: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("[h1] {TEST_USER}")),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains(TEST_PASSWORD),
        "echoed: {}",
        out.stdout
    );

    let out = project(&lab, "fn who() { run(\"whoami\"); }")
        .args(["--ask-pass", "env:lab", "who"])
        .without_terminal()
        .run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("--ask-pass needs a terminal"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_command_that_imitates_the_sudo_prompt_gets_no_password() {
    let lab = SshLab::start(1);
    let p = Project::new()
        .recipe(
            "t.rhai",
            r#"fn t() { let r = run("printf '\\036rigs-sudo-prompt\\036' >&2; sleep 0.3; cat", #{ stdin: "only this", quiet: true }); info("got [" + r.stdout + "]"); }"#,
        )
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("known_hosts"));
    let out = p
        .env("RIGS_SUDO_PASSWORD", "pw-that-must-not-leak")
        .args(["--known-hosts", "known_hosts", "env:lab", "t"])
        .run();
    out.assert_code(0);
    assert!(out.stderr.contains("got [only this]"), "{}", out.stderr);
}

#[test]
fn a_command_that_sudo_let_through_gets_no_password_for_printing_the_prompt() {
    // The lab logs in as root, whose sudo asks nothing, as under NOPASSWD or a cached login: sudo
    // lets the command through at once, and the command then prints rigs' prompt on stderr (as
    // `docker logs` may) before it reads its stdin. The stdin is larger than what the SSH window
    // and the pipe hold, so it is still flowing when the prompt arrives: a password sent then
    // would land in it.
    let lab = SshLab::start(1);
    let recipe = r#"
fn t() {
    let data = "x";
    for i in 0..23 { data += data; }
    let r = sudo("printf 'log: \\036rigs-sudo-prompt\\036\\n' >&2; sleep 0.3; cat", #{ stdin: data, quiet: true });
    if r.stdout.contains(secret("RIGS_SUDO_PASSWORD")) { fail("the password reached the command"); }
    info(`read ${r.stdout.len()} of ${data.len()}`);
    info("stderr " + r.stderr);
}
"#;
    let p = Project::new()
        .recipe("t.rhai", recipe)
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("known_hosts"));
    let out = p
        .env("RIGS_SUDO_PASSWORD", "pw-that-must-not-leak")
        .args(["--known-hosts", "known_hosts", "env:lab", "t"])
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("[h1] read 8388608 of 8388608"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("stderr log: \\x1erigs-sudo-prompt\\x1e"),
        "the command's own stderr is output: {}",
        out.stderr
    );
}
