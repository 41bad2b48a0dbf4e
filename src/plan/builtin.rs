//! The tasks built into rigs: `history[:TASK]`, `lock:status|release` and `check`.
//!
//! They run on hosts like tasks, but their work is rigs' own. A recipe may define its own
//! `history` or `check`, which then wins; `lock` is always rigs'.

use crate::error::{Error, Result};
use crate::history::Filter;
use crate::recipe::Recipes;
use crate::run::{LockAction, Work};
use crate::task_call::{is_identifier, Arg, TaskCall};

/// The built-in work `call` names, or `None` for a recipe's task. `history` shows what
/// `history` (the environment before it, `--all`) lets through, for the task it names if any.
pub(super) fn work(call: &TaskCall, recipes: &Recipes, history: Filter) -> Result<Option<Work>> {
    match call.name.as_str() {
        "history" if recipes.task("history").is_err() => {
            let task =
                match call.args.as_slice() {
                    [] => None,
                    [Arg::Positional(task)] if is_identifier(task) => Some(task.clone()),
                    _ => return Err(Error::usage_hint(
                        format!("`{call}`: history takes at most one task name"),
                        "rigs env:NAME history shows the releases, history:TASK one task's runs, \
                         history --all every run",
                    )),
                };
            Ok(Some(Work::History(Filter { task, ..history })))
        }
        "check" if recipes.task("check").is_err() => {
            if !call.args.is_empty() {
                return Err(Error::usage_hint(
                    format!("`{call}`: check takes no arguments"),
                    "rigs env:NAME check tells whether a deploy would work on the environment's hosts",
                ));
            }
            Ok(Some(Work::Check))
        }
        "lock" => {
            let action = match call.single_value() {
                Some("status") => LockAction::Status,
                Some("release") => LockAction::Release,
                _ => {
                    return Err(Error::usage_hint(
                        format!("unknown lock command `{call}`"),
                        "rigs env:NAME lock:status, or lock:release to remove a stale lock",
                    ))
                }
            };
            Ok(Some(Work::Lock(action)))
        }
        _ => Ok(None),
    }
}
