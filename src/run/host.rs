//! One step on one host: the task's script, the ad-hoc command, or rigs' own work (history,
//! locks, a bundle), and how it ended, as a [`HostOutcome`].

use std::sync::Arc;
use std::time::Instant;

use rhai::{Dynamic, Map};

use super::host_runner::HostRunner;
use super::{Shared, Step, Work};
use crate::history::{Filter, HistoryEntry, HOST_FILE, LOCAL_FILE};
use crate::inventory::Host;
use crate::recipe::{
    value, CommandOptions, CommandResult, HostOps, Level, OpError, SudoOptions, TaskScope,
};
use crate::report::HostOutcome;
use crate::ship::{Delivery, ShipError};

pub struct StepResult {
    pub outcome: HostOutcome,
    /// The task's `note(...)`, for the summary.
    pub note: Option<String>,
    /// The version the host runs when the task ends (`record("running", …)`).
    pub running: Option<String>,
    /// The version the task was about (`record("version", …)`), for the summary.
    pub version: Option<String>,
}

impl StepResult {
    pub fn failed(error: String) -> Self {
        StepResult {
            outcome: HostOutcome::Failed {
                message: error,
                fault: None,
            },
            note: None,
            running: None,
            version: None,
        }
    }
}

/// Why a step's work ended early on a host, before the scheduler knows whether Ctrl-C was
/// pressed meanwhile.
struct Stop {
    /// One line: what went wrong.
    message: String,
    /// The full rendering, when there is more to tell (the recipe line, with a caret).
    detail: Option<String>,
    interrupted: bool,
}

impl Stop {
    fn failed(message: String) -> Stop {
        Stop {
            message,
            detail: None,
            interrupted: false,
        }
    }

    fn interrupted() -> Stop {
        Stop {
            message: "interrupted".into(),
            detail: None,
            interrupted: true,
        }
    }
}

impl From<OpError> for Stop {
    fn from(e: OpError) -> Stop {
        match e {
            OpError::Failed(message) => Stop::failed(message),
            OpError::Interrupted => Stop::interrupted(),
        }
    }
}

pub fn run_step(shared: &Arc<Shared>, step: &Arc<Step>, index: usize) -> StepResult {
    let host = &step.hosts[index];
    let reporter = &shared.reporter;
    let started = Instant::now();
    if shared.cancel.is_cancelled() {
        return StepResult {
            outcome: HostOutcome::Skipped(Some("not started: interrupted".into())),
            note: None,
            running: None,
            version: None,
        };
    }
    reporter.task_start(&host.name, &step.label);
    let ops = Arc::new(HostRunner::new(
        shared,
        host,
        &step.label,
        Some(step.clone()),
    ));

    let scope = TaskScope {
        host: host_value(host),
        env: env_value(step),
        vars: value::table(&host.vars).into(),
        ops: ops.clone(),
        once: shared.once.clone(),
        ships: shared.ships.clone(),
    };
    let result: Result<(), Stop> = match &step.work {
        Work::History(filter) => history_work(shared, &ops, filter),
        Work::Lock(action) => lock_work(ops.as_ref(), *action),
        Work::Check => check_work(shared, ops.as_ref(), host),
        Work::BundleLoad(path) => {
            match Delivery::new(&scope, &shared.ships).bundle(path, &Default::default()) {
                Ok(_) => Ok(()),
                Err(ShipError::Failed(m)) => Err(Stop::failed(m)),
                Err(ShipError::Interrupted) => Err(Stop::interrupted()),
            }
        }
        Work::Task { task, args } => {
            shared
                .recipes
                .call(task, args.clone(), scope)
                .map_err(|f| Stop {
                    message: f.message,
                    detail: Some(f.detail),
                    interrupted: f.interrupted,
                })
        }
        Work::Command(command) => match ops.command(
            command,
            &CommandOptions {
                sudo: shared.settings.sudo_adhoc.then(SudoOptions::default),
                ..CommandOptions::default()
            },
            false,
        ) {
            Ok(r) if r.ok() => Ok(()),
            Ok(r) => Err(Stop::failed(format!(
                "`{command}` exited with code {}",
                r.code
            ))),
            Err(e) => Err(e.into()),
        },
    };
    let took = started.elapsed();
    let (outcome, detail) = match result {
        Ok(()) => (HostOutcome::Ok, None),
        Err(stop) => {
            let message = shared.masker.mask(&stop.message).into_owned();
            let outcome = if stop.interrupted || shared.cancel.is_cancelled() {
                HostOutcome::Interrupted(message)
            } else {
                HostOutcome::Failed {
                    message,
                    fault: ops.fault(),
                }
            };
            (outcome, stop.detail)
        }
    };
    reporter.task_end(
        &host.name,
        &step.label,
        outcome.status(),
        outcome.error(),
        detail.as_deref(),
        took,
    );
    let note = ops.take_note();
    let text = |v: serde_json::Value| match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    };
    let running = ops
        .recorded("running")
        .and_then(|v| v.as_str().map(str::to_string));
    // What the host runs now, when the task says; else the version it was about.
    let version = running
        .clone()
        .or_else(|| ops.recorded("version").and_then(text));
    if !shared.settings.dry_run {
        let entry = history_entry(step, host, &outcome, took, note.as_deref(), ops.as_ref());
        if let Some(entry) = entry {
            append_history(shared, ops.as_ref(), &entry, !outcome.connection_gone());
        }
    }
    StepResult {
        outcome,
        note: note.map(|n| shared.masker.mask(&n).into_owned()),
        running,
        version: version.map(|v| shared.masker.mask(&v).into_owned()),
    }
}

