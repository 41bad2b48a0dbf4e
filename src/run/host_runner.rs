//! [`HostRunner`]: the [`HostOps`] a step's script calls to reach its host, over the host's SSH
//! connection or, for `local(...)` and hosts with `connection = "local"`, on the controller.
//!
//! Besides each command's result, the runner keeps what broke under the last host operation that
//! failed (a [`Fault`]): a task fails through its script, which sees only the error's text, and
//! the step's outcome is put down to that fault, not guessed from the text.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::file_sink::FileSink;
use super::lines::{trim_final_newline, LineSplitter};
use super::{local, Shared, Step};
use crate::history::HistoryEntry;
use crate::inventory::{Connection, Host};
use crate::quote::quote;
use crate::recipe::{CommandOptions, CommandResult, HostOps, Level, OpError};
use crate::report::{Fault, StreamKind, Total};
use crate::secret::Secret;
use crate::ssh::{markers, ExecInput, ExecOutcome, SshError, Stdin, Stream};

/// How long bookkeeping after a task may take on a host (history, locks).
const CLEANUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Lines of a host's history that `history()` reads, and `history(#{ all_hosts: true })` of
/// each host.
const HISTORY_LINES: usize = 500;

/// One host's operations during one step.
pub(super) struct HostRunner {
    shared: Arc<Shared>,
    host: Host,
    label: String,
    /// The step this host runs, for what reaches across its hosts (`history(#{ all_hosts })`),
    /// and the count of its hosts running now.
    step: Option<Arc<Step>>,
    note: Mutex<Option<String>>,
    records: Mutex<Map<String, Value>>,
    /// What broke under the last host operation that failed; cleared by the next that worked.
    fault: Mutex<Option<Fault>>,
}

impl HostRunner {
    pub(super) fn new(
        shared: &Arc<Shared>,
        host: &Host,
        label: &str,
        step: Option<Arc<Step>>,
    ) -> HostRunner {
        HostRunner {
            shared: shared.clone(),
            host: host.clone(),
            label: label.to_string(),
            step,
            note: Mutex::new(None),
            records: Mutex::new(Map::new()),
            fault: Mutex::new(None),
        }
    }

    /// What broke under the last host operation that failed, if anything did and nothing
    /// worked since.
    pub(super) fn fault(&self) -> Option<Fault> {
        *self.fault.lock().expect("fault lock")
    }

    fn set_fault(&self, fault: Fault) {
        *self.fault.lock().expect("fault lock") = Some(fault);
    }

    /// The task's `note(...)`, if it gave one.
    pub(super) fn take_note(&self) -> Option<String> {
        self.note.lock().expect("note lock").clone()
    }

    /// The fields the task recorded, taken for its history line.
    pub(super) fn take_records(&self) -> Map<String, Value> {
        std::mem::take(&mut *self.records.lock().expect("records lock"))
    }

    /// The last `limit` lines of this host's history that are about it, oldest first.
    pub(super) fn read_history(
        &self,
        limit: usize,
        options: &CommandOptions,
    ) -> Result<Vec<HistoryEntry>, OpError> {
        let r = self.command(&crate::history::read_command(limit), options, false)?;
        Ok(crate::history::entries(&r.stdout, &self.host.name))
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
                Some(u) => format!("sudo -u {} {command}", quote(u)),
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
                    local::LocalError::Timeout(after) => {
                        self.set_fault(Fault::TimedOut);
                        OpError::Failed(
                            SshError::CommandTimeout {
                                command: command.to_string(),
                                after,
                            }
                            .to_string(),
                        )
                    }
                    local::LocalError::Interrupted => OpError::Interrupted,
                    local::LocalError::Abandoned => {
                        OpError::Failed(format!("rigs stopped `{command}`: it took no more input"))
                    }
                })
        } else {
            let session = shared.connection(&self.host).map_err(|e| {
                if shared.cancel.is_cancelled() {
                    return OpError::Interrupted;
                }
                if let Some(fault) = e.fault() {
                    self.set_fault(fault);
                }
                OpError::Failed(e.to_string())
            })?;
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
                .map_err(|e| {
                    if let Some(fault) = e.fault() {
                        self.set_fault(fault);
                    }
                    match e {
                        SshError::Interrupted => OpError::Interrupted,
                        other => OpError::Failed(other.to_string()),
                    }
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
        *self.fault.lock().expect("fault lock") = None;
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

    fn history(&self) -> Result<Vec<HistoryEntry>, OpError> {
        self.read_history(HISTORY_LINES, &query())
    }

    fn step_history(&self) -> Result<Vec<HistoryEntry>, OpError> {
        let Some(step) = &self.step else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        // A bounded number of hosts at once: each read holds a thread while it waits.
        for chunk in step.hosts.chunks(32) {
            let read: Vec<Vec<HistoryEntry>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|host| {
                        s.spawn(move || {
                            HostRunner::new(&self.shared, host, &self.label, None)
                                .read_history(HISTORY_LINES, &CommandOptions::bookkeeping())
                                .unwrap_or_default()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            entries.extend(read.into_iter().flatten());
            if self.shared.cancel.is_cancelled() {
                return Err(OpError::Interrupted);
            }
        }
        entries.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(entries)
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
        self.step
            .as_ref()
            .map_or(0, |step| step.running.load(Ordering::SeqCst))
    }

    fn progress(&self, what: &str, done: u64, total: Option<Total>) {
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
        line.push_str(&format!("-S -p {} ", quote(markers::SUDO_PROMPT)));
    }
    if let Some(u) = user {
        line.push_str(&format!("-u {} ", quote(u)));
    }
    let inner = if on_controller {
        command.to_string()
    } else {
        format!("{}{command}", markers::sudo_ok_report())
    };
    line.push_str(&format!("-- sh -c {}", quote(&inner)));
    line
}

/// A query the user need not see: quiet, shown only with `-v`, its exit judged by the caller.
pub(super) fn query() -> CommandOptions {
    CommandOptions {
        silent: true,
        ..CommandOptions::checking()
    }
}
