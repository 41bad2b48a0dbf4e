//! Secrets never leave rigs in any form: not in the output of any style, not in the history files
//! of the controller and the hosts, not in the lock's info file; multi-line secrets are masked
//! line by line; the secrets file's own errors do not show its lines.

use crate::harness::{Project, RunOutput};

const LOCAL: &str = "[env.local]\nhosts = [\"l1\"]\n[hosts.l1]\nconnection = \"local\"\n";

/// JSON escapes both: the quote and backslash of one, the control character of the other.
const QUOTED: &str = "pa\"ss\\word";
const CONTROL: &str = "ctl\u{1}secret";

/// Every form a secret could leak in: as it is, JSON-escaped, escaped for a terminal, and as a
/// task call word writes it.
fn forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_string(),
        json.trim_matches('"').to_string(),
        secret.replace('\u{1}', "\\x01"),
        secret.replace('\\', "\\\\"),
    ]
}

#[track_caller]
fn assert_no_secret(place: &str, text: &str) {
    for secret in [QUOTED, CONTROL] {
        for form in forms(secret) {
            assert!(!text.contains(&form), "{form:?} in {place}:\n{text}");
        }
    }
}

fn assert_quiet(run: &str, out: &RunOutput) {
    assert_no_secret(&format!("{run} stdout"), &out.stdout);
    assert_no_secret(&format!("{run} stderr"), &out.stderr);
}

#[test]
fn secrets_with_json_special_characters_reach_no_output_and_no_file() {
    let recipe = r#"
/// Release TAG.
///
/// @lock
fn deploy(tag, other) {
    record("version", tag);
    record("extra", #{ other: other, list: [tag] });
    note(other);
    run("cp \"$HOME/.rigs/lock/info\" lock-info-held");
    info("tag " + tag + " other " + other);
}
"#;
    let p = Project::new()
        .inventory("local.toml", LOCAL)
        .recipe("main.rhai", recipe)
        .file("secrets.env", &format!("S1={QUOTED}\nS2={CONTROL}\n"));
    let call = format!("deploy:{},{CONTROL}", QUOTED.replace('\\', "\\\\"));
    let lock_info = p.path().join("lock-info-held");
    let files = [
        (
            "the controller's history",
            p.path().join(".rigs/history.jsonl"),
        ),
        (
            "the host's history",
            p.path().join("home/.rigs/history.jsonl"),
        ),
        ("the lock's info file", lock_info.clone()),
    ];
    for style in ["plain", "json"] {
        let out = p
            .clone()
            .args(["--secrets", "secrets.env", "-v", "--output", style])
            .args(["env:local", &call])
            .run();
        out.assert_code(0);
        assert_quiet(style, &out);
        if style == "json" {
            for line in out.stdout.lines() {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("{e}: {line}"));
            }
            assert!(
                out.stdout.contains(r#""task":"deploy:****,****""#),
                "{}",
                out.stdout
            );
        } else {
            assert!(
                out.stderr.contains("[l1] tag **** other ****"),
                "{}",
                out.stderr
            );
        }
        for (place, path) in &files {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{place}: {e}"));
            assert_no_secret(place, &text);
            assert!(text.contains("deploy:****,****"), "{place}: {text}");
        }
        std::fs::remove_file(&lock_info).unwrap();
    }
    for (place, path) in &files[..2] {
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{place}: {e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 2, "{place}: {text}");
        let line = &lines[0];
        assert_eq!(line["args"], serde_json::json!(["****", "****"]), "{place}");
        assert_eq!(line["version"], "****", "{place}");
        assert_eq!(line["note"], "****", "{place}");
        assert_eq!(
            line["extra"],
            serde_json::json!({"other": "****", "list": ["****"]}),
            "{place}"
        );
    }
    for style in ["plain", "json"] {
        let out = p
            .clone()
            .args(["--secrets", "secrets.env", "--output", style])
            .args(["env:local", "history"])
            .run();
        out.assert_code(0);
        assert_quiet(&format!("history {style}"), &out);
        assert!(out.stdout.contains("deploy:****,****"), "{}", out.stdout);
    }
}

#[test]
fn every_line_of_a_multi_line_secret_is_masked() {
    let pem = "-----BEGIN TEST KEY-----\n\
               MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeK\n\
               Ls1Pt8QuKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n\
               -----END TEST KEY-----";
    let recipe = r#"fn show() { let key = secret("TEST_KEY"); run("cat key.pem"); info("the key:\n" + key); }"#;
    let p = Project::new()
        .inventory("local.toml", LOCAL)
        .recipe("main.rhai", recipe)
        .file("key.pem", &format!("{pem}\n"))
        .env("TEST_KEY", pem);
    for style in ["plain", "json"] {
        let out = p
            .clone()
            .args(["--output", style, "env:local", "show"])
            .run();
        out.assert_code(0);
        for line in pem.lines() {
            assert!(
                !out.stdout.contains(line) && !out.stderr.contains(line),
                "{style}: {line}\n{}{}",
                out.stdout,
                out.stderr
            );
        }
        let masked = if style == "json" {
            r#""line":"****""#
        } else {
            "[l1] ****\n"
        };
        assert_eq!(out.stdout.matches(masked).count(), 4, "{}", out.stdout);
    }
}

#[test]
fn a_malformed_secrets_file_line_is_named_by_its_number_only() {
    let p = Project::new()
        .inventory("local.toml", LOCAL)
        .recipe("main.rhai", "fn t() {}")
        .file("secrets.env", "GOOD=fine\n# note\nhunter2-in-the-clear\n");
    let out = p
        .clone()
        .args(["--secrets", "secrets.env", "env:local", "t"])
        .run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("expected KEY=VALUE in secrets file")
            && out.stderr.contains("secrets.env:3"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);

    let p = p.file("secrets.env", "my-key=hunter2-in-the-clear\n");
    let out = p.args(["--secrets", "secrets.env", "env:local", "t"]).run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("invalid secret name") && out.stderr.contains("secrets.env:1"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}
