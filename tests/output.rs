//! Output modes: plain lines never mix hosts, JSON lines parse and carry the events CI needs.

use serde_json::{json, Value};

use crate::harness::{on_engines, DockerLab, Engine, Project, SshLab};

const CHAIN: &str = r#"
/// First task.
fn first() { run("echo one; echo two >&2"); }
/// Second task: a long line and many lines.
fn second() { run("for i in $(seq 1 200); do echo line-$i-abcdefghijklmnopqrstuvwxyz; done"); }
"#;

fn project(lab: &SshLab) -> Project {
    let p = Project::new()
        .recipe("chain.rhai", CHAIN)
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("known_hosts"));
    p.args(["--known-hosts", "known_hosts"])
}

#[test]
fn plain_lines_are_whole_and_prefixed() {
    let lab = SshLab::start(3);
    let out = project(&lab)
        .args(["--output", "plain", "env:lab", "first", "second"])
        .run();
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3 * 201, "{}", out.stdout);
    for l in &lines {
        let ok = ["[h1] ", "[h2] ", "[h3] "].iter().any(|p| {
            l.strip_prefix(p).is_some_and(|rest| {
                rest == "one"
                    || (rest.starts_with("line-") && rest.ends_with("-abcdefghijklmnopqrstuvwxyz"))
            })
        });
        assert!(ok, "mixed or broken line: {l:?}");
    }
    for h in ["h1", "h2", "h3"] {
        assert!(out.stderr.contains(&format!("[{h}] two")), "{}", out.stderr);
        // Task starts and ends are for -v; the summary says how each host ended.
        assert!(
            !out.stderr.contains(&format!("[{h}] ok second"))
                && !out.stderr.contains(&format!("[{h}] task ")),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&format!("{h} ")) && l.contains(" ok ")),
            "{}",
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("HOST") && out.stderr.contains("STATUS"),
        "{}",
        out.stderr
    );

    let out = project(&lab)
        .args(["--output", "plain", "-v", "env:lab", "first", "second"])
        .run();
    out.assert_code(0);
    for h in ["h1", "h2", "h3"] {
        for line in [format!("[{h}] task second"), format!("[{h}] ok second (")] {
            assert!(out.stderr.contains(&line), "{line}\n{}", out.stderr);
        }
    }
}

#[test]
fn an_ad_hoc_command_is_echoed_once_per_host() {
    let lab = SshLab::start(2);
    let out = project(&lab)
        .args(["--output", "plain", "env:lab", "--", "echo hi there"])
        .run();
    out.assert_code(0);
    for h in ["h1", "h2"] {
        let echoes: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with(&format!("[{h}]")) && l.contains("echo hi there"))
            .collect();
        assert_eq!(echoes, [format!("[{h}] $ echo hi there")], "{}", out.stderr);
        assert!(
            out.stdout.contains(&format!("[{h}] hi there")),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn json_lines_parse_and_cover_the_run() {
    let lab = SshLab::start(3);
    let out = project(&lab)
        .args(["--output", "json", "env:lab", "first", "second"])
        .run();
    out.assert_code(0);
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(events.iter().all(|e| e["event"].is_string()));
    let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(count("task_start"), 6);
    assert_eq!(count("task_end"), 6);
    assert_eq!(count("output"), 3 * 202);
    assert!(events
        .iter()
        .any(|e| e["event"] == "output" && e["stream"] == "stderr" && e["line"] == "two"));
    let last = events.last().unwrap();
    assert_eq!(last["event"], "summary");
    let hosts = last["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3);
    assert!(hosts.iter().all(|h| h["status"] == "ok"));
    assert!(
        out.stderr.is_empty(),
        "json mode keeps stderr quiet: {}",
        out.stderr
    );
}

#[test]
fn json_reports_failures_with_errors() {
    let lab = SshLab::start(2);
    let p = project(&lab).recipe(
        "bad.rhai",
        r#"fn bad() { if host.name == "h2" { run("exit 9"); } }"#,
    );
    let out = p.args(["--output", "json", "env:lab", "bad"]).run();
    out.assert_code(1);
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let end = events
        .iter()
        .find(|e| e["event"] == "task_end" && e["host"] == "h2")
        .unwrap();
    assert_eq!(end["status"], "failed");
    assert!(end["error"]
        .as_str()
        .unwrap()
        .contains("exited with code 9"));
    let summary = events.last().unwrap();
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["ok"], 1);
}

/// Whether a line of `text` is a bare 64-digit hex ID after its `[host] ` prefix: what
/// `docker run --detach` prints, the new container's ID.
fn has_container_id(text: &str) -> bool {
    text.lines().any(|l| {
        l.split_once("] ").is_some_and(|(_, rest)| {
            rest.len() == 64 && rest.chars().all(|c| c.is_ascii_hexdigit())
        })
    })
}

on_engines!(a_two_host_deploy_reads_in_a_dozen_lines_and_verbose_shows_the_rest);
fn a_two_host_deploy_reads_in_a_dozen_lines_and_verbose_shows_the_rest(engine: Engine) {
    let lab = DockerLab::start(2, engine);
    let p = lab.standard_project("health = \"wget -qO- http://127.0.0.1:8080/version\"\n");
    let out = p
        .clone()
        .args(["--output", "plain", "env:lab", "deploy:v1"])
        .timeout(180)
        .run();
    out.assert_code(0);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.lines().count() <= 14, "{text}");
    assert!(!text.contains("inspect"), "{text}");
    assert!(!has_container_id(&text), "{text}");
    for h in ["h1", "h2"] {
        assert!(
            text.contains(&format!("[{h}] $ docker run --detach --name app")),
            "{text}"
        );
    }

    let out = p
        .args(["--output", "plain", "-v", "env:lab", "deploy:v2"])
        .timeout(180)
        .run();
    out.assert_code(0);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("$ docker container inspect"), "{text}");
    assert!(has_container_id(&text), "{text}");
}

