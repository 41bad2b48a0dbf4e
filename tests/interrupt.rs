//! Ctrl-C: no new hosts start, running channels close, the summary prints, exit code 130.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::harness::{Project, SshLab};

#[test]
fn sigint_stops_the_run_and_exits_130() {
    let lab = SshLab::start(3);
    let p = Project::new()
        .recipe(
            "t.rhai",
            "fn slow() { run(\"echo started; sleep 31.77\"); }",
        )
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("known_hosts"));
    // Pool of 2: the third host waits for a slot and must never start.
    let p = p.args([
        "--known-hosts",
        "known_hosts",
        "--pool-size",
        "2",
        "env:lab",
        "slow",
    ]);
    let mut child = p.spawn_until("started", 2);
    let interrupted_at = Instant::now();
    send_signal(child.id(), "INT");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            interrupted_at.elapsed() < Duration::from_secs(10),
            "rigs did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = read_stderr(&mut child);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stderr.contains("skipped"),
        "the third host never started: {stderr}"
    );
    assert!(stderr.contains("3 hosts: 0 ok"), "{stderr}");
    assert!(
        !crate::harness::process_running("sleep 31.77"),
        "remote commands were left running"
    );
}

#[test]
fn ctrl_c_at_a_password_prompt_gives_the_terminal_back_with_echo_on() {
    let out = Project::new()
        .recipe("t.rhai", "fn t() { info(\"ran\"); }")
        .inventory(
            "local.toml",
            "[env.local]\nhosts = [\"one\"]\n[hosts.one]\nconnection = \"local\"\n",
        )
        .args(["--ask-pass", "env:local", "t"])
        .run_in_terminal_at_prompt("SSH password:", "\x03", "stty -a");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("rc=130"), "{}", out.stdout);
    assert!(!out.stdout.contains("ran"), "{}", out.stdout);
    let settings: Vec<&str> = out.stdout.split([' ', ';', '\r', '\n']).collect();
    assert!(
        settings.contains(&"echo") && !settings.contains(&"-echo"),
        "echo is still off: {}",
        out.stdout
    );
}

fn read_stderr(child: &mut std::process::Child) -> String {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}
