//! A resolved target: everything needed to connect to one host and run a task there.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Result;

/// How commands reach a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Over SSH (the default).
    Ssh,
    /// On the controller itself, through `sh -c`; no SSH involved.
    Local,
}

impl Connection {
    pub fn parse(s: &str) -> Option<Connection> {
        match s {
            "ssh" => Some(Connection::Ssh),
            "local" => Some(Connection::Local),
            _ => None,
        }
    }
}

/// One SSH server to log in to: a target host or a jump host on the way to one.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Identity files to offer, in order.
    pub identities: Vec<PathBuf>,
    /// ssh_config `IdentitiesOnly`: offer only `identities`, not agent keys or default key files.
    pub identities_only: bool,
    /// ssh_config `UserKnownHostsFile`.
    pub known_hosts: Option<PathBuf>,
    /// ssh_config `StrictHostKeyChecking` (`Some(true)` = accept-new).
    pub accept_new: Option<bool>,
    /// ssh_config `ConnectTimeout`.
    pub connect_timeout: Option<Duration>,
    /// ssh_config `ServerAliveInterval`.
    pub keepalive: Option<Duration>,
}

impl Endpoint {
    /// `user@address:port`, what a user would pass to ssh.
    pub fn destination(&self) -> String {
        let address = if self.address.contains(':') {
            format!("[{}]", self.address)
        } else {
            self.address.clone()
        };
        format!("{}@{}:{}", self.user, address, self.port)
    }
}

#[derive(Debug, Clone)]
pub struct Host {
    /// The name the user knows it by: the inventory name or the host string as written.
    pub name: String,
    pub endpoint: Endpoint,
    /// Jump hosts to pass through, first to last.
    pub jumps: Vec<Endpoint>,
    pub connection: Connection,
    /// Merged variables: `--set` > host > environment > global.
    pub vars: toml::Table,
    /// The host entry's own variables.
    pub host_vars: toml::Table,
    pub roles: Vec<String>,
    pub env: Option<String>,
}

impl Host {
    /// The controller itself, for work that runs here when no host is selected.
    pub fn this_machine() -> Host {
        Host {
            name: "localhost".into(),
            endpoint: Endpoint {
                address: "localhost".into(),
                port: 22,
                user: std::env::var("USER").unwrap_or_default(),
                identities: Vec::new(),
                identities_only: false,
                known_hosts: None,
                accept_new: None,
                connect_timeout: None,
                keepalive: None,
            },
            jumps: Vec::new(),
            connection: Connection::Local,
            vars: toml::Table::new(),
            host_vars: toml::Table::new(),
            roles: Vec::new(),
            env: None,
        }
    }

    pub fn destination(&self) -> String {
        let mut d = self.endpoint.destination();
        for j in self.jumps.iter().rev() {
            d.push_str(&format!(" via {}", j.destination()));
        }
        d
    }
}

/// `[user@]host[:port]` as written in an inventory or on the command line (`[v6addr]:port` too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl HostSpec {
    pub fn parse(text: &str) -> Result<HostSpec, String> {
        let (user, rest) = match text.rsplit_once('@') {
            Some((user, rest)) if !user.is_empty() => (Some(user.to_string()), rest),
            Some(_) => return Err(format!("`{text}` has an empty user before `@`")),
            None => (None, text),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (addr, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("`{text}` has `[` without a closing `]`"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("`{text}`: expected `:PORT` after `]`"))?,
                ),
            };
            (addr, port)
        } else if rest.matches(':').count() > 1 {
            (rest, None)
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{text}` has no host name"));
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '\'' || c == '"')
        {
            return Err(format!("`{text}` is not a valid host name"));
        }
        let port = port
            .map(|p| match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!(
                    "`{text}` has an invalid port `{p}` (expected 1-65535)"
                )),
            })
            .transpose()?;
        Ok(HostSpec {
            user,
            host: host.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(user: Option<&str>, host: &str, port: Option<u16>) -> HostSpec {
        HostSpec {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn parses_forms() {
        assert_eq!(HostSpec::parse("web-1").unwrap(), spec(None, "web-1", None));
        assert_eq!(
            HostSpec::parse("deploy@web-1:2222").unwrap(),
            spec(Some("deploy"), "web-1", Some(2222))
        );
        assert_eq!(
            HostSpec::parse("[::1]:22").unwrap(),
            spec(None, "::1", Some(22))
        );
        assert_eq!(
            HostSpec::parse("fe80::1").unwrap(),
            spec(None, "fe80::1", None)
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(HostSpec::parse("web:0").is_err());
        assert!(HostSpec::parse("web:99999").is_err());
        assert!(HostSpec::parse("@web").is_err());
        assert!(HostSpec::parse("a b").is_err());
        assert!(HostSpec::parse("").is_err());
    }
}
