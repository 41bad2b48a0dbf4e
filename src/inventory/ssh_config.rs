//! `~/.ssh/config` as a fallback for connection settings, read the way `ssh` reads it.
//!
//! Parsing is done by the `ssh2-config` crate (Host patterns, Include, the first value wins);
//! options it does not model (`IdentitiesOnly`, `UserKnownHostsFile`, `StrictHostKeyChecking`)
//! come from its list of unsupported fields. The inventory and the command line override what is
//! found here.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2_config::{ParseRule, SshConfig as Parsed};

use crate::diagnostic::display_path;
use crate::error::{Error, Result};

/// What ssh_config says about one host name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigHost {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identities: Vec<PathBuf>,
    pub identities_only: Option<bool>,
    /// `ProxyJump` hops, in order; empty for none (or `ProxyJump none`).
    pub proxy_jump: Vec<String>,
    pub known_hosts: Option<PathBuf>,
    /// `StrictHostKeyChecking`: `Some(true)` for accept-new (or no/off), `Some(false)` for yes/ask.
    pub accept_new: Option<bool>,
    pub connect_timeout: Option<Duration>,
    pub server_alive_interval: Option<Duration>,
}

#[derive(Default)]
pub struct SshConfig {
    parsed: Option<Parsed>,
}

impl SshConfig {
    /// Reads `explicit` (`-F FILE`, which must exist) or else `~/.ssh/config` if present.
    pub fn load(explicit: Option<&Path>) -> Result<SshConfig> {
        let home = dirs::home_dir();
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => match &home {
                Some(h) if h.join(".ssh/config").is_file() => h.join(".ssh/config"),
                _ => return Ok(SshConfig::default()),
            },
        };
        let file = std::fs::File::open(&path).map_err(|e| {
            Error::usage_hint(
                format!("cannot read ssh config {}: {e}", display_path(&path)),
                "point -F at an existing file, or -F /dev/null to read none",
            )
        })?;
        Self::read(&mut BufReader::new(file), &path)
    }

    /// Parses ssh_config text read from `path` (named in messages); `Include`s are read from
    /// the file system, relative to `~/.ssh`.
    pub fn read(text: &mut impl BufRead, path: &Path) -> Result<SshConfig> {
        let mut parser = Parsed::default();
        if let Some(h) = dirs::home_dir() {
            parser = parser.home_dir(h);
        }
        let parsed = parser
            .parse(
                text,
                ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
            )
            .map_err(|e| {
                Error::usage_hint(
                    format!("cannot read ssh config {}: {e}", display_path(path)),
                    "fix the file, or point -F at another one",
                )
            })?;
        Ok(SshConfig {
            parsed: Some(parsed),
        })
    }

    pub fn query(&self, name: &str) -> ConfigHost {
        let Some(parsed) = &self.parsed else {
            return ConfigHost::default();
        };
        let p = parsed.query(name);
        let field = |key: &str| -> Option<String> {
            p.unsupported_fields
                .get(key)
                .or_else(|| p.ignored_fields.get(key))
                .and_then(|v| v.first().cloned())
        };
        let yes = |v: &str| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true");
        let proxy_jump = match &p.proxy_jump {
            Some(hops) if !(hops.len() == 1 && hops[0].eq_ignore_ascii_case("none")) => {
                hops.clone()
            }
            _ => Vec::new(),
        };
        ConfigHost {
            host_name: p.host_name.clone(),
            user: p.user.clone(),
            port: p.port,
            identities: p.identity_file.clone().unwrap_or_default(),
            identities_only: field("identitiesonly").map(|v| yes(&v)),
            proxy_jump,
            known_hosts: field("userknownhostsfile")
                .and_then(|v| v.split_whitespace().next().map(expand_home))
                .filter(|p| p.as_os_str() != "/dev/null"),
            accept_new: field("stricthostkeychecking").map(|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "accept-new" | "no" | "off" | "false"
                )
            }),
            connect_timeout: p.connect_timeout,
            server_alive_interval: p.server_alive_interval,
        }
    }
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_patterns_include_and_unmodelled_options() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("extra.conf"),
            "Host web-1\n  HostName 10.1.1.1\n",
        )
        .unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "Include {}/extra.conf\nHost web-*\n  User deploy\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile /tmp/kh\n  StrictHostKeyChecking accept-new\n  \
                 ProxyJump bastion,ops@b2:2222\n  ServerAliveInterval 5\nHost *\n  Port 2200\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let c = SshConfig::load(Some(&config)).unwrap();
        let h = c.query("web-1");
        assert_eq!(h.host_name.as_deref(), Some("10.1.1.1"));
        assert_eq!(h.user.as_deref(), Some("deploy"));
        assert_eq!(h.port, Some(2200));
        assert_eq!(h.identities_only, Some(true));
        assert_eq!(h.proxy_jump, vec!["bastion", "ops@b2:2222"]);
        assert_eq!(h.known_hosts, Some(PathBuf::from("/tmp/kh")));
        assert_eq!(h.accept_new, Some(true));
        assert_eq!(h.server_alive_interval, Some(Duration::from_secs(5)));
        assert_eq!(c.query("db").host_name, None);
    }
}
