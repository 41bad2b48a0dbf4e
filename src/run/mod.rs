//! The scheduler: tasks left to right, each over its hosts in parallel up to the pool size.
//!
//! Each host's script runs on a blocking thread (Rhai is synchronous) and reaches SSH through the
//! runner's own tokio runtime and the connection [`Pool`], which keeps one connection per host
//! for the whole invocation. A host that fails is not given later tasks; the others carry on.
//! Hosts roll in batches when asked (`batches.rs`), and the deploy locks are taken before
//! anything runs (`held_lock.rs`). Ctrl-C stops new hosts from starting, closes running
//! channels, and still prints the summary.

mod batches;
pub mod check;
mod file_sink;
mod held_lock;
mod host;
mod host_runner;
mod lines;
mod local;
pub mod lock;
mod step;
mod versions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::cancel::Cancel;
use crate::error::{Error, Result, EXIT_INTERRUPTED};
use crate::host_count::HostCount;
use crate::inventory::Host;
use crate::recipe::{OnceStore, Recipes};
use crate::report::{HostOutcome, HostStatus, HostSummary, Reporter};
use crate::secret::{Masker, SecretStore};
use crate::ssh::{Pool, Session, SshError};
use batches::batches;
use held_lock::HeldLock;
pub use held_lock::Locks;
pub use step::{LockAction, Step, Work};

/// How the scheduler runs the steps, as the command line says.
#[derive(Debug, Default)]
pub struct Settings {
    pub pool_size: Option<usize>,
    pub max_fail: Option<HostCount>,
    /// Answers sudo's prompt (`--ask-sudo-pass`, `RIGS_SUDO_PASSWORD`, else the login password).
    pub sudo_password: Option<crate::secret::Secret>,
    /// `--sudo`: ad-hoc commands run through sudo.
    pub sudo_adhoc: bool,
    pub dry_run: bool,
    pub command_timeout: Option<Duration>,
    /// `--lock-wait`: how long to wait for host locks held by another run.
    pub lock_wait: Option<Duration>,
    /// `--canary N`: hosts to run on first, alone.
    pub canary: Option<usize>,
    /// `--canary-wait`: pause after the canary hosts succeeded.
    pub canary_wait: Option<Duration>,
}

/// A host's step result, with the pool slot it held.
type Finished = (
    String,
    Instant,
    host::StepResult,
    tokio::sync::OwnedSemaphorePermit,
);

/// State shared by every host of one invocation.
pub(crate) struct Shared {
    pub recipes: Arc<Recipes>,
    pub reporter: Arc<Reporter>,
    pub pool: Pool,
    pub cancel: Cancel,
    /// Never cancelled: what bookkeeping after Ctrl-C runs under.
    pub never: Cancel,
    pub settings: Settings,
    pub secrets: SecretStore,
    pub masker: Masker,
    pub once: Arc<OnceStore>,
    pub ships: Arc<crate::ship::Shipments>,
    /// History lines gathered by `Work::History`.
    pub history_rows: Mutex<Vec<crate::history::HistoryEntry>>,
    /// The answers `Work::Check` gathered.
    pub check_rows: Mutex<Vec<check::Readiness>>,
    pub runtime: tokio::runtime::Handle,
}

/// What a run is given besides its [`Settings`]: where its tasks come from, where its output
/// goes, how it reaches the hosts, the secrets it may hand out, and what stops it.
pub struct Context {
    pub recipes: Arc<Recipes>,
    pub reporter: Arc<Reporter>,
    pub pool: Pool,
    pub secrets: SecretStore,
    /// Masks every secret known so far; `secret(NAME)` adds the ones it hands out.
    pub masker: Masker,
    pub cancel: Cancel,
}

/// How a whole run ended: each host's outcome, for the summary, and the run's own end.
pub struct Outcome {
    pub hosts: Vec<HostSummary>,
    pub interrupted: bool,
    /// Nothing ran: a host was locked by another run (the message was printed).
    pub refused: Option<String>,
}

impl Outcome {
    pub fn any_failed(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| h.outcome.status() == HostStatus::Failed)
    }

    /// The exit code the run ends with: a refused run counts as failed hosts, Ctrl-C wins over
    /// failures.
    pub fn exit_code(&self) -> i32 {
        use crate::error::{EXIT_HOST_FAILED, EXIT_INTERRUPTED, EXIT_OK};
        if self.refused.is_some() || (!self.interrupted && self.any_failed()) {
            EXIT_HOST_FAILED
        } else if self.interrupted {
            EXIT_INTERRUPTED
        } else {
            EXIT_OK
        }
    }
}

