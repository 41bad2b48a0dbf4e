//! Deploy locks on plain SSH hosts: a lock this run cannot give back is never a silent one.

use crate::harness::{Project, SshLab};

#[test]
fn a_lock_left_behind_by_a_lost_connection_is_reported_with_the_command_that_frees_it() {
    let home = tempfile::Builder::new()
        .prefix("rigs-homes-")
        .tempdir()
        .unwrap();
    let lab = SshLab::start_with(1, &format!("SetEnv HOME={}", home.path().display()));
    // The task ends its own SSH connection, as a cut network would, while holding the lock.
    let p = Project::new()
        .recipe(
            "cut.rhai",
            "/// Lose the connection.\n///\n/// @lock\nfn cut() { run(\"kill -9 $PPID\"); }\n",
        )
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    let out = p.clone().args(["env:lab", "cut"]).run();
    out.assert_code(1);
    assert!(home.path().join(".rigs/lock").is_dir(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("warning: could not release the lock on h1: connection lost\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`rigs -H h1 lock:release`"),
        "{}",
        out.stderr
    );

    // What the warning says works.
    p.args(["-H", "h1", "lock:release", "--yes"])
        .run()
        .assert_code(0);
    assert!(!home.path().join(".rigs/lock").exists());
}

const HOLD: &str = r#"
/// Hold the hosts until `~/NAME` exists on each.
///
/// @lock
fn hold_until(name) {
    run(`while [ ! -e ~/${name} ]; do sleep 0.1; done`);
}

/// Leave a mark in the home folder.
///
/// @lock
fn mark(name) {
    run(`touch ~/${name}`);
}
"#;

/// Three hosts with a home folder each, and a project whose tasks take their locks.
fn three_hosts() -> (tempfile::TempDir, SshLab, Project) {
    let homes = tempfile::Builder::new()
        .prefix("rigs-homes-")
        .tempdir()
        .unwrap();
    for i in 1..=3 {
        std::fs::create_dir_all(homes.path().join(format!("h{i}"))).unwrap();
    }
    let lab = SshLab::start_each(3, |i| {
        format!("SetEnv HOME={}/h{}", homes.path().display(), i + 1)
    });
    let p = Project::new()
        .recipe("hold.rhai", HOLD)
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    (homes, lab, p)
}

/// Waits until `path` exists, while `run` is still going.
fn wait_for(run: &mut std::process::Child, path: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !path.exists() {
        assert!(
            run.try_wait().unwrap().is_none(),
            "the run ended before {} appeared",
            path.display()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_run_that_cannot_lock_every_host_gives_back_the_locks_it_took() {
    let (homes, _lab, p) = three_hosts();
    let home = |i: usize| homes.path().join(format!("h{i}"));
    // The first run holds h3 only, until the test lets it go.
    let mut first = p.clone().args(["-H", "h3", "hold_until:go"]).spawn();
    wait_for(&mut first, &home(3).join(".rigs/lock/info"));

    let out = p.clone().args(["env:lab", "mark:ran"]).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("h3 is locked by ") && out.stderr.contains(" for hold_until:go\n"),
        "{}",
        out.stderr
    );
    for i in 1..=3 {
        assert!(!home(i).join("ran").exists(), "the task ran on h{i}");
    }
    // The locks are taken on all hosts at once: on h1 and h2 the lock command made ~/.rigs and
    // took the free lock (nothing else of rigs ever ran there), then the run gave them back.
    for i in 1..=2 {
        assert!(home(i).join(".rigs").is_dir(), "no lock was tried on h{i}");
        assert!(
            !home(i).join(".rigs/lock").exists(),
            "h{i} stays locked by the run that gave up"
        );
    }
    assert!(home(3).join(".rigs/lock/info").exists(), "h3 is still held");

    std::fs::write(home(3).join("go"), "").unwrap();
    assert!(first.wait().unwrap().success());
    let out = p.args(["env:lab", "mark:ran"]).run();
    out.assert_code(0);
    for i in 1..=3 {
        assert!(home(i).join("ran").exists(), "h{i} was free again");
    }
}

#[test]
fn lock_release_asks_on_the_terminal_and_does_only_what_is_answered() {
    let (homes, _lab, p) = three_hosts();
    let lock = homes.path().join("h1/.rigs/lock");
    std::fs::create_dir_all(&lock).unwrap();
    std::fs::write(
        lock.join("info"),
        r#"{"token":"x","env":"lab","user":"alice","controller":"laptop","pid":7,"tasks":"deploy:v9","since":"2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let question = "Remove the deploy lock of 1 host(s) (h1), whoever holds it? [y/N] ";

    let out = p
        .clone()
        .args(["-H", "h1", "lock:release"])
        .run_in_terminal_at_prompt(question, "n\r", "");
    assert!(out.stdout.contains("rc=2"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("lock:release: not confirmed; nothing done"),
        "{}",
        out.stdout
    );
    assert!(lock.join("info").exists(), "a no keeps the lock");

    let out = p
        .clone()
        .args(["-H", "h1", "lock:release"])
        .run_in_terminal_at_prompt(question, "y\r", "");
    assert!(out.stdout.contains("rc=0"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("released the lock held by alice@laptop (pid 7)"),
        "{}",
        out.stdout
    );
    assert!(!lock.exists(), "a yes removes the lock");
}