/// The history line of one task run; `None` for work that leaves none (reading the history,
/// locks).
fn history_entry(
    step: &Step,
    host: &Host,
    outcome: &HostOutcome,
    took: std::time::Duration,
    note: Option<&str>,
    ops: &HostRunner,
) -> Option<HistoryEntry> {
    let (task, args, lock) = match &step.work {
        Work::Task { task, args } => (
            task.name.clone(),
            args.iter().map(|a| a.to_string()).collect(),
            task.locks(),
        ),
        Work::Command(command) => ("--".to_string(), vec![command.clone()], false),
        Work::BundleLoad(path) => (
            "bundle load".to_string(),
            vec![path.display().to_string()],
            false,
        ),
        Work::History(_) | Work::Lock(_) | Work::Check => return None,
    };
    Some(HistoryEntry {
        time: crate::time::now(),
        user: crate::history::user(),
        controller: crate::history::controller(),
        env: step.env.clone(),
        host: host.name.clone(),
        task,
        args,
        label: step.label.clone(),
        lock,
        result: outcome.status().as_str().to_string(),
        error: outcome.error().map(str::to_string),
        duration_ms: took.as_millis() as u64,
        note: note.map(str::to_string),
        records: ops.take_records(),
    })
}

/// Appends `entry` to the host's history (while its connection works) and to the controller's.
/// Its values are masked like all output, each before the line is serialised (JSON escapes a
/// secret holding `"`, `\` or a control character, and the escaped text no longer matches it),
/// so a secret passed as an argument or recorded never reaches either file. Failures to write
/// are warnings: a full disk must not turn a good deploy into a failed one.
fn append_history(shared: &Shared, ops: &HostRunner, entry: &HistoryEntry, reachable: bool) {
    let mut json = entry.to_json();
    shared.masker.mask_json(&mut json);
    let line = format!("{json}\n");
    if reachable {
        let options = CommandOptions {
            display: Some(format!("(append to {HOST_FILE})")),
            stdin: Some(line.clone()),
            ..CommandOptions::bookkeeping()
        };
        let command = crate::history::append_command(line.len());
        if let Ok(r) = ops.command(&command, &options, false) {
            if !r.ok() {
                ops.message(
                    Level::Warn,
                    &format!(
                        "could not append to the host's history: {}",
                        r.stderr.lines().last().unwrap_or("")
                    ),
                );
            }
        }
    }
    if let Err(e) = crate::history::append_local(&line) {
        ops.message(
            Level::Warn,
            &format!("could not append to {LOCAL_FILE}: {e}"),
        );
    }
}

/// Lines of each host's history that `rigs env:NAME history` reads, of every environment and
/// task, for the filter to pick from...
const HISTORY_READ: usize = 2000;
/// ...and how many of those it shows per host.
const HISTORY_LINES: usize = 50;

/// `rigs env:NAME history`: the host's recent lines that `filter` keeps, gathered for the table.
fn history_work(shared: &Shared, ops: &HostRunner, filter: &Filter) -> Result<(), Stop> {
    let mut entries: Vec<_> = ops
        .read_history(HISTORY_READ, &super::host_runner::query())?
        .into_iter()
        .filter(|entry| filter.keeps(entry))
        .collect();
    entries.drain(..entries.len().saturating_sub(HISTORY_LINES));
    shared
        .history_rows
        .lock()
        .expect("history rows")
        .extend(entries);
    Ok(())
}