/// Runs steps on their hosts, on a tokio runtime of its own that ends when it is dropped.
pub struct Runner {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Runner {
    /// A runner for one invocation, with a runtime sized for `settings`' pool.
    pub fn new(context: Context, settings: Settings) -> Result<Runner> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("rigs")
            .thread_stack_size(8 * 1024 * 1024)
            // One blocking thread per running host, plus room for the runtime's own blocking
            // work (file reads of transfers), which must never wait for a host to finish.
            .max_blocking_threads(settings.pool_size.unwrap_or(DEFAULT_POOL).clamp(1, 4096) + 64)
            .build()
            .map_err(|e| Error::io("<tokio runtime>", e))?;
        let Context {
            recipes,
            reporter,
            pool,
            secrets,
            masker,
            cancel,
        } = context;
        let verbose = reporter.clone();
        Ok(Runner {
            shared: Arc::new(Shared {
                recipes,
                reporter,
                pool: pool.on_connect(move |host, text| verbose.verbose(host, text)),
                cancel,
                never: Cancel::default(),
                settings,
                secrets,
                masker,
                once: Arc::new(OnceStore::default()),
                ships: Arc::new(crate::ship::Shipments::default()),
                history_rows: Mutex::new(Vec::new()),
                check_rows: Mutex::new(Vec::new()),
                runtime: runtime.handle().clone(),
            }),
            runtime: Some(runtime),
        })
    }

    /// The history lines `Work::History` gathered, oldest first.
    pub fn history_rows(&self) -> Vec<crate::history::HistoryEntry> {
        let mut rows = std::mem::take(&mut *self.shared.history_rows.lock().expect("history"));
        rows.sort_by(|a, b| a.time.cmp(&b.time));
        // Hosts that share a home folder (NFS) share one file: show each line once.
        rows.dedup();
        rows
    }

    /// The answers `Work::Check` gathered, in host order.
    pub fn check_rows(&self) -> Vec<check::Readiness> {
        let mut rows = std::mem::take(&mut *self.shared.check_rows.lock().expect("check"));
        rows.sort_by(|a, b| a.host.cmp(&b.host));
        rows
    }

    /// The invocation's image streams and bundles.
    pub fn shipments(&self) -> &crate::ship::Shipments {
        &self.shared.ships
    }

