//! Safe releases against real engines: rolling and canary runs gated by health checks, automatic
//! rollback of an unhealthy release, deploy locks, and the deployment history.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{on_engines, DockerLab, Engine, Project, REGISTRY_PASSWORD};

const SLOW: &str = r#"
/// Hold the hosts for a while.
///
/// @lock
fn hold(secs) {
    run(`sleep ${secs}`);
}

/// Hold the hosts for SECS, once `~/NAME` says on each that the hold has begun.
///
/// @lock
fn hold_marked(name, secs) {
    run(`touch ~/${name} && sleep ${secs}`);
}

/// Hold the hosts until the test lets go: until `~/NAME` exists on each.
///
/// @lock
fn hold_until(name) {
    run(`while [ ! -e ~/${name} ]; do sleep 0.1; done`);
}
"#;

/// The standard recipes, the lab's hosts, and `extra` inventory variables.
fn project(lab: &DockerLab, extra_vars: &str) -> Project {
    lab.standard_project(extra_vars).recipe("slow.rhai", SLOW)
}

/// The JSON events of a run, in order.
fn events(stdout: &str) -> Vec<serde_json::Value> {
    crate::harness::json_events(stdout)
}

fn summary(stdout: &str) -> Vec<(String, String, String, String)> {
    crate::harness::run_summary(stdout)
}

/// The info file of host `i`'s deploy lock.
fn lock_info(lab: &DockerLab, i: usize) -> PathBuf {
    lab.home(i).join(".rigs/lock/info")
}

/// Waits until `path` exists: `run` has taken a lock. Panics with its stderr if it ended first.
fn wait_for(run: &mut Child, path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if run.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let mut stderr = String::new();
            let _ = run.kill();
            if let Some(mut e) = run.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            panic!("{} never appeared; the run said:\n{stderr}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lets the `hold_until:go` run on host `i` finish.
fn let_go(lab: &DockerLab, i: usize) {
    std::fs::write(lab.home(i).join("go"), "").unwrap();
}

/// Reads `child`'s stderr until a line holds `needle`, and returns the lines so far and the
/// rest of stderr, gathered in the background until the child ends. Drains its stdout.
fn stderr_until(child: &mut Child, needle: &str) -> (String, std::thread::JoinHandle<String>) {
    let mut stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let rest = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => panic!("`{needle}` never appeared on stderr:\n{seen}"),
        }
    }
    (seen, rest)
}

/// Position of the first event matching `event` and `host`.
fn at(all: &[serde_json::Value], event: &str, host: &str) -> usize {
    all.iter()
        .position(|e| e["event"] == event && e["host"] == host)
        .unwrap_or_else(|| panic!("no {event} for {host}"))
}

on_engines!(rolling_deploys_go_batch_by_batch_and_a_bad_release_stops_healed_at_the_first);
fn rolling_deploys_go_batch_by_batch_and_a_bad_release_stops_healed_at_the_first(engine: Engine) {
    let lab = DockerLab::start(4, engine);
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
        assert_eq!(note, "back on v1 (broken unhealthy)", "{host}");
        assert!(error.contains("not healthy"), "{host}: {error}");
    }
    for (host, status, _, error) in &rows[2..] {
        assert_eq!(status, "skipped", "{host}");
        assert_eq!(error, "not started: batch 1 failed");
    }
    for i in 0..4 {
        assert_eq!(lab.app_version(i, "app"), "v1", "host {i} runs v1 again");
    }
    for (host, _, _, error) in &rows[..2] {
        // Under load the restart policy may have started it again before the check looked.
        assert!(
            error.contains("container `app` exited") && error.contains("starting"),
            "{host}: the failure says the container exited, with its log: {error}"
        );
    }

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
    assert_eq!(local.lines().count(), 6, "{local}");
    // Every run logged in with the registry password. Written masked, it would be `****`.
    for (place, text) in [
        ("the controller's history".to_string(), local),
        (
            "h1's history".to_string(),
            std::fs::read_to_string(lab.home(0).join(".rigs/history.jsonl")).unwrap(),
        ),
    ] {
        for t in [REGISTRY_PASSWORD, "****"] {
            assert!(!text.contains(t), "`{t}` in {place}: {text}");
        }
    }
}

