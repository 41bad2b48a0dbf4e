//! What a running task can reach: its host's variables and the operations the scheduler provides.
//!
//! The recipe layer defines the [`HostOps`] trait and the scheduler implements it, so scripts stay
//! ignorant of SSH and the data flow stays one way (scheduler -> recipe -> back through the trait).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rhai::Dynamic;

use crate::secret::Secret;

/// How a command runs: output, failure, input and privileges.
#[derive(Clone, Default)]
pub struct CommandOptions {
    /// A non-zero exit does not fail the host.
    pub allow_fail: bool,
    /// Do not echo the command's output (it is still returned).
    pub quiet: bool,
    /// Do not show the command line either, except with `-v` (queries, polling probes).
    pub silent: bool,
    /// Show the command line but its output only with `-v`: the command changes something, and
    /// what it prints is chatter (container IDs, pull progress, `Untagged:` lines). A failure
    /// still reaches the user through the caller's error.
    pub chatter: bool,
    pub timeout: Option<Duration>,
    /// Fed to the command's standard input, then EOF.
    pub stdin: Option<String>,
    /// A file streamed to the command's standard input instead (file transfers).
    pub stdin_file: Option<std::path::PathBuf>,
    /// Buffers from another thread streamed to the command's standard input (image shipping).
    pub stdin_stream: Option<Arc<dyn crate::ssh::StdinStream>>,
    /// What the output shows instead of the command line (long generated scripts).
    pub display: Option<String>,
    /// Write the command's standard output to this file instead of showing it (file transfers).
    pub stdout_file: Option<std::path::PathBuf>,
    /// Run through sudo.
    pub sudo: Option<SudoOptions>,
    /// Bookkeeping that must run even after Ctrl-C (releasing locks, writing history): it is
    /// not interrupted, and is bounded by its own short timeout instead.
    pub cleanup: bool,
}

impl CommandOptions {
    /// A command whose output the caller reads and whose exit it judges itself: quiet, and a
    /// non-zero exit is not a failure.
    pub fn checking() -> CommandOptions {
        CommandOptions {
            quiet: true,
            allow_fail: true,
            ..CommandOptions::default()
        }
    }

    /// Bookkeeping around a task (history, locks): quiet, judged by the caller, not interrupted.
    pub fn bookkeeping() -> CommandOptions {
        CommandOptions {
            cleanup: true,
            ..CommandOptions::checking()
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SudoOptions {
    /// Run as this user instead of root.
    pub user: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CommandResult {
    pub stdout: String,
    pub stderr: String,
    /// Exit code; -1 when the command was killed by a signal.
    pub code: i64,
    /// Bytes and SHA-256 of what was written to its stdin (file transfers).
    pub sent: Option<(u64, String)>,
    /// Bytes and SHA-256 of what it wrote to `stdout_file`.
    pub received: Option<(u64, String)>,
}

impl CommandResult {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    /// A detail the plain and pretty views show with `-v` only (JSON always).
    Verbose,
}

/// Why an operation could not produce a [`CommandResult`].
#[derive(Debug, Clone)]
pub enum OpError {
    /// The host is unusable (connection refused, lost, timed out, ...).
    Failed(String),
    /// Ctrl-C.
    Interrupted,
}

/// Operations a task performs on its host, implemented by the scheduler.
pub trait HostOps: Send + Sync {
    /// Runs a shell command on the host (`local == false`) or on the controller.
    fn command(
        &self,
        command: &str,
        options: &CommandOptions,
        local: bool,
    ) -> Result<CommandResult, OpError>;
    fn message(&self, level: Level, text: &str);
    /// Looks a secret up and registers its value for masking.
    fn secret(&self, name: &str) -> Option<Secret>;
    /// Whether commands are only shown, not run (`--dry-run`): queries then return nothing.
    fn dry_run(&self) -> bool;
    /// Whether Ctrl-C was pressed.
    fn cancelled(&self) -> bool;
    /// Hosts of the current step still running, this one included.
    fn peers(&self) -> usize;
    /// A transfer's progress: bytes done of `total` (when known, or estimated).
    fn progress(&self, what: &str, done: u64, total: Option<crate::report::Total>);
    /// Bytes this host received from the controller, for the summary.
    fn transferred(&self, bytes: u64);
    /// A short note on this host's outcome for the summary (`note(...)`); the last one wins.
    fn note(&self, text: &str);
    /// This host's deployment history: the last lines of its file that are about it, oldest
    /// first (`history()`).
    fn history(&self) -> Result<Vec<crate::history::HistoryEntry>, OpError>;
    /// The history of every host of the current step, oldest first
    /// (`history(#{ all_hosts: true })`).
    fn step_history(&self) -> Result<Vec<crate::history::HistoryEntry>, OpError>;
    /// A field for this task's line in the deployment history (`record(...)`).
    fn record(&self, key: &str, value: serde_json::Value);
    /// The field this task has recorded under `key` so far.
    fn recorded(&self, key: &str) -> Option<serde_json::Value>;
}

/// One `once(...)` value: computed by the first host to get there, or the error it hit.
pub type OnceSlot = Arc<OnceLock<Result<Dynamic, String>>>;

/// Values computed by `once(...)`, shared by every host of one invocation.
#[derive(Default)]
pub struct OnceStore {
    cells: Mutex<HashMap<String, OnceSlot>>,
}

impl OnceStore {
    pub fn cell(&self, key: &str) -> OnceSlot {
        self.cells
            .lock()
            .expect("once lock")
            .entry(key.to_string())
            .or_default()
            .clone()
    }
}

/// The per-host state handed to the script engine as its tag.
#[derive(Clone)]
pub struct TaskScope {
    pub host: Dynamic,
    pub env: Dynamic,
    pub vars: Dynamic,
    pub ops: Arc<dyn HostOps>,
    pub once: Arc<OnceStore>,
    pub ships: Arc<crate::ship::Shipments>,
}

impl TaskScope {
    /// The host's inventory name.
    pub fn host_name(&self) -> String {
        self.host
            .read_lock::<rhai::Map>()
            .and_then(|m| m.get("name").map(|n| n.to_string()))
            .unwrap_or_default()
    }
}
