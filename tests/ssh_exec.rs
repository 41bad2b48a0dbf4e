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

/// A task `meet` in which each host enters the folder `dir`, waits (up to 10 s, else exit 7)
/// until `n` hosts are in, then watches for 1 s that no more come in (else exit 8), and leaves.
/// It succeeds only if `n` hosts run at once and never more.
fn at_most(dir: &std::path::Path, n: usize) -> String {
    let dir = crate::harness::shell_quote(&dir.display().to_string());
    format!(
        "fn meet() {{ run(`touch {dir}/${{host.name}}; i=0; \
         while [ $(ls {dir} | wc -l) -lt {n} ]; do i=$((i+1)); [ $i -gt 200 ] && exit 7; sleep 0.05; done; \
         i=0; while [ $i -lt 20 ]; do [ $(ls {dir} | wc -l) -gt {n} ] && exit 8; i=$((i+1)); sleep 0.05; done; \
         rm {dir}/${{host.name}}`); }}"
    )
}

#[test]
fn hosts_run_in_parallel_or_serially_as_asked() {
    let lab = SshLab::start(3);
    // Parallel: all three meet.
    for args in [vec![], vec!["--pool-size", "3"]] {
        let meeting = tempfile::tempdir().unwrap();
        let out = lab_project(&lab)
            .recipe("meet.rhai", &at_most(meeting.path(), 3))
            .args(args)
            .args(["env:lab", "meet"])
            .run();
        out.assert_code(0);
    }
    // One at a time: a host never sees another one come in while it runs.
    for args in [["--serial"], ["--pool-size=1"]] {
        let meeting = tempfile::tempdir().unwrap();
        let out = lab_project(&lab)
            .recipe("meet.rhai", &at_most(meeting.path(), 1))
            .args(args)
            .args(["env:lab", "meet"])
            .run();
        out.assert_code(0);
    }
    // And the check bites: run in parallel, the hosts do see each other.
    let meeting = tempfile::tempdir().unwrap();
    let out = lab_project(&lab)
        .recipe("meet.rhai", &at_most(meeting.path(), 1))
        .args(["env:lab", "meet"])
        .run();
    out.assert_code(1);
    assert!(out.stderr.contains("exited with code 8"), "{}", out.stderr);
}

#[test]
fn pool_size_bounds_the_hosts_running_at_once() {
    let lab = SshLab::start(4);
    // Four hosts, two at a time: pairs meet, and no third host ever joins them.
    let meeting = tempfile::tempdir().unwrap();
    let out = lab_project(&lab)
        .recipe("meet.rhai", &at_most(meeting.path(), 2))
        .args(["-z", "2", "--output", "plain", "env:lab", "meet"])
        .run();
    out.assert_code(0);
    assert!(out.stderr.contains("4 hosts: 4 ok"), "{}", out.stderr);
    // With a pool of three the same task fails: the bound is what keeps the third host out.
    let meeting = tempfile::tempdir().unwrap();
    let out = lab_project(&lab)
        .recipe("meet.rhai", &at_most(meeting.path(), 2))
        .args(["-z", "3", "env:lab", "meet"])
        .run();
    out.assert_code(1);
    assert!(out.stderr.contains("exited with code 8"), "{}", out.stderr);
}

#[test]
fn unreachable_host_fails_alone() {
    let lab = SshLab::start(2);
    // Held bound, not listening, for the whole test: the connection is refused every time.
    let closed = crate::harness::ClosedPort::new();
    let port = closed.port();
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

#[test]
fn command_timeout_holds_on_a_host_that_stopped_answering_before_the_command() {
    let mut lab = SshLab::start(1);
    let meeting = tempfile::tempdir().unwrap();
    let dir = crate::harness::shell_quote(&meeting.path().display().to_string());
    // The first command shows that the connection is up. Once it has ended, the recipe says so
    // from the controller (`waiting`) and waits there until the test has frozen the host
    // (`go`); then it starts the next command.
    let recipe = format!(
        "fn t() {{ run(\"echo started\"); local(`touch {dir}/waiting; i=0; while [ ! -e {dir}/go ]; do i=$((i+1)); [ $i -gt 600 ] && exit 9; sleep 0.05; done`); run(\"echo late\", #{{ timeout: 1 }}); }}"
    );
    let p = lab_project(&lab)
        .recipe("frozen.rhai", &recipe)
        .args(["--output", "plain", "env:lab", "t"]);
    let child = p.spawn_until("[h1] started", 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !meeting.path().join("waiting").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the recipe never got past `echo started`"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    lab.freeze(0);
    let frozen = std::time::Instant::now();
    std::fs::write(meeting.path().join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("[h1] failed t: `echo late` did not finish within 1s"),
        "{stderr}"
    );
    // Without the bound, the channel would wait for the keepalives (about 45 s).
    assert!(
        frozen.elapsed() < std::time::Duration::from_secs(30),
        "{:?}: {stderr}",
        frozen.elapsed()
    );
}
