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
