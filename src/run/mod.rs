//! The scheduler: tasks left to right, each over its hosts in parallel up to the pool size.
//!
//! Each host's script runs on a blocking thread (Rhai is synchronous) and reaches SSH through the
//! shared tokio runtime. Connections are opened on first use and kept for the whole invocation,
//! so every command of every task on a host shares one SSH connection. A host that fails is not
//! given later tasks; the others carry on. Ctrl-C stops new hosts from starting, closes running
//! channels, and still prints the summary.

mod host;
mod lines;
mod local;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Map};
use tokio::sync::{OnceCell, Semaphore};

use crate::cancel::Cancel;
use crate::inventory::Endpoint;
use crate::inventory::Host;
use crate::recipe::{OnceStore, OpError, Recipes, Task};
use crate::report::{HostStatus, HostSummary, Reporter};
use crate::secret::{Masker, SecretStore};
use crate::ssh::{ConnectOptions, KnownHosts, Session, SshError, Target};

/// What one step runs on each of its hosts.
pub enum Work {
    Task {
        task: Task,
        args: Vec<Dynamic>,
    },
    Command(String),
    /// `rigs bundle load FILE`.
    BundleLoad(std::path::PathBuf),
}

pub struct Step {
    /// As the user wrote it: `deploy:1.2.3`, or the ad-hoc command.
    pub label: String,
    pub work: Work,
    pub hosts: Vec<Host>,
    pub env: Option<String>,
    /// The environment's own variables (`env.vars` in scripts).
    pub env_vars: Map,
    /// Hosts running this step right now.
    pub running: Arc<std::sync::atomic::AtomicUsize>,
}

pub struct Settings {
    pub pool_size: Option<usize>,
    pub max_fail: Option<MaxFail>,
    /// Answers sudo's prompt (`--ask-sudo-pass`, `RIGS_SUDO_PASSWORD`, else the login password).
    pub sudo_password: Option<crate::secret::Secret>,
    /// `--sudo`: ad-hoc commands run through sudo.
    pub sudo_adhoc: bool,
    pub dry_run: bool,
    pub command_timeout: Option<Duration>,
}

/// A host's step result, with the pool slot it held.
type Finished = (
    String,
    Instant,
    host::StepResult,
    tokio::sync::OwnedSemaphorePermit,
);

/// `--max-fail N|P%`: how many failed hosts stop new hosts from starting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxFail {
    Count(usize),
    Percent(f64),
}

impl MaxFail {
    pub fn parse(text: &str) -> Option<MaxFail> {
        match text.strip_suffix('%') {
            Some(p) => p
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| *p > 0.0 && *p <= 100.0)
                .map(MaxFail::Percent),
            None => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .map(MaxFail::Count),
        }
    }

    /// The failed-host count that stops the run, out of `total` hosts (at least 1).
    pub fn threshold(self, total: usize) -> usize {
        match self {
            MaxFail::Count(n) => n,
            MaxFail::Percent(p) => ((total as f64 * p / 100.0).ceil() as usize).max(1),
        }
    }
}

/// A host's connection, opened by the first command that needs it.
type ConnectionSlot = Arc<OnceCell<Result<Session, String>>>;

/// State shared by every host of one invocation.
pub(crate) struct Shared {
    pub recipes: Arc<Recipes>,
    pub reporter: Arc<Reporter>,
    pub connect: ConnectOptions,
    pub cancel: Cancel,
    pub settings: Settings,
    pub secrets: SecretStore,
    pub masker: Masker,
    pub once: Arc<OnceStore>,
    pub ships: Arc<crate::ship::Shipments>,
    pub runtime: tokio::runtime::Handle,
    connections: Mutex<HashMap<String, ConnectionSlot>>,
    known_hosts: KnownHostsFiles,
    ssh: SshOverrides,
    handshakes: Semaphore,
    servers: Mutex<HashMap<String, Arc<Semaphore>>>,
}

pub struct Outcome {
    pub hosts: Vec<HostSummary>,
    pub interrupted: bool,
}

impl Outcome {
    pub fn any_failed(&self) -> bool {
        self.hosts.iter().any(|h| h.status == HostStatus::Failed)
    }
}

pub struct Runner {
    shared: Arc<Shared>,
}

