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
    let out = p.args(["-H", "l1", "t", "--output", "json"]).run();
    out.assert_code(1);
    assert!(
        !out.stdout.contains("s3cr3t-value") && !out.stderr.contains("s3cr3t-value"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("token is ****"), "{}", out.stdout);
    for line in out.stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
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
