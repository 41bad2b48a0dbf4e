//! `docker::wait_healthy`: wait until a container on the task's host answers, from the host.
//!
//! A deploy is only done when the new container serves, so recipes need a wait that is honest
//! about what it waited for and quick to say why it gave up. The function is shaped by that:
//!
//! - **Probes run on the host, over the task's own SSH connection**, one shell line each through
//!   [`HostOps::command`](super::scope::HostOps::command) like every other `docker::` function.
//!   Apps usually listen on the host's loopback only, where the controller cannot reach them,
//!   and the dry-run and verbose output show the probe like any other command. Probes are quiet
//!   so a long wait does not flood the output; `-v` shows them, and one line for a passed check.
//!   A failure's first line carries what tells the cause (the crashed container's last log line,
//!   the HEALTHCHECK's last output): it is what the summary has room for.
//! - **The tools are looked up once per wait, where the probe runs** (on the host, or inside the
//!   container with `inside: true`): hosts differ (curl or only wget, GNU or busybox wget, an `nc`
//!   with or without `-z`, or only bash's `/dev/tcp`), and one probe line per tool keeps each
//!   probe short and its failure readable. Every value in those lines goes through the one
//!   quoting helper.
//! - **The container itself is checked before every probe.** A container that crashed or
//!   restarted will never become healthy, so the wait fails at once with its exit code and its
//!   last log lines instead of sitting out the timeout and then blaming the probe.
//! - **Every probe has its own time limit**, so one probe stuck on a silent server cannot outlast
//!   the whole wait; the wait sleeps in small steps so Ctrl-C stops it between probes.

use std::time::{Duration, Instant};

use rhai::{Map, Module, NativeCallContext};

use super::health_check::{
    failure, last_line, shown_secs, Check, Probe, State, Tools, Verdict, DETECT_TOOLS, WAIT_HEALTHY,
};
use super::scope::{CommandOptions, CommandResult, Level, OpError, SudoOptions, TaskScope};
use super::toolkit::{fail, op_error, task_scope, Fallible};
use crate::quote::quote;

const STATE_FORMAT: &str = "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}";
/// How many log lines a crashed container's error shows.
const LOG_LINES: u32 = 20;
/// How often a pause between probes looks for Ctrl-C.
const PAUSE_STEP: Duration = Duration::from_millis(50);

fn probes_word(n: u64) -> String {
    if n == 1 {
        "1 probe".to_string()
    } else {
        format!("{n} probes")
    }
}

/// One wait: the task's host, the container, and the calling position for errors.
struct Waiter<'a> {
    ctx: &'a NativeCallContext<'a>,
    scope: TaskScope,
    name: &'a str,
    sudo: Option<SudoOptions>,
}

