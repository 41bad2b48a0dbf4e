//! The inventory: which hosts exist, how they group into environments and roles, and the variables
//! recipes see.
//!
//! Loading ([`load`]) turns TOML files into an [`Inventory`] and reports every problem with file,
//! line and key. Resolving ([`selection`]) turns an environment plus the command line's host flags
//! into concrete [`Host`]s with their connection settings and merged variables. Variables stay TOML
//! values here; the recipe layer converts them for scripts.

mod host;
mod load;
pub mod selection;
pub mod ssh_config;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use host::{Connection, Endpoint, Host, HostSpec};
pub use load::{load, merge_file};

/// Connection settings that `[defaults]`, an environment and a host entry may each set.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identities: Vec<PathBuf>,
    pub connection: Option<Connection>,
    /// Jump hosts (`jump = "bastion"` or a list), as written.
    pub jump: Option<Vec<String>>,
}

impl Settings {
    /// `self` with every unset field taken from `fallback`.
    pub fn or(&self, fallback: &Settings) -> Settings {
        Settings {
            user: self.user.clone().or_else(|| fallback.user.clone()),
            port: self.port.or(fallback.port),
            identities: if self.identities.is_empty() {
                fallback.identities.clone()
            } else {
                self.identities.clone()
            },
            connection: self.connection.or(fallback.connection),
            jump: self.jump.clone().or_else(|| fallback.jump.clone()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    /// Host strings as written: inventory host names or `[user@]host[:port]`.
    pub hosts: Vec<String>,
    pub roles: BTreeMap<String, Vec<String>>,
    /// The variables of the roles written as `{ hosts = [...], vars = {...} }`.
    pub role_vars: BTreeMap<String, toml::Table>,
    pub vars: toml::Table,
    pub settings: Settings,
    /// Where it was defined, for messages.
    pub file: String,
}

#[derive(Debug, Clone)]
pub struct HostEntry {
    pub name: String,
    /// Where it was defined, for messages.
    pub file: String,
    pub address: Option<String>,
    pub settings: Settings,
    pub vars: toml::Table,
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub defaults: Settings,
    pub vars: toml::Table,
    pub envs: BTreeMap<String, Environment>,
    pub hosts: BTreeMap<String, HostEntry>,
    /// The files it was read from, for messages.
    pub files: Vec<String>,
}

impl Inventory {
    pub fn env_names(&self) -> impl Iterator<Item = &str> {
        self.envs.keys().map(String::as_str)
    }
}
