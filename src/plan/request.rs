//! What a plan is asked for: the command line's part, as the plan needs it.
//!
//! The command line builds it (`cli` sits above the plan and knows both), so the plan never reads
//! the command line's own types.

use std::path::PathBuf;

use crate::host_count::HostCount;
use crate::inventory::selection::Overrides;
use crate::run::Settings;
use crate::ssh::SshOverrides;
use crate::task_call::TaskCall;

/// Everything a plan needs besides the files it reads.
#[derive(Debug, Default)]
pub struct Request {
    /// Where the inventory, the recipes and ssh_config are (`None`: the default places).
    pub inventory: Option<PathBuf>,
    pub recipes: Option<PathBuf>,
    pub ssh_config: Option<PathBuf>,
    /// `env:NAME` and the tasks, left to right.
    pub calls: Vec<TaskCall>,
    /// The ad-hoc command after `--`, which runs after the tasks.
    pub command: Option<String>,
    /// `bundle load FILE`, which runs after the tasks too.
    pub bundle_load: Option<PathBuf>,
    /// The host flags (`-H`, `-R`, `-x`, `--limit`), connection flags and `--set`.
    pub overrides: Overrides,
    /// `--batch`, which wins over the environment's `batch`.
    pub batch: Option<HostCount>,
    /// `--all`: `history` shows every task's runs.
    pub all: bool,
    /// `--yes` or `--dry-run`: `lock:release` goes ahead unasked.
    pub confirmed: bool,
    /// How the scheduler runs the steps.
    pub settings: Settings,
    /// What every SSH connection takes from the command line.
    pub ssh: SshOverrides,
}
