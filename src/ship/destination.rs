//! What a delivery needs of the receiving host, as a trait the task runner implements.
//!
//! Shipping runs commands on a host and reports progress, but the host's connection, its
//! output and its summary belong to the layer that runs tasks. That layer implements
//! [`Destination`]; `ship` never learns how a command reaches the host, so it stays a leaf.

use std::sync::Arc;

use super::{ShipError, StreamInput};
use crate::report::Total;

/// How much of a command the output shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The command line (or its display text), not its output.
    Line,
    /// Nothing, except with `-v`: queries and the upkeep of part files, not the user's change.
    Verbose,
}

/// One command for the receiving host. Its output is returned, never echoed, and a non-zero
/// exit is for the caller to judge.
pub struct HostCommand<'a> {
    /// The shell line to run.
    pub line: &'a str,
    /// How much of it the output shows.
    pub shown: Shown,
    /// What the output shows instead of the line.
    pub display: Option<String>,
    /// Streamed to the command's standard input.
    pub stdin: Option<Arc<StreamInput>>,
}

impl<'a> HostCommand<'a> {
    /// A command shown as its line.
    pub fn shown(line: &'a str) -> HostCommand<'a> {
        HostCommand {
            line,
            shown: Shown::Line,
            display: None,
            stdin: None,
        }
    }

    /// A command shown only with `-v`.
    pub fn silent(line: &'a str) -> HostCommand<'a> {
        HostCommand {
            shown: Shown::Verbose,
            ..HostCommand::shown(line)
        }
    }
}

/// How a host command ended.
#[derive(Debug, Clone, Default)]
pub struct HostOutput {
    /// Exit code; -1 when the command was killed or stopped.
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl HostOutput {
    /// Whether it exited with 0.
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

/// The receiving host of a delivery.
pub trait Destination: Sync {
    /// The host's inventory name.
    fn name(&self) -> String;
    /// Runs a command on the host. `Err` when the host cannot run it at all.
    fn run(&self, command: HostCommand) -> Result<HostOutput, ShipError>;
    /// A line for the user about this host.
    fn info(&self, text: &str);
    /// A warning about this host.
    fn warn(&self, text: &str);
    /// A transfer's progress: bytes done of `total` (when known, or estimated).
    fn progress(&self, what: &str, done: u64, total: Option<Total>);
    /// Bytes the host received from the controller, for the summary.
    fn transferred(&self, bytes: u64);
    /// Whether commands are only shown, not run (`--dry-run`).
    fn dry_run(&self) -> bool;
    /// Hosts of the current step still running, this one included: the ones that may yet
    /// join a stream.
    fn peers(&self) -> usize;
    /// Whether Ctrl-C was pressed.
    fn cancelled(&self) -> bool;
}
