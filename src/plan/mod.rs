//! The plan: what the command line, the inventory and the recipes ask for, worked out and checked
//! before anything connects.
//!
//! The command line's `Config` is what the user typed; the plan is what the program needs from
//! it, built once (ripgrep's low and high arguments): the steps, left to right, each with its
//! work (a task and its arguments, a built-in such as `history` or `lock:status`, the ad-hoc
//! command, `bundle load`), its hosts, its environment and its batch size, plus the scheduler's
//! settings. Every step is checked before the first one runs — unknown tasks and environments,
//! arguments, the variables the recipes declare, on every host — so that a typo in the third
//! task cannot leave the first one half-deployed. Building a plan reads files and never the
//! network, so its rules are unit-tested against an inventory and recipes in a temporary folder.

mod builtin;
mod request;
mod selection;
mod variables;

use std::path::PathBuf;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::history::Filter;
use crate::inventory::ssh_config::SshConfig;
use crate::inventory::{Host, Inventory};
use crate::recipe::Recipes;
use crate::run::{LockAction, Settings, Step, Work};
use crate::ssh::SshOverrides;
use crate::task_call::TaskCall;
pub use request::Request;
use selection::Selection;

/// Everything a run of tasks needs, checked.
pub struct Plan {
    /// What runs, in order.
    pub steps: Vec<Step>,
    /// Where the steps' tasks come from.
    pub recipes: Recipes,
    /// How the scheduler runs the steps. The sudo password is not known yet: the credentials
    /// give it.
    pub settings: Settings,
    /// What the command line says about every SSH connection.
    pub ssh: SshOverrides,
    /// `bundle load FILE`: the bundle to verify before any host is touched.
    pub bundle: Option<PathBuf>,
    /// Whether `lock:release` goes ahead unasked: `--yes`, or a dry run.
    confirmed: bool,
}

impl Plan {
    /// Reads the inventory, recipes and ssh_config `request` points at, and plans it.
    pub fn load(request: Request, cancel: Cancel) -> Result<Plan> {
        let inventory = crate::inventory::load(request.inventory.as_deref())?;
        let recipes = Recipes::load(request.recipes.as_deref(), cancel)?;
        let ssh_config = SshConfig::load(request.ssh_config.as_deref())?;
        Plan::build(request, &inventory, recipes, &ssh_config)
    }

    /// Plans `request`: the words after the options (`env:NAME` and tasks), then `bundle load`
    /// and the ad-hoc command, which run after the tasks.
    pub fn build(
        request: Request,
        inventory: &Inventory,
        recipes: Recipes,
        ssh_config: &SshConfig,
    ) -> Result<Plan> {
        let mut selection = Selection::new(&request, inventory, ssh_config);
        let mut steps = Vec::new();
        // An `env:NAME` no task has followed yet.
        let mut unused_env: Option<&TaskCall> = None;
        for call in &request.calls {
            if call.name == "env" {
                if let Some(previous) = unused_env {
                    return Err(no_task_after(previous));
                }
                unused_env = Some(call);
                selection.enter(call)?;
                continue;
            }
            unused_env = None;
            let history = Filter {
                env: selection.env_name().map(str::to_string),
                task: None,
                all: request.all,
            };
            let work = match builtin::work(call, &recipes, history)? {
                Some(work) => work,
                None => {
                    let (task, args) = recipes.resolve(call)?;
                    Work::Task { task, args }
                }
            };
            let what = format!("task `{}`", call.name);
            steps.push(selection.step(call.to_string(), work, &what)?);
        }
        let from_set: Vec<String> = request
            .overrides
            .set
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        variables::check(&recipes, &mut steps, &from_set)?;
        if request.settings.canary.is_some() || request.batch.is_some() {
            if let Some(step) = steps.iter().find(|s| matches!(s.work, Work::Lock(_))) {
                return Err(Error::usage(format!(
                    "`{}` does not roll in batches; leave out --batch and --canary",
                    step.label
                )));
            }
        }
        if let (Some(previous), None, None) = (unused_env, &request.command, &request.bundle_load) {
            if !steps.is_empty() {
                return Err(no_task_after(previous));
            }
        }
        if let Some(path) = &request.bundle_load {
            // With no environment and no -H, a bundle loads into this machine's engine.
            let hosts = if selection.chooses_none() {
                vec![Host::this_machine()]
            } else {
                selection.hosts("bundle load")?
            };
            let label = format!("bundle load {}", path.display());
            steps.push(selection.step_on(label, Work::BundleLoad(path.clone()), hosts)?);
        }
        if let Some(command) = &request.command {
            let label = format!("-- {command}");
            steps.push(selection.step(label, Work::Command(command.clone()), "the command")?);
        }
        Ok(Plan {
            steps,
            recipes,
            settings: request.settings,
            ssh: request.ssh,
            bundle: request.bundle_load,
            confirmed: request.confirmed,
        })
    }

    /// The question `lock:release` asks before removing other runs' locks, unless `--yes` or a
    /// dry run answered it.
    pub fn question(&self) -> Option<String> {
        if self.confirmed {
            return None;
        }
        let step = self
            .steps
            .iter()
            .find(|s| matches!(s.work, Work::Lock(LockAction::Release)))?;
        let mut names: Vec<&str> = step.hosts.iter().map(|h| h.name.as_str()).collect();
        if names.len() > 6 {
            names.truncate(5);
            names.push("...");
        }
        Some(format!(
            "Remove the deploy lock of {} host(s) ({}), whoever holds it?",
            step.hosts.len(),
            names.join(", ")
        ))
    }

    /// Asks [`Plan::question`], if there is one, with `ask` (`None`: nobody to ask): only a yes
    /// lets the plan run.
    pub fn confirm(&self, ask: impl FnOnce(&str) -> Option<bool>) -> Result<()> {
        let Some(question) = self.question() else {
            return Ok(());
        };
        match ask(&question) {
            Some(true) => Ok(()),
            Some(false) => Err(Error::usage("lock:release: not confirmed; nothing done")),
            None => Err(Error::usage_hint(
                "lock:release removes another run's lock and needs a confirmation",
                "run it on a terminal, or add --yes",
            )),
        }
    }

    /// Every step's hosts, in order (a host in several steps comes several times).
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.steps.iter().flat_map(|s| &s.hosts)
    }

    /// The filter of `history`, when a step shows the history: its table follows the run.
    /// Whether a step is `check`, whose answers end the run with a table.
    pub fn checks(&self) -> bool {
        self.steps.iter().any(|s| matches!(s.work, Work::Check))
    }

    pub fn history(&self) -> Option<Filter> {
        self.steps.iter().find_map(|s| match &s.work {
            Work::History(filter) => Some(filter.clone()),
            _ => None,
        })
    }
}

fn no_task_after(env: &TaskCall) -> Error {
    Error::usage_hint(
        format!("`{env}` is followed by no task"),
        "env:NAME selects the hosts for the tasks after it; put those tasks after it",
    )
}

#[cfg(test)]
mod tests;
