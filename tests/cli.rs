//! The command line as a user meets it: listing, describing, the TASK:ARGS grammar, usage errors.

use crate::harness::Project;

const RECIPES: &str = r#"
/// Deploy a tag.
///
/// Pulls the image and replaces the container.
fn deploy(tag, force) {
    info(`deploy ${tag} force=${force}`);
}

/// Say something.
fn say(text) { info(`said: ${text}`); }

fn undocumented() {}

fn _helper() {}
private fn hidden() {}
"#;

const LOCAL: &str = r#"
[env.local]
hosts = ["one"]
[hosts.one]
connection = "local"
"#;

fn project() -> Project {
    Project::new()
        .recipe("main.rhai", RECIPES)
        .inventory("local.toml", LOCAL)
}

#[test]
fn list_shows_tasks_with_first_doc_line() {
    let out = project().args(["--list"]).run();
    out.assert_code(0);
    assert!(
        out.stdout.contains("deploy:TAG,FORCE  # Deploy a tag."),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("say:TEXT"), "{}", out.stdout);
    assert!(out.stdout.contains("undocumented"), "{}", out.stdout);
    assert!(!out.stdout.contains("_helper"), "{}", out.stdout);
    assert!(!out.stdout.contains("hidden"), "{}", out.stdout);
    assert!(!out.stdout.contains("Pulls the image"), "{}", out.stdout);
}

