//! One call of a `docker::` function: the docker lines it runs and how it fails.
//!
//! Every `docker::` function composes `docker ...` lines with each argument quoted by the one
//! quoting helper and runs them on the task's host like `run` does. What the output shows follows
//! what a person needs ([`Shown`]): a deploy runs a dozen read-only queries for each command that
//! changes something, and docker prints container IDs and progress that nobody reads, so queries
//! and that chatter show with `-v` only, while every change shows its command line. The call's
//! `sudo` option reaches every line it runs, and its `allow_fail` option turns a failing line
//! into a result instead of the host's failure (see [`DockerCall::failed`]).

use std::cell::Cell;

use rhai::{Array, Dynamic, EvalAltResult, NativeCallContext};
use serde_json::Value;

use super::scope::{CommandOptions, CommandResult, SudoOptions, TaskScope};
use super::spec::{FunctionSpec, Options};
use super::toolkit::{fail, op_error, task_scope, Fallible};
use crate::quote::quote;

/// How a `docker` line shows in the plain and pretty output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// A read-only query (`inspect`, `images`, `ps`): the line and its output with `-v` only.
    Query,
    /// A change: the line always, its output (container IDs, pull progress, `Untagged:` lines)
    /// with `-v` only. A failure still shows docker's message in the host's error.
    Change,
    /// A command whose output is what the user asked for (`docker logs`).
    Loud,
}

/// One call of a `docker::` function.
pub struct DockerCall<'a> {
    pub ctx: &'a NativeCallContext<'a>,
    pub spec: &'static FunctionSpec,
    sudo: Option<SudoOptions>,
    allow_fail: bool,
    /// A docker line failed and `allow_fail` let the call go on.
    failed: Cell<bool>,
}

impl<'a> DockerCall<'a> {
    pub fn new(
        ctx: &'a NativeCallContext<'a>,
        spec: &'static FunctionSpec,
        options: &Options,
    ) -> DockerCall<'a> {
        DockerCall {
            ctx,
            spec,
            sudo: options.flag("sudo").then(SudoOptions::default),
            allow_fail: options.flag("allow_fail"),
            failed: Cell::new(false),
        }
    }

    /// Whether a docker line failed under the call's `allow_fail`: the call's error then
    /// becomes its "did not work" value.
    pub fn failed(&self) -> bool {
        self.failed.get()
    }

    pub fn scope(&self) -> Fallible<TaskScope> {
        task_scope(self.ctx)
    }

    /// `docker::NAME: message`, pointing at the call.
    pub fn fail(&self, message: impl AsRef<str>) -> Box<EvalAltResult> {
        fail(self.ctx, self.spec, message)
    }

    /// Runs `docker ARGS...` on the host, shown as `shown` says; a failing exit becomes an
    /// error carrying docker's message unless `tolerated` (the caller judges it).
    pub fn run(
        &self,
        args: &[String],
        stdin: Option<String>,
        shown: Shown,
        tolerated: bool,
    ) -> Fallible<CommandResult> {
        let line = format!(
            "docker {}",
            args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
        );
        let options = CommandOptions {
            quiet: shown == Shown::Query,
            silent: shown == Shown::Query,
            chatter: shown == Shown::Change,
            allow_fail: true,
            stdin,
            sudo: self.sudo.clone(),
            ..CommandOptions::default()
        };
        let result = self
            .scope()?
            .ops
            .command(&line, &options, false)
            .map_err(|e| op_error(self.ctx, e))?;
        if !result.ok() && !tolerated {
            return Err(self.refused(args, &result));
        }
        Ok(result)
    }

    /// Runs shell line `line` on the host, shown as `shown` says (as `display` when given),
    /// through the call's `sudo` when `privileged`: for work that takes several commands in one
    /// round trip. Its exit is the caller's to judge.
    pub fn script(
        &self,
        line: &str,
        stdin: Option<String>,
        display: Option<String>,
        shown: Shown,
        privileged: bool,
    ) -> Fallible<CommandResult> {
        let options = CommandOptions {
            quiet: shown == Shown::Query,
            silent: shown == Shown::Query,
            chatter: shown == Shown::Change,
            allow_fail: true,
            stdin,
            display,
            sudo: if privileged { self.sudo.clone() } else { None },
            ..CommandOptions::default()
        };
        self.scope()?
            .ops
            .command(line, &options, false)
            .map_err(|e| op_error(self.ctx, e))
    }

    /// Whether commands are only shown (`--dry-run`).
    pub fn dry_run(&self) -> Fallible<bool> {
        Ok(self.scope()?.ops.dry_run())
    }

    /// The error for a script line that failed: what it was doing, and its last message.
    pub fn script_failed(&self, doing: &str, result: &CommandResult) -> Box<EvalAltResult> {
        let reason = last_line(&result.stderr);
        self.failure(format!("{doing} failed (exit {}): {reason}", result.code))
    }

    /// The call's failure with `message`: under `allow_fail`, the call's "did not work" value.
    pub fn failure(&self, message: impl AsRef<str>) -> Box<EvalAltResult> {
        self.failed.set(self.allow_fail);
        self.fail(message)
    }

    /// The error for docker line `args` that exited with `result`: docker's own last line.
    pub fn refused(&self, args: &[String], result: &CommandResult) -> Box<EvalAltResult> {
        let line = format!(
            "docker {}",
            args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
        );
        let reason = last_line(&result.stderr);
        self.failure(format!("`{line}` failed (exit {}): {reason}", result.code))
    }

    /// One JSON object per line (docker's `--format '{{json .}}'`) as an array of maps.
    pub fn json_lines(&self, text: &str) -> Fallible<Array> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .map(super::value::from_json)
                    .map_err(|e| self.fail(format!("unexpected output from docker: {e}")))
            })
            .collect()
    }
}

/// The last line of a command's message that says something: what a failure reports.
pub fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no message)")
        .trim()
}

/// Owned strings of `values`, for an argument list.
pub fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

/// Runs `body` for one call of `spec` with `opts`: the options checked, and under `allow_fail`
/// a failing docker line gives `otherwise` instead of failing the host.
pub fn call(
    ctx: &NativeCallContext,
    spec: &'static FunctionSpec,
    opts: &rhai::Map,
    otherwise: Dynamic,
    body: impl FnOnce(&DockerCall, &Options) -> Fallible<Dynamic>,
) -> Fallible<Dynamic> {
    let options = super::toolkit::options(ctx, spec, opts)?;
    let d = DockerCall::new(ctx, spec, &options);
    match body(&d, &options) {
        Err(_) if d.failed() => Ok(otherwise),
        other => other,
    }
}
