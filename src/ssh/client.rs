//! [`Client`]: the russh handler that decides whether to trust the server's key, against the
//! known_hosts files, learning a new one only when told to.
//!
//! russh only hears yes or no from the handler, so the reason for a no is left in
//! [`Client::rejection`] for the connection to report as the error.

use std::sync::{Arc, Mutex};

use russh::client;
use russh::keys::ssh_key::{HashAlg, PublicKey};
use russh::keys::PublicKeyOrCertificate;

use super::known_hosts::{KnownHosts, Verdict};
use super::SshError;

/// Checks the server's key for one connection.
pub(super) struct Client {
    pub(super) address: String,
    pub(super) port: u16,
    pub(super) known_hosts: Arc<KnownHosts>,
    pub(super) accept_new: bool,
    /// Why the server's key was refused, when it was.
    pub(super) rejection: Arc<Mutex<Option<SshError>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key: PublicKey = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::from(cert.public_key().clone()),
        };
        let host = KnownHosts::lookup_name(&self.address, self.port);
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let rejection = match self.known_hosts.check(&self.address, self.port, &key) {
            Verdict::Known => return Ok(true),
            Verdict::Unknown if self.accept_new => {
                return match self.known_hosts.learn(&self.address, self.port, &key) {
                    Ok(()) => Ok(true),
                    Err(source) => {
                        *self.rejection.lock().expect("rejection lock") =
                            Some(SshError::KnownHostsWrite {
                                path: self.known_hosts.path().to_path_buf(),
                                source,
                            });
                        Ok(false)
                    }
                };
            }
            Verdict::Unknown => SshError::HostKeyUnknown {
                host,
                fingerprint,
                key_type: key.algorithm().to_string(),
                known_hosts: self.known_hosts.path().to_path_buf(),
            },
            Verdict::Changed { file, line } => SshError::HostKeyChanged {
                host,
                fingerprint,
                known_hosts: file,
                line,
            },
            Verdict::Revoked => SshError::HostKeyRevoked { host, fingerprint },
        };
        *self.rejection.lock().expect("rejection lock") = Some(rejection);
        Ok(false)
    }
}
