//! `rigs [env:NAME] history[:TASK] [--all]`: one environment's releases from hosts that several
//! environments share, one task's runs, every run, and the usual host selection.

use serde_json::Value;

use crate::harness::{json_events, Project, SshLab};

const TASKS: &str = r#"
/// Release TAG.
///
/// @lock
fn deploy(tag) {
    record("version", tag);
    note(tag);
}

/// Work under the deploy lock.
///
/// @lock
fn maintain() {}

/// Look around.
fn status() { info("all fine"); }

/// Fail under the lock, with the cause on the first line.
///
/// @lock
fn broken() { fail("the cause comes first\nand the details after it"); }
"#;

/// Two hosts, each with a home folder of its own, in environments `lab` and `other`.
fn lab_and_project() -> (SshLab, Project, tempfile::TempDir) {
    let homes = tempfile::Builder::new()
        .prefix("rigs-homes-")
        .tempdir()
        .unwrap();
    for i in 1..=2 {
        std::fs::create_dir_all(homes.path().join(format!("h{i}"))).unwrap();
    }
    let lab = SshLab::start_each(2, |i| {
        format!(
            "SetEnv HOME={}",
            homes.path().join(format!("h{}", i + 1)).display()
        )
    });
    let p = Project::new()
        .recipe("tasks.rhai", TASKS)
        .inventory("lab.toml", &lab.inventory_toml())
        .inventory("other.toml", "[env.other]\nhosts = [\"h1\", \"h2\"]\n");
    lab.write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    (lab, p, homes)
}

