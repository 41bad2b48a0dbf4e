//! Ctrl-C: no new hosts start, running channels close, the summary prints, exit code 130.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::harness::{Project, SshLab};

#[test]
fn sigint_stops_the_run_and_exits_130() {
    let lab = SshLab::start(3);
    // Pool of 2: the third host waits for a slot and must never start.
    let p = lab
        .project_with_recipe("fn slow() { run(\"echo started; sleep 31.77\"); }")
        .args(["--pool-size", "2", "env:lab", "slow"]);
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

#[test]
fn sigint_in_json_reports_the_interruption() {
    let lab = SshLab::start(2);
    let p = lab
        .project_with_recipe("fn slow() { run(\"echo started; sleep 31.78\"); }")
        .args(["--serial", "--output", "json", "env:lab", "slow"]);
    let mut child = p.spawn();
    let stdout = lines_of(child.stdout.take().unwrap());
    let seen = wait_for_line(&stdout, "\"line\":\"started\"", Duration::from_secs(30));
    assert!(seen, "never started: {}", stdout.lock().unwrap().join("\n"));
    send_signal(child.id(), "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    wait_for_line(&stdout, "\"event\":\"summary\"", Duration::from_secs(5));
    let events: Vec<serde_json::Value> = stdout
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events.contains(
            &serde_json::json!({"event": "message", "host": null, "level": "warn",
            "text": "interrupted: stopping running commands (Ctrl-C again to quit at once)"})
        ),
        "{events:#?}"
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["interrupted"], true, "{summary}");
    assert_eq!(
        (&summary["ok"], &summary["failed"], &summary["skipped"]),
        (
            &serde_json::json!(0),
            &serde_json::json!(0),
            &serde_json::json!(2)
        ),
        "{summary}"
    );
    let hosts = summary["hosts"].as_array().unwrap();
    assert_eq!(
        (&hosts[0]["status"], &hosts[0]["error"]),
        (
            &serde_json::json!("interrupted"),
            &serde_json::json!("interrupted (recipes/t.rhai:1:1)")
        ),
        "{summary}"
    );
    assert_eq!(
        (&hosts[1]["status"], &hosts[1]["error"]),
        (
            &serde_json::json!("skipped"),
            &serde_json::json!("not started: interrupted")
        ),
        "{summary}"
    );
}

/// Collects the lines of `pipe` as they come.
fn lines_of(
    pipe: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// Waits until a collected line contains `needle`; false after `limit`.
fn wait_for_line(lines: &std::sync::Mutex<Vec<String>>, needle: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if lines.lock().unwrap().iter().any(|l| l.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Interrupts a run whose host has frozen (so stopping its command cannot finish quickly), once
/// or twice. Returns how long rigs took to exit after the last Ctrl-C, its exit status and stderr.
fn interrupt_a_frozen_host(lab: &mut SshLab, host: usize, twice: bool) -> (Duration, i32, String) {
    let p = lab.project_with_recipe("fn slow() { run(\"echo started; sleep 31.79\"); }");
    let name = lab.host(host).name.clone();
    let p = p.args([
        "--output",
        "plain",
        "env:lab",
        "-x",
        if host == 0 { "h2" } else { "h1" },
        "slow",
    ]);
    let mut child = p.spawn();
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    assert!(
        wait_for_line(
            &stdout,
            &format!("[{name}] started"),
            Duration::from_secs(30)
        ),
        "never started: {:?}",
        stderr.lock().unwrap()
    );
    lab.freeze(host);
    send_signal(child.id(), "INT");
    assert!(
        wait_for_line(
            &stderr,
            "Ctrl-C again to quit at once",
            Duration::from_secs(10)
        ),
        "{:?}",
        stderr.lock().unwrap()
    );
    if twice {
        send_signal(child.id(), "INT");
    }
    let last = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if last.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("rigs did not exit: {:?}", stderr.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = last.elapsed();
    // The pipes close when rigs exits; give the readers the last lines.
    wait_for_line(&stderr, "\u{0}never", Duration::from_millis(200));
    let text = stderr.lock().unwrap().join("\n");
    (took, status.code().unwrap_or(-1), text)
}

#[test]
fn a_second_ctrl_c_quits_at_once_without_the_summary() {
    let mut lab = SshLab::start(2);
    // Once: rigs tries to stop the frozen host's command (for up to 3 s) and to record the
    // run in its history (for up to 10 s), then prints the summary.
    let (took, code, stderr) = interrupt_a_frozen_host(&mut lab, 0, false);
    assert_eq!(code, 130, "{stderr}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(30),
        "{took:?}: {stderr}"
    );
    assert!(
        stderr.contains("1 host: 0 ok, 1 interrupted (interrupted)"),
        "{stderr}"
    );

    // Twice: it quits at once, without waiting for the host and without the summary.
    let (took, code, stderr) = interrupt_a_frozen_host(&mut lab, 1, true);
    assert_eq!(code, 130, "{stderr}");
    assert!(took < Duration::from_secs(1), "{took:?}: {stderr}");
    assert!(
        !stderr.contains("1 host:") && !stderr.contains("HOST"),
        "{stderr}"
    );
}
