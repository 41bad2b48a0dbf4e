//! Safe releases against real engines: rolling and canary runs gated by health checks, automatic
//! rollback of an unhealthy release, environment locks, and the deployment history.

use std::time::{Duration, Instant};

use crate::harness::{DockerLab, Project, REGISTRY_PASSWORD};

const SLOW: &str = r#"
/// Hold the environment for a while.
///
/// @lock
fn hold(secs) {
    run(`sleep ${secs}`);
}
"#;

/// The standard recipes, the lab's hosts, and `extra` inventory variables.
fn project(lab: &DockerLab, extra_vars: &str) -> Project {
    lab.standard_project(extra_vars).recipe("slow.rhai", SLOW)
}

/// The JSON events of a run, in order.
fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn summary(stdout: &str) -> Vec<(String, String, String, String)> {
    let all = events(stdout);
    let s = all
        .iter()
        .rev()
        .find(|e| e["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    s["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_string(),
                h["status"].as_str().unwrap().to_string(),
                h["note"].as_str().unwrap_or("").to_string(),
                h["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Position of the first event matching `event` and `host`.
fn at(all: &[serde_json::Value], event: &str, host: &str) -> usize {
    all.iter()
        .position(|e| e["event"] == event && e["host"] == host)
        .unwrap_or_else(|| panic!("no {event} for {host}"))
}

#[test]
fn rolling_deploys_go_batch_by_batch_and_a_bad_release_stops_healed_at_the_first() {
    let lab = DockerLab::start(4);
    let p = project(
        &lab,
        "health = \"wget -qO- http://127.0.0.1:8080/version\"\n",
    );
    let out = p
        .clone()
        .args(["env:lab", "--batch", "2", "deploy:v1", "--output", "json"])
        .timeout(240)
        .run();
    out.assert_code(0);
    let all = events(&out.stdout);
    let batches: Vec<_> = all.iter().filter(|e| e["event"] == "batch").collect();
    assert_eq!(batches.len(), 2, "{}", out.stdout);
    assert_eq!(batches[0]["hosts"], serde_json::json!(["h1", "h2"]));
    assert_eq!(batches[1]["hosts"], serde_json::json!(["h3", "h4"]));
    // The second batch starts only after the first has finished, healthy.
    for first in ["h1", "h2"] {
        for second in ["h3", "h4"] {
            assert!(at(&all, "task_end", first) < at(&all, "task_start", second));
        }
    }
    for i in 0..4 {
        assert_eq!(lab.app_version(i, "app"), "v1");
    }
    assert!(summary(&out.stdout).iter().all(|h| h.2 == "v1"));

    // `broken` exits at once: batch 1 is rolled back to v1 and batch 2 never starts.
    let out = p
        .clone()
        .args([
            "env:lab",
            "--batch",
            "2",
            "deploy:broken",
            "--output",
            "json",
        ])
        .timeout(240)
        .run();
    out.assert_code(1);
    let rows = summary(&out.stdout);
    for (host, status, note, error) in &rows[..2] {
        assert_eq!(status, "failed", "{host}");
        assert!(note.contains("rolled back"), "{host}: {note}");
        assert!(error.contains("not healthy"), "{host}: {error}");
    }
    for (host, status, _, error) in &rows[2..] {
        assert_eq!(status, "skipped", "{host}");
        assert_eq!(error, "not started: batch 1 failed");
    }
    for i in 0..4 {
        assert_eq!(lab.app_version(i, "app"), "v1", "host {i} runs v1 again");
    }
    assert!(
        out.stdout.contains("exited with code 1") && out.stdout.contains("starting"),
        "the failure says the container exited, with its log: {}",
        out.stdout
    );

    // The history tells both runs apart, failed and successful.
    let out = p
        .clone()
        .args(["env:lab", "history", "--output", "json"])
        .run();
    out.assert_code(0);
    let rows: Vec<_> = events(&out.stdout)
        .into_iter()
        .filter(|e| e["event"] == "history")
        .collect();
    let of = |label: &str, result: &str| {
        rows.iter()
            .filter(|r| r["label"] == label && r["result"] == result)
            .count()
    };
    assert_eq!(of("deploy:v1", "ok"), 4, "{rows:?}");
    assert_eq!(of("deploy:broken", "failed"), 2, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r["user"].is_string() && r["controller"].is_string()));
    let table = p.clone().args(["env:lab", "history"]).run();
    assert!(
        table.stdout.starts_with("TIME") && table.stdout.contains("deploy:broken"),
        "{}",
        table.stdout
    );
    let local = std::fs::read_to_string(p.path().join(".rigs/history.jsonl")).unwrap();
    assert!(local.lines().count() >= 6, "{local}");
    assert!(
        !local.contains(REGISTRY_PASSWORD),
        "no secret in the history"
    );
}

#[test]
fn a_canary_goes_first_and_a_bad_one_stops_there() {
    let lab = DockerLab::start(3);
    let p = project(
        &lab,
        "health = { http = \"http://127.0.0.1:8080/version\", inside = true, timeout = 20, interval = 0.5 }\n",
    );
    let out = p
        .clone()
        .args(["env:lab", "--canary", "1", "deploy:v1", "--output", "json"])
        .timeout(240)
        .run();
    out.assert_code(0);
    let all = events(&out.stdout);
    assert!(at(&all, "task_end", "h1") < at(&all, "task_start", "h2"));
    assert!(at(&all, "task_end", "h1") < at(&all, "task_start", "h3"));

    let out = p
        .clone()
        .args([
            "env:lab",
            "--canary",
            "1",
            "deploy:broken",
            "--output",
            "json",
        ])
        .timeout(240)
        .run();
    out.assert_code(1);
    let rows = summary(&out.stdout);
    assert_eq!(rows[0].1, "failed");
    assert!(rows[0].2.contains("rolled back"), "{rows:?}");
    assert_eq!(rows[1].3, "not started: the canary failed");
    assert_eq!(rows[2].3, "not started: the canary failed");
    for i in 0..3 {
        assert_eq!(lab.app_version(i, "app"), "v1");
    }

    // The good release then rolls through, after the canary's observation time.
    let out = p
        .clone()
        .args([
            "env:lab",
            "--canary",
            "1",
            "--canary-wait",
            "1",
            "deploy:v2",
        ])
        .timeout(240)
        .run();
    out.assert_code(0);
    assert!(out.stderr.contains("canary ok; waiting"), "{}", out.stderr);
    for i in 0..3 {
        assert_eq!(lab.app_version(i, "app"), "v2");
    }

    // rollback without a tag goes back to the last good version in the history: v1, not the
    // broken release that ran in between on h1.
    let out = p.clone().args(["env:lab", "rollback"]).timeout(180).run();
    out.assert_code(0);
    for i in 0..3 {
        assert_eq!(lab.app_version(i, "app"), "v1", "host {i}");
    }
    assert!(out.stderr.contains("rolled back to v1"), "{}", out.stderr);
}

#[test]
fn a_second_run_refuses_while_the_environment_is_locked_and_ctrl_c_releases_it() {
    let lab = DockerLab::start(2);
    let p = project(&lab, "");
    let first = p.clone().args(["env:lab", "hold:4"]).spawn_until("", 0);
    // Wait until the first run holds the lock on the hosts.
    let lock_file = lab.home(0).join(".rigs/locks/lab.lock/info");
    let lock = lock_file.as_path();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lock.exists() {
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = p.clone().args(["env:lab", "deploy:v1"]).timeout(60).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("env:lab is locked")
            && out.stderr.contains("for `hold:4`")
            && out.stderr.contains("--lock-wait"),
        "{}",
        out.stderr
    );
    assert_eq!(
        lab.docker_ok(0, &["ps", "--all", "--quiet"]),
        "",
        "nothing ran"
    );

    // With --lock-wait the second run waits for the first, then goes ahead.
    let out = p
        .clone()
        .args(["env:lab", "--lock-wait", "60", "hold:0"])
        .timeout(90)
        .run();
    out.assert_code(0);
    let mut first = first;
    assert!(first.wait().unwrap().success());
    assert!(!lock.exists(), "released after success");

    // Ctrl-C during a locked task: exit 130, the lock is gone.
    let child = p.clone().args(["env:lab", "hold:30"]).spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lock.exists() {
        assert!(Instant::now() < deadline, "the run never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(!lock.exists(), "released after Ctrl-C");

    let out = p.clone().args(["env:lab", "lock:status"]).run();
    out.assert_code(0);
    assert!(out.stderr.contains("not locked"), "{}", out.stderr);

    // A stale lock (a run that was killed) is shown and released on request.
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(
        lock_file.as_path(),
        r#"{"token":"x","user":"alice","controller":"laptop","pid":7,"tasks":"deploy:v9","since":"2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let owned = std::process::Command::new("chown")
        .args(["-R", "rigs-test:"])
        .arg(lab.home(0).join(".rigs"))
        .status()
        .unwrap();
    assert!(owned.success());
    let out = p.clone().args(["env:lab", "lock:status"]).run();
    assert!(
        out.stderr.contains("locked by alice@laptop (pid 7)"),
        "{}",
        out.stderr
    );
    let out = p.clone().args(["env:lab", "lock:release"]).run();
    out.assert_code(2);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    let out = p.clone().args(["env:lab", "lock:release", "--yes"]).run();
    out.assert_code(0);
    assert!(out.stderr.contains("released the lock"), "{}", out.stderr);
    assert!(!lock.exists());
}
