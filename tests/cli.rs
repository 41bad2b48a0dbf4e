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
    assert!(
        out.stderr.starts_with("error: unknown task `nope`\n"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("said: first"), "{}", out.stderr);
}

#[test]
fn usage_errors_exit_2() {
    for (args, message) in [
        (vec![], "error: no task given\n  hint: name a task (`rigs --list` shows them)"),
        (vec!["env:local"], "error: no task given after env:\n"),
        (
            vec!["--bogus-flag"],
            "error: unexpected argument '--bogus-flag' found",
        ),
        (
            vec!["--set", "novalue", "env:local", "undocumented"],
            "error: --set expects KEY=VALUE, got `novalue`\n",
        ),
        (
            vec!["--pool-size", "0", "env:local", "undocumented"],
            "error: --pool-size must be at least 1\n",
        ),
        (
            vec!["de-ploy"],
            "error: `de-ploy` is not a valid task name (in `de-ploy`)\n",
        ),
        (
            vec!["env", "undocumented"],
            "error: `env`: env takes one environment name\n  hint: write env:NAME, e.g. env:staging\n",
        ),
        (
            vec!["undocumented"],
            "error: no hosts selected for task `undocumented`\n  hint: put env:NAME before it",
        ),
    ] {
        let out = project().args(args.clone()).run();
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with(message),
            "{args:?}: expected {message:?} first\n{}",
            out.stderr
        );
        assert_eq!(out.stdout, "", "{args:?}");
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
    assert!(
        out.stdout.contains("--global-known-hosts <FILE>"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("[env: RIGS_GLOBAL_KNOWN_HOSTS="),
        "{}",
        out.stdout
    );
    let out = project().args(["--version"]).run();
    out.assert_code(0);
    assert_eq!(out.stdout, format!("rigs {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn completions_and_man_page() {
    let out = project().args(["completions", "bash"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("--known-hosts"), "{}", out.stdout);
    for (shell, start) in [("zsh", "#compdef rigs\n"), ("fish", "complete -c rigs ")] {
        let out = project().args(["completions", shell]).run();
        out.assert_code(0);
        assert!(out.stdout.starts_with(start), "{shell}: {}", out.stdout);
    }
    let out = project().args(["man"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains(".TH rigs"), "{}", out.stdout);
    let out = project().args(["completions", "tcsh"]).run();
    out.assert_code(2);
    assert_eq!(
        out.stderr,
        "error: unknown shell `tcsh`\n  hint: rigs completions bash|zsh|fish|elvish|powershell\n"
    );
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
    out.assert_code(0);
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

/// A task that takes long enough for pretty output to draw its live line.
const SLOW: &str = "/// Wait a little.\nfn slow() { run(\"sleep 0.5\"); info(\"done\"); }\n";

#[test]
fn pretty_is_the_default_on_a_terminal_with_a_live_line_and_colours() {
    let out = project()
        .recipe("slow.rhai", SLOW)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .args(["env:local", "slow"])
        .run_in_terminal("");
    out.assert_code(0);
    // The live line: spinner, bold host, task and command, redrawn in place.
    assert!(
        out.stdout.contains("\x1b[1mone\x1b[0m slow $ sleep 0.5"),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.contains("\r\x1b[2K"), "{:?}", out.stdout);
    // Above it, what plain prints; the status coloured in the summary.
    assert!(
        out.stdout.contains("[one] $ sleep 0.5\r\n"),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.contains("[one] done\r\n"), "{:?}", out.stdout);
    assert!(
        out.stdout.contains("one   \x1b[32mok\x1b[0m "),
        "{:?}",
        out.stdout
    );
}

#[test]
fn pretty_without_colour_or_live_line_when_no_color_is_set_and_term_is_dumb() {
    let out = project()
        .recipe("slow.rhai", SLOW)
        .env("TERM", "dumb")
        .args(["env:local", "slow"])
        .run_in_terminal("");
    out.assert_code(0);
    assert!(out.stdout.contains("[one] done\r\n"), "{:?}", out.stdout);
    assert!(out.stdout.contains("one   ok "), "{:?}", out.stdout);
    assert!(!out.stdout.contains('\x1b'), "{:?}", out.stdout);
}

#[test]
fn plain_is_the_default_off_a_terminal() {
    let out = project()
        .recipe("slow.rhai", SLOW)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .args(["env:local", "slow"])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with("[one] $ sleep 0.5\n[one] done\n\nHOST  STATUS           TIME\none   ok "),
        "{:?}",
        out.stderr
    );
    assert!(out.stderr.ends_with("\n1 host: 1 ok\n"), "{:?}", out.stderr);
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
}

#[test]
fn rigs_output_picks_the_style_and_the_flag_wins_over_it() {
    let p = project().recipe("slow.rhai", SLOW).env_remove("NO_COLOR");
    let out = p
        .clone()
        .env("RIGS_OUTPUT", "json")
        .args(["env:local", "say:hi"])
        .run();
    out.assert_code(0);
    assert_eq!(out.stderr, "");
    let events = crate::harness::json_events(&out.stdout);
    let said: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "message")
        .map(|e| (e["host"].as_str(), e["text"].as_str()))
        .collect();
    assert_eq!(said, [(Some("one"), Some("said: hi"))], "{}", out.stdout);
    assert_eq!(events.last().unwrap()["event"], "summary", "{}", out.stdout);

    let out = p
        .clone()
        .env("RIGS_OUTPUT", "json")
        .args(["--output", "plain", "env:local", "say:hi"])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.starts_with("[one] said: hi\n"), "{}", out.stderr);

    // pretty off a terminal: no live line, but the colours it was asked for.
    let out = p
        .clone()
        .env("RIGS_OUTPUT", "pretty")
        .env("TERM", "xterm")
        .args(["env:local", "slow"])
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.starts_with("[one] $ sleep 0.5\n[one] done\n"),
        "{:?}",
        out.stderr
    );
    assert!(
        out.stderr.contains("one   \x1b[32mok\x1b[0m "),
        "{:?}",
        out.stderr
    );
    assert!(!out.stderr.contains("\x1b[2K"), "{:?}", out.stderr);

    let out = p
        .env("RIGS_OUTPUT", "fancy")
        .args(["env:local", "say:hi"])
        .run();
    out.assert_code(2);
    assert!(
        out.stderr
            .starts_with("error: invalid value 'fancy' for '--output <STYLE>'\n  [possible values: pretty, plain, json]"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("said"), "{}", out.stderr);
}
