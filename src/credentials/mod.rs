//! Credentials: the login and sudo passwords, the passphrases of keys, the secrets file.
//!
//! Everything that may need the person at the terminal is asked here, once, before the run
//! starts: a question in the middle of parallel output would be lost among the hosts' lines, and
//! hundreds of hosts must not ask hundreds of times. A password comes from its flag's prompt
//! (`--ask-pass`, `--ask-sudo-pass`), else from the environment; a key's passphrase is asked
//! when the key turns out to be encrypted. Each secret is handed to the [`Masker`] as soon as it
//! is known, so no output ever shows it. A dry run connects to nothing and asks nothing.

pub mod prompt;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::inventory::{Connection, Host};
use crate::secret::{Masker, Secret, SecretStore};
use crate::ssh::{ConnectOptions, KeyCache};

/// Which passwords to ask for on the terminal.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ask {
    /// `--ask-pass`: the login password (else `RIGS_PASSWORD`).
    pub password: bool,
    /// `--ask-sudo-pass`: the sudo password (else `RIGS_SUDO_PASSWORD`, else the login one).
    pub sudo_password: bool,
    /// A dry run connects to nothing: it asks nothing and loads no key.
    pub dry_run: bool,
}

/// How this run logs in to its hosts and answers sudo.
pub struct Credentials {
    /// Keys (loaded, passphrases asked), the agent and the login password.
    pub connect: ConnectOptions,
    /// Answers sudo's prompt: `--ask-sudo-pass`, `RIGS_SUDO_PASSWORD`, else the login password.
    pub sudo_password: Option<Secret>,
}

impl Credentials {
    /// Asks for what `ask` says, or takes the passwords from the environment, and loads the
    /// identity files `hosts` may use.
    pub fn gather<'a>(
        ask: Ask,
        hosts: impl Iterator<Item = &'a Host>,
        masker: &Masker,
    ) -> Result<Credentials> {
        let dry_run = ask.dry_run;
        let password = ask_or_env(
            ask.password,
            "SSH password: ",
            "--ask-pass",
            "RIGS_PASSWORD",
            dry_run,
            masker,
        )?;
        let sudo_password = ask_or_env(
            ask.sudo_password,
            "sudo password: ",
            "--ask-sudo-pass",
            "RIGS_SUDO_PASSWORD",
            dry_run,
            masker,
        )?
        .or_else(|| password.clone());
        let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("/"));
        let default_identities: Vec<PathBuf> = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|k| home.join(".ssh").join(k))
            .collect();
        let keys = Arc::new(KeyCache::default());
        if !dry_run {
            preload_keys(&keys, hosts, &default_identities);
        }
        Ok(Credentials {
            connect: ConnectOptions {
                keys,
                default_identities,
                use_agent: true,
                password,
            },
            sudo_password,
        })
    }
}

/// The `--secrets` file that `secret(NAME)` reads first, its values masked from now on.
pub fn secret_store(path: Option<&Path>, masker: &Masker) -> Result<SecretStore> {
    let secrets = match path {
        Some(path) => SecretStore::load(path)?,
        None => SecretStore::default(),
    };
    for s in secrets.file_values() {
        masker.add(s);
    }
    Ok(secrets)
}

/// A password from the terminal when its flag is given (the flag wins over the variable), else
/// from the environment. A dry run needs none and asks nothing.
fn ask_or_env(
    ask: bool,
    label: &str,
    flag: &str,
    variable: &str,
    dry_run: bool,
    masker: &Masker,
) -> Result<Option<Secret>> {
    if dry_run {
        return Ok(None);
    }
    let password = if ask {
        Some(prompt::hidden(label).ok_or_else(|| {
            Error::usage_hint(
                format!("{flag} needs a terminal to ask on"),
                format!("set {variable} instead when running without one"),
            )
        })?)
    } else {
        std::env::var(variable).ok().map(Secret::new)
    };
    if let Some(p) = &password {
        masker.add(p);
    }
    Ok(password)
}

/// Loads every identity file the run may use, asking for passphrases now rather than in the
/// middle of parallel output.
fn preload_keys<'a>(keys: &KeyCache, hosts: impl Iterator<Item = &'a Host>, defaults: &[PathBuf]) {
    let interactive = prompt::available();
    keys.preload(identity_files(hosts, defaults), |path, attempt| {
        if !interactive {
            return None;
        }
        let again = if attempt > 0 {
            "Wrong passphrase. "
        } else {
            ""
        };
        prompt::hidden(&format!(
            "{again}Enter passphrase for key {}: ",
            path.display()
        ))
    });
}

/// The identity files that logging in to `hosts` and their jump hosts may use, each once: an
/// endpoint's own, then `defaults` unless it offers only its own (`IdentitiesOnly`).
fn identity_files<'h: 'p, 'd: 'p, 'p>(
    hosts: impl Iterator<Item = &'h Host>,
    defaults: &'d [PathBuf],
) -> Vec<&'p Path> {
    let mut paths: Vec<&Path> = Vec::new();
    for host in hosts.filter(|h| h.connection == Connection::Ssh) {
        for endpoint in host.jumps.iter().chain(std::iter::once(&host.endpoint)) {
            let extra = if endpoint.identities_only {
                &[][..]
            } else {
                defaults
            };
            for p in endpoint.identities.iter().chain(extra) {
                if !paths.contains(&p.as_path()) {
                    paths.push(p);
                }
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, identities: &[&str], identities_only: bool) -> Host {
        let mut host = Host {
            name: name.into(),
            connection: Connection::Ssh,
            ..Host::this_machine()
        };
        host.endpoint.identities = identities.iter().map(PathBuf::from).collect();
        host.endpoint.identities_only = identities_only;
        host
    }

    #[test]
    fn every_identity_file_is_loaded_once_in_order() {
        let defaults = [PathBuf::from("id_ed25519"), PathBuf::from("id_rsa")];
        let mut behind = host("b", &["b.key"], true);
        behind.jumps = vec![host("bastion", &["jump.key"], false).endpoint];
        let local = Host {
            name: "here".into(),
            ..Host::this_machine()
        };
        let hosts = [
            host("a", &["a.key"], false),
            behind,
            host("c", &["a.key"], true),
            local,
        ];
        let files = identity_files(hosts.iter(), &defaults);
        assert_eq!(
            files,
            ["a.key", "id_ed25519", "id_rsa", "jump.key", "b.key"].map(Path::new)
        );
    }

    #[test]
    fn a_dry_run_asks_for_no_password() {
        let masker = Masker::default();
        let asked = ask_or_env(
            true,
            "SSH password: ",
            "--ask-pass",
            "RIGS_PASSWORD",
            true,
            &masker,
        );
        assert!(matches!(asked, Ok(None)));
    }
}