/// The rows of a history table: (host, env, task label, result, error).
fn rows(stdout: &str) -> Vec<Vec<String>> {
    let mut lines = stdout.lines();
    let header = lines.next().unwrap_or_default();
    let at = |name: &str| {
        header
            .find(name)
            .unwrap_or_else(|| panic!("no {name} column: {stdout}"))
    };
    let columns = ["HOST", "ENV", "TASK", "RESULT", "ERROR"].map(at);
    lines
        .map(|l| {
            columns
                .iter()
                .enumerate()
                .map(|(i, &start)| {
                    let end = columns.get(i + 1).copied().unwrap_or(l.len());
                    l.get(start..end.min(l.len()))
                        .unwrap_or("")
                        .split("  ")
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
                .collect()
        })
        .collect()
}

/// "host task" of each row, sorted (rows of the same second come in any host order).
fn labels(rows: &[Vec<String>]) -> Vec<String> {
    let mut labels: Vec<String> = rows.iter().map(|r| format!("{} {}", r[0], r[2])).collect();
    labels.sort();
    labels
}

#[test]
fn history_shows_one_environments_releases_and_filters_by_task_and_host() {
    let (_lab, p, _homes) = lab_and_project();
    for (args, code) in [
        (&["env:lab", "deploy:v1", "status"][..], 0),
        (&["env:other", "deploy:v9"][..], 0),
        (&["env:lab", "maintain", "broken"][..], 1),
    ] {
        p.clone().args(args).run().assert_code(code);
    }

    let out = p.clone().args(["env:lab", "history"]).run();
    out.assert_code(0);
    let header = out.stdout.lines().next().unwrap_or_default();
    for column in [
        "TIME", "HOST", "USER", "ENV", "TASK", "RESULT", "VERSION", "ERROR",
    ] {
        assert!(header.contains(column), "{}", out.stdout);
    }
    let table = rows(&out.stdout);
    assert_eq!(
        labels(&table),
        [
            "h1 broken",
            "h1 deploy:v1",
            "h1 maintain",
            "h2 broken",
            "h2 deploy:v1",
            "h2 maintain"
        ],
        "{}",
        out.stdout
    );
    assert!(table.iter().all(|r| r[1] == "lab"), "{}", out.stdout);
    let broken = table.iter().find(|r| r[2] == "broken").unwrap();
    assert_eq!(broken[3], "failed");
    assert!(
        broken[4].starts_with("the cause comes first"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("the details after it"),
        "{}",
        out.stdout
    );

    let out = p.clone().args(["env:other", "history"]).run();
    out.assert_code(0);
    assert_eq!(
        labels(&rows(&out.stdout)),
        ["h1 deploy:v9", "h2 deploy:v9"],
        "{}",
        out.stdout
    );

    let out = p.clone().args(["env:lab", "history:status"]).run();
    out.assert_code(0);
    assert_eq!(
        labels(&rows(&out.stdout)),
        ["h1 status", "h2 status"],
        "{}",
        out.stdout
    );

    let out = p.clone().args(["env:lab", "history", "--all"]).run();
    out.assert_code(0);
    assert_eq!(rows(&out.stdout).len(), 8, "{}", out.stdout);

    let out = p
        .clone()
        .args(["env:lab", "--limit", "h2", "history"])
        .run();
    out.assert_code(0);
    let table = rows(&out.stdout);
    assert_eq!(table.len(), 3, "{}", out.stdout);
    assert!(table.iter().all(|r| r[0] == "h2"), "{}", out.stdout);

    let out = p
        .clone()
        .args(["env:lab", "history:maintain", "--output", "json"])
        .run();
    out.assert_code(0);
    let events: Vec<Value> = json_events(&out.stdout)
        .into_iter()
        .filter(|e| e["event"] == "history")
        .collect();
    assert_eq!(events.len(), 2, "{}", out.stdout);
    assert!(events
        .iter()
        .all(|e| e["env"] == "lab" && e["task"] == "maintain" && e["lock"] == true));

    let out = p.args(["env:lab", "history:status", "--all"]).run();
    out.assert_code(0);
    assert_eq!(rows(&out.stdout).len(), 2, "{}", out.stdout);

    let out = Project::new().args(["history:deploy,status"]).run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "error: `history:deploy,status`: history takes at most one task name\n  \
         hint: rigs env:NAME history shows the releases, history:TASK one task's runs, \
         history --all every run\n"
    );
}

/// The hosts' command runner for [`long_lines_appended_at_the_same_moment_stay_whole`]: it runs
/// the client's command with a pause after every write(2) to the history file (`strace` injects
/// it), so that appends which take more than one write interleave every time, instead of only
/// on the rare occasions when hosts append at the very same microsecond.
const SLOW_HISTORY_WRITES: &str = r#"#!/bin/sh
exec strace -f -qq -o /dev/null -P "$HOME/.rigs/history.jsonl" -e trace=write \
    -e inject=write:delay_exit=200000 /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"#;

#[test]
fn long_lines_appended_at_the_same_moment_stay_whole() {
    // Eight hosts that share a home folder share one history file: each step appends eight lines
    // of 64 KiB to it at once. A shell's `printf` writes such a line and its newline apart.
    let dir = tempfile::Builder::new()
        .prefix("rigs-homes-")
        .tempdir()
        .unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let runner = dir.path().join("slow-history-writes");
    std::fs::write(&runner, SLOW_HISTORY_WRITES).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&runner, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lab = SshLab::start_with(
        8,
        &format!(
            "SetEnv HOME={}\nForceCommand {}",
            home.display(),
            runner.display()
        ),
    );
    let p = Project::new()
        .recipe(
            "big.rhai",
            r#"
/// Record a long value.
fn big(n) {
    let s = "0123456789abcdef";
    for i in 0..12 { s += s; }
    record("blob", `${n}:${s}`);
}
"#,
        )
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    let steps: Vec<String> = (1..=3).map(|n| format!("big:{n}")).collect();
    p.args(["env:lab"]).args(&steps).run().assert_code(0);
    let text = std::fs::read_to_string(home.join(".rigs/history.jsonl")).unwrap();
    let mut seen = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "a torn line ({e}), {} bytes: {}...",
                line.len(),
                &line[..80.min(line.len())]
            )
        });
        let blob = v["blob"].as_str().unwrap();
        assert_eq!(blob.len(), 2 + 65536, "{}", &blob[..10]);
        seen.push(format!("{} {}", v["host"].as_str().unwrap(), &blob[..1]));
    }
    seen.sort();
    let mut expected: Vec<String> = (1..=8)
        .flat_map(|h| (1..=3).map(move |n| format!("h{h} {n}")))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}