impl Runner {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        recipes: Arc<Recipes>,
        reporter: Arc<Reporter>,
        connect: ConnectOptions,
        cancel: Cancel,
        settings: Settings,
        secrets: SecretStore,
        masker: Masker,
        runtime: tokio::runtime::Handle,
        ssh: SshOverrides,
        default_known_hosts: std::path::PathBuf,
    ) -> Runner {
        Runner {
            shared: Arc::new(Shared {
                recipes,
                reporter,
                connect,
                cancel,
                settings,
                secrets,
                masker,
                once: Arc::new(OnceStore::default()),
                ships: Arc::new(crate::ship::Shipments::default()),
                runtime,
                connections: Mutex::new(HashMap::new()),
                known_hosts: KnownHostsFiles {
                    default: default_known_hosts,
                    forced: ssh.known_hosts.clone(),
                    files: Mutex::new(HashMap::new()),
                },
                ssh,
                handshakes: Semaphore::new(MAX_HANDSHAKES),
                servers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The invocation's image streams and bundles.
    pub fn shipments(&self) -> &crate::ship::Shipments {
        &self.shared.ships
    }

    pub async fn run(&self, steps: Vec<Step>) -> Outcome {
        let shared = &self.shared;
        let mut summaries: Vec<HostSummary> = Vec::new();
        let mut started: HashMap<String, Instant> = HashMap::new();
        for step in &steps {
            for h in &step.hosts {
                if !summaries.iter().any(|s| s.host == h.name) {
                    summaries.push(HostSummary {
                        host: h.name.clone(),
                        status: HostStatus::Skipped,
                        duration: Duration::ZERO,
                        tasks: Vec::new(),
                        error: None,
                        bytes_sent: 0,
                    });
                }
            }
        }
        let mut failed: Vec<String> = Vec::new();
        let total = summaries.len();
        let max_fail = shared.settings.max_fail.map(|m| m.threshold(total));
        let over_limit = |failed: &Vec<String>| max_fail.is_some_and(|m| failed.len() >= m);

        'steps: for step in steps {
            if shared.cancel.is_cancelled() || over_limit(&failed) {
                break;
            }
            let step = Arc::new(step);
            let pool = shared
                .settings
                .pool_size
                .unwrap_or(usize::MAX)
                .min(step.hosts.len().max(1));
            let semaphore = Arc::new(Semaphore::new(pool));
            let mut running = tokio::task::JoinSet::new();
            let mut record = |joined: Result<Finished, tokio::task::JoinError>,
                              failed: &mut Vec<String>| {
                let Ok((name, begun, result, _permit)) = joined else {
                    return;
                };
                let Some(summary) = summaries.iter_mut().find(|s| s.host == name) else {
                    return;
                };
                summary.duration = begun.elapsed();
                summary.status = result.status;
                match result.status {
                    HostStatus::Ok => summary.tasks.push(step.label.clone()),
                    _ => {
                        summary.error = result.error;
                        failed.push(name);
                    }
                }
            };
            for (index, host) in step.hosts.iter().enumerate() {
                if failed.contains(&host.name) {
                    continue;
                }
                // Wait for a free slot, recording hosts that finish meanwhile, so `--max-fail`
                // sees failures before the next host starts.
                let permit = loop {
                    if over_limit(&failed) {
                        break None;
                    }
                    tokio::select! {
                        p = semaphore.clone().acquire_owned() => break Some(p.expect("semaphore open")),
                        Some(done) = running.join_next(), if !running.is_empty() => record(done, &mut failed),
                        _ = shared.cancel.cancelled() => break None,
                    }
                };
                let Some(permit) = permit else {
                    while let Some(done) = running.join_next().await {
                        record(done, &mut failed);
                    }
                    break 'steps;
                };
                if over_limit(&failed) {
                    drop(permit);
                    continue;
                }
                let begun = *started
                    .entry(host.name.clone())
                    .or_insert_with(Instant::now);
                let shared = shared.clone();
                let step = step.clone();
                // The permit travels back with the result and is released only once the result
                // is recorded, so the next host cannot start before `--max-fail` has seen it.
                let counted = host::Running::enter(&step.running);
                running.spawn(async move {
                    let _counted = counted;
                    let host_name = step.hosts[index].name.clone();
                    let result =
                        tokio::task::spawn_blocking(move || host::run_step(&shared, &step, index))
                            .await
                            .unwrap_or_else(|e| {
                                host::StepResult::failed(format!(
                                    "internal error: task panicked: {e}"
                                ))
                            });
                    (host_name, begun, result, permit)
                });
            }
            while let Some(done) = running.join_next().await {
                record(done, &mut failed);
            }
        }

        if let Some(limit) = max_fail.filter(|_| over_limit(&failed)) {
            for s in summaries
                .iter_mut()
                .filter(|s| s.status == HostStatus::Skipped)
            {
                s.error = Some(format!("not started: {limit} host(s) failed (--max-fail)"));
            }
        }
        let interrupted = shared.cancel.is_cancelled();
        if interrupted {
            for s in summaries
                .iter_mut()
                .filter(|s| s.status == HostStatus::Skipped)
            {
                s.error = Some("not started: interrupted".into());
            }
        }
        for s in summaries.iter_mut() {
            s.bytes_sent = shared.reporter.bytes_sent(&s.host);
        }
        self.close_all().await;
        Outcome {
            hosts: summaries,
            interrupted,
        }
    }

    async fn close_all(&self) {
        let cells: Vec<_> = self
            .shared
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
}

impl Shared {
    /// The host's connection, opened on first use and shared by every later command. Jump hosts
    /// are connected first, each once, and shared by every host behind them.
    pub(crate) fn connection(&self, host: &Host) -> Result<Session, OpError> {
        let result = self.runtime.block_on(async {
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
                            r = self.open(endpoint, via.as_ref()) => r,
                            _ = self.cancel.cancelled() => Err(SshError::Interrupted.to_string()),
                        };
                        if let Ok(session) = &result {
                            self.reporter.verbose(
                                &host.name,
                                &format!(
                                    "connected to {}{} in {} ({})",
                                    endpoint.destination(),
                                    if index < hops { " (jump host)" } else { "" },
                                    crate::report::seconds(started.elapsed()),
                                    session.auth_method
                                ),
                            );
                        }
                        result
                    })
                    .await
                    .clone();
                match opened {
                    Ok(session) => via = Some(session),
                    Err(message) if index < hops => {
                        return Err(format!("jump host {}: {message}", endpoint.destination()))
                    }
                    Err(message) => return Err(message),
                }
            }
            Ok(via.expect("at least the target endpoint"))
        });
        result.map_err(|message| {
            if self.cancel.is_cancelled() {
                OpError::Interrupted
            } else {
                OpError::Failed(message)
            }
        })
    }

    /// Opens one connection, retrying with backoff when the server drops it before login
    /// (OpenSSH's `MaxStartups` does that under a burst of new connections).
    async fn open(&self, endpoint: &Endpoint, via: Option<&Session>) -> Result<Session, String> {
        let target = Target {
            address: endpoint.address.clone(),
            port: endpoint.port,
            user: endpoint.user.clone(),
            identities: endpoint.identities.clone(),
            identities_only: endpoint.identities_only,
            known_hosts: self.known_hosts.get(endpoint.known_hosts.as_deref()),
            accept_new: self.ssh.accept_new.or(endpoint.accept_new).unwrap_or(false),
            connect_timeout: self
                .ssh
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
                other => return other.map_err(|e| e.to_string()),
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
#[derive(Default)]
pub struct SshOverrides {
    pub known_hosts: Option<std::path::PathBuf>,
    pub accept_new: Option<bool>,
    pub connect_timeout: Option<Duration>,
}

/// known_hosts files by path, each read once.
pub(crate) struct KnownHostsFiles {
    default: std::path::PathBuf,
    forced: Option<std::path::PathBuf>,
    files: Mutex<HashMap<std::path::PathBuf, Arc<KnownHosts>>>,
}

impl KnownHostsFiles {
    fn get(&self, configured: Option<&std::path::Path>) -> Arc<KnownHosts> {
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
            .or_insert_with(|| {
                Arc::new(KnownHosts::load(
                    path,
                    &[std::path::Path::new("/etc/ssh/ssh_known_hosts")],
                ))
            })
            .clone()
    }
}
