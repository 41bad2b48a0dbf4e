//! The functions a recipe can call, bound into the Rhai engine.
//!
//! Every function reaches its host through the [`TaskScope`] carried as the engine's tag, so one
//! shared engine serves all hosts at once. `host`, `env` and `vars` are resolved by a variable
//! hook rather than passed as parameters, because Rhai functions cannot see their caller's scope.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position};

use super::scope::{CommandOptions, CommandResult, HostOps, Level, OpError, TaskScope};
use crate::cancel::Cancel;

/// Operations a script may perform before it is considered runaway. Blocking calls (`run`,
/// `local`) cost nothing here, so only a script that spins in Rust-free loops reaches it.
pub const MAX_OPERATIONS: u64 = 50_000_000;
pub const RUNAWAY: &str =
    "script stopped after 50000000 operations without finishing (an endless loop?)";
pub const INTERRUPTED: &str = "interrupted";

/// The most text one script value may hold, in bytes: a string, or all the strings inside one
/// array or map together. A runaway `s += s` otherwise doubles until the allocator aborts the
/// whole controller (no summary, locks left on hosts); this is far above what a recipe handles
/// on purpose, and above what `run` returns (its output is kept up to 64 MiB per stream).
pub const MAX_STRING_BYTES: usize = 256 * 1024 * 1024;
/// The most items in one array (nested arrays count together), and bytes in one BLOB.
pub const MAX_ARRAY_ITEMS: usize = 10_000_000;
/// The most entries in one map (nested maps count together).
pub const MAX_MAP_ENTRIES: usize = 1_000_000;

/// The message for a value that outgrew a limit; `what` is the kind Rhai names
/// (`Length of string`, `Size of array/BLOB`, `Size of object map`, `Size of BLOB`).
pub(super) fn too_large(what: &str) -> String {
    let (value, limit) = if what.contains("string") {
        ("a string", format!("{} MiB", MAX_STRING_BYTES >> 20))
    } else if what.contains("map") {
        ("a map", format!("{MAX_MAP_ENTRIES} entries"))
    } else if !what.contains("array") {
        ("a BLOB", format!("{MAX_ARRAY_ITEMS} bytes"))
    } else {
        ("an array", format!("{MAX_ARRAY_ITEMS} items"))
    };
    format!("{value} grew beyond {limit}, the most one value may hold in a recipe")
}

thread_local! {
    /// The host whose task runs on this thread, for `print` and `debug`, which get no context.
    static CURRENT: RefCell<Option<Arc<dyn HostOps>>> = const { RefCell::new(None) };
}

pub(crate) fn set_current(ops: Option<Arc<dyn HostOps>>) {
    CURRENT.with(|c| *c.borrow_mut() = ops);
}

fn with_current(level: Level, text: &str) {
    CURRENT.with(|c| match &*c.borrow() {
        Some(ops) => ops.message(level, text),
        None => crate::report::console::line(
            crate::report::StreamKind::Stderr,
            &crate::report::escape_lines(text),
        ),
    });
}

pub(super) type Fallible<T> = Result<T, Box<EvalAltResult>>;

pub(super) fn runtime(message: impl Into<String>, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        pos,
    ))
}

/// A host operation's failure as a script error (Ctrl-C stops the script).
pub(super) fn op_error(ctx: &NativeCallContext, e: OpError) -> Box<EvalAltResult> {
    match e {
        OpError::Failed(m) => runtime(m, ctx.call_position()),
        OpError::Interrupted => Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(INTERRUPTED),
            ctx.call_position(),
        )),
    }
}

pub(super) fn task_scope(ctx: &NativeCallContext) -> Fallible<TaskScope> {
    ctx.tag()
        .and_then(|t| t.read_lock::<TaskScope>().map(|s| s.clone()))
        .ok_or_else(|| {
            runtime(
                "this function can only be called while a task runs on a host",
                ctx.call_position(),
            )
        })
}

