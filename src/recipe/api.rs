//! The core functions a recipe calls: commands on the host and the controller, messages,
//! secrets, `once`, the history, quoting and pauses.
//!
//! Every function reaches its host through the [`TaskScope`] carried as the engine's tag, so one
//! shared engine serves all hosts at once.

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::scope::{CommandOptions, CommandResult, Level, SudoOptions};
use super::spec::{FunctionSpec, Kind, OptionSpec, Options, Range, SUDO, TIMEOUT};
use super::toolkit::{fail, op_error, options, runtime, task_scope, Fallible};

const ALLOW_FAIL: OptionSpec = OptionSpec::new(
    "allow_fail",
    Kind::Bool,
    "false",
    "a non-zero exit does not fail the host; read `code` and `ok`",
);
const QUIET: OptionSpec = OptionSpec::new(
    "quiet",
    Kind::Bool,
    "false",
    "do not print the command's output (it is still returned)",
);
const TIMEOUT_OPTION: OptionSpec = OptionSpec::new(
    "timeout",
    Kind::Duration(TIMEOUT),
    "--command-timeout",
    "fail the host if the command has not finished in time, even with allow_fail",
);
const STDIN: OptionSpec = OptionSpec::new(
    "stdin",
    Kind::Text,
    "",
    "written to the command's standard input, then end-of-file",
);
const CWD: OptionSpec = OptionSpec::new(
    "cwd",
    Kind::Text,
    "",
    "run in this directory (`cd DIR || exit; ` is prefixed, quoted)",
);
const ENV: OptionSpec = OptionSpec::new(
    "env",
    Kind::Custom(
        "map",
        "a map like #{ NAME: \"value\" } whose keys are environment variable names",
    ),
    "",
    "environment variables, exported before the command (on its command line: not for secrets)",
);
pub static RUN: FunctionSpec = FunctionSpec {
    name: "run",
    params: &["cmd"],
    options: &[ALLOW_FAIL, QUIET, TIMEOUT_OPTION, STDIN, CWD, ENV, SUDO],
    returns: "map #{ stdout, stderr, code, ok }",
    doc: "Runs the shell command `cmd` on the host.\n\
          A non-zero exit fails the host unless `allow_fail` is set. Each `run` is a new shell.",
};

pub static LOCAL: FunctionSpec = FunctionSpec {
    name: "local",
    params: &["cmd"],
    options: &[ALLOW_FAIL, QUIET, TIMEOUT_OPTION, STDIN, CWD, ENV],
    returns: "map #{ stdout, stderr, code, ok }",
    doc: "Runs the shell command `cmd` on the controller, in rigs' working directory.\n\
          Like `run`: the same options and result; a non-zero exit fails the host.",
};

pub static SUDO_FN: FunctionSpec = FunctionSpec {
    name: "sudo",
    params: &["cmd"],
    options: &[
        ALLOW_FAIL,
        QUIET,
        TIMEOUT_OPTION,
        STDIN,
        CWD,
        ENV,
        OptionSpec::new("user", Kind::Text, "root", "run as this user"),
    ],
    returns: "map #{ stdout, stderr, code, ok }",
    doc: "Runs the shell command `cmd` on the host through sudo, as root or as `user`.\n\
          Like `run`, with the password from RIGS_SUDO_PASSWORD, --ask-sudo-pass or the login.",
};

pub static ONCE: FunctionSpec = FunctionSpec {
    name: "once",
    params: &["fn"],
    options: &[],
    returns: "the closure's value",
    doc: "Runs the closure a single time per invocation and gives its value to every host.\n\
          The first host to reach this call runs it; the others wait and get the same value.",
};

pub static SECRET: FunctionSpec = FunctionSpec {
    name: "secret",
    params: &["name"],
    options: &[],
    returns: "string",
    doc: "The secret `name`, from the --secrets file or the environment; masked in all output.\n\
          A secret that is set nowhere fails the host.",
};