/// `check` on one host: its answers for the table, its note, and a failure listing what to do
/// when it is not ready.
fn check_work(shared: &Shared, ops: &HostRunner, host: &Host) -> Result<(), Stop> {
    use super::{check, lock};
    let flag = |key: &str| {
        host.vars
            .get(key)
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    let expect = check::Expect {
        host: &host.name,
        registry: check::registry_of(&host.vars),
        airgapped: flag("airgapped"),
        compose: host.vars.contains_key("compose"),
        sudo: shared.settings.sudo_adhoc || shared.settings.sudo_password.is_some(),
    };
    let repository = host.vars.get("image").and_then(|v| v.as_str());
    let probe = check::probe(
        expect.registry.as_deref().filter(|_| !expect.airgapped),
        repository,
    );
    let before = check::now();
    let r = ops.command(&probe, &super::host_runner::query(), false)?;
    let midpoint = (before + check::now()) / 2.0;
    let held = ops.command(
        &lock::status_command(),
        &CommandOptions::bookkeeping(),
        false,
    )?;
    let holder = lock::Status::parse(&held.stdout)
        .holder
        .map(|info| lock::describe(&info));
    let compose = check::compose_part(&r.stdout);
    let readiness = check::judge(&expect, &r.stdout, (0, &compose), midpoint, holder);
    ops.note(&check::note(&readiness));
    let problems = readiness.problems.clone();
    shared
        .check_rows
        .lock()
        .expect("check rows")
        .push(readiness);
    match problems.as_slice() {
        [] => Ok(()),
        [one] => Err(Stop::failed(format!("not ready: {one}"))),
        many => Err(Stop::failed(format!(
            "not ready ({} problems): {}",
            many.len(),
            many.join("; ")
        ))),
    }
}

/// `lock:status` and `lock:release` on one host.
fn lock_work(ops: &HostRunner, action: super::LockAction) -> Result<(), Stop> {
    use super::{lock, LockAction};
    let command = match action {
        LockAction::Status => lock::status_command(),
        LockAction::Release => lock::force_release_command(),
    };
    let r = ops.command(&command, &CommandOptions::bookkeeping(), false)?;
    if !r.ok() {
        return Err(Stop::failed(format!(
            "cannot read the lock in ~/.rigs/lock: {}",
            r.stderr.lines().last().unwrap_or("")
        )));
    }
    let status = lock::Status::parse(&r.stdout);
    let (text, note) = match (action, &status.holder) {
        (_, None) => ("not locked".to_string(), "unlocked"),
        (LockAction::Status, Some(info)) => {
            (format!("locked by {}", lock::describe(info)), "locked")
        }
        (LockAction::Release, Some(info)) => (
            format!("released the lock held by {}", lock::describe(info)),
            "released",
        ),
    };
    ops.message(Level::Info, &text);
    for (name, info) in &status.old {
        let holder = lock::describe(info);
        match action {
            LockAction::Status => ops.message(
                Level::Warn,
                &format!(
                    "an old per-environment lock is left in ~/.rigs/locks/{name} (held by \
                     {holder}); rigs no longer honours it, and lock:release removes it"
                ),
            ),
            LockAction::Release => ops.message(
                Level::Info,
                &format!("removed the old per-environment lock ~/.rigs/locks/{name}"),
            ),
        }
    }
    ops.note(note);
    Ok(())
}

/// Runs one quiet bookkeeping command on `host` outside any task (locks), through the same
/// connection and reporting as task commands.
pub(super) fn bookkeeping(
    shared: &Arc<Shared>,
    host: &Host,
    label: &str,
    command: &str,
) -> Result<CommandResult, OpError> {
    HostRunner::new(shared, host, label, None).command(
        command,
        &CommandOptions::bookkeeping(),
        false,
    )
}

fn host_value(host: &Host) -> Dynamic {
    let mut m = Map::new();
    m.insert("name".into(), host.name.clone().into());
    m.insert("address".into(), host.endpoint.address.clone().into());
    m.insert("port".into(), (host.endpoint.port as rhai::INT).into());
    m.insert("user".into(), host.endpoint.user.clone().into());
    m.insert(
        "roles".into(),
        host.roles
            .iter()
            .map(|r| Dynamic::from(r.clone()))
            .collect::<rhai::Array>()
            .into(),
    );
    m.insert("vars".into(), value::table(&host.host_vars).into());
    m.into()
}

fn env_value(step: &Step) -> Dynamic {
    let mut m = Map::new();
    m.insert(
        "name".into(),
        step.env.clone().map_or(Dynamic::UNIT, Dynamic::from),
    );
    m.insert("vars".into(), step.env_vars.clone().into());
    m.into()
}

/// Counts a host as running its step until dropped.
pub(super) struct Running(Arc<std::sync::atomic::AtomicUsize>);

impl Running {
    pub(super) fn enter(count: &Arc<std::sync::atomic::AtomicUsize>) -> Running {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Running(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
