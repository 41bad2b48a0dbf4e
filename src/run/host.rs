//! One step on one host: the task's script, or the ad-hoc command, and the [`HostOps`] that
//! scripts call to reach the host.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rhai::{Dynamic, Map};

use super::lines::{trim_final_newline, LineSplitter};
use super::{local, Shared, Step, Work};
use crate::inventory::{Connection, Host};
use crate::recipe::{
    value, CommandOptions, CommandResult, HostOps, Level, OpError, SudoOptions, TaskScope,
};
use crate::report::{HostStatus, StreamKind};
use crate::secret::Secret;
use crate::ssh::{markers, ExecInput, ExecOutcome, SshError, Stdin, Stream};

pub struct StepResult {
    pub status: HostStatus,
    pub error: Option<String>,
    /// The task's `note(...)`, for the summary.
    pub note: Option<String>,
    /// The version the host runs when the task ends (`record("running", …)`).
    pub running: Option<String>,
    /// The version the task was about (`record("version", …)`), for the summary.
    pub version: Option<String>,
}

/// How long bookkeeping after a task may take on a host (history, locks).
const CLEANUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl StepResult {
    pub fn failed(error: String) -> Self {
        StepResult {
            status: HostStatus::Failed,
            error: Some(error),
            note: None,
            running: None,
            version: None,
        }
    }
}

pub fn run_step(shared: &Arc<Shared>, step: &Arc<Step>, index: usize) -> StepResult {
    let host = &step.hosts[index];
    let reporter = &shared.reporter;
    let started = Instant::now();
    if shared.cancel.is_cancelled() {
        return StepResult {
            status: HostStatus::Skipped,
            error: Some("not started: interrupted".into()),
            note: None,
            running: None,
            version: None,
        };
    }
    reporter.task_start(&host.name, &step.label);
    let ops = Arc::new(HostRunner {
        shared: shared.clone(),
        host: host.clone(),
        label: step.label.clone(),
        running: step.running.clone(),
        note: Mutex::new(None),
        records: Mutex::new(serde_json::Map::new()),
        step: Some(step.clone()),
    });

    let scope = TaskScope {
        host: host_value(host),
        env: env_value(step),
        vars: value::table(&host.vars).into(),
        ops: ops.clone(),
        once: shared.once.clone(),
        ships: shared.ships.clone(),
    };
    let outcome: Result<(), (String, Option<String>, bool)> = match &step.work {
        Work::History(filter) => match ops.command(
            &crate::history::read_command(HISTORY_READ),
            &CommandOptions {
                quiet: true,
                silent: true,
                allow_fail: true,
                ..CommandOptions::default()
            },
            false,
        ) {
            Ok(r) => {
                // A shared home folder holds other hosts' lines too.
                let mut rows: Vec<_> = crate::history::parse(&r.stdout)
                    .into_iter()
                    .filter(|row| row["host"].as_str() == Some(host.name.as_str()))
                    .filter(|row| filter.keeps(row))
                    .collect();
                rows.drain(..rows.len().saturating_sub(HISTORY_LINES));
                shared
                    .history_rows
                    .lock()
                    .expect("history rows")
                    .extend(rows);
                Ok(())
            }
            Err(e) => Err(failure(e)),
        },
        Work::Lock(action) => lock_work(ops.as_ref(), *action),
        Work::BundleLoad(path) => {
            match crate::recipe::ship::ship_bundle(&scope, path, &Default::default()) {
                Ok(_) => Ok(()),
                Err(crate::recipe::ship::Fail::Message(m)) => Err((m, None, false)),
                Err(crate::recipe::ship::Fail::Interrupted) => {
                    Err(("interrupted".into(), None, true))
                }
            }
        }
        Work::Task { task, args } => shared
            .recipes
            .call(task, args.clone(), scope)
            .map_err(|f| (f.message, Some(f.detail), f.interrupted)),
        Work::Command(command) => match ops.command(
            command,
            &CommandOptions {
                sudo: shared.settings.sudo_adhoc.then(SudoOptions::default),
                ..CommandOptions::default()
            },
            false,
        ) {
            Ok(r) if r.ok() => Ok(()),
            Ok(r) => Err((
                format!("`{command}` exited with code {}", r.code),
                None,
                false,
            )),
            Err(e) => Err(failure(e)),
        },
    };
    let took = started.elapsed();
    let (status, error, detail) = match outcome {
        Ok(()) => (HostStatus::Ok, None, None),
        Err((message, detail, interrupted)) => {
            let status = if interrupted || shared.cancel.is_cancelled() {
                HostStatus::Interrupted
            } else {
                HostStatus::Failed
            };
            (status, Some(message), detail)
        }
    };
    let masked_error = error.as_deref().map(|e| shared.masker.mask(e).into_owned());
    reporter.task_end(
        &host.name,
        &step.label,
        status,
        masked_error.as_deref(),
        detail.as_deref(),
        took,
    );
    let note = ops.note.lock().expect("note lock").clone();
    let (running, version) = {
        let records = ops.records.lock().expect("records lock");
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        let running = records
            .get("running")
            .and_then(|v| v.as_str().map(str::to_string));
        // What the host runs now, when the task says; else the version it was about.
        let version = running
            .clone()
            .or_else(|| records.get("version").and_then(text));
        (running, version)
    };
    if !shared.settings.dry_run {
        let records = std::mem::take(&mut *ops.records.lock().expect("records lock"));
        super::history::append(
            shared,
            ops.as_ref(),
            step,
            host,
            super::history::Outcome {
                status,
                error: masked_error.as_deref(),
                took,
                note: note.as_deref(),
                records,
            },
        );
    }
    StepResult {
        status,
        error: masked_error,
        note: note.map(|n| shared.masker.mask(&n).into_owned()),
        running,
        version: version.map(|v| shared.masker.mask(&v).into_owned()),
    }
}