pub static NOTE: FunctionSpec = FunctionSpec {
    name: "note",
    params: &["text"],
    options: &[],
    returns: "",
    doc: "A short note on this host's outcome, for the summary; the last one wins.",
};

pub static RECORD: FunctionSpec = FunctionSpec {
    name: "record",
    params: &["key", "value"],
    options: &[],
    returns: "",
    doc: "Adds a field to this task's line of the deployment history.",
};

pub static HISTORY: FunctionSpec = FunctionSpec {
    name: "history",
    params: &[],
    options: &[OptionSpec::new(
        "all_hosts",
        Kind::Bool,
        "false",
        "the lines of every host the task runs on in this step, not only this one's",
    )],
    returns: "array of maps, oldest first",
    doc: "This host's deployment history: one map per task run, from its last 500 lines.",
};

pub static INFO: FunctionSpec = FunctionSpec {
    name: "info",
    params: &["message"],
    options: &[],
    returns: "",
    doc: "Prints a message for the current host (`print` does the same).",
};

pub static WARN: FunctionSpec = FunctionSpec {
    name: "warn",
    params: &["message"],
    options: &[],
    returns: "",
    doc: "Prints a warning for the current host.",
};

pub static FAIL: FunctionSpec = FunctionSpec {
    name: "fail",
    params: &["message"],
    options: &[],
    returns: "",
    doc: "Stops the task and fails the host with `message`, pointing at the call.",
};

pub static QUOTE: FunctionSpec = FunctionSpec {
    name: "quote",
    params: &["value"],
    options: &[],
    returns: "string",
    doc: "Quotes a string (or each item of an array, joined by spaces) as one POSIX shell word.\n\
          Every value composed into a command line goes through it.",
};

/// The longest `sleep`, in seconds.
const SLEEP_RANGE: Range = Range {
    zero: true,
    max: 86_400,
    max_text: "a day",
};

pub static SLEEP: FunctionSpec = FunctionSpec {
    name: "sleep",
    params: &["seconds"],
    options: &[],
    returns: "",
    doc:
        "Pauses this host's task: a number of seconds (30, 2.5) or a duration (\"30s\", \"2m\").\n\
          From 0 to 86400 seconds (a day).",
};

pub static DRY_RUN: FunctionSpec = FunctionSpec {
    name: "dry_run",
    params: &[],
    options: &[],
    returns: "bool",
    doc: "Whether this is a dry run (--dry-run): commands are only shown, queries find nothing.",
};

/// The functions of this module, for `rigs -d` and the book.
pub static SPECS: &[&FunctionSpec] = &[
    &RUN, &LOCAL, &SUDO_FN, &ONCE, &SECRET, &NOTE, &RECORD, &HISTORY, &INFO, &WARN, &FAIL, &QUOTE,
    &SLEEP, &DRY_RUN,
];