    /// Runs `steps`, left to right. The first Ctrl-C stops new hosts from starting and running
    /// commands; the second ends rigs at once.
    pub fn run(&self, steps: Vec<Step>) -> Outcome {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the runner");
        let cancel = self.shared.cancel.clone();
        let reporter = self.shared.reporter.clone();
        runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
                reporter.message(
                    None,
                    true,
                    "interrupted: stopping running commands (Ctrl-C again to quit at once)",
                );
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(EXIT_INTERRUPTED);
                }
            }
        });
        runtime.block_on(self.schedule(steps))
    }

    async fn schedule(&self, steps: Vec<Step>) -> Outcome {
        let shared = &self.shared;
        let mut summaries: Vec<HostSummary> = Vec::new();
        let mut started: HashMap<String, Instant> = HashMap::new();
        for step in &steps {
            for h in &step.hosts {
                if !summaries.iter().any(|s| s.host == h.name) {
                    summaries.push(HostSummary {
                        host: h.name.clone(),
                        outcome: HostOutcome::Skipped(None),
                        duration: Duration::ZERO,
                        tasks: Vec::new(),
                        bytes_sent: 0,
                        note: None,
                        version: None,
                    });
                }
            }
        }
        let held = match HeldLock::take(shared, &steps).await {
            Ok(held) => held,
            Err(message) => {
                shared.reporter.message(None, true, &message);
                for s in summaries.iter_mut() {
                    s.outcome = HostOutcome::Skipped(Some(
                        "not started: a host is locked by another run".into(),
                    ));
                }
                return Outcome {
                    hosts: summaries,
                    interrupted: shared.cancel.is_cancelled(),
                    refused: Some(message),
                };
            }
        };
        let mut failed: Vec<String> = Vec::new();
        let mut stopped: Option<String> = None;
        let total = summaries.len();
        let max_fail = shared.settings.max_fail.map(|m| m.of(total));
        let over_limit = |failed: &Vec<String>| max_fail.is_some_and(|m| failed.len() >= m);

        let mut versions: Vec<versions::StepVersions> = Vec::new();
        'steps: for step in steps {
            if shared.cancel.is_cancelled() || over_limit(&failed) {
                break;
            }
            let step = Arc::new(step);
            versions.push(versions::StepVersions {
                label: step.label.clone(),
                env: step.env.clone(),
                hosts: step.hosts.iter().map(|h| h.name.clone()).collect(),
                running: Vec::new(),
            });
            let pool = shared
                .settings
                .pool_size
                .unwrap_or(DEFAULT_POOL)
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
                let ok = result.outcome == HostOutcome::Ok;
                if let (Some(running), Some(v)) = (&result.running, versions.last_mut()) {
                    v.running.push((name.clone(), running.clone(), ok));
                }
                if result.note.is_some() {
                    summary.note = result.note;
                }
                if result.version.is_some() {
                    summary.version = result.version;
                }
                if ok {
                    summary.tasks.push(step.label.clone());
                } else {
                    failed.push(name);
                }
                summary.outcome = result.outcome;
            };
            let batches = batches(&step, &failed, shared.settings.canary);
            for (number, batch) in batches.iter().enumerate() {
                if batches.len() > 1 {
                    let names: Vec<&str> =
                        batch.iter().map(|&i| step.hosts[i].name.as_str()).collect();
                    shared
                        .reporter
                        .batch(number + 1, batches.len(), &names, &step.label);
                }
                let failed_before = failed.len();
                for &index in batch {
                    let host = &step.hosts[index];
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
                        let result = tokio::task::spawn_blocking(move || {
                            host::run_step(&shared, &step, index)
                        })
                        .await
                        .unwrap_or_else(|e| {
                            host::StepResult::failed(format!("internal error: task panicked: {e}"))
                        });
                        (host_name, begun, result, permit)
                    });
                }
                while let Some(done) = running.join_next().await {
                    record(done, &mut failed);
                }
                if shared.cancel.is_cancelled() {
                    break 'steps;
                }
                let last = number + 1 == batches.len();
                if failed.len() > failed_before && !last {
                    let reason = if number == 0 && shared.settings.canary.is_some() {
                        "not started: the canary failed".to_string()
                    } else {
                        format!("not started: batch {} failed", number + 1)
                    };
                    stopped = Some(reason);
                    break 'steps;
                }
                if let (0, false, Some(wait)) = (number, last, shared.settings.canary_wait) {
                    if shared.settings.canary.is_some() && !shared.settings.dry_run {
                        shared.reporter.message(
                            None,
                            false,
                            &format!(
                                "canary ok; waiting {} before the other hosts",
                                crate::report::seconds(wait)
                            ),
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = shared.cancel.cancelled() => break 'steps,
                        }
                    }
                }
            }
        }

        if let Some(reason) = stopped {
            for s in summaries
                .iter_mut()
                .filter(|s| s.outcome.status() == HostStatus::Skipped)
            {
                s.outcome = HostOutcome::Skipped(Some(reason.clone()));
            }
        }

        if let Some(limit) = max_fail.filter(|_| over_limit(&failed)) {
            for s in summaries
                .iter_mut()
                .filter(|s| s.outcome.status() == HostStatus::Skipped)
            {
                s.outcome = HostOutcome::Skipped(Some(format!(
                    "not started: {limit} host(s) failed (--max-fail)"
                )));
            }
        }
        let interrupted = shared.cancel.is_cancelled();
        if interrupted {
            for s in summaries
                .iter_mut()
                .filter(|s| s.outcome.status() == HostStatus::Skipped)
            {
                s.outcome = HostOutcome::Skipped(Some("not started: interrupted".into()));
            }
        }
        for s in summaries.iter_mut() {
            s.bytes_sent = shared.reporter.bytes_sent(&s.host);
        }
        for v in &versions {
            if let Some(text) = v.mixed() {
                shared.reporter.message(None, true, &text);
            }
        }
        if let Some(held) = held {
            held.release(shared).await;
        }
        shared.pool.close_all().await;
        Outcome {
            hosts: summaries,
            interrupted,
            refused: None,
        }
    }
}

/// Ends the runtime, giving what still runs on it (a stuck channel) half a second.
impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_millis(500));
        }
    }
}

impl Shared {
    /// The host's connection, opened on first use and shared by every later command.
    pub(crate) fn connection(&self, host: &Host) -> Result<Session, Arc<SshError>> {
        self.runtime.block_on(self.pool.connection(host))
    }
}

/// Hosts running at once without `--pool-size`. Each holds a thread while it runs; past a few
/// hundred, more threads only cost memory (the handshakes are capped at
/// [`MAX_HANDSHAKES`](crate::ssh::pool::MAX_HANDSHAKES) anyway): 1000 hosts took the same time
/// with 256 at a time as with all at once, and 40% less memory.
pub const DEFAULT_POOL: usize = 256;