pub fn build_engine(dir: &Path, cancel: Cancel) -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(FileModuleResolver::new_with_path_and_extension(dir, "rhai"));
    // Rhai lowers these limits in debug builds; recipes must parse the same in every build.
    engine.set_max_expr_depths(128, 128);
    engine.set_max_call_levels(128);
    engine.set_max_string_size(MAX_STRING_BYTES);
    engine.set_max_array_size(MAX_ARRAY_ITEMS);
    engine.set_max_map_size(MAX_MAP_ENTRIES);
    // Reading a map property that is not there is an error, not `()`: `vars.imgae` must stop
    // the task at the typo instead of passing nothing on to the next function.
    engine.set_fail_on_invalid_map_property(true);
    engine.on_progress(move |ops| {
        if cancel.is_cancelled() {
            Some(Dynamic::from(INTERRUPTED))
        } else if ops > MAX_OPERATIONS {
            Some(Dynamic::from(RUNAWAY))
        } else {
            None
        }
    });
    #[allow(deprecated)]
    engine.on_var(|name, index, ctx| {
        if index > 0 || !matches!(name, "host" | "env" | "vars") || ctx.scope().contains(name) {
            return Ok(None);
        }
        let tag = ctx.tag();
        let Some(scope) = tag.read_lock::<TaskScope>() else {
            return Ok(None);
        };
        Ok(Some(match name {
            "host" => scope.host.clone(),
            "env" => scope.env.clone(),
            _ => scope.vars.clone(),
        }))
    });
    engine.on_print(|text| with_current(Level::Info, text));
    engine.on_debug(|text, _, _| with_current(Level::Info, text));

    engine.register_fn("run", |ctx: NativeCallContext, cmd: &str| {
        command(&ctx, cmd, Map::new(), false)
    });
    engine.register_fn("run", |ctx: NativeCallContext, cmd: &str, opts: Map| {
        command(&ctx, cmd, opts, false)
    });
    engine.register_fn("local", |ctx: NativeCallContext, cmd: &str| {
        command(&ctx, cmd, Map::new(), true)
    });
    engine.register_fn("local", |ctx: NativeCallContext, cmd: &str, opts: Map| {
        command(&ctx, cmd, opts, true)
    });
    engine.register_fn("sudo", |ctx: NativeCallContext, cmd: &str| {
        sudo(&ctx, cmd, Map::new())
    });
    engine.register_fn("sudo", |ctx: NativeCallContext, cmd: &str, opts: Map| {
        sudo(&ctx, cmd, opts)
    });
    engine.register_fn(
        "put",
        |ctx: NativeCallContext, local: &str, remote: &str| {
            super::transfer::put(ctx, local, remote, Map::new())
        },
    );
    engine.register_fn("put", super::transfer::put);
    engine.register_fn(
        "get",
        |ctx: NativeCallContext, remote: &str, local: &str| {
            super::transfer::get(ctx, remote, local, Map::new())
        },
    );
    engine.register_fn("get", super::transfer::get);
    engine.register_fn(
        "template",
        |ctx: NativeCallContext, local: &str, remote: &str| {
            super::transfer::template(ctx, local, remote, Map::new())
        },
    );
    engine.register_fn("template", super::transfer::template);
    engine.register_static_module("docker", super::docker::module().into());
    engine.register_static_module("registry", super::docker::registry_module().into());
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
    engine.register_fn("history", history);
    engine.register_fn("history", history_of);
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
        sleep(&ctx, secs)
    });
    engine.register_fn("sleep", |ctx: NativeCallContext, secs: rhai::INT| {
        sleep(&ctx, secs as rhai::FLOAT)
    });
    engine
}

fn message(ctx: &NativeCallContext, level: Level, msg: Dynamic) -> Fallible<()> {
    task_scope(ctx)?.ops.message(level, &msg.to_string());
    Ok(())
}

