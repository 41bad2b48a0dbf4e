//! The connection pool: one SSH connection per host for the whole invocation, opened by the
//! first command that needs it.
//!
//! Every command of every task on a host shares that connection, each on its own channel; a
//! jump host is connected once and shared by every host behind it. Opening many connections at
//! once is where servers push back: OpenSSH's `MaxStartups` drops unauthenticated connections
//! beyond ten to one server, so handshakes are capped per server and overall, and a connection
//! dropped before login is retried with backoff and jitter. known_hosts files are read once per
//! path, however many hosts share them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, Semaphore};

use super::{ConnectOptions, KnownHosts, Session, SshError, Target, GLOBAL_KNOWN_HOSTS};
use crate::cancel::Cancel;
use crate::inventory::{Endpoint, Host};

/// Connection attempts when a server drops connections before login.
const CONNECT_ATTEMPTS: usize = 6;
/// Handshakes in flight to one server: below OpenSSH's default `MaxStartups` of 10, so a burst
/// of hosts behind one address is not dropped in the first place.
const HANDSHAKES_PER_SERVER: usize = 8;
/// Handshakes in flight at once, however many hosts run in parallel.
pub const MAX_HANDSHAKES: usize = 64;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Keepalive interval: a dead peer is noticed after three unanswered ones.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

/// SSH options that the command line sets for every host, overriding ssh_config.
#[derive(Debug, Default)]
pub struct SshOverrides {
    pub known_hosts: Option<PathBuf>,
    /// The system-wide file, instead of [`GLOBAL_KNOWN_HOSTS`].
    pub global_known_hosts: Option<PathBuf>,
    pub accept_new: Option<bool>,
    pub connect_timeout: Option<Duration>,
}

/// A connection, opened by the first command that needs it.
type Slot = Arc<OnceCell<Result<Session, Arc<SshError>>>>;

/// Told of each connection opened: the host it was opened for, and where to, how fast and how
/// it logged in.
type Connected = Box<dyn Fn(&str, &str) + Send + Sync>;

/// The invocation's connections, by endpoint chain.
pub struct Pool {
    connect: ConnectOptions,
    overrides: SshOverrides,
    known_hosts: KnownHostsFiles,
    cancel: Cancel,
    connected: Option<Connected>,
    connections: Mutex<HashMap<String, Slot>>,
    handshakes: Semaphore,
    servers: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Pool {
    /// A pool that logs in with `connect`; `cancel` abandons connections being opened. The
    /// process may then hold a socket per host: its open-files limit goes up.
    pub fn new(connect: ConnectOptions, overrides: SshOverrides, cancel: Cancel) -> Pool {
        raise_open_files_limit();
        let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("/"));
        Pool {
            known_hosts: KnownHostsFiles {
                default: home.join(".ssh/known_hosts"),
                forced: overrides.known_hosts.clone(),
                global: overrides
                    .global_known_hosts
                    .clone()
                    .unwrap_or_else(|| GLOBAL_KNOWN_HOSTS.into()),
                files: Mutex::new(HashMap::new()),
            },
            connect,
            overrides,
            cancel,
            connected: None,
            connections: Mutex::new(HashMap::new()),
            handshakes: Semaphore::new(MAX_HANDSHAKES),
            servers: Mutex::new(HashMap::new()),
        }
    }

    /// Calls `connected` for each connection opened (`-v` shows them).
    pub fn on_connect(self, connected: impl Fn(&str, &str) + Send + Sync + 'static) -> Pool {
        Pool {
            connected: Some(Box::new(connected)),
            ..self
        }
    }

    /// The host's connection, opened on first use and shared by every later command. Jump hosts
    /// are connected first, each once, and shared by every host behind them.
    pub async fn connection(&self, host: &Host) -> Result<Session, Arc<SshError>> {
        let mut via: Option<Session> = None;
        let mut key = String::new();
        let hops = host.jumps.len();
        for (index, endpoint) in host
            .jumps
            .iter()
            .chain(std::iter::once(&host.endpoint))
            .enumerate()
        {
            key.push_str(&format!(
                ">{}|{:?}",
                endpoint.destination(),
                endpoint.identities
            ));
            let cell = self
                .connections
                .lock()
                .expect("connections lock")
                .entry(key.clone())
                .or_default()
                .clone();
            let opened = cell
                .get_or_init(|| async {
                    let started = Instant::now();
                    let result = tokio::select! {
                        r = self.open(endpoint, via.as_ref()) => r.map_err(Arc::new),
                        _ = self.cancel.cancelled() => Err(Arc::new(SshError::Interrupted)),
                    };
                    if let (Ok(session), Some(connected)) = (&result, &self.connected) {
                        let text = format!(
                            "connected to {}{} in {:.2}s ({})",
                            endpoint.destination(),
                            if index < hops { " (jump host)" } else { "" },
                            started.elapsed().as_secs_f64(),
                            session.auth_method
                        );
                        connected(&host.name, &text);
                    }
                    result
                })
                .await
                .clone();
            match opened {
                Ok(session) => via = Some(session),
                Err(error) if index < hops => {
                    return Err(Arc::new(SshError::Jump {
                        destination: endpoint.destination(),
                        error,
                    }))
                }
                Err(error) => return Err(error),
            }
        }
        Ok(via.expect("at least the target endpoint"))
    }