on_engines!(a_canary_goes_first_and_a_bad_one_stops_there);
fn a_canary_goes_first_and_a_bad_one_stops_there(engine: Engine) {
    let lab = DockerLab::start(3, engine);
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
    assert_eq!(rows[0].2, "back on v1 (broken unhealthy)", "{rows:?}");
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
    assert!(
        out.stderr.contains("rolling back from v2 to v1"),
        "{}",
        out.stderr
    );
}

on_engines!(a_second_run_refuses_while_a_host_is_locked_and_ctrl_c_releases_it);
fn a_second_run_refuses_while_a_host_is_locked_and_ctrl_c_releases_it(engine: Engine) {
    let lab = DockerLab::start(2, engine);
    let p = project(&lab, "");
    let mut first = p
        .clone()
        .args(["env:lab", "hold_until:go"])
        .spawn_until("", 0);
    let lock_file = lock_info(&lab, 0);
    let lock = lock_file.as_path();
    wait_for(&mut first, lock);
    wait_for(&mut first, &lock_info(&lab, 1));
    let out = p.clone().args(["env:lab", "deploy:v1"]).timeout(60).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("h1 is locked by ")
            && out.stderr.contains(" for env:lab hold_until:go\n")
            && out.stderr.contains("--lock-wait")
            && out.stderr.contains("rigs -H h1 lock:release"),
        "{}",
        out.stderr
    );
    assert!(lock.exists(), "still held when the second run gave up");
    assert_eq!(
        lab.docker_ok(0, &["ps", "--all", "--quiet"]),
        "",
        "nothing ran"
    );
    // A run without an environment locks its hosts too.
    let out = p.clone().args(["-H", "h2", "hold:0"]).timeout(60).run();
    out.assert_code(1);
    assert!(out.stderr.contains("h2 is locked by "), "{}", out.stderr);
    let_go(&lab, 0);
    let_go(&lab, 1);
    assert!(first.wait().unwrap().success());
    assert!(!lock.exists(), "released after success");

    // Ctrl-C during a locked task: exit 130, the lock is gone.
    let mut child = p.clone().args(["env:lab", "hold_marked:held,30"]).spawn();
    wait_for(&mut child, &lab.home(0).join("held"));
    wait_for(&mut child, &lab.home(1).join("held"));
    assert!(lock.exists(), "the task runs under the lock");
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!lock.exists(), "released after Ctrl-C");
    assert!(!lock_info(&lab, 1).exists(), "released after Ctrl-C on h2");

    let out = p.clone().args(["env:lab", "lock:status"]).run();
    out.assert_code(0);
    assert!(out.stderr.contains("[h1] not locked"), "{}", out.stderr);

    // A stale lock of another controller is shown and released on request, and so is a lock
    // left by a rigs that locked per environment.
    for (dir, tasks) in [
        (".rigs/lock", "deploy:v9"),
        (".rigs/locks/lab.lock", "deploy:v8"),
    ] {
        std::fs::create_dir_all(lab.home(0).join(dir)).unwrap();
        std::fs::write(
            lab.home(0).join(dir).join("info"),
            format!(
                r#"{{"token":"x","env":"lab","user":"alice","controller":"laptop","pid":7,"tasks":"{tasks}","since":"2026-01-01T00:00:00Z"}}"#
            ),
        )
        .unwrap();
    }
    let owned = std::process::Command::new("chown")
        .args(["-R", "rigs-test:"])
        .arg(lab.home(0).join(".rigs"))
        .status()
        .unwrap();
    assert!(owned.success());
    let out = p.clone().args(["-H", "h1", "hold:0"]).timeout(60).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains(
            "h1 is locked by alice@laptop (pid 7) since 2026-01-01T00:00:00Z for env:lab deploy:v9"
        ),
        "another controller's lock is never taken over: {}",
        out.stderr
    );
    let out = p.clone().args(["env:lab", "lock:status"]).run();
    assert!(
        out.stderr.contains("[h1] locked by alice@laptop (pid 7)")
            && out
                .stderr
                .contains("~/.rigs/locks/lab.lock (held by alice@laptop")
            && out.stderr.contains("[h2] not locked"),
        "{}",
        out.stderr
    );
    let out = p.clone().args(["env:lab", "lock:release"]).run();
    out.assert_code(2);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    let out = p.clone().args(["-H", "h1", "lock:release", "--yes"]).run();
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("released the lock held by alice@laptop")
            && out.stderr.contains("removed the old per-environment lock"),
        "{}",
        out.stderr
    );
    assert!(!lock.exists());
    assert!(!lab.home(0).join(".rigs/locks/lab.lock").exists());
}