fn sleep(ctx: &NativeCallContext, secs: rhai::FLOAT) -> Fallible<()> {
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(runtime(
            format!("sleep: {secs} is not a number of seconds between 0 and 86400"),
            ctx.call_position(),
        ));
    }
    std::thread::sleep(Duration::from_secs_f64(secs));
    Ok(())
}

const OPTION_NAMES: &str = "allow_fail, quiet, timeout, stdin, cwd, env";

/// Reads a `run`/`local` options map; returns the options and the shell prefix that applies
/// `env` and `cwd` (exports first, so a failing `cd` stops the command instead of skipping them).
fn command_options(
    ctx: &NativeCallContext,
    func: &str,
    opts: &Map,
) -> Fallible<(CommandOptions, String)> {
    let mut options = CommandOptions::default();
    let mut exports = String::new();
    let mut chdir = String::new();
    let bad = |key: &str, expected: &str| {
        runtime(
            format!("{func}: option `{key}` must be {expected}"),
            ctx.call_position(),
        )
    };
    for (key, value) in opts {
        match key.as_str() {
            "allow_fail" => {
                options.allow_fail = value.as_bool().map_err(|_| bad(key, "true or false"))?
            }
            "quiet" => options.quiet = value.as_bool().map_err(|_| bad(key, "true or false"))?,
            "timeout" => {
                let timeout = value
                    .as_float()
                    .or_else(|_| value.as_int().map(|i| i as rhai::FLOAT))
                    .ok()
                    .and_then(crate::time::seconds)
                    .ok_or_else(|| {
                        bad(
                            key,
                            &format!("a number of seconds {}", crate::time::seconds_range()),
                        )
                    })?;
                options.timeout = Some(timeout);
            }
            "stdin" => {
                options.stdin = Some(
                    value
                        .clone()
                        .into_string()
                        .map_err(|_| bad(key, "a string"))?,
                )
            }
            "cwd" => {
                let dir = value
                    .clone()
                    .into_string()
                    .map_err(|_| bad(key, "a string"))?;
                chdir = format!("cd {} || exit; ", crate::quote::quote(&dir));
            }
            "env" => {
                let map = value
                    .read_lock::<Map>()
                    .ok_or_else(|| bad(key, "a map like #{ NAME: \"value\" }"))?;
                for (name, v) in map.iter() {
                    if !crate::task_call::is_identifier(name) {
                        return Err(bad(key, "a map whose keys are environment variable names"));
                    }
                    exports.push_str(&format!(
                        "export {name}={}; ",
                        crate::quote::quote(&v.to_string())
                    ));
                }
            }
            other => {
                return Err(runtime(
                    format!("{func}: unknown option `{other}` (expected one of {OPTION_NAMES})"),
                    ctx.call_position(),
                ))
            }
        }
    }
    exports.push_str(&chdir);
    Ok((options, exports))
}

/// `sudo(cmd, opts)`: `run` through sudo, as root or as `opts.user`.
fn sudo(ctx: &NativeCallContext, cmd: &str, mut opts: Map) -> Fallible<Map> {
    let user =
        match opts.remove("user") {
            None => None,
            Some(u) => Some(u.into_string().map_err(|_| {
                runtime("sudo: option `user` must be a string", ctx.call_position())
            })?),
        };
    let sudo = super::scope::SudoOptions { user };
    run_command(ctx, "sudo", cmd, opts, false, Some(sudo))
}

fn command(ctx: &NativeCallContext, cmd: &str, opts: Map, local: bool) -> Fallible<Map> {
    run_command(
        ctx,
        if local { "local" } else { "run" },
        cmd,
        opts,
        local,
        None,
    )
}