impl Waiter<'_> {
    fn error(&self, message: impl AsRef<str>) -> Box<rhai::EvalAltResult> {
        fail(self.ctx, &WAIT_HEALTHY, message)
    }

    /// Runs one quiet line on the host; a failing exit is the caller's to judge.
    fn run(&self, line: &str, limit: Option<Duration>) -> Result<CommandResult, OpError> {
        let options = CommandOptions {
            // Probes repeat every interval: their lines show with -v only (a dry run shows one).
            silent: !self.scope.ops.dry_run(),
            timeout: limit,
            sudo: self.sudo.clone(),
            ..CommandOptions::checking()
        };
        self.scope.ops.command(line, &options, false)
    }

    fn run_or_fail(&self, line: &str) -> Fallible<CommandResult> {
        self.run(line, None).map_err(|e| op_error(self.ctx, e))
    }

    /// The container's state; a missing container is an error.
    fn state(&self) -> Fallible<State> {
        let line = format!(
            "docker container inspect --format {} -- {}",
            quote(STATE_FORMAT),
            quote(self.name)
        );
        let r = self.run_or_fail(&line)?;
        if !r.ok() {
            let reason = last_line(&r.stderr).unwrap_or("(no message)");
            if reason.contains("No such") {
                return Err(self.error(format!(
                    "there is no container `{}` on this host",
                    self.name
                )));
            }
            return Err(self.error(format!("`{line}` failed (exit {}): {reason}", r.code)));
        }
        State::parse(&r.stdout).ok_or_else(|| {
            self.error(format!(
                "unexpected answer from `{line}`: {}",
                r.stdout.trim()
            ))
        })
    }

    /// The container's last log lines, stdout and stderr in the order written.
    fn last_logs(&self) -> Fallible<String> {
        let line = format!(
            "docker logs --tail {} -- {} 2>&1",
            quote(&LOG_LINES.to_string()),
            quote(self.name)
        );
        Ok(self.run_or_fail(&line)?.stdout.trim_end().to_string())
    }

    /// The error for a container that stopped or restarted during the wait.
    fn gone(&self, state: &State, restarted: bool, probes: u64, started: Instant) -> String {
        let what = match state.status.as_str() {
            // A container that is running again has had its exit code reset to 0 by the engine.
            "running" if restarted => "exited and its restart policy started it again".to_string(),
            "exited" | "dead" => format!("exited with code {}", state.exit_code),
            "restarting" => format!(
                "exited with code {} and its restart policy is starting it again",
                state.exit_code
            ),
            "created" => "was created but is not started".to_string(),
            other => format!("is {other}"),
        };
        // The engine may report the exit before its log copier has written the last lines: a
        // crash that seems to have logged nothing is looked at again, briefly.
        let mut fetched = self.last_logs();
        for _ in 0..5 {
            if !matches!(&fetched, Ok(l) if l.trim().is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            fetched = self.last_logs();
        }
        // The first line carries the last log line: it is what a summary row has room for.
        let logs = match fetched {
            Ok(logs) => match last_line(&logs) {
                None => "; it logged nothing".to_string(),
                Some(last) if logs.trim().lines().count() == 1 => {
                    format!("; its last log line: {last}")
                }
                Some(last) => format!("; its last log line: {last}\nits last log lines:\n{logs}"),
            },
            Err(_) => String::new(),
        };
        format!(
            "container `{}` {what} while waiting for it to become healthy ({}, {:.1} s){logs}",
            self.name,
            probes_word(probes),
            started.elapsed().as_secs_f64()
        )
    }

    /// Docker's last health check output, for an unhealthy container.
    fn health_log(&self) -> Fallible<String> {
        let line = format!(
            "docker container inspect --format {} -- {}",
            quote("{{json .State.Health}}"),
            quote(self.name)
        );
        let r = self.run_or_fail(&line)?;
        let health: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap_or_default();
        let streak = health["FailingStreak"].as_i64().unwrap_or(0);
        let output = health["Log"]
            .as_array()
            .and_then(|log| log.last())
            .and_then(|entry| entry["Output"].as_str())
            .unwrap_or("")
            .trim()
            .to_string();
        let mut message = format!(
            "`{}` is unhealthy: its HEALTHCHECK failed {streak} times in a row",
            self.name
        );
        match last_line(&output) {
            Some(last) if output.lines().count() == 1 => {
                message.push_str(&format!("; its last output: {last}"))
            }
            Some(last) => {
                message.push_str(&format!("; its last output: {last}\nin full:\n{output}"))
            }
            None => {}
        }
        Ok(message)
    }

    /// Sleeps `d`, in small steps so Ctrl-C ends the wait.
    fn pause(&self, d: Duration) -> Fallible<()> {
        let until = Instant::now() + d;
        loop {
            if self.scope.ops.cancelled() {
                return Err(op_error(self.ctx, OpError::Interrupted));
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(PAUSE_STEP));
        }
    }

    /// Finds the probe tools on the host or in the container; `Err` says why it could not look.
    fn detect_tools(&self, inside: bool) -> Fallible<Result<Tools, String>> {
        let line = if inside {
            format!(
                "docker exec -- {} sh -c {}",
                quote(self.name),
                quote(DETECT_TOOLS)
            )
        } else {
            DETECT_TOOLS.to_string()
        };
        let r = self.run_or_fail(&line)?;
        Ok(if r.ok() {
            Ok(Tools::parse(&r.stdout))
        } else {
            Err(format!("cannot look for probe tools: {}", failure(&r)))
        })
    }

    fn wait(&self, check: &Check) -> Fallible<Map> {
        if self.scope.ops.dry_run() {
            let line = check
                .probe_line(self.name, &Tools::assumed(check.inside))
                .map_err(|m| self.error(m))?;
            self.run_or_fail(&line)?;
            return Ok(outcome(0, 0.0));
        }
        let started = Instant::now();
        let deadline = started + check.timeout;
        let mut first_restarts = None;
        let mut tools: Option<Tools> = None;
        let mut probes = 0u64;
        loop {
            if self.scope.ops.cancelled() {
                return Err(op_error(self.ctx, OpError::Interrupted));
            }
            let state = self.state()?;
            let restarted = state.restarts > *first_restarts.get_or_insert(state.restarts);
            if state.status != "running" || restarted {
                return Err(self.error(self.gone(&state, restarted, probes, started)));
            }
            probes += 1;
            let verdict = match self.probe(check, &mut tools, deadline)? {
                Ok(verdict) => verdict,
                Err(seen) => Verdict::NotYet(seen),
            };
            let last = match verdict {
                Verdict::Healthy => {
                    let secs = started.elapsed().as_secs_f64();
                    // Success is the expected case: -v tells how long it took.
                    self.scope.ops.message(
                        Level::Verbose,
                        &format!(
                            "{}: healthy after {} ({secs:.1} s)",
                            self.name,
                            probes_word(probes)
                        ),
                    );
                    return Ok(outcome(probes, secs));
                }
                Verdict::Unhealthy => {
                    // The engine marks a container that stops `unhealthy` (its HEALTHCHECK
                    // having failed 0 times): when it stopped since the look above, say so.
                    let state = self.state()?;
                    let restarted = first_restarts.is_some_and(|first| state.restarts > first);
                    if state.status != "running" || restarted {
                        return Err(self.error(self.gone(&state, restarted, probes, started)));
                    }
                    return Err(self.error(self.health_log()?));
                }
                Verdict::NoHealthcheck => {
                    return Err(self.error(format!(
                        "container `{}` has no HEALTHCHECK to wait for; give it one with \
                         docker::run's option `health_cmd` (e.g. #{{ health_cmd: \"wget -qO- \
                         http://127.0.0.1:8080/health\" }}) or a HEALTHCHECK in its image, or \
                         pass a check such as #{{ http: \"http://127.0.0.1:8080/health\" }}",
                        self.name
                    )))
                }
                Verdict::NotYet(seen) => seen,
            };
            let now = Instant::now();
            if check.retries.is_some_and(|r| probes >= r) {
                return Err(self.error(format!(
                    "`{}` was not healthy after {} ({:.1} s); last probe: {last}",
                    self.name,
                    probes_word(probes),
                    started.elapsed().as_secs_f64()
                )));
            }
            if now >= deadline {
                return Err(self.error(format!(
                    "`{}` was not healthy after {} s ({}); last probe: {last}",
                    self.name,
                    shown_secs(check.timeout_secs),
                    probes_word(probes)
                )));
            }
            self.pause(check.interval.min(deadline - now))?;
        }
    }

    /// Runs one probe. `Ok(Err(seen))`: the probe could not run or did not finish, which
    /// counts as not healthy yet; a check that can never run on this host is an error.
    fn probe(
        &self,
        check: &Check,
        tools: &mut Option<Tools>,
        deadline: Instant,
    ) -> Fallible<Result<Verdict, String>> {
        let found = match (&check.probe, *tools) {
            (Probe::Docker | Probe::Cmd(_), _) => Tools::default(),
            (_, Some(found)) => found,
            (_, None) => match self.detect_tools(check.inside)? {
                Ok(found) => *tools.insert(found),
                // Inside a container that is still starting, or stopping: the next round tells.
                Err(seen) => return Ok(Err(seen)),
            },
        };
        let line = check
            .probe_line(self.name, &found)
            .map_err(|m| self.error(m))?;
        let limit = check.probe_limit(deadline.saturating_duration_since(Instant::now()));
        let began = Instant::now();
        match self.run(&line, limit) {
            Ok(r) => Ok(Ok(check.judge(&r))),
            // The connection ended the probe at its limit (its own timeouts did not fire, or it
            // has none): the server took too long, which is a probe result, not a lost host.
            Err(OpError::Failed(_)) if limit.is_some_and(|l| began.elapsed() >= l) => {
                Ok(Err(format!(
                    "no answer within {:.0} s",
                    limit.unwrap_or_default().as_secs_f64()
                )))
            }
            Err(e) => Err(op_error(self.ctx, e)),
        }
    }
}