    /// Closes every connection opened, giving up after two seconds.
    pub async fn close_all(&self) {
        let cells: Vec<Slot> = self
            .connections
            .lock()
            .expect("connections lock")
            .values()
            .cloned()
            .collect();
        let close = async {
            for session in cells
                .iter()
                .filter_map(|c| c.get())
                .filter_map(|r| r.as_ref().ok())
            {
                session.close().await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
    }

    /// Opens one connection, retrying with backoff when the server drops it before login
    /// (OpenSSH's `MaxStartups` does that under a burst of new connections).
    async fn open(&self, endpoint: &Endpoint, via: Option<&Session>) -> Result<Session, SshError> {
        let target = Target {
            address: endpoint.address.clone(),
            port: endpoint.port,
            user: endpoint.user.clone(),
            identities: endpoint.identities.clone(),
            identities_only: endpoint.identities_only,
            known_hosts: self.known_hosts.get(endpoint.known_hosts.as_deref()),
            accept_new: self
                .overrides
                .accept_new
                .or(endpoint.accept_new)
                .unwrap_or(false),
            connect_timeout: self
                .overrides
                .connect_timeout
                .or(endpoint.connect_timeout)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            keepalive: Some(endpoint.keepalive.unwrap_or(DEFAULT_KEEPALIVE)),
        };
        let server = format!("{}:{}", endpoint.address, endpoint.port);
        let per_server = self
            .servers
            .lock()
            .expect("servers lock")
            .entry(server.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(HANDSHAKES_PER_SERVER)))
            .clone();
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let result = {
                let _server_slot = per_server.acquire().await.expect("server semaphore open");
                let _slot = self
                    .handshakes
                    .acquire()
                    .await
                    .expect("handshake semaphore open");
                Session::connect(&target, &self.connect, via).await
            };
            match result {
                Err(e) if attempt < CONNECT_ATTEMPTS && e.is_dropped_before_login() => {
                    // Full jitter, so hosts that were dropped together do not come back together.
                    tokio::time::sleep(delay.mul_f64(0.5 + jitter(&server, attempt))).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// A number in [0, 1) that differs between servers, attempts and runs.
fn jitter(server: &str, attempt: usize) -> f64 {
    use std::hash::BuildHasher;
    let hash =
        std::collections::hash_map::RandomState::new().hash_one((server, attempt, Instant::now()));
    (hash % 10_000) as f64 / 10_000.0
}

/// known_hosts files by path, each read once.
struct KnownHostsFiles {
    /// `~/.ssh/known_hosts`, for hosts whose ssh_config names none.
    default: PathBuf,
    /// `--known-hosts`, for every host.
    forced: Option<PathBuf>,
    /// The system-wide file, read as well and never written.
    global: PathBuf,
    files: Mutex<HashMap<PathBuf, Arc<KnownHosts>>>,
}

impl KnownHostsFiles {
    fn get(&self, configured: Option<&Path>) -> Arc<KnownHosts> {
        let path = self
            .forced
            .as_deref()
            .or(configured)
            .unwrap_or(&self.default)
            .to_path_buf();
        self.files
            .lock()
            .expect("known_hosts lock")
            .entry(path.clone())
            .or_insert_with(|| Arc::new(KnownHosts::load(path, &[self.global.as_path()])))
            .clone()
    }
}

/// Every host holds a socket (two behind a jump host), and the default soft limit of 1024 open
/// files is below a thousand hosts: the soft limit goes up to the hard one, as far as the
/// system allows without privileges.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_below_one() {
        for attempt in 1..50 {
            let j = jitter("h:22", attempt);
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
