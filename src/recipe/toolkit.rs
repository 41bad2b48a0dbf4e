//! What every native recipe function is built from: the task's scope, errors that point at the
//! call, and the function's options checked against its [`FunctionSpec`].
//!
//! The function modules (`api`, `transfer`, `docker`, `health`, `ship`, `registry`) import this
//! one and nothing of each other's, and [`super::functions`] registers them all, so no module
//! reaches back into another that registers it.

use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext, Position};

use super::error::INTERRUPTED;
use super::scope::{OpError, TaskScope};
use super::spec::{FunctionSpec, Options};

pub type Fallible<T> = Result<T, Box<EvalAltResult>>;

/// A script error with `message`, at `pos`.
pub fn runtime(message: impl Into<String>, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        pos,
    ))
}

/// `FUNCTION: message`, pointing at the call: how every native function fails.
pub fn fail(
    ctx: &NativeCallContext,
    spec: &FunctionSpec,
    message: impl AsRef<str>,
) -> Box<EvalAltResult> {
    runtime(
        format!("{}: {}", spec.name, message.as_ref()),
        ctx.call_position(),
    )
}

/// A host operation's failure as a script error (Ctrl-C stops the script).
pub fn op_error(ctx: &NativeCallContext, e: OpError) -> Box<EvalAltResult> {
    match e {
        OpError::Failed(m) => runtime(m, ctx.call_position()),
        OpError::Interrupted => Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(INTERRUPTED),
            ctx.call_position(),
        )),
    }
}

/// The running task's scope: its host, variables and operations.
pub fn task_scope(ctx: &NativeCallContext) -> Fallible<TaskScope> {
    ctx.tag()
        .and_then(|t| t.read_lock::<TaskScope>().map(|s| s.clone()))
        .ok_or_else(|| {
            runtime(
                "this function can only be called while a task runs on a host",
                ctx.call_position(),
            )
        })
}

/// `opts` checked against `spec`; an unknown option or a wrong type fails the call.
pub fn options<'a>(
    ctx: &NativeCallContext,
    spec: &'static FunctionSpec,
    opts: &'a Map,
) -> Fallible<Options<'a>> {
    spec.check(opts).map_err(|m| fail(ctx, spec, m))
}

/// The last 500 lines of this host's history file that are about this host, oldest first.
pub fn host_history(ctx: &NativeCallContext) -> Fallible<Vec<serde_json::Value>> {
    let entries = task_scope(ctx)?
        .ops
        .history()
        .map_err(|e| op_error(ctx, e))?;
    Ok(entries
        .iter()
        .map(crate::history::HistoryEntry::to_json)
        .collect())
}
