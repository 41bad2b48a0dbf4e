//! Which hosts a step runs on, with which environment and batch size.
//!
//! `env:NAME` chooses an environment for the words after it; the command line's host flags
//! (`-H`, `-R`, `-x`, `--limit`) narrow or extend it. Its hosts are selected once, when the
//! first step after the word needs them, and every later step of that environment gets a copy
//! (each step fills in its own recipe's variable defaults).

use rhai::Map;

use crate::error::{Error, Result};
use crate::host_count::HostCount;
use crate::inventory::selection::{self, Overrides};
use crate::inventory::ssh_config::SshConfig;
use crate::inventory::{Environment, Host, Inventory};
use crate::run::{Step, Work};
use crate::task_call::TaskCall;

use super::Request;

/// The selection in force at one point of the command line.
pub(super) struct Selection<'a> {
    inventory: &'a Inventory,
    ssh_config: &'a SshConfig,
    overrides: Overrides,
    /// `--batch`, which wins over the environment's `batch`.
    batch: Option<HostCount>,
    /// The environment of the last `env:NAME`.
    env: Option<&'a Environment>,
    /// Its hosts, once a step asked for them.
    hosts: Option<Vec<Host>>,
}

impl<'a> Selection<'a> {
    /// The selection before any `env:NAME`: the hosts of `-H` only.
    pub(super) fn new(
        request: &Request,
        inventory: &'a Inventory,
        ssh_config: &'a SshConfig,
    ) -> Selection<'a> {
        Selection {
            inventory,
            ssh_config,
            overrides: request.overrides.clone(),
            batch: request.batch,
            env: None,
            hosts: None,
        }
    }

    /// Switches to the environment `env:NAME` names, which must exist.
    pub(super) fn enter(&mut self, call: &TaskCall) -> Result<()> {
        let name = call.single_value().ok_or_else(|| {
            Error::usage_hint(
                format!("`{call}`: env takes one environment name"),
                "write env:NAME, e.g. env:staging",
            )
        })?;
        self.env = Some(selection::environment(self.inventory, name)?);
        self.hosts = None;
        Ok(())
    }

    /// The environment's name, if one was chosen.
    pub(super) fn env_name(&self) -> Option<&'a str> {
        self.env.map(|e| e.name.as_str())
    }

    /// Whether nothing chooses hosts: no `env:NAME` and no `-H`.
    pub(super) fn chooses_none(&self) -> bool {
        self.env.is_none() && self.overrides.hosts.is_empty()
    }

    /// A step of `work` on the selected hosts; `what` names it if there are none.
    pub(super) fn step(&mut self, label: String, work: Work, what: &str) -> Result<Step> {
        let hosts = self.hosts(what)?;
        self.step_on(label, work, hosts)
    }

    /// A step of `work` on `hosts`, in the selected environment.
    pub(super) fn step_on(&self, label: String, work: Work, hosts: Vec<Host>) -> Result<Step> {
        Ok(Step {
            label,
            work,
            hosts,
            env: self.env_name().map(str::to_string),
            env_vars: self.env_vars(),
            running: Default::default(),
            batch: self.batch()?,
        })
    }

    /// The selected hosts, which must not be none; `what` names what needs them.
    pub(super) fn hosts(&mut self, what: &str) -> Result<Vec<Host>> {
        if let Some(hosts) = &self.hosts {
            return Ok(hosts.clone());
        }
        let hosts = selection::select(
            self.inventory,
            self.env_name(),
            &self.overrides,
            self.ssh_config,
        )?;
        if hosts.is_empty() {
            let hint = if self.chooses_none() {
                "put env:NAME before it (`rigs --list-hosts` shows them) or pass -H HOST"
            } else {
                "the host filters (-R, -x, --limit) left no host"
            };
            return Err(Error::usage_hint(
                format!("no hosts selected for {what}"),
                hint,
            ));
        }
        self.hosts = Some(hosts.clone());
        Ok(hosts)
    }

    /// The environment's own variables (`env.vars` in scripts).
    fn env_vars(&self) -> Map {
        self.env
            .map(|e| crate::recipe::value::table(&e.vars))
            .unwrap_or_default()
    }

    /// `--batch`, else the environment's `batch` variable.
    fn batch(&self) -> Result<Option<HostCount>> {
        if self.batch.is_some() {
            return Ok(self.batch);
        }
        let Some(value) = self.env.and_then(|e| e.vars.get("batch")) else {
            return Ok(None);
        };
        let text = match value {
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        HostCount::parse(&text).map(Some).ok_or_else(|| {
            Error::usage_hint(
                format!("the environment's `batch` must be N or \"P%\", not {value}"),
                "for example batch = 2 or batch = \"25%\" in [env.NAME] vars",
            )
        })
    }
}
