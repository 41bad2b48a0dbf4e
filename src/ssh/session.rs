//! [`Session`]: one authenticated SSH connection, opened directly or through a jump host.
//!
//! Connecting takes three steps, each in its own file: the TCP stream or jump-host tunnel and the
//! SSH handshake here, the server's key checked by [`Client`], then [`authenticate`]. Commands
//! run over the session in [`super::exec`].

use std::sync::{Arc, Mutex};

use russh::client;
use russh::Preferred;

use super::auth::authenticate;
use super::client::Client;
use super::socket::QuickAckStream;
use super::target::{ConnectOptions, Target};
use super::SshError;

/// Both ciphers are AEADs OpenSSH offers by default; with AES instructions in the CPU, AES-GCM
/// costs both ends a fraction of ChaCha20-Poly1305's CPU, which bulk transfers (images) feel.
fn cipher_order() -> Vec<russh::cipher::Name> {
    use russh::cipher;
    #[cfg(target_arch = "x86_64")]
    let aes = std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(target_arch = "aarch64")]
    let aes = std::arch::is_aarch64_feature_detected!("aes");
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let aes = false;
    let mut order = vec![cipher::CHACHA20_POLY1305, cipher::AES_256_GCM];
    if aes {
        order.swap(0, 1);
    }
    order.extend([
        cipher::AES_256_CTR,
        cipher::AES_192_CTR,
        cipher::AES_128_CTR,
    ]);
    order
}

/// An authenticated connection. Cloning shares it.
#[derive(Clone)]
pub struct Session {
    pub(super) handle: Arc<client::Handle<Client>>,
    /// How authentication succeeded, for verbose output.
    pub auth_method: String,
    /// The jump host's session this one tunnels through, kept alive with it.
    _via: Option<Box<Session>>,
}

impl Session {
    /// Connects to `target`, directly or through `via` (a jump host's session, which must stay
    /// open as long as this one).
    pub async fn connect(
        target: &Target,
        options: &ConnectOptions,
        via: Option<&Session>,
    ) -> Result<Session, SshError> {
        let destination = target.destination();
        let deadline = target.connect_timeout;
        match tokio::time::timeout(
            deadline,
            Self::connect_inner(target, options, via, &destination),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(SshError::ConnectTimeout {
                destination,
                after: deadline,
            }),
        }
    }

    async fn connect_inner(
        target: &Target,
        options: &ConnectOptions,
        via: Option<&Session>,
        destination: &str,
    ) -> Result<Session, SshError> {
        let mut preferred = Preferred::default();
        let known_algs = target
            .known_hosts
            .algorithms_for(&target.address, target.port);
        if !known_algs.is_empty() {
            // Ask for a key type we can verify first, as OpenSSH does.
            let mut order = known_algs;
            for alg in Preferred::default().key.iter() {
                if !order.contains(alg) {
                    order.push(alg.clone());
                }
            }
            preferred.key = order.into();
        }
        preferred.cipher = cipher_order().into();
        let config = Arc::new(client::Config {
            nodelay: true,
            preferred,
            keepalive_interval: target.keepalive,
            keepalive_max: 3,
            ..Default::default()
        });
        let rejection = Arc::new(Mutex::new(None));
        let handler = Client {
            address: target.address.clone(),
            port: target.port,
            known_hosts: target.known_hosts.clone(),
            accept_new: target.accept_new,
            rejection: rejection.clone(),
        };
        let connected = match via {
            None => {
                let addr = format!("{}:{}", bracket(&target.address), target.port);
                let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host(&addr)
                    .await
                    .map_err(|_| SshError::Resolve {
                        host: target.address.clone(),
                    })?
                    .collect();
                let tcp = tokio::net::TcpStream::connect(&addresses[..])
                    .await
                    .map_err(|source| SshError::Connect {
                        destination: destination.to_string(),
                        source,
                    })?;
                client::connect_stream(config, QuickAckStream::new(tcp), handler).await
            }
            Some(jump) => {
                let channel = jump
                    .handle
                    .channel_open_direct_tcpip(
                        target.address.clone(),
                        target.port as u32,
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| SshError::Connect {
                        destination: destination.to_string(),
                        source: std::io::Error::other(format!(
                            "the jump host could not open a tunnel: {e}"
                        )),
                    })?;
                client::connect_stream(config, channel.into_stream(), handler).await
            }
        };
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => {
                if let Some(rejected) = rejection.lock().expect("rejection lock").take() {
                    return Err(rejected);
                }
                return Err(SshError::Handshake {
                    destination: destination.to_string(),
                    message: e.to_string(),
                });
            }
        };
        let auth_method = authenticate(&mut handle, target, options, destination).await?;
        Ok(Session {
            handle: Arc::new(handle),
            auth_method,
            _via: via.map(|v| Box::new(v.clone())),
        })
    }

    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

fn bracket(address: &str) -> String {
    if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    }
}
