//! Where and how to connect: [`Target`] for one host, [`ConnectOptions`] for every connection
//! of one invocation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{KeyCache, KnownHosts};
use crate::secret::Secret;

/// Where to connect, as whom, and how to trust the server.
pub struct Target {
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identities: Vec<PathBuf>,
    /// Offer only `identities`: no agent keys, no default key files.
    pub identities_only: bool,
    pub known_hosts: Arc<KnownHosts>,
    pub accept_new: bool,
    pub connect_timeout: Duration,
    pub keepalive: Option<Duration>,
}

impl Target {
    pub fn destination(&self) -> String {
        format!(
            "{}@{}",
            self.user,
            KnownHosts::lookup_name(&self.address, self.port)
        )
    }
}

/// Settings shared by every connection of one invocation.
pub struct ConnectOptions {
    pub keys: Arc<KeyCache>,
    /// Tried after the host's own identities: `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` if present.
    pub default_identities: Vec<PathBuf>,
    pub use_agent: bool,
    /// Offered when keys fail and the server accepts passwords (`--ask-pass`, `RIGS_PASSWORD`).
    pub password: Option<Secret>,
}
