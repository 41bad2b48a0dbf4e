//! Tasks over real SSH: parallel hosts, prefixes, connection reuse, failures that stay on their host.

use crate::harness::{Project, SshLab};

const TASKS: &str = r#"
/// Two commands.
fn hello() {
    run("echo hello from $(whoami)");
    run("echo to-stderr >&2");
}

/// Ten commands on one connection.
fn ten() {
    for i in 0..10 {
        let r = run(`echo run-${i}`, #{ quiet: true });
        if r.stdout != `run-${i}` { fail(`unexpected ${r.stdout}`); }
    }
}

/// Sleeps.
fn nap(secs) { run(`sleep ${secs}`); }
"#;

fn lab_project(lab: &SshLab) -> Project {
    let p = Project::new()
        .recipe("tasks.rhai", TASKS)
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("known_hosts"));
    p.args(["--known-hosts", "known_hosts"])
}

#[test]
fn task_runs_on_three_hosts_with_prefixes() {
    let lab = SshLab::start(3);
    let out = lab_project(&lab)
        .args(["--output", "plain", "env:lab", "hello"])
        .run();
    out.assert_code(0);
    for h in ["h1", "h2", "h3"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l == format!("[{h}] hello from {}", lab.user())),
            "{h}: {}",
            out.stdout
        );
        assert!(
            out.stderr.lines().any(|l| l == format!("[{h}] to-stderr")),
            "{h}: {}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains(&format!("[{h}] $ echo hello from $(whoami)")),
            "{}",
            out.stderr
        );
    }
    assert!(
        out.stdout.lines().all(|l| l.starts_with("[h")),
        "every line prefixed: {}",
        out.stdout
    );
    assert!(out.stderr.contains("3 hosts: 3 ok"), "{}", out.stderr);
}

#[test]
fn one_connection_per_host_across_commands_and_tasks() {
    let lab = SshLab::start(2);
    let out = lab_project(&lab)
        .args(["env:lab", "ten", "hello", "ten"])
        .run();
    out.assert_code(0);
    lab.assert_connections(1);
}

#[test]
fn hosts_run_in_parallel_or_serially_as_asked() {
    let lab = SshLab::start(3);
    let meeting = tempfile::tempdir().unwrap();
    let dir = crate::harness::shell_quote(&meeting.path().display().to_string());
    // Parallel: every host waits until all three have arrived; run one at a time, the first
    // would give up after 10 s and fail.
    let rendezvous = format!(
        "fn meet() {{ run(`touch {dir}/${{host.name}}; i=0; while [ $(ls {dir} | wc -l) -lt 3 ]; do \
         i=$((i+1)); [ $i -gt 200 ] && exit 9; sleep 0.05; done`); }}"
    );
    // Serial: a host that finds another one inside fails.
    let exclusive = format!(
        "fn alone() {{ run(`mkdir {dir}/inside || exit 8; sleep 0.2; rmdir {dir}/inside`); }}"
    );
    let out = lab_project(&lab)
        .recipe("meet.rhai", &rendezvous)
        .args(["env:lab", "meet"])
        .run();
    out.assert_code(0);
    let out = lab_project(&lab)
        .recipe("alone.rhai", &exclusive)
        .args(["--serial", "env:lab", "alone"])
        .run();
    out.assert_code(0);
    let out = lab_project(&lab)
        .recipe("alone.rhai", &exclusive)
        .args(["--pool-size", "1", "env:lab", "alone"])
        .run();
    out.assert_code(0);
}

#[test]
fn unreachable_host_fails_alone() {
    let lab = SshLab::start(2);
    let port = crate::harness::unused_port();
    let p = lab_project(&lab).inventory(
        "down.toml",
        &format!(
            "[hosts.down]\naddress = \"127.0.0.1\"\nport = {port}\nidentity = \"{}\"\n",
            lab.client_key_path().display()
        ),
    );
    let out = p.args(["env:lab", "-H", "down", "hello"]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("[down] failed hello: cannot connect to"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Connection refused"), "{}", out.stderr);
    assert!(
        out.stderr.contains("3 hosts: 2 ok, 1 failed"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_failed_host_gets_no_later_tasks() {
    let lab = SshLab::start(2);
    let p = lab_project(&lab).recipe(
        "fail.rhai",
        r#"fn breaks() { if host.name == "h1" { run("exit 4"); } }"#,
    );
    let out = p.args(["env:lab", "breaks", "hello"]).run();
    out.assert_code(1);
    assert!(!out.stdout.contains("[h1] hello from"), "{}", out.stdout);
    assert!(out.stdout.contains("[h2] hello from"), "{}", out.stdout);
}

#[test]
fn ad_hoc_command_on_explicit_hosts() {
    let lab = SshLab::start(2);
    let out = lab_project(&lab)
        .args(["-H", "h1,h2", "--", "echo", "adhoc", "$((40+2))"])
        .run();
    out.assert_code(0);
    assert!(
        out.stdout.contains("[h1] adhoc 42") && out.stdout.contains("[h2] adhoc 42"),
        "{}",
        out.stdout
    );

    let out = lab_project(&lab).args(["-H", "h1", "--", "exit 3"]).run();
    out.assert_code(1);
    assert!(out.stderr.contains("exited with code 3"), "{}", out.stderr);
}

#[test]
fn dry_run_connects_to_nothing() {
    let lab = SshLab::start(2);
    let out = lab_project(&lab)
        .args(["env:lab", "--dry-run", "hello"])
        .run();
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("[h1] would run: echo hello from $(whoami)"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("hello from"), "{}", out.stdout);
    lab.assert_connections(0);
}

#[test]
fn command_timeout_fails_the_host() {
    let lab = SshLab::start(1);
    let out = lab_project(&lab)
        .args(["--command-timeout", "0.5", "env:lab", "nap:47.31"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("did not finish within 0.5s"),
        "{}",
        out.stderr
    );
    assert!(
        !crate::harness::process_running("sleep 47.31"),
        "the timed-out command still runs on the host"
    );
}

#[test]
fn authentication_failure_is_clear() {
    let lab = SshLab::start(1);
    let p = lab_project(&lab);
    let wrong = p.path().join("wrong_key");
    crate::harness::keygen(&wrong);
    let inventory = format!(
        "[env.only]\nhosts = [\"x\"]\n[hosts.x]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nidentity = \"{}\"\n",
        lab.host(0).port,
        lab.user(),
        wrong.display()
    );
    let out = p
        .inventory("wrong.toml", &inventory)
        .args(["env:only", "hello"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("authentication failed for"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("wrong_key"), "{}", out.stderr);
}

#[test]
fn agent_identities_are_used() {
    let lab = SshLab::start(1);
    let p = Project::new().recipe("tasks.rhai", TASKS);
    lab.write_known_hosts(&p.path().join("known_hosts"));
    let agent =
        crate::harness::SshAgent::start(&p.path().join("agent.sock"), lab.client_key_path());
    let inventory = format!(
        "[env.lab]\nhosts = [\"a\"]\n[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\n",
        lab.host(0).port,
        lab.user()
    );
    let out = p
        .inventory("lab.toml", &inventory)
        .env("SSH_AUTH_SOCK", agent.socket().to_str().unwrap())
        .args(["--known-hosts", "known_hosts", "-v", "env:lab", "hello"])
        .run();
    drop(agent);
    out.assert_code(0);
    assert!(out.stderr.contains("agent key"), "{}", out.stderr);
}
