//! A step of a run: what runs (a task, built-in work, the ad-hoc command, `bundle load`) and on
//! which hosts. The plan makes the steps; the scheduler runs them left to right.

use std::sync::Arc;

use rhai::{Dynamic, Map};

use crate::host_count::HostCount;
use crate::inventory::Host;
use crate::recipe::Task;

/// What one step runs on each of its hosts.
pub enum Work {
    /// A recipe's task, with its arguments bound to its parameters.
    Task { task: Task, args: Vec<Dynamic> },
    /// The ad-hoc command after `--`.
    Command(String),
    /// `rigs bundle load FILE`.
    BundleLoad(std::path::PathBuf),
    /// `rigs env:NAME history[:TASK]`: each host's recent history, as the filter keeps it,
    /// gathered for one table.
    History(crate::history::Filter),
    /// `rigs env:NAME lock:status` / `lock:release`.
    Lock(LockAction),
    /// `rigs env:NAME check`: whether a deploy would work, gathered for one table.
    Check,
}

/// What `lock:...` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAction {
    Status,
    Release,
}

/// One unit of the plan: a task (or built-in work, the ad-hoc command, `bundle load`) and the
/// hosts it runs on, in its environment.
pub struct Step {
    /// As the user wrote it: `deploy:1.2.3`, or the ad-hoc command.
    pub label: String,
    pub work: Work,
    pub hosts: Vec<Host>,
    pub env: Option<String>,
    /// The environment's own variables (`env.vars` in scripts).
    pub env_vars: Map,
    /// Hosts running this step right now.
    pub running: Arc<std::sync::atomic::AtomicUsize>,
    /// `--batch` or the environment's `batch`: hosts per batch.
    pub batch: Option<HostCount>,
}
