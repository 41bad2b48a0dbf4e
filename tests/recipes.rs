//! Recipe files: errors with positions, the scripting API, imports, once(), runaway scripts.
//! These run on hosts with `connection = "local"`; the SSH path has its own tests.

use crate::harness::Project;

const LOCAL3: &str = r#"
[vars]
colour = "global"
[env.local]
hosts = ["l1", "l2", "l3"]
vars = { colour = "env" }
[hosts.l1]
connection = "local"
vars = { colour = "host" }
[hosts.l2]
connection = "local"
[hosts.l3]
connection = "local"
"#;

fn local(recipe: &str) -> Project {
    Project::new()
        .inventory("local.toml", LOCAL3)
        .recipe("main.rhai", recipe)
}

#[test]
fn syntax_error_reports_file_line_column_with_caret() {
    let out = local("fn ok() {}\n\nfn broken() {\n    let x = ;\n}\n")
        .args(["--list"])
        .run();
    out.assert_code(2);
    assert!(out.stderr.contains("syntax error"), "{}", out.stderr);
    assert!(
        out.stderr.contains("recipes/main.rhai:4:13"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("4 |     let x = ;"), "{}", out.stderr);
    assert!(out.stderr.contains("|             ^"), "{}", out.stderr);
}

#[test]
fn runtime_error_names_host_and_position() {
    let out = local("fn t() {\n    let m = #{};\n    m.missing.field;\n}\n")
        .args(["env:local", "t", "-x", "l2,l3"])
        .run();
    out.assert_code(1);
    assert!(out.stderr.contains("[l1] failed t:"), "{}", out.stderr);
    assert!(
        out.stderr.contains("recipes/main.rhai:3:"),
        "{}",
        out.stderr
    );
    // The excluded hosts never ran (they would have failed the same way).
    assert_only_l1_ran(&out);
}

/// Asserts that of the three local hosts only `l1` was selected and ran.
#[track_caller]
fn assert_only_l1_ran(out: &crate::harness::RunOutput) {
    for excluded in ["[l2]", "[l3]"] {
        assert!(
            !out.stdout.contains(excluded) && !out.stderr.contains(excluded),
            "{excluded} ran: {}{}",
            out.stdout,
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("1 host: 0 ok, 1 failed"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr
            .lines()
            .any(|l| l.starts_with("l2 ") || l.starts_with("l3 ")),
        "{}",
        out.stderr
    );
}

#[test]
fn error_inside_an_imported_module_points_into_that_file() {
    let p = local("import \"lib/util\" as util;\n\n/// uses lib\nfn t() { util::boom(); }\n").file(
        "recipes/lib/util.rhai",
        "fn boom() {\n    fail(\"kaboom\");\n}\n",
    );
    let out = p.args(["env:local", "t", "-H", "l1", "-x", "l2,l3"]).run();
    out.assert_code(1);
    assert!(out.stderr.contains("kaboom"), "{}", out.stderr);
    assert!(out.stderr.contains("util.rhai:2:5"), "{}", out.stderr);
    assert_only_l1_ran(&out);
}

#[test]
fn run_result_fields_and_allow_fail() {
    let out = local(
        r#"fn t() {
            let r = run("echo out; echo err >&2; exit 3", #{ allow_fail: true, quiet: true });
            info(`ok=${r.ok} code=${r.code} stdout=[${r.stdout}] stderr=[${r.stderr}]`);
        }"#,
    )
    .args(["-H", "l1", "t"])
    .run();
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("ok=false code=3 stdout=[out] stderr=[err]"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("out"),
        "quiet hides output: {}",
        out.stdout
    );
}

#[test]
fn failing_command_fails_only_its_host() {
    let out = local(r#"fn t() { if host.name == "l2" { run("exit 7"); } run("echo fine"); }"#)
        .args(["env:local", "t"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("[l2] failed t: command `exit 7` exited with code 7"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.matches("fine").count(), 2, "{}", out.stdout);
    assert!(
        out.stderr.contains("3 hosts: 2 ok, 1 failed"),
        "{}",
        out.stderr
    );
}

#[test]
fn variables_follow_precedence_and_scope_objects() {
    let out = local(r#"fn t() { info(`${host.name} colour=${vars.colour} env=${env.name} envcolour=${env.vars.colour}`); }"#)
        .args(["env:local", "t"])
        .run();
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("l1 colour=host env=local envcolour=env"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("l2 colour=env env=local"),
        "{}",
        out.stderr
    );
}

#[test]
fn once_runs_a_single_time_for_all_hosts() {
    let p = local(
        r#"fn t() { let v = once(|| local("echo x >> once.log; echo built", #{ quiet: true }).stdout); info(`got ${v}`); }"#,
    );
    let dir = p.path().to_path_buf();
    let out = p.clone().args(["env:local", "t"]).run();
    out.assert_code(0);
    assert_eq!(out.stderr.matches("got built").count(), 3, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("once.log")).unwrap(),
        "x\n"
    );
}

#[test]
fn runaway_script_is_stopped() {
    let out = local("fn spin() {\n    let i = 0;\n    loop { i += 1; }\n}\n")
        .args(["-H", "l1", "spin"])
        .run();
    out.assert_code(1);
    assert!(out.stderr.contains("endless loop"), "{}", out.stderr);
}

#[test]
fn a_runaway_string_fails_the_task_instead_of_crashing_rigs() {
    let out = local("fn grow() {\n    let s = \"x\";\n    loop { s += s; }\n}\n")
        .args(["-H", "l1,l2", "--output", "plain", "grow"])
        .timeout(120)
        .run();
    out.assert_code(1);
    for host in ["l1", "l2"] {
        assert!(
            out.stderr.contains(&format!(
                "[{host}] failed grow: a string grew beyond 256 MiB, the most one value may hold in a recipe"
            )),
            "{}",
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("recipes/main.rhai:1:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("2 hosts: 0 ok, 2 failed"),
        "the summary: {}",
        out.stderr
    );
}

#[test]
fn run_timeouts_out_of_range_fail_the_task_at_the_call() {
    for timeout in ["1e20", "0", "-1", "31536001"] {
        let out = local(&format!(
            "fn t() {{\n    run(\"echo did-run\", #{{ timeout: {timeout} }});\n}}\n"
        ))
        .args(["-H", "l1", "t"])
        .run();
        out.assert_code(1);
        assert!(
            out.stderr.contains(
                "run: option `timeout` must be a number of seconds above 0 and at most 31536000 (365 days)"
            ) && out.stderr.contains("recipes/main.rhai:2:5"),
            "{timeout}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("[l1] did-run"), "{}", out.stderr);
    }
}

#[test]
fn cwd_env_and_stdin_options_are_quoted() {
    let out = local(
        r#"fn t() {
            let r = run("pwd; echo \"$GREETING\"; cat", #{ cwd: "/", env: #{ GREETING: "it's $HOME" }, stdin: "piped", quiet: true });
            info(r.stdout);
        }"#,
    )
    .args(["-H", "l1", "t"])
    .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("[l1] /\n[l1] it's $HOME\n[l1] piped"),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_run_option_is_an_error() {
    let out = local(r#"fn t() { run("true", #{ alow_fail: true }); }"#)
        .args(["-H", "l1", "t"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("unknown option `alow_fail`"),
        "{}",
        out.stderr
    );
}

#[test]
fn duplicate_task_across_files_is_an_error() {
    let out = local("fn t() {}\n")
        .recipe("other.rhai", "\nfn t() {}\n")
        .args(["--list"])
        .run();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("task `t` is also defined in recipes/main.rhai:1"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("recipes/other.rhai:2:1"),
        "{}",
        out.stderr
    );
}

#[test]
fn secrets_are_masked_everywhere() {
    let p = local(r#"fn t() { let s = secret("API_TOKEN"); run("echo token is " + s); info("info " + s); fail("bad " + s); }"#)
        .env("API_TOKEN", "s3cr3t-value");
    let out = p.clone().args(["-H", "l1", "t", "--output", "json"]).run();
    out.assert_code(1);
    assert!(
        !out.stdout.contains("s3cr3t-value") && !out.stderr.contains("s3cr3t-value"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    // Each place the value reached shows it masked: the command, its output, the message, the
    // error, and the summary's copy of the error.
    let has = |event: &str, field: &str, text: &str| {
        events
            .iter()
            .any(|e| e["event"] == event && e[field] == text)
    };
    assert!(
        has("command", "command", "echo token is ****"),
        "{}",
        out.stdout
    );
    assert!(has("output", "line", "token is ****"), "{}", out.stdout);
    assert!(has("message", "text", "info ****"), "{}", out.stdout);
    let summary = events.last().unwrap();
    let error = summary["hosts"][0]["error"].as_str().unwrap_or("");
    assert!(error.starts_with("bad ****"), "{}", out.stdout);

    let out = p.args(["-H", "l1", "t", "--output", "plain"]).run();
    out.assert_code(1);
    for line in [
        "[l1] $ echo token is ****",
        "[l1] info ****",
        "[l1] failed t: bad ****",
    ] {
        assert!(out.stderr.contains(line), "{line}: {}", out.stderr);
    }
    assert!(out.stdout.contains("[l1] token is ****"), "{}", out.stdout);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("l1 ") && l.contains("  bad ****")),
        "the summary: {}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("s3cr3t-value") && !out.stderr.contains("s3cr3t-value"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn secrets_file_values_are_masked_even_when_echoed_directly() {
    let p = local(r#"fn t() { run("echo hunter2-pass"); info(secret("DB_PASSWORD").len()); }"#)
        .file("secrets.env", "# comment\nDB_PASSWORD=\"hunter2-pass\"\n");
    let out = p.args(["-H", "l1", "--secrets", "secrets.env", "t"]).run();
    out.assert_code(0);
    assert!(
        !out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stderr.contains("[l1] 12"), "{}", out.stderr);
}

#[test]
fn missing_secret_fails_with_instructions() {
    let out = local(r#"fn t() { secret("NOT_SET_ANYWHERE_42"); }"#)
        .args(["-H", "l1", "t"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("secret `NOT_SET_ANYWHERE_42` is not set"),
        "{}",
        out.stderr
    );
}

#[test]
fn syntax_error_in_a_library_stops_before_anything_runs() {
    let p = local("import \"lib/util\" as util;\nfn t() { run(\"echo ran\"); util::x(); }\n")
        .file("recipes/lib/util.rhai", "fn x() {\n    let = 1;\n}\n");
    let out = p.args(["env:local", "t"]).run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("recipes/lib/util.rhai:2:"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("ran"), "{}", out.stdout);
}

const FLEET: &str = r#"
[env.fleet]
hosts = ["web-1", "web-2", "db-1", "cache-1"]
roles = { web = ["web-1", "web-2"], db = ["db-1"], cache = ["cache-1"] }
[hosts.web-1]
connection = "local"
[hosts.web-2]
connection = "local"
[hosts.db-1]
connection = "local"
[hosts.cache-1]
connection = "local"
[hosts.extra]
connection = "local"
"#;

/// Runs task `t` of a fleet of local hosts with `args`, and returns the hosts of the summary
/// (selection order) after checking that exactly those ran.
fn selected(args: &[&str]) -> Vec<String> {
    let out = Project::new()
        .inventory("fleet.toml", FLEET)
        .recipe("main.rhai", "fn t() { info(\"ran\"); }")
        .args(args)
        .args(["--output", "json", "t"])
        .run();
    out.assert_code(0);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<String> = events.last().unwrap()["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap().to_string())
        .collect();
    let mut ran: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "message" && e["text"] == "ran")
        .map(|e| e["host"].as_str().unwrap().to_string())
        .collect();
    ran.sort();
    let mut expected = summary.clone();
    expected.sort();
    assert_eq!(ran, expected, "{}", out.stdout);
    summary
}

#[test]
fn roles_hosts_exclusions_and_limit_select_the_hosts() {
    assert_eq!(
        selected(&["env:fleet"]),
        ["web-1", "web-2", "db-1", "cache-1"]
    );
    // Roles in the order given, each host once.
    assert_eq!(
        selected(&["env:fleet", "-R", "db,web"]),
        ["db-1", "web-1", "web-2"]
    );
    assert_eq!(
        selected(&["env:fleet", "-R", "web", "-R", "db"]),
        ["web-1", "web-2", "db-1"]
    );
    // -H adds, after the environment's hosts; a host already there is not repeated.
    assert_eq!(
        selected(&["env:fleet", "-R", "web", "-H", "extra,web-1"]),
        ["web-1", "web-2", "extra"]
    );
    assert_eq!(
        selected(&["env:fleet", "-x", "web-2,cache-1"]),
        ["web-1", "db-1"]
    );
    assert_eq!(
        selected(&["env:fleet", "-x", "web-2", "-x", "db-1"]),
        ["web-1", "cache-1"]
    );
    assert_eq!(
        selected(&["env:fleet", "--limit", "web-*"]),
        ["web-1", "web-2"]
    );
    assert_eq!(selected(&["env:fleet", "--limit", "?????-1"]), ["cache-1"]);
    // All together: roles, plus -H, minus -x, then the glob (which `extra` does not match).
    assert_eq!(
        selected(&[
            "env:fleet",
            "-R",
            "web,db",
            "-H",
            "extra",
            "-x",
            "web-1",
            "--limit",
            "*-?",
        ]),
        ["web-2", "db-1"]
    );
    // -x also matches the host part of a host string.
    assert_eq!(
        selected(&["-H", "extra,deploy@gone.invalid:2222", "-x", "gone.invalid"]),
        ["extra"]
    );
}

#[test]
fn a_selection_that_leaves_nothing_or_names_an_unknown_role_is_refused() {
    let p = Project::new()
        .inventory("fleet.toml", FLEET)
        .recipe("main.rhai", "fn t() { local(\"touch ran\"); }");
    let dir = p.path().to_path_buf();
    let out = p.clone().args(["env:fleet", "-R", "dbs", "t"]).run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("error: unknown role `dbs`")
            && out
                .stderr
                .contains("roles of environment `fleet`: cache, db, web"),
        "{}",
        out.stderr
    );
    let out = p.args(["env:fleet", "--limit", "nothing-*", "t"]).run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("error: no hosts selected for task `t`"),
        "{}",
        out.stderr
    );
    assert!(!dir.join("ran").exists());
}

#[test]
fn batch_percent_rolls_through_the_hosts_a_share_at_a_time() {
    let p = Project::new()
        .inventory(
            "five.toml",
            "[env.five]\nhosts = [\"a\", \"b\", \"c\", \"d\", \"e\"]\n[hosts.a]\nconnection = \"local\"\n\
             [hosts.b]\nconnection = \"local\"\n[hosts.c]\nconnection = \"local\"\n\
             [hosts.d]\nconnection = \"local\"\n[hosts.e]\nconnection = \"local\"\n",
        )
        ;
    let log = p.path().join("steps.log");
    let quoted = crate::harness::shell_quote(&log.display().to_string());
    let p = p.recipe(
        "main.rhai",
        &format!(
            "fn t() {{ run(`echo start-${{host.name}} >> {quoted}; echo end-${{host.name}} >> {quoted}`); }}"
        ),
    );
    // 40% of 5 hosts: batches of 2, 2 and 1.
    let out = p
        .clone()
        .args(["env:five", "--batch", "40%", "--output", "json", "t"])
        .run();
    out.assert_code(0);
    let batches: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "batch")
        .collect();
    assert_eq!(
        batches,
        [
            serde_json::json!({"event": "batch", "task": "t", "batch": 1, "batches": 3, "hosts": ["a", "b"]}),
            serde_json::json!({"event": "batch", "task": "t", "batch": 2, "batches": 3, "hosts": ["c", "d"]}),
            serde_json::json!({"event": "batch", "task": "t", "batch": 3, "batches": 3, "hosts": ["e"]}),
        ],
        "{}",
        out.stdout
    );
    // A batch starts only when the one before has ended on every host.
    let steps = std::fs::read_to_string(&log).unwrap();
    let at = |word: &str| {
        steps
            .lines()
            .position(|l| l == word)
            .unwrap_or_else(|| panic!("{word}: {steps}"))
    };
    for (earlier, later) in [
        ("a", "c"),
        ("b", "c"),
        ("a", "d"),
        ("b", "d"),
        ("c", "e"),
        ("d", "e"),
    ] {
        assert!(
            at(&format!("end-{earlier}")) < at(&format!("start-{later}")),
            "{steps}"
        );
    }

    let out = p
        .args(["env:five", "--batch", "50%", "--output", "plain", "t"])
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("batch 1/2 of t: a, b, c\n")
            && out.stderr.contains("batch 2/2 of t: d, e\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn describe_shows_a_builtin_function_like_a_task() {
    let out = local("fn t() {}\n").args(["-d", "docker::logs"]).run();
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "docker::logs(name[, options])
    built-in function
    parameters: name
    returns: string: the log
    options:
        tail        string|number  = all    only the last lines: docker logs --tail
        since       string|number  -        only lines since a time or for a while: docker logs --since
        sudo        bool           = false  run through sudo, as root (like `sudo(cmd)`)
        allow_fail  bool           = false  a failing docker command does not fail the host: the function returns false (or ())

    The log of container `name`, shown as it is read.
"
    );
    assert_eq!(out.stderr, "");
    let out = local("fn t() {}\n").args(["-d", "docker::run"]).run();
    out.assert_code(0);
    assert!(
        out.stdout
            .starts_with("docker::run(name, image[, options])\n    built-in function\n")
            && out.stdout.contains(
                "\n        health_interval  duration       -                  time between \
                 HEALTHCHECK runs: docker run --health-interval\n"
            ),
        "{}",
        out.stdout
    );
}

#[test]
fn describe_lists_the_builtin_functions_of_a_module_or_all() {
    let out = local("fn t() {}\n").args(["-d", "registry::"]).run();
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "Built-in functions of registry:: (rigs -d NAME describes one):
    registry::copy_tag(registry, repo, from, to[, options])  # Copies the manifest of `repo:from` to `repo:to` through the registry's HTTP API v2.
"
    );
    let out = local("fn t() {}\n").args(["-d", "::"]).run();
    out.assert_code(0);
    for line in [
        "\n    run(cmd[, options])  ",
        "\n    docker::wait_healthy(name[, options])  ",
        "\n    registry::copy_tag(registry, repo, from, to[, options])  ",
    ] {
        assert!(out.stdout.contains(line), "{line}\n{}", out.stdout);
    }
    let out = local("fn t() {}\n").args(["-d", "docker::nope"]).run();
    out.assert_code(2);
    assert_eq!(
        out.stderr,
        "error: unknown task `docker::nope`
  did you mean one of `docker::stop`, `docker::ps`, `docker::inspect`?
  hint: `rigs --list` shows the tasks; `rigs -d ::` the built-in functions
"
    );
}

#[test]
fn durations_take_units_and_options_are_checked_alike_everywhere() {
    let out = local(
        "fn t() {\n    run(\"true\", #{ timeout: \"2m\" });\n    sleep(\"10ms\");\n    info(\"done\");\n}\n\
         fn bad() {\n    run(\"true\", #{ timeout: \"30\" });\n}\n\
         fn unknown() {\n    docker::logs(\"app\", #{ tial: 5 });\n}\n",
    );
    let done = out
        .clone()
        .args(["-H", "l1", "--output", "plain", "t"])
        .run();
    done.assert_code(0);
    assert!(done.stderr.contains("[l1] done\n"), "{}", done.stderr);
    let bad = out
        .clone()
        .args(["-H", "l1", "--output", "plain", "bad"])
        .run();
    bad.assert_code(1);
    assert!(
        bad.stderr.contains(
            "[l1] failed bad: run: option `timeout` must be a number of seconds above 0 and at \
             most 31536000 (365 days), such as 30, 2.5, \"30s\", \"2m\" or \"1h\"\n"
        ),
        "{}",
        bad.stderr
    );
    let unknown = out.args(["-H", "l1", "--output", "plain", "unknown"]).run();
    unknown.assert_code(1);
    assert!(
        unknown.stderr.contains(
            "[l1] failed unknown: docker::logs: unknown option `tial` (expected one of tail, \
             since, sudo, allow_fail)\n"
        ),
        "{}",
        unknown.stderr
    );
}

#[test]
fn sudo_is_an_option_of_run_too() {
    let out = local("fn t() {\n    run(\"whoami\", #{ sudo: true });\n}\n")
        .args(["-H", "l1", "--dry-run", "--output", "plain", "t"])
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("[l1] would run: sudo whoami\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn allow_fail_makes_a_failed_transfer_a_unit_value() {
    let out = local(
        "fn t() {\n    let r = get(\"/nonexistent/rigs/file\", \"out/{host}\", #{ allow_fail: true });\n    info(`got ${type_of(r)}`);\n}\n",
    )
    .args(["-H", "l1", "--output", "plain", "t"])
    .run();
    out.assert_code(0);
    assert!(out.stderr.contains("[l1] got ()\n"), "{}", out.stderr);
}