pub fn register(engine: &mut Engine) {
    engine.register_fn("run", |ctx: NativeCallContext, cmd: &str| {
        command(&ctx, &RUN, cmd, &Map::new())
    });
    engine.register_fn("run", |ctx: NativeCallContext, cmd: &str, opts: Map| {
        command(&ctx, &RUN, cmd, &opts)
    });
    engine.register_fn("local", |ctx: NativeCallContext, cmd: &str| {
        command(&ctx, &LOCAL, cmd, &Map::new())
    });
    engine.register_fn("local", |ctx: NativeCallContext, cmd: &str, opts: Map| {
        command(&ctx, &LOCAL, cmd, &opts)
    });
    engine.register_fn("sudo", |ctx: NativeCallContext, cmd: &str| {
        command(&ctx, &SUDO_FN, cmd, &Map::new())
    });
    engine.register_fn("sudo", |ctx: NativeCallContext, cmd: &str, opts: Map| {
        command(&ctx, &SUDO_FN, cmd, &opts)
    });
    engine.register_fn("once", once);
    engine.register_fn("secret", secret);
    engine.register_fn(
        "note",
        |ctx: NativeCallContext, text: Dynamic| -> Fallible<()> {
            task_scope(&ctx)?.ops.note(&text.to_string());
            Ok(())
        },
    );
    engine.register_fn(
        "record",
        |ctx: NativeCallContext, key: &str, value: Dynamic| -> Fallible<()> {
            task_scope(&ctx)?
                .ops
                .record(key, super::value::to_json(&value));
            Ok(())
        },
    );
    engine.register_fn("history", |ctx: NativeCallContext| {
        history(ctx, &Map::new())
    });
    engine.register_fn("history", |ctx: NativeCallContext, opts: Map| {
        history(ctx, &opts)
    });
    engine.register_fn("info", |ctx: NativeCallContext, msg: Dynamic| {
        message(&ctx, Level::Info, msg)
    });
    engine.register_fn("warn", |ctx: NativeCallContext, msg: Dynamic| {
        message(&ctx, Level::Warn, msg)
    });
    engine.register_fn(
        "fail",
        |ctx: NativeCallContext, msg: Dynamic| -> Fallible<()> {
            Err(runtime(msg.to_string(), ctx.call_position()))
        },
    );
    engine.register_fn("quote", |s: &str| crate::quote::quote(s));
    engine.register_fn("quote", |words: rhai::Array| {
        words
            .iter()
            .map(|w| crate::quote::quote(&w.to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    });
    engine.register_fn("sleep", |ctx: NativeCallContext, secs: rhai::FLOAT| {
        sleep(&ctx, secs.into())
    });
    engine.register_fn("sleep", |ctx: NativeCallContext, secs: rhai::INT| {
        sleep(&ctx, secs.into())
    });
    engine.register_fn("sleep", |ctx: NativeCallContext, secs: &str| {
        sleep(&ctx, secs.into())
    });
    engine.register_fn("dry_run", |ctx: NativeCallContext| -> Fallible<bool> {
        Ok(task_scope(&ctx)?.ops.dry_run())
    });
}

fn message(ctx: &NativeCallContext, level: Level, msg: Dynamic) -> Fallible<()> {
    task_scope(ctx)?.ops.message(level, &msg.to_string());
    Ok(())
}

fn sleep(ctx: &NativeCallContext, secs: Dynamic) -> Fallible<()> {
    let Some(secs) = super::spec::seconds(&secs).filter(|s| SLEEP_RANGE.contains(*s)) else {
        return Err(fail(
            ctx,
            &SLEEP,
            format!("{secs} is not a number of seconds between 0 and 86400"),
        ));
    };
    std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    Ok(())
}

/// The shell prefix that applies the `env` and `cwd` options (exports first, so a failing `cd`
/// stops the command instead of skipping them).
fn prefix(options: &Options) -> Result<String, String> {
    let mut prefix = String::new();
    if let Some(v) = options.get("env") {
        let map = v.read_lock::<Map>().ok_or_else(|| options.bad("env"))?;
        for (name, v) in map.iter() {
            if !crate::task_call::is_identifier(name) {
                return Err(options.bad("env"));
            }
            prefix.push_str(&format!(
                "export {name}={}; ",
                crate::quote::quote(&v.to_string())
            ));
        }
    }
    if let Some(dir) = options.text("cwd") {
        prefix.push_str(&format!("cd {} || exit; ", crate::quote::quote(&dir)));
    }
    Ok(prefix)
}

/// `run`, `local` and `sudo`.
fn command(
    ctx: &NativeCallContext,
    spec: &'static FunctionSpec,
    cmd: &str,
    opts: &Map,
) -> Fallible<Map> {
    let local = spec.name == "local";
    let o = options(ctx, spec, opts)?;
    let full = prefix(&o).map_err(|m| fail(ctx, spec, m))? + cmd;
    let sudo = if spec.name == "sudo" {
        Some(SudoOptions {
            user: o.text("user"),
        })
    } else {
        o.flag("sudo").then(SudoOptions::default)
    };
    let options = CommandOptions {
        allow_fail: o.flag("allow_fail"),
        quiet: o.flag("quiet"),
        timeout: o.duration("timeout"),
        stdin: o.text("stdin"),
        sudo,
        ..CommandOptions::default()
    };
    let scope = task_scope(ctx)?;
    let result = scope
        .ops
        .command(&full, &options, local)
        .map_err(|e| op_error(ctx, e))?;
    if !result.ok() && !options.allow_fail {
        let shown = if options.sudo.is_some() {
            format!("sudo {full}")
        } else {
            full.clone()
        };
        return Err(runtime(
            failure_message(&shown, &result, local),
            ctx.call_position(),
        ));
    }
    Ok(result_map(result))
}

fn failure_message(cmd: &str, result: &CommandResult, local: bool) -> String {
    let place = if local { "local command" } else { "command" };
    let status = if result.code < 0 {
        "was killed by a signal".to_string()
    } else {
        format!("exited with code {}", result.code)
    };
    let mut msg = format!("{place} `{cmd}` {status}");
    if let Some(last) = result.stderr.lines().rev().find(|l| !l.trim().is_empty()) {
        msg.push_str(&format!(": {}", last.trim()));
    }
    msg
}

fn result_map(r: CommandResult) -> Map {
    let mut m = Map::new();
    m.insert("ok".into(), r.ok().into());
    m.insert("code".into(), r.code.into());
    m.insert("stdout".into(), r.stdout.into());
    m.insert("stderr".into(), r.stderr.into());
    m
}

/// `history()`, and `history(#{ all_hosts: true })`: the lines of every host the task runs on in
/// this step, not only this one's, so a release can agree on one version across them.
fn history(ctx: NativeCallContext, opts: &Map) -> Fallible<rhai::Array> {
    let all = options(&ctx, &HISTORY, opts)?.flag("all_hosts");
    let rows = if all {
        let scope = task_scope(&ctx)?;
        let entries = scope.ops.step_history().map_err(|e| op_error(&ctx, e))?;
        entries
            .iter()
            .map(crate::history::HistoryEntry::to_json)
            .collect()
    } else {
        super::toolkit::host_history(&ctx)?
    };
    Ok(rows.into_iter().map(super::value::from_json).collect())
}

fn once(ctx: NativeCallContext, f: FnPtr) -> Fallible<Dynamic> {
    let scope = task_scope(&ctx)?;
    let key = format!(
        "{}@{}",
        ctx.call_source().unwrap_or(""),
        ctx.call_position()
    );
    let cell = scope.once.cell(&key);
    let mut original: Option<Box<EvalAltResult>> = None;
    let stored = cell.get_or_init(|| match f.call_within_context::<Dynamic>(&ctx, ()) {
        Ok(v) => Ok(v),
        Err(e) => {
            let text = super::error::runtime_message(&e);
            original = Some(e);
            Err(text)
        }
    });
    if let Some(e) = original {
        return Err(e);
    }
    match stored {
        Ok(v) => Ok(v.clone()),
        Err(text) => Err(runtime(
            format!("the once(...) block failed on another host: {text}"),
            ctx.call_position(),
        )),
    }
}

fn secret(ctx: NativeCallContext, name: &str) -> Fallible<String> {
    let scope = task_scope(&ctx)?;
    match scope.ops.secret(name) {
        Some(s) => Ok(s.expose().to_string()),
        // A dry run shows what would run; a missing secret is worth a warning, not the end.
        None if scope.ops.dry_run() => {
            scope.ops.message(
                Level::Warn,
                &format!("secret `{name}` is not set: a real run fails here (export {name}=... or add it to the --secrets file)"),
            );
            Ok(format!("<{name} not set>"))
        }
        None => Err(runtime(
            format!("secret `{name}` is not set: export {name}=... or add `{name}=...` to the --secrets file"),
            ctx.call_position(),
        )),
    }
}