/// The map a successful wait returns.
fn outcome(probes: u64, secs: f64) -> Map {
    let mut m = Map::new();
    m.insert("healthy".into(), true.into());
    m.insert("probes".into(), (probes as rhai::INT).into());
    m.insert("seconds".into(), ((secs * 1000.0).round() / 1000.0).into());
    m
}

fn wait_healthy(ctx: &NativeCallContext, name: &str, check: &Map) -> Fallible<Map> {
    let check = Check::parse(check).map_err(|m| fail(ctx, &WAIT_HEALTHY, m))?;
    if name.trim().is_empty() {
        return Err(fail(ctx, &WAIT_HEALTHY, "the container name is empty"));
    }
    let waiter = Waiter {
        ctx,
        scope: task_scope(ctx)?,
        name,
        sudo: check.sudo.then(SudoOptions::default),
    };
    waiter.wait(&check)
}

/// The functions of this module, for `rigs -d` and the book.
pub static SPECS: &[&super::spec::FunctionSpec] = &[&WAIT_HEALTHY];

pub fn register(m: &mut Module) {
    m.set_native_fn("wait_healthy", |ctx: NativeCallContext, name: &str| {
        wait_healthy(&ctx, name, &Map::new())
    });
    m.set_native_fn(
        "wait_healthy",
        |ctx: NativeCallContext, name: &str, check: Map| wait_healthy(&ctx, name, &check),
    );
}
