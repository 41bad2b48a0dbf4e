//! The script engine recipes run in: its limits, its hooks, and every native function.
//!
//! One engine (built with `sync`) serves all hosts at once. `host`, `env` and `vars` are
//! resolved by a variable hook rather than passed as parameters, because Rhai functions cannot
//! see their caller's scope; `print` and `debug` reach the host whose task runs on the current
//! thread. The functions themselves are registered by [`super::functions`].

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Dynamic, Engine};

use super::error::INTERRUPTED;
use super::limits::{MAX_ARRAY_ITEMS, MAX_MAP_ENTRIES, MAX_OPERATIONS, MAX_STRING_BYTES, RUNAWAY};
use super::scope::{HostOps, Level, TaskScope};
use crate::cancel::Cancel;

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

/// The engine for recipes in `dir`, stopped by `cancel`.
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

    super::functions::register(&mut engine);
    engine
}

#[cfg(test)]
mod tests {
    use rhai::EvalAltResult;

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
