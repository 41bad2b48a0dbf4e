//! The deployment history: who ran what, where, when, and how it ended.
//!
//! Every task run on a host appends one JSON line to `~/.rigs/history.jsonl` on that host and
//! to `.rigs/history.jsonl` in the controller's project folder. The host's copy is what the next
//! person sees, whichever machine they deploy from, and what `rollback` reads to find the last
//! good version; the controller's copy survives hosts that are rebuilt. Lines are only ever
//! appended, each in one write(2) on a file opened for appending (`dd oflag=append` on the host),
//! so concurrent runs cannot corrupt each other's lines, however long they are. Values
//! are masked like all output, each before the line is serialised: a secret passed as an
//! argument or recorded never reaches either file.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{Shared, Step, Work};
use crate::history::{controller, user, HOST_FILE, LOCAL_FILE};
use crate::inventory::Host;
use crate::recipe::{CommandOptions, HostOps};
use crate::report::HostStatus;

/// Serialises appends to the controller's file between hosts of one run.
static LOCAL: Mutex<()> = Mutex::new(());

/// How one task ended on one host.
pub struct Outcome<'a> {
    pub status: HostStatus,
    pub error: Option<&'a str>,
    pub took: Duration,
    pub note: Option<&'a str>,
    /// Fields the task recorded with `record(...)`.
    pub records: Map<String, Value>,
}

/// The line for one task run, masked.
fn line(shared: &Arc<Shared>, step: &Step, host: &Host, outcome: &Outcome) -> Option<String> {
    let (task, args) = match &step.work {
        Work::Task { task, args } => (
            task.name.clone(),
            args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        ),
        Work::Command(command) => ("--".to_string(), vec![command.clone()]),
        Work::BundleLoad(path) => ("bundle load".to_string(), vec![path.display().to_string()]),
        Work::History(_) | Work::Lock(_) => return None,
    };
    let mut entry = Map::new();
    entry.insert("time".into(), crate::time::now().into());
    entry.insert("user".into(), user().into());
    entry.insert("controller".into(), controller().into());
    entry.insert("env".into(), step.env.clone().into());
    entry.insert("host".into(), host.name.clone().into());
    entry.insert("task".into(), task.into());
    entry.insert("args".into(), json!(args));
    entry.insert("label".into(), step.label.clone().into());
    if let Work::Task { task, .. } = &step.work {
        if task.locks() {
            // `rigs env:NAME history` lists the runs that held the lock as releases.
            entry.insert("lock".into(), true.into());
        }
    }
    entry.insert("result".into(), outcome.status.as_str().into());
    entry.insert("error".into(), outcome.error.into());
    entry.insert(
        "duration_ms".into(),
        (outcome.took.as_millis() as u64).into(),
    );
    if let Some(n) = outcome.note {
        entry.insert("note".into(), n.into());
    }
    for (k, v) in &outcome.records {
        entry.entry(k.clone()).or_insert_with(|| v.clone());
    }
    // Masked field by field before serialising: JSON escapes a secret holding `"`, `\` or a
    // control character, and the escaped text no longer matches the secret.
    let mut entry = Value::Object(entry);
    shared.masker.mask_json(&mut entry);
    Some(entry.to_string())
}

/// The host command that appends a `len`-byte record, read from stdin, to the host's history
/// in a single write(2) on an `O_APPEND` descriptor, so that runs appending at the same moment
/// cannot interleave their lines. A shell's `printf ... >> file` does not promise that: dash
/// writes the text and its newline apart, bash writes long lines in pieces. `dd` with one block
/// of exactly `len` bytes does (`iflag=fullblock` waits until stdin has delivered all of it);
/// GNU and BusyBox `dd` both know these flags.
fn host_append_command(len: usize) -> String {
    format!(
        "mkdir -p \"$HOME/.rigs\" && dd of={HOST_FILE} bs={len} count=1 iflag=fullblock \
         oflag=append conv=notrunc status=none"
    )
}

/// Appends the run's line on the host and on the controller. Failures to write are reported
/// as warnings: a full disk must not turn a good deploy into a failed one.
pub(crate) fn append(
    shared: &Arc<Shared>,
    ops: &dyn HostOps,
    step: &Step,
    host: &Host,
    outcome: Outcome,
) {
    let Some(text) = line(shared, step, host, &outcome) else {
        return;
    };
    let record = format!("{text}\n");
    let options = CommandOptions {
        display: Some(format!("(append to {HOST_FILE})")),
        stdin: Some(record.clone()),
        ..CommandOptions::bookkeeping()
    };
    let command = host_append_command(record.len());
    let lost = matches!(outcome.status, HostStatus::Failed | HostStatus::Interrupted)
        && outcome
            .error
            .is_some_and(|e| e.contains("connection") || e.contains("connect"));
    if !lost {
        match ops.command(&command, &options, false) {
            Ok(r) if r.ok() => {}
            Ok(r) => ops.message(
                crate::recipe::Level::Warn,
                &format!(
                    "could not append to the host's history: {}",
                    r.stderr.lines().last().unwrap_or("")
                ),
            ),
            Err(_) => {}
        }
    }
    let _guard = LOCAL.lock().expect("history lock");
    let written = std::fs::create_dir_all(".rigs").and_then(|_| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(LOCAL_FILE)?;
        // One buffer, so one write(2) for the whole line: other rigs runs append too.
        f.write_all(record.as_bytes())
    });
    if let Err(e) = written {
        ops.message(
            crate::recipe::Level::Warn,
            &format!("could not append to {LOCAL_FILE}: {e}"),
        );
    }
}