on_engines!(a_failed_deploys_summary_line_carries_the_containers_last_log_line);
fn a_failed_deploys_summary_line_carries_the_containers_last_log_line(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let p = lab.standard_project("health = \"wget -qO- http://127.0.0.1:8080/version\"\n");
    p.clone()
        .args(["--output", "plain", "env:lab", "deploy:v1"])
        .timeout(180)
        .run()
        .assert_code(0);
    // `broken` prints "starting" and exits at once.
    let out = p
        .args(["--output", "plain", "env:lab", "deploy:broken"])
        .timeout(180)
        .run();
    out.assert_code(1);
    let summary: Vec<&str> = out
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("HOST "))
        .collect();
    assert!(summary[0].contains("VERSION") && summary[0].ends_with("ERROR"));
    let row = summary
        .iter()
        .find(|l| l.starts_with("h1 "))
        .unwrap_or_else(|| panic!("no summary row for h1: {}", out.stderr));
    assert!(row.contains(" failed "), "{row}");
    assert!(row.contains("its last log line: starting"), "{row}");
}

/// The events of a JSON run, parsed.
fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn json_command_message_and_summary_events_follow_the_documented_schema() {
    let lab = SshLab::start(2);
    let p = project(&lab).recipe(
        "events.rhai",
        r#"fn t() { run("echo out"); local("true"); info(`hello ${host.name}`); warn("careful"); note(`noted ${host.name}`); }"#,
    );
    let out = p.clone().args(["--output", "json", "env:lab", "t"]).run();
    out.assert_code(0);
    let all = events(&out.stdout);
    for h in ["h1", "h2"] {
        for expected in [
            json!({"event": "command", "host": h, "task": "t", "command": "echo out", "local": false, "dry_run": false, "verbose_only": false}),
            json!({"event": "command", "host": h, "task": "t", "command": "true", "local": true, "dry_run": false, "verbose_only": false}),
            json!({"event": "message", "host": h, "level": "info", "text": format!("hello {h}")}),
            json!({"event": "message", "host": h, "level": "warn", "text": "careful"}),
        ] {
            assert!(all.contains(&expected), "{expected}\n{}", out.stdout);
        }
    }
    let summary = all.last().unwrap();
    let mut hosts = summary["hosts"].as_array().unwrap().clone();
    for h in hosts.iter_mut() {
        assert!(h["duration_ms"].is_u64(), "{h}");
        h.as_object_mut().unwrap().remove("duration_ms");
    }
    assert_eq!(
        hosts,
        ["h1", "h2"].map(|h| json!({"host": h, "status": "ok", "error": null, "tasks": ["t"], "bytes_sent": 0, "note": format!("noted {h}"), "version": null})),
        "{summary}"
    );
    let mut rest = summary.clone();
    rest.as_object_mut().unwrap().remove("hosts");
    assert_eq!(
        rest,
        json!({"event": "summary", "ok": 2, "failed": 0, "skipped": 0, "interrupted": false, "bytes_sent": 0})
    );

    // A dry run: a note about the whole run (host null), commands marked as not run.
    let out = p
        .clone()
        .args(["--output", "json", "-n", "env:lab", "t"])
        .run();
    out.assert_code(0);
    let all = events(&out.stdout);
    assert_eq!(
        all[0],
        json!({"event": "message", "host": null, "level": "info", "text": "dry run: printing what would run; nothing is executed"})
    );
    assert!(
        all.contains(&json!({"event": "command", "host": "h1", "task": "t", "command": "echo out", "local": false, "dry_run": true, "verbose_only": false})),
        "{}",
        out.stdout
    );

    // In the table, what a task noted shows in the last column: NOTE, as no task recorded a
    // version.
    let out = p.args(["--output", "plain", "env:lab", "t"]).run();
    out.assert_code(0);
    let table: Vec<&str> = out
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("HOST "))
        .collect();
    assert_eq!(
        table[0], "HOST  STATUS           TIME  NOTE",
        "{}",
        out.stderr
    );
    for (row, h) in table[1..3].iter().zip(["h1", "h2"]) {
        assert!(
            row.starts_with(&format!("{h}    ok   ")) && row.ends_with(&format!("  noted {h}")),
            "{row}"
        );
    }
    assert_eq!(table[3], "2 hosts: 2 ok");
}