on_engines!(environments_that_share_hosts_exclude_each_other);
fn environments_that_share_hosts_exclude_each_other(engine: Engine) {
    let lab = DockerLab::start(3, engine);
    let p = project(&lab, "").inventory(
        "shared.toml",
        "[env.a]\nhosts = [\"h1\", \"h2\"]\n\n[env.b]\nhosts = [\"h1\", \"h2\", \"h3\"]\n",
    );
    let mut first = p
        .clone()
        .args(["env:a", "hold_until:go"])
        .spawn_until("", 0);
    wait_for(&mut first, &lock_info(&lab, 0));
    wait_for(&mut first, &lock_info(&lab, 1));

    let out = p.clone().args(["env:b", "deploy:v1"]).timeout(60).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("h1 is locked by ") && out.stderr.contains(" for env:a hold_until:go"),
        "{}",
        out.stderr
    );
    // promote moves a registry tag before it deploys: it is refused the same way, before it
    // touches the registry.
    let out = p.clone().args(["env:b", "promote:v1"]).timeout(60).run();
    out.assert_code(1);
    assert!(out.stderr.contains("h1 is locked by "), "{}", out.stderr);
    let in_registry = |tag: &str| {
        lab.controller_docker(&[
            "manifest",
            "inspect",
            "--insecure",
            &format!("{}:{tag}", lab.image()),
        ])
        .status
        .success()
    };
    assert!(in_registry("v1"), "the registry answers manifest queries");
    assert!(!in_registry("b"), "no `b` tag in the registry");
    assert!(lock_info(&lab, 0).exists() && lock_info(&lab, 1).exists());
    assert!(
        !lab.home(2).join(".rigs/lock").exists(),
        "the lock it took on h3 was given back"
    );
    for i in 0..3 {
        assert_eq!(
            lab.docker_ok(i, &["ps", "--all", "--quiet"]),
            "",
            "nothing ran on h{}",
            i + 1
        );
    }

    // --lock-wait waits while the lock is held, then goes ahead.
    let mut second = p
        .clone()
        .args(["env:b", "--lock-wait", "120", "hold:0"])
        .spawn();
    let (seen, rest) = stderr_until(&mut second, "waiting for the lock on h1");
    assert!(
        seen.contains("(held by ") && seen.contains(" for env:a hold_until:go)"),
        "{seen}"
    );
    let held = std::fs::read_to_string(lock_info(&lab, 0)).unwrap();
    assert!(
        held.contains(r#""env":"a""#),
        "env:a still held h1 while the second run waited: {held}"
    );
    assert!(second.try_wait().unwrap().is_none(), "still waiting");
    let_go(&lab, 0);
    let_go(&lab, 1);
    assert!(first.wait().unwrap().success());
    let status = second.wait().unwrap();
    let stderr = rest.join().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("is locked by"),
        "it waited, it did not give up: {stderr}"
    );
    for i in 0..3 {
        assert!(!lock_info(&lab, i).exists(), "h{} released", i + 1);
    }
}

on_engines!(a_killed_runs_lock_is_taken_over_by_the_next_run_on_its_controller);
fn a_killed_runs_lock_is_taken_over_by_the_next_run_on_its_controller(engine: Engine) {
    let lab = DockerLab::start(2, engine);
    let p = project(&lab, "");
    let mut first = p
        .clone()
        .args(["env:lab", "hold_until:go"])
        .spawn_until("", 0);
    wait_for(&mut first, &lock_info(&lab, 0));
    wait_for(&mut first, &lock_info(&lab, 1));
    let pid = first.id();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    first.wait().unwrap();
    let_go(&lab, 0);
    let_go(&lab, 1);
    assert!(
        lock_info(&lab, 0).exists(),
        "kill -9 leaves the lock behind"
    );

    let out = p.clone().args(["env:lab", "hold:0"]).timeout(60).run();
    out.assert_code(0);
    for host in ["h1", "h2"] {
        assert!(
            out.stderr
                .contains(&format!("warning: took over the lock on {host} from "))
                && out.stderr.contains(&format!(
                    "(pid {pid}, no longer running) for env:lab hold_until:go"
                )),
            "{}",
            out.stderr
        );
    }
    assert!(!lock_info(&lab, 0).exists() && !lock_info(&lab, 1).exists());
}
