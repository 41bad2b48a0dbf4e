//! Why a connection or a remote command failed, phrased for the person at the terminal.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::report::Fault;

/// Why a connection could not be opened or a command on it did not run to its end.
#[derive(Debug)]
pub enum SshError {
    Connect {
        destination: String,
        source: std::io::Error,
    },
    ConnectTimeout {
        destination: String,
        after: Duration,
    },
    Resolve {
        host: String,
    },
    HostKeyUnknown {
        host: String,
        fingerprint: String,
        key_type: String,
        known_hosts: PathBuf,
    },
    HostKeyChanged {
        host: String,
        fingerprint: String,
        known_hosts: PathBuf,
        line: usize,
    },
    HostKeyRevoked {
        host: String,
        fingerprint: String,
    },
    KnownHostsWrite {
        path: PathBuf,
        source: std::io::Error,
    },
    Auth {
        destination: String,
        tried: Vec<String>,
        notes: Vec<String>,
    },
    Handshake {
        destination: String,
        message: String,
    },
    ConnectionLost {
        command: String,
    },
    CommandTimeout {
        command: String,
        after: Duration,
    },
    Channel {
        command: String,
        message: String,
    },
    /// sudo asked again after the password was sent.
    SudoPassword {
        command: String,
    },
    /// sudo asked for a password and none was given.
    SudoNeedsPassword {
        command: String,
    },
    Interrupted,
    /// A jump host on the way could not be reached; every host behind it shares the error.
    Jump {
        destination: String,
        error: Arc<SshError>,
    },
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshError::Connect { destination, source } => {
                write!(f, "cannot connect to {destination}: {source}")
            }
            SshError::ConnectTimeout { destination, after } => write!(
                f,
                "cannot connect to {destination}: no answer within {}s (raise --connect-timeout if the host is slow)",
                after.as_secs_f64()
            ),
            SshError::Resolve { host } => write!(f, "cannot resolve host name `{host}`"),
            SshError::HostKeyUnknown { host, fingerprint, key_type, known_hosts } => write!(
                f,
                "host key for {host} is not known ({key_type} {fingerprint}); refusing to connect. \
                 Verify the fingerprint with the host's owner, then run once with \
                 --host-key-policy accept-new, or add it with `ssh-keyscan` to {}",
                known_hosts.display()
            ),
            SshError::HostKeyChanged { host, fingerprint, known_hosts, line } => write!(
                f,
                "HOST KEY CHANGED for {host}: the server offered {fingerprint}, which differs from \
                 {}:{line}. This may be an attack (man in the middle) or a reinstalled server. \
                 Refusing to connect; if the change is expected, remove the old entry with \
                 `ssh-keygen -R` and connect again",
                known_hosts.display()
            ),
            SshError::HostKeyRevoked { host, fingerprint } => {
                write!(f, "host key {fingerprint} of {host} is marked @revoked in known_hosts; refusing to connect")
            }
            SshError::KnownHostsWrite { path, source } => {
                write!(f, "cannot record the host key in {}: {source}", path.display())
            }
            SshError::Auth { destination, tried, notes } => {
                write!(f, "authentication failed for {destination}")?;
                if tried.is_empty() && notes.is_empty() {
                    write!(f, ": no identity to offer (no agent, no key files found); pass -i KEYFILE or set `identity` in the inventory")?;
                } else if tried.is_empty() {
                    write!(f, ": no usable identity")?;
                } else {
                    write!(f, " (tried {})", tried.join(", "))?;
                }
                for n in notes {
                    write!(f, "; {n}")?;
                }
                Ok(())
            }
            SshError::Handshake { destination, message } => {
                write!(f, "SSH handshake with {destination} failed: {message}")
            }
            SshError::ConnectionLost { command } => write!(f, "connection lost during `{command}`"),
            SshError::CommandTimeout { command, after } => write!(
                f,
                "`{command}` did not finish within {}s (command timeout)",
                after.as_secs_f64()
            ),
            SshError::Channel { command, message } => write!(f, "cannot run `{command}`: {message}"),
            SshError::SudoPassword { command } => {
                write!(f, "sudo: incorrect password (running `{command}`); check --ask-sudo-pass or RIGS_SUDO_PASSWORD")
            }
            SshError::SudoNeedsPassword { command } => write!(
                f,
                "sudo needs a password to run `{command}`: pass --ask-sudo-pass or set RIGS_SUDO_PASSWORD"
            ),
            SshError::Interrupted => write!(f, "interrupted"),
            SshError::Jump { destination, error } => write!(f, "jump host {destination}: {error}"),
        }
    }
}

impl SshError {
    /// What this failure means for the host beyond the one command: unreachable, refused, its
    /// connection lost, or a command out of time. `None` when only the command failed.
    pub fn fault(&self) -> Option<Fault> {
        match self {
            SshError::Connect { .. }
            | SshError::ConnectTimeout { .. }
            | SshError::Resolve { .. }
            | SshError::Handshake { .. } => Some(Fault::Unreachable),
            SshError::HostKeyUnknown { .. }
            | SshError::HostKeyChanged { .. }
            | SshError::HostKeyRevoked { .. }
            | SshError::KnownHostsWrite { .. }
            | SshError::Auth { .. } => Some(Fault::Refused),
            SshError::ConnectionLost { .. } => Some(Fault::ConnectionLost),
            SshError::CommandTimeout { .. } => Some(Fault::TimedOut),
            SshError::Channel { .. }
            | SshError::SudoPassword { .. }
            | SshError::SudoNeedsPassword { .. }
            | SshError::Interrupted => None,
            SshError::Jump { error, .. } => error.fault(),
        }
    }

    /// Whether the server hung up before login, which OpenSSH does to connections beyond its
    /// `MaxStartups` limit; such attempts are worth repeating after a pause.
    pub fn is_dropped_before_login(&self) -> bool {
        match self {
            SshError::Handshake { message, .. } => {
                let m = message.to_ascii_lowercase();
                m.contains("disconnect")
                    || m.contains("reset")
                    || m.contains("closed")
                    || m.contains("eof")
            }
            SshError::Connect { source, .. } => {
                source.kind() == std::io::ErrorKind::ConnectionReset
            }
            _ => false,
        }
    }
}

impl std::error::Error for SshError {}