/// Lines of each host's history that `history(#{ all_hosts: true })` reads.
const HOST_HISTORY_LINES: usize = 500;

/// Lines of each host's history that `rigs env:NAME history` reads, of every environment and
/// task, for the filter to pick from...
const HISTORY_READ: usize = 2000;
/// ...and how many of those it shows per host.
const HISTORY_LINES: usize = 50;

type WorkResult = Result<(), (String, Option<String>, bool)>;

/// `lock:status` and `lock:release` on one host.
fn lock_work(ops: &HostRunner, action: super::LockAction) -> WorkResult {
    use super::{lock, LockAction};
    let command = match action {
        LockAction::Status => lock::status_command(),
        LockAction::Release => lock::force_release_command(),
    };
    let r = ops
        .command(&command, &CommandOptions::bookkeeping(), false)
        .map_err(failure)?;
    if !r.ok() {
        return Err((
            format!(
                "cannot read the lock in ~/.rigs/lock: {}",
                r.stderr.lines().last().unwrap_or("")
            ),
            None,
            false,
        ));
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
    let ops = HostRunner {
        shared: shared.clone(),
        host: host.clone(),
        label: label.to_string(),
        running: Default::default(),
        note: Mutex::new(None),
        records: Mutex::new(serde_json::Map::new()),
        step: None,
    };
    ops.command(command, &CommandOptions::bookkeeping(), false)
}

/// A host operation's failure as a step's outcome: message, detail, interrupted.
fn failure(e: OpError) -> (String, Option<String>, bool) {
    match e {
        OpError::Failed(m) => (m, None, false),
        OpError::Interrupted => ("interrupted".into(), None, true),
    }
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

struct HostRunner {
    shared: Arc<Shared>,
    host: Host,
    label: String,
    running: Arc<std::sync::atomic::AtomicUsize>,
    note: Mutex<Option<String>>,
    records: Mutex<serde_json::Map<String, serde_json::Value>>,
    /// The step this host runs, for what reaches across its hosts (`history(#{ all_hosts })`).
    step: Option<Arc<Step>>,
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

impl HostOps for HostRunner {
    fn command(
        &self,
        command: &str,
        options: &CommandOptions,
        local: bool,
    ) -> Result<CommandResult, OpError> {
        let shared = &self.shared;
        let name = &self.host.name;
        let on_controller = local || self.host.connection == Connection::Local;
        let sudo = options
            .sudo
            .as_ref()
            .map(|s| sudo_line(command, s.user.as_deref(), on_controller));
        let shown = match (&options.sudo, &sudo) {
            (Some(s), Some(_)) => match &s.user {
                Some(u) => format!("sudo -u {} {command}", crate::quote::quote(u)),
                None => format!("sudo {command}"),
            },
            _ => options
                .display
                .clone()
                .unwrap_or_else(|| command.to_string()),
        };
        // Bookkeeping (history, locks), queries and polling are not the task's work.
        shared.reporter.command(
            name,
            &self.label,
            &shown,
            local,
            shared.settings.dry_run,
            options.cleanup || options.silent,
        );
        if shared.settings.dry_run {
            return Ok(CommandResult::default());
        }
        let timeout = if options.cleanup {
            Some(options.timeout.unwrap_or(CLEANUP_TIMEOUT))
        } else {
            options.timeout.or(shared.settings.command_timeout)
        };
        let cancel = if options.cleanup {
            &shared.never
        } else {
            &shared.cancel
        };
        let stdin = match (&options.stdin_stream, &options.stdin_file, &options.stdin) {
            (Some(stream), _, _) => Stdin::Stream(stream),
            (None, Some(path), _) => Stdin::File(path),
            (None, None, Some(text)) => Stdin::Bytes(text.as_bytes()),
            (None, None, None) => Stdin::Empty,
        };

        let splitters = Mutex::new((LineSplitter::default(), LineSplitter::default()));
        let reporter = shared.reporter.clone();
        let quiet = options.quiet || (options.chatter && !shared.reporter.shows_verbose_output());
        let mut sink =
            match &options.stdout_file {
                Some(path) => Some(FileSink::create(path).map_err(|e| {
                    OpError::Failed(format!("cannot write {}: {e}", path.display()))
                })?),
                None => None,
            };
        let mut on_output = |stream: Stream, chunk: &[u8]| {
            if let (Stream::Stdout, Some(sink)) = (stream, sink.as_mut()) {
                sink.write(chunk);
                return;
            }
            let mut s = splitters.lock().expect("splitter lock");
            let (splitter, kind) = match stream {
                Stream::Stdout => (&mut s.0, StreamKind::Stdout),
                Stream::Stderr => (&mut s.1, StreamKind::Stderr),
            };
            splitter.push(chunk, |line, cut| {
                if !quiet {
                    reporter.output(name, kind, line, cut);
                }
            });
        };

        let outcome: Result<ExecOutcome, OpError> = if on_controller {
            shared
                .runtime
                .block_on(local::exec(
                    sudo.as_deref().unwrap_or(command),
                    stdin,
                    timeout,
                    cancel,
                    &mut on_output,
                ))
                .map_err(|e| match e {
                    local::LocalError::Spawn(e) => {
                        OpError::Failed(format!("cannot run `{command}` locally: {e}"))
                    }
                    local::LocalError::Timeout(after) => OpError::Failed(
                        SshError::CommandTimeout {
                            command: command.to_string(),
                            after,
                        }
                        .to_string(),
                    ),
                    local::LocalError::Interrupted => OpError::Interrupted,
                    local::LocalError::Abandoned => {
                        OpError::Failed(format!("rigs stopped `{command}`: it took no more input"))
                    }
                })
        } else {
            let session = shared.connection(&self.host)?;
            shared
                .runtime
                .block_on(
                    session.exec(
                        &shown,
                        ExecInput {
                            // What is shown may be a summary; this is what runs.
                            wrapped: sudo.as_deref().or(Some(command)),
                            stdin,
                            sudo: sudo.is_some(),
                            // Only a command rigs itself runs through sudo may ever see
                            // the password.
                            sudo_password: shared
                                .settings
                                .sudo_password
                                .as_ref()
                                .filter(|_| sudo.is_some())
                                .map(|p| p.expose().as_bytes()),
                        },
                        timeout,
                        cancel,
                        on_output,
                    ),
                )
                .map_err(|e| match e {
                    SshError::Interrupted => OpError::Interrupted,
                    other => OpError::Failed(other.to_string()),
                })
        };

        let (out, err) = splitters.into_inner().expect("splitter lock");
        let emit = |kind: StreamKind| {
            let reporter = shared.reporter.clone();
            move |line: &str, cut: bool| {
                if !quiet {
                    reporter.output(name, kind, line, cut);
                }
            }
        };
        let (stdout, _) = out.finish(emit(StreamKind::Stdout));
        let (stderr, _) = err.finish(emit(StreamKind::Stderr));
        let outcome = outcome?;
        let received = match sink {
            Some(sink) => Some(
                sink.finish()
                    .map_err(|e| OpError::Failed(format!("cannot write the received file: {e}")))?,
            ),
            None => None,
        };
        Ok(CommandResult {
            stdout: trim_final_newline(stdout),
            stderr: trim_final_newline(stderr),
            code: outcome.code.map_or(-1, i64::from),
            sent: outcome.sent,
            received,
        })
    }

    fn message(&self, level: Level, text: &str) {
        let reporter = &self.shared.reporter;
        match level {
            Level::Verbose => reporter.verbose(&self.host.name, text),
            _ => reporter.message(Some(&self.host.name), level == Level::Warn, text),
        }
    }

    fn dry_run(&self) -> bool {
        self.shared.settings.dry_run
    }

    fn cancelled(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    fn note(&self, text: &str) {
        *self.note.lock().expect("note lock") = Some(text.to_string());
    }

    fn step_history(&self) -> Result<Vec<serde_json::Value>, OpError> {
        let Some(step) = &self.step else {
            return Ok(Vec::new());
        };
        let command = crate::history::read_command(HOST_HISTORY_LINES);
        let mut rows = Vec::new();
        // A bounded number of hosts at once: each read holds a thread while it waits.
        for chunk in step.hosts.chunks(32) {
            let read: Vec<Vec<serde_json::Value>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|host| {
                        let command = &command;
                        s.spawn(move || {
                            bookkeeping(&self.shared, host, &self.label, command)
                                .map(|r| {
                                    crate::history::parse(&r.stdout)
                                        .into_iter()
                                        .filter(|row| {
                                            row["host"].as_str() == Some(host.name.as_str())
                                        })
                                        .collect()
                                })
                                .unwrap_or_default()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            rows.extend(read.into_iter().flatten());
            if self.shared.cancel.is_cancelled() {
                return Err(OpError::Interrupted);
            }
        }
        rows.sort_by(|a, b| {
            a["time"]
                .as_str()
                .unwrap_or("")
                .cmp(b["time"].as_str().unwrap_or(""))
        });
        Ok(rows)
    }

    fn record(&self, key: &str, value: serde_json::Value) {
        self.records
            .lock()
            .expect("records lock")
            .insert(key.to_string(), value);
    }

    fn recorded(&self, key: &str) -> Option<serde_json::Value> {
        self.records.lock().expect("records lock").get(key).cloned()
    }

    fn peers(&self) -> usize {
        self.running.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn progress(&self, what: &str, done: u64, total: Option<crate::report::Total>) {
        self.shared
            .reporter
            .progress(&self.host.name, &self.label, what, done, total);
    }

    fn transferred(&self, bytes: u64) {
        self.shared.reporter.transferred(&self.host.name, bytes);
    }

    fn secret(&self, name: &str) -> Option<Secret> {
        let secret = self.shared.secrets.get(name)?;
        self.shared.masker.add(&secret);
        Some(secret)
    }
}

/// The shell line that runs `command` through sudo. Remotely, sudo shows rigs' own prompt
/// (answered with the password on stdin, never on a command line) and the command announces
/// that it got through, which is when its own stdin starts to flow. On the controller there is
/// nobody to answer a prompt, so sudo must not ask (`-n`).
fn sudo_line(command: &str, user: Option<&str>, on_controller: bool) -> String {
    let mut line = String::from("sudo ");
    if on_controller {
        line.push_str("-n ");
    } else {
        line.push_str(&format!(
            "-S -p {} ",
            crate::quote::quote(markers::SUDO_PROMPT)
        ));
    }
    if let Some(u) = user {
        line.push_str(&format!("-u {} ", crate::quote::quote(u)));
    }
    let inner = if on_controller {
        command.to_string()
    } else {
        format!("printf '\\036rigs-sudo-ok\\n' >&2; {command}")
    };
    line.push_str(&format!("-- sh -c {}", crate::quote::quote(&inner)));
    line
}

/// A local file that receives a command's stdout, hashed on the way.
struct FileSink {
    file: std::io::BufWriter<std::fs::File>,
    hasher: sha2::Sha256,
    bytes: u64,
    error: Option<std::io::Error>,
}

impl FileSink {
    fn create(path: &std::path::Path) -> std::io::Result<FileSink> {
        use sha2::Digest;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        // The name is new for every download (`get` adds a random part): something already
        // there was put there by someone else, maybe a symlink to a file to overwrite.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(FileSink {
            file: std::io::BufWriter::with_capacity(256 * 1024, file),
            hasher: sha2::Sha256::new(),
            bytes: 0,
            error: None,
        })
    }

    fn write(&mut self, chunk: &[u8]) {
        use sha2::Digest;
        use std::io::Write;
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
        if self.error.is_none() {
            if let Err(e) = self.file.write_all(chunk) {
                self.error = Some(e);
            }
        }
    }

    fn finish(mut self) -> std::io::Result<(u64, String)> {
        use sha2::Digest;
        use std::io::Write;
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        Ok((self.bytes, crate::ssh::hex(&self.hasher.finalize())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_never_writes_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep\n").unwrap();
        let part = dir.path().join("out.rigs-part-1");
        std::os::unix::fs::symlink(&victim, &part).unwrap();
        assert!(FileSink::create(&part).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
        assert!(FileSink::create(&dir.path().join("fresh/out.rigs-part-2")).is_ok());
    }
}