#[test]
fn describe_shows_full_doc_and_parameters() {
    let out = project().args(["-d", "deploy"]).run();
    out.assert_code(0);
    assert!(
        out.stdout.contains("parameters: tag, force"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Pulls the image and replaces the container."),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("recipes/main.rhai:5"), "{}", out.stdout);
}

#[test]
fn describe_unknown_task_suggests() {
    let out = project().args(["-d", "deplyo"]).run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("unknown task `deplyo`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `deploy`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn positional_named_and_escaped_arguments() {
    let out = project()
        .args([
            "env:local",
            "deploy:1.2.3,force=yes",
            r"say:a\,b",
            "say:text=x=y",
        ])
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("[one] deploy 1.2.3 force=yes"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[one] said: a,b"), "{}", out.stderr);
    assert!(out.stderr.contains("[one] said: x=y"), "{}", out.stderr);
}

#[test]
fn only_the_first_colon_splits() {
    let out = project().args(["env:local", "say:sha256:abc"]).run();
    out.assert_code(0);
    assert!(out.stderr.contains("said: sha256:abc"), "{}", out.stderr);
}

#[test]
fn wrong_arguments_show_the_signature() {
    for (call, expect) in [
        ("deploy:1", "missing argument `force`"),
        ("deploy:1,2,3", "takes 2 arguments"),
        ("deploy:tag=1,forse=2", "no parameter `forse`"),
        ("deploy:1,tag=2", "given twice"),
        ("deploy:tag=1,2", "follows a named one"),
    ] {
        let out = project().args(["env:local", call]).run();
        out.assert_code(2);
        assert!(out.stderr.contains(expect), "{call}: {}", out.stderr);
        if !expect.contains("follows") {
            assert!(
                out.stderr.contains("deploy:TAG,FORCE"),
                "{call}: {}",
                out.stderr
            );
        }
        assert!(
            !out.stderr.contains("[one]"),
            "nothing may run: {}",
            out.stderr
        );
    }
}

#[test]
fn unknown_task_and_env_are_usage_errors_with_suggestions() {
    let out = project().args(["env:local", "sya:x"]).run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("unknown task `sya`") && out.stderr.contains("`say`"),
        "{}",
        out.stderr
    );

    let out = project().args(["env:lcoal", "say:x"]).run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("unknown environment `lcoal`") && out.stderr.contains("`local`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_bad_later_task_stops_everything_before_it_runs() {
    let out = project().args(["env:local", "say:first", "nope"]).run();
    out.assert_code(2);
    assert!(!out.stderr.contains("said: first"), "{}", out.stderr);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec![],
        vec!["env:local"],
        vec!["--bogus-flag"],
        vec!["--set", "novalue", "env:local", "undocumented"],
        vec!["--pool-size", "0", "env:local", "undocumented"],
        vec!["de-ploy"],
        vec!["env", "undocumented"],
        vec!["undocumented"],
    ] {
        let out = project().args(args.clone()).run();
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("error"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn durations_out_of_range_are_usage_errors_naming_the_flag() {
    for flag in [
        "--connect-timeout",
        "--command-timeout",
        "--lock-wait",
        "--canary-wait",
    ] {
        for value in ["1e20", "31536001", "0", "-1", "nan", "inf"] {
            let out = project()
                .args([
                    "--canary",
                    "1",
                    &format!("{flag}={value}"),
                    "env:local",
                    "say:x",
                ])
                .run();
            assert_eq!(out.code, 2, "{flag}={value}: {}", out.stderr);
            assert!(
                out.stderr.contains(&format!(
                    "error: {flag} must be a number of seconds above 0 and at most 31536000 (365 days), got "
                )),
                "{flag}={value}: {}",
                out.stderr
            );
            assert!(!out.stderr.contains("said"), "{}", out.stderr);
        }
        let out = project()
            .args(["--canary", "1", flag, "31536000", "env:local", "say:x"])
            .run();
        out.assert_code(0);
    }
}

#[test]
fn help_and_version_exit_0() {
    let out = project().args(["--help"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("--host-key-policy"), "{}", out.stdout);
    project().args(["--version"]).run().assert_code(0);
}

#[test]
fn completions_and_man_page() {
    let out = project().args(["completions", "bash"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("--known-hosts"), "{}", out.stdout);
    for shell in ["zsh", "fish"] {
        project().args(["completions", shell]).run().assert_code(0);
    }
    let out = project().args(["man"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains(".TH rigs"), "{}", out.stdout);
    project().args(["completions", "tcsh"]).run().assert_code(2);
}

#[test]
fn set_overrides_inventory_variables() {
    let p = project()
        .recipe("vars.rhai", "fn show() { info(`image=${vars.image}`); }")
        .inventory("vars.toml", "[vars]\nimage = \"from-inventory\"\n");
    let out = p
        .args(["--set", "image=from-cli", "env:local", "show"])
        .run();
    out.assert_code(0);
    assert!(out.stderr.contains("image=from-cli"), "{}", out.stderr);
}

#[test]
fn an_env_with_no_task_after_it_is_an_error() {
    let p = project().inventory("more.toml", "[env.other]\nhosts = [\"one\"]\n");
    let out = p
        .clone()
        .args(["env:local", "undocumented", "env:other"])
        .run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("`env:other` is followed by no task"),
        "{}",
        out.stderr
    );
    let out = p.args(["env:other", "env:local", "undocumented"]).run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("`env:other` is followed by no task"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_task_may_take_different_numbers_of_arguments() {
    let p = project().recipe(
        "roll.rhai",
        "/// Back to the previous version.\nfn rollback() { info(\"to previous\"); }\n\
         /// Back to a named version.\nfn rollback(tag) { info(`to ${tag}`); }\n",
    );
    let out = p.clone().args(["--list"]).run();
    out.assert_code(0);
    assert!(
        out.stdout.contains("rollback      ") && out.stdout.contains("rollback:TAG"),
        "{}",
        out.stdout
    );
    let out = p
        .clone()
        .args([
            "env:local",
            "rollback",
            "rollback:1.2.3",
            "rollback:tag=1.0",
        ])
        .run();
    out.assert_code(0);
    assert!(out.stderr.contains("[one] to previous"), "{}", out.stderr);
    assert!(
        out.stderr.contains("[one] to 1.2.3") && out.stderr.contains("[one] to 1.0"),
        "{}",
        out.stderr
    );
    let out = p.clone().args(["-d", "rollback"]).run();
    assert!(
        out.stdout.contains("Back to the previous version.")
            && out.stdout.contains("Back to a named version.")
    );
    let out = p.args(["env:local", "rollback:a,b"]).run();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("call it as `rollback` or `rollback:TAG`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_comma_in_the_argument_of_a_one_parameter_task_says_how_to_escape_it() {
    let out = project().args(["env:local", "say:ls -l,/tmp"]).run();
    out.assert_code(2);
    assert!(
        out.stderr.contains(
            "task `say` takes 1 argument, but the commas in `say:ls -l,/tmp` split it into 2"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("escape each comma as `\\,`")
            && out.stderr.contains(r"'say:ls -l\,/tmp'"),
        "{}",
        out.stderr
    );
    // The word the hint gives works as it is.
    let out = project().args(["env:local", r"say:ls -l\,/tmp"]).run();
    out.assert_code(0);
    assert!(out.stderr.contains("said: ls -l,/tmp"), "{}", out.stderr);
}