/// The lines of a history file, each parsed; a line that is not JSON fails the test.
fn history_lines(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.ends_with('\n'), "{text}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn each_run_appends_the_documented_line_on_the_host_and_in_the_project() {
    let (_lab, p, homes) = lab_and_project();
    let p = p.env("USER", "alice");
    let out = p.clone().args(["env:lab", "deploy:v1", "status"]).run();
    out.assert_code(0);
    let controller = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    // On the host: `~/.rigs/history.jsonl` in the SSH user's home, one line per task run.
    for (i, host) in ["h1", "h2"].iter().enumerate() {
        let file = homes.path().join(format!("h{}/.rigs/history.jsonl", i + 1));
        let lines = history_lines(&file);
        assert_eq!(lines.len(), 2, "{}: {lines:?}", file.display());
        let deploy = &lines[0];
        let mut keys: Vec<&str> = deploy
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "args",
                "controller",
                "duration_ms",
                "env",
                "error",
                "host",
                "label",
                "lock",
                "note",
                "result",
                "task",
                "time",
                "user",
                "version"
            ],
            "{deploy}"
        );
        for (key, value) in [
            ("user", Value::from("alice")),
            ("controller", Value::from(controller.as_str())),
            ("env", "lab".into()),
            ("host", (*host).into()),
            ("task", "deploy".into()),
            ("args", serde_json::json!(["v1"])),
            ("label", "deploy:v1".into()),
            ("lock", true.into()),
            ("result", "ok".into()),
            ("error", Value::Null),
            ("note", "v1".into()),
            ("version", "v1".into()),
        ] {
            assert_eq!(deploy[key], value, "{key}: {deploy}");
        }
        assert!(deploy["duration_ms"].is_u64(), "{deploy}");
        let time = deploy["time"].as_str().unwrap();
        assert!(
            time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{time}"
        );
        let status = &lines[1];
        assert_eq!(
            (&status["task"], &status["args"], &status.get("lock")),
            (&Value::from("status"), &serde_json::json!([]), &None),
            "{status}"
        );
    }
    // In the project: `.rigs/history.jsonl`, the same lines of every host.
    let local = history_lines(&p.path().join(".rigs/history.jsonl"));
    let mut labels: Vec<String> = local
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["host"].as_str().unwrap(),
                l["label"].as_str().unwrap()
            )
        })
        .collect();
    labels.sort();
    assert_eq!(
        labels,
        ["h1 deploy:v1", "h1 status", "h2 deploy:v1", "h2 status"]
    );
    assert!(local
        .iter()
        .all(|l| l["user"] == "alice" && l["env"] == "lab"));
}

#[test]
fn dry_runs_write_no_history() {
    let (_lab, p, homes) = lab_and_project();
    p.clone()
        .args(["env:lab", "deploy:v1"])
        .run()
        .assert_code(0);
    let files: Vec<std::path::PathBuf> = vec![
        homes.path().join("h1/.rigs/history.jsonl"),
        homes.path().join("h2/.rigs/history.jsonl"),
        p.path().join(".rigs/history.jsonl"),
    ];
    let before: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(before.iter().all(|t| t.contains("deploy:v1")), "{before:?}");

    let out = p
        .clone()
        .args(["--dry-run", "env:lab", "deploy:v2", "status"])
        .run();
    out.assert_code(0);
    // The tasks did run (dry), on both hosts.
    for line in ["[h1] all fine\n", "[h2] all fine\n", "\n2 hosts: 2 ok"] {
        assert!(out.stderr.contains(line), "{line}\n{}", out.stderr);
    }
    let after: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(after, before);

    // The same run for real does write: the files compared above are the ones runs append to.
    p.clone()
        .args(["env:lab", "deploy:v2"])
        .run()
        .assert_code(0);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.contains("deploy:v2"), "{}: {text}", f.display());
    }
}