fn run_command(
    ctx: &NativeCallContext,
    func: &str,
    cmd: &str,
    opts: Map,
    local: bool,
    sudo: Option<super::scope::SudoOptions>,
) -> Fallible<Map> {
    let scope = task_scope(ctx)?;
    let (mut options, prefix) = command_options(ctx, func, &opts)?;
    options.sudo = sudo;
    let full = if prefix.is_empty() {
        cmd.to_string()
    } else {
        format!("{prefix}{cmd}")
    };
    let result = match scope.ops.command(&full, &options, local) {
        Ok(r) => r,
        Err(OpError::Failed(message)) => return Err(runtime(message, ctx.call_position())),
        Err(OpError::Interrupted) => {
            return Err(Box::new(EvalAltResult::ErrorTerminated(
                Dynamic::from(INTERRUPTED),
                ctx.call_position(),
            )))
        }
    };
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

/// This host's deployment history, oldest first: one map per task run (see the book's
/// "Safe releases" chapter for the fields).
fn history(ctx: NativeCallContext) -> Fallible<rhai::Array> {
    Ok(host_history(&ctx)?
        .into_iter()
        .map(super::value::from_json)
        .collect())
}

/// The last 500 lines of this host's history file that are about this host, oldest first.
pub(super) fn host_history(ctx: &NativeCallContext) -> Fallible<Vec<serde_json::Value>> {
    let scope = task_scope(ctx)?;
    let r = scope
        .ops
        .command(
            &crate::history::read_command(500),
            &CommandOptions {
                quiet: true,
                silent: true,
                allow_fail: true,
                ..CommandOptions::default()
            },
            false,
        )
        .map_err(|e| op_error(ctx, e))?;
    let name = scope.host_name();
    Ok(crate::history::parse(&r.stdout)
        .into_iter()
        // A shared home folder (NFS) holds other hosts' lines too.
        .filter(|row| row["host"].as_str() == Some(name.as_str()))
        .collect())
}

/// `history(#{ all_hosts: true })`: the lines of every host the task runs on in this step,
/// not only this one's, so a release can agree on one version across them.
fn history_of(ctx: NativeCallContext, options: Map) -> Fallible<rhai::Array> {
    for key in options.keys() {
        if key.as_str() != "all_hosts" {
            return Err(runtime(
                format!("history: unknown option `{key}`; the option is all_hosts"),
                ctx.call_position(),
            ));
        }
    }
    let all = options
        .get("all_hosts")
        .map(|v| v.as_bool().unwrap_or(false))
        .unwrap_or(false);
    if !all {
        return history(ctx);
    }
    let scope = task_scope(&ctx)?;
    let rows = scope.ops.step_history().map_err(|e| op_error(&ctx, e))?;
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
        None => Err(runtime(
            format!("secret `{name}` is not set: export {name}=... or add `{name}=...` to the --secrets file"),
            ctx.call_position(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_stop_growing_at_the_limits() {
        let engine = build_engine(Path::new("."), Cancel::default());
        for (script, message) in [
            (
                "let s = \"x\";\nloop { s += s; }",
                "a string grew beyond 256 MiB",
            ),
            (
                "let s = \"x\";\nloop { s = s + s; }",
                "a string grew beyond 256 MiB",
            ),
            (
                "let s = \"x\";\nloop { s.append(s); }",
                "a string grew beyond 256 MiB",
            ),
            (
                "let a = [\"x\"];\nloop { a.push(a[0]); a[0] += a[0]; }",
                "a string grew beyond 256 MiB",
            ),
            (
                "let a = [1];\nloop { a += a; }",
                "an array grew beyond 10000000 items",
            ),
            (
                "let m = #{};\nloop { m = #{ x: m, y: m }; }",
                "a map grew beyond 1000000 entries",
            ),
        ] {
            let err = engine.run(script).unwrap_err();
            assert!(
                matches!(*err, EvalAltResult::ErrorDataTooLarge(..)),
                "{script}: {err:?}"
            );
            assert_eq!(err.position().line(), Some(2), "{script}: {err:?}");
            let shown = super::super::error::runtime_message(&err);
            assert!(shown.starts_with(message), "{script}: {shown}");
        }
    }
}
