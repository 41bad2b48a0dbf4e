//! Taking the deploy locks a run needs before anything runs, and giving them back at its end.
//!
//! What the lock commands are and how a holder is described is [`lock`]'s; this is the
//! orchestration: every host at once, waiting up to `--lock-wait` for another run, taking over
//! the locks of runs of this controller that ended, and giving back what was taken when a host
//! refuses, so a run either holds every lock it needs or none.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{host, lock, Shared, Step, Work};
use crate::inventory::Host;
use crate::recipe::{CommandResult, OpError};

/// What a run locks: the hosts of every task marked `@lock`, and what the lock says it is for.
#[derive(Debug)]
pub struct Locks {
    pub hosts: Vec<Host>,
    /// The environments of the locking tasks, space-separated.
    pub env: Option<String>,
    /// The locking tasks as written, space-separated.
    pub tasks: String,
}

impl Locks {
    /// The locks `steps` need, if any of them locks.
    pub fn of(steps: &[Step]) -> Option<Locks> {
        let mut hosts: Vec<Host> = Vec::new();
        let mut envs: Vec<&str> = Vec::new();
        let mut tasks: Vec<&str> = Vec::new();
        for step in steps {
            let Work::Task { task, .. } = &step.work else {
                continue;
            };
            if !task.locks() {
                continue;
            }
            for h in &step.hosts {
                if !hosts.iter().any(|x| x.name == h.name) {
                    hosts.push(h.clone());
                }
            }
            if let Some(env) = step.env.as_deref().filter(|e| !envs.contains(e)) {
                envs.push(env);
            }
            tasks.push(&step.label);
        }
        if hosts.is_empty() {
            return None;
        }
        Some(Locks {
            hosts,
            env: (!envs.is_empty()).then(|| envs.join(" ")),
            tasks: tasks.join(" "),
        })
    }
}

/// The host locks this run holds, and where.
pub(super) struct HeldLock {
    token: String,
    hosts: Vec<Host>,
}

impl HeldLock {
    /// Takes the locks `steps` need, waiting up to `--lock-wait` for another run's locks, and
    /// taking over those of runs on this controller that ended. `Err` says who holds which host.
    pub(super) async fn take(
        shared: &Arc<Shared>,
        steps: &[Step],
    ) -> Result<Option<HeldLock>, String> {
        if shared.settings.dry_run {
            return Ok(None);
        }
        let Some(locks) = Locks::of(steps) else {
            return Ok(None);
        };
        let hosts = locks.hosts;
        let token = lock::token();
        let info = lock::info(&token, locks.env.as_deref(), &locks.tasks, &shared.masker);
        let command = lock::acquire_command(&info, &token);
        let deadline = shared.settings.lock_wait.map(|w| Instant::now() + w);
        let mut waiting_for = String::new();
        loop {
            let results = on_hosts(shared, &hosts, "lock", &command).await;
            let mut got = Vec::new();
            // The first host that refused: its name, and its holder or why taking it failed.
            let mut holder: Option<(String, Result<String, String>)> = None;
            let mut dead = Vec::new();
            for (host, result) in hosts.iter().zip(results) {
                // An unreachable host fails in its task; it cannot be deployed anyway.
                let Ok(r) = result else { continue };
                match lock::Reply::parse(&r.stdout, &r.stderr) {
                    lock::Reply::Acquired => got.push(host.clone()),
                    lock::Reply::Held(info) => match lock::dead_holder(&info, &host.name) {
                        Some(gone) => dead.push((host.clone(), gone)),
                        None => {
                            holder.get_or_insert_with(|| {
                                (host.name.clone(), Ok(lock::describe(&info)))
                            });
                        }
                    },
                    lock::Reply::Failed(why) => {
                        holder.get_or_insert_with(|| (host.name.clone(), Err(why)));
                    }
                }
            }
            for (host, (dead_token, warning)) in dead {
                let take = lock::take_over_command(&dead_token, &info, &token);
                let result = on_hosts(shared, std::slice::from_ref(&host), "lock", &take).await;
                let Some(Ok(r)) = result.into_iter().next() else {
                    continue;
                };
                match lock::Reply::parse(&r.stdout, &r.stderr) {
                    lock::Reply::Acquired => {
                        shared.reporter.message(None, true, &warning);
                        got.push(host);
                    }
                    lock::Reply::Held(info) => {
                        holder
                            .get_or_insert_with(|| (host.name.clone(), Ok(lock::describe(&info))));
                    }
                    // The take-over failed: whoever holds the lock now, its info is unknown.
                    lock::Reply::Failed(_) => {
                        holder.get_or_insert_with(|| (host.name.clone(), Ok(lock::describe(""))));
                    }
                }
            }
            let Some((host, held_by)) = holder else {
                return Ok(Some(HeldLock { token, hosts: got }));
            };
            release(shared, &got, &token).await;
            let waiting = deadline.is_some_and(|d| Instant::now() < d);
            if !waiting || shared.cancel.is_cancelled() {
                let what = match &held_by {
                    Ok(holder) => format!("{host} is locked by {holder}"),
                    Err(e) => format!("cannot take the lock on {host}: {e}"),
                };
                return Err(format!(
                    "{what}\n\
                     wait for it with --lock-wait SECS, or, if that run is gone, release it \
                     with `rigs -H {host} lock:release`"
                ));
            }
            let what = match &held_by {
                Ok(holder) => format!("waiting for the lock on {host} (held by {holder})"),
                Err(e) => format!("waiting for the lock on {host} (cannot take it: {e})"),
            };
            if what != waiting_for {
                shared.reporter.message(None, false, &what);
                waiting_for = what;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shared.cancel.cancelled() => {}
            }
        }
    }

    /// Gives the locks back.
    pub(super) async fn release(self, shared: &Arc<Shared>) {
        release(shared, &self.hosts, &self.token).await;
    }
}

/// Gives back this run's lock on `hosts`. A host where that fails (its connection is lost,
/// the command fails) stays locked, so the user is told, with the command that frees it.
async fn release(shared: &Arc<Shared>, hosts: &[Host], token: &str) {
    let command = lock::release_command(token);
    let results = on_hosts(shared, hosts, "lock", &command).await;
    for (host, result) in hosts.iter().zip(results) {
        let why = match result {
            Ok(r) if r.ok() => continue,
            Ok(r) => match r.stderr.lines().map(str::trim).rfind(|l| !l.is_empty()) {
                Some(line) => line.to_string(),
                None => format!("the release command exited with code {}", r.code),
            },
            // The command is bookkeeping: "connection lost" says it all.
            Err(OpError::Failed(e)) => e.replace(&format!(" during `{command}`"), ""),
            Err(OpError::Interrupted) => "interrupted".to_string(),
        };
        shared
            .reporter
            .message(None, true, &lock::release_failed(&host.name, &why));
    }
}

/// Runs a bookkeeping command on every host at once.
async fn on_hosts(
    shared: &Arc<Shared>,
    hosts: &[Host],
    label: &str,
    command: &str,
) -> Vec<Result<CommandResult, OpError>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, host) in hosts.iter().enumerate() {
        let (shared, host, label, command) = (
            shared.clone(),
            host.clone(),
            label.to_string(),
            command.to_string(),
        );
        set.spawn_blocking(move || (i, host::bookkeeping(&shared, &host, &label, &command)));
    }
    let mut out: Vec<Option<Result<CommandResult, OpError>>> =
        (0..hosts.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            out[i] = Some(r);
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(OpError::Failed("internal error".into()))))
        .collect()
}
