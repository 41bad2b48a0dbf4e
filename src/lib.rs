//! rigs: a Fabric-style remote task runner.
//!
//! Data flows one way: the command line ([`cli`]) and the words after it ([`task_call`]) select
//! hosts from the [`inventory`] and tasks from the [`recipe`]s; the scheduler ([`run`]) runs each
//! task on its hosts over [`ssh`]; [`report`] prints what happened. [`run()`] is the whole program;
//! `main.rs` only turns its result into the process exit code.

pub mod cancel;
pub mod cli;
pub mod diagnostic;
pub mod error;
pub mod glob;
pub mod history;
pub mod inventory;
pub mod prompt;
pub mod quote;
pub mod recipe;
pub mod registry;
pub mod report;
pub mod run;
pub mod secret;
pub mod ship;
pub mod ssh;
pub mod task_call;
pub mod time;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cli::{Action, CliExit, Config, HostKeyPolicy, OutputMode};
use error::{Error, Result, EXIT_HOST_FAILED, EXIT_INTERRUPTED, EXIT_OK};
use inventory::selection::{self, Overrides};
use recipe::Recipes;
use report::{console, escape, Reporter, StreamKind};
use secret::{Masker, SecretStore};

/// Runs rigs with these process arguments and returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    raise_open_files_limit();
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(CliExit::Clap(e)) => {
            print_clap(&e);
            return if e.use_stderr() {
                error::EXIT_USAGE
            } else {
                EXIT_OK
            };
        }
        Err(CliExit::Error(e)) => {
            print_error(&e);
            return e.exit_code();
        }
    };
    match execute(config) {
        Ok(code) => code,
        Err(e) => {
            print_error(&e);
            e.exit_code()
        }
    }
}

/// An error that stops rigs, on stderr. It may quote a host or a file, hence the escaping.
fn print_error(e: &Error) {
    console::line(StreamKind::Stderr, &report::escape_lines(&e.to_string()));
}

/// Help, the version or a usage error, as clap would print it: coloured on a terminal (unless
/// `NO_COLOR`), but through the one writer.
fn print_clap(e: &clap::Error) {
    let (stream, terminal) = if e.use_stderr() {
        (StreamKind::Stderr, std::io::stderr().is_terminal())
    } else {
        (StreamKind::Stdout, std::io::stdout().is_terminal())
    };
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let styled = e.render();
    let text = if terminal && !dumb && std::env::var_os("NO_COLOR").is_none() {
        styled.ansi().to_string()
    } else {
        styled.to_string()
    };
    console::write(stream, text.as_bytes());
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

fn execute(config: Config) -> Result<i32> {
    let cancel = cancel::Cancel::default();
    match &config.action {
        Action::Completions(shell) => {
            let mut cmd = cli::command();
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "rigs", &mut out);
            console::write(StreamKind::Stdout, &out);
            Ok(EXIT_OK)
        }
        Action::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cli::command())
                .render(&mut out)
                .map_err(|e| Error::io("<stdout>", e))?;
            console::write(StreamKind::Stdout, &out);
            Ok(EXIT_OK)
        }
        Action::List => {
            let recipes = Recipes::load(config.recipes.as_deref(), cancel)?;
            console::write(StreamKind::Stdout, recipes.list_text().as_bytes());
            Ok(EXIT_OK)
        }
        Action::Describe(name) => {
            let recipes = Recipes::load(config.recipes.as_deref(), cancel)?;
            let text = recipes.describe_text(recipes.task(name)?);
            console::write(StreamKind::Stdout, text.as_bytes());
            Ok(EXIT_OK)
        }
        Action::ListHosts => {
            let inventory = inventory::load(config.inventory.as_deref())?;
            console::write(StreamKind::Stdout, hosts_text(&inventory).as_bytes());
            Ok(EXIT_OK)
        }
        Action::Run { .. } => run_tasks(config, cancel),
        Action::BundleCreate {
            path,
            images,
            compression,
        } => {
            let started = std::time::Instant::now();
            let manifest = ship::pack::create(path, images, *compression).map_err(|message| {
                Error::Failed {
                    message: format!("bundle create {}: {message}", path.display()),
                    code: EXIT_HOST_FAILED,
                }
            })?;
            let took = started.elapsed().as_secs_f64();
            let text = format!(
                "created {}: {} ({}, {}, {:.1} s)\nsha256 {}",
                path.display(),
                manifest
                    .images
                    .iter()
                    .map(|i| i.reference.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                report::bytes(manifest.archive.bytes),
                manifest.archive.compression.as_str(),
                took,
                manifest.archive.sha256
            );
            console::line(StreamKind::Stdout, &text);
            Ok(EXIT_OK)
        }
        Action::BundleVerify(path) => {
            let verified = ship::bundle::verify(path).map_err(bundle_error)?;
            console::write(
                StreamKind::Stdout,
                bundle_text(path, &verified.manifest).as_bytes(),
            );
            Ok(EXIT_OK)
        }
        Action::BundleExtract { path, dir } => {
            let manifest = ship::bundle::extract(path, dir).map_err(bundle_error)?;
            let text = format!(
                "extracted {} into {}: {}, manifest.json, SHA256SUMS",
                path.display(),
                dir.display(),
                escape(&manifest.archive.name)
            );
            console::line(StreamKind::Stdout, &text);
            Ok(EXIT_OK)
        }
    }
}

fn hosts_text(inventory: &inventory::Inventory) -> String {
    if inventory.envs.is_empty() {
        return "No environments defined.\n".to_string();
    }
    let mut out = String::new();
    for env in inventory.envs.values() {
        out.push_str(&format!("env:{}  ({})\n", env.name, env.file));
        for h in &env.hosts {
            let roles: Vec<&str> = env
                .roles
                .iter()
                .filter(|(_, m)| m.contains(h))
                .map(|(r, _)| r.as_str())
                .collect();
            if roles.is_empty() {
                out.push_str(&format!("    {h}\n"));
            } else {
                out.push_str(&format!("    {h}  [{}]\n", roles.join(", ")));
            }
        }
    }
    out
}

fn bundle_error(e: ship::bundle::BundleError) -> Error {
    Error::Failed {
        message: e.to_string(),
        code: error::EXIT_USAGE,
    }
}

/// What `rigs bundle verify` says of a bundle. The manifest's text comes from whoever made the
/// file: it is escaped.
fn bundle_text(path: &std::path::Path, m: &ship::bundle::BundleManifest) -> String {
    let mut out = format!(
        "{}: ok (bundle format {}, made by rigs {} at {})\n  {}  {}  {}  sha256 {}\n",
        path.display(),
        m.format,
        escape(&m.rigs_version),
        escape(&m.created),
        escape(&m.archive.name),
        report::bytes(m.archive.bytes),
        m.archive.compression.as_str(),
        escape(&m.archive.sha256)
    );
    for i in &m.images {
        out.push_str(&format!(
            "  {}  {}  {} layers  {}\n",
            escape(&i.reference),
            escape(&i.id),
            i.diff_ids.len(),
            report::bytes(i.size)
        ));
    }
    out
}

fn run_tasks(config: Config, cancel: cancel::Cancel) -> Result<i32> {
    let Action::Run {
        calls,
        command,
        bundle_load,
    } = &config.action
    else {
        unreachable!("run_tasks is only called for Action::Run")
    };
    let inventory = inventory::load(config.inventory.as_deref())?;
    let recipes = Recipes::load(config.recipes.as_deref(), cancel.clone())?;
    let ssh_config = inventory::ssh_config::SshConfig::load(config.ssh_config.as_deref())?;
    let overrides = Overrides {
        hosts: config.hosts.clone(),
        roles: config.roles.clone(),
        exclude: config.exclude_hosts.clone(),
        limit: config.limit.clone(),
        user: config.user.clone(),
        port: config.port,
        identities: config.identities.clone(),
        set: config.set.clone(),
    };

    // Everything is checked before anything runs: a typo in the third task must not leave the
    // first one half-deployed.
    let mut env: Option<String> = None;
    let mut steps = Vec::new();
    let env_vars = |env: &Option<String>| {
        env.as_ref()
            .and_then(|e| inventory.envs.get(e))
            .map(|e| recipe::value::table(&e.vars))
            .unwrap_or_default()
    };
    let hosts_for = |env: &Option<String>, what: &str| -> Result<Vec<inventory::Host>> {
        let hosts = selection::select(&inventory, env.as_deref(), &overrides, &ssh_config)?;
        if hosts.is_empty() {
            let hint = if env.is_none() && overrides.hosts.is_empty() {
                "put env:NAME before it (`rigs --list-hosts` shows them) or pass -H HOST"
                    .to_string()
            } else {
                "the host filters (-R, -x, --limit) left no host".to_string()
            };
            return Err(Error::usage_hint(
                format!("no hosts selected for {what}"),
                hint,
            ));
        }
        Ok(hosts)
    };
    // `--batch`, else the environment's `batch` variable.
    let batch_for = |env: &Option<String>| -> Result<Option<run::MaxFail>> {
        if config.batch.is_some() {
            return Ok(config.batch);
        }
        let Some(value) = env
            .as_ref()
            .and_then(|e| inventory.envs.get(e))
            .and_then(|e| e.vars.get("batch"))
        else {
            return Ok(None);
        };
        let text = match value {
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        run::MaxFail::parse(&text).map(Some).ok_or_else(|| {
            Error::usage_hint(
                format!("the environment's `batch` must be N or \"P%\", not {value}"),
                "for example batch = 2 or batch = \"25%\" in [env.NAME] vars",
            )
        })
    };
    let mut unused_env: Option<&task_call::TaskCall> = None;
    for call in calls {
        if call.name == "env" {
            if let Some(previous) = unused_env {
                return Err(no_task_after(previous));
            }
            unused_env = Some(call);
            let name = call.single_value().ok_or_else(|| {
                Error::usage_hint(
                    format!("`{call}`: env takes one environment name"),
                    "write env:NAME, e.g. env:staging",
                )
            })?;
            selection::select(&inventory, Some(name), &Overrides::default(), &ssh_config)?;
            env = Some(name.to_string());
            continue;
        }
        unused_env = None;
        let history = history::Filter {
            env: env.clone(),
            task: None,
            all: config.all,
        };
        let work = match builtin_task(call, &recipes, history)? {
            Some(work) => work,
            None => {
                let (task, args) = recipes.resolve(call)?;
                run::Work::Task { task, args }
            }
        };
        let hosts = hosts_for(&env, &format!("task `{}`", call.name))?;
        steps.push(run::Step {
            label: call.to_string(),
            work,
            hosts,
            env: env.clone(),
            env_vars: env_vars(&env),
            running: Default::default(),
            batch: batch_for(&env)?,
        });
    }
    let from_set: Vec<String> = config.set.iter().map(|(k, _)| k.clone()).collect();
    check_variables(&recipes, &mut steps, &from_set)?;
    if let Some(step) = steps
        .iter()
        .find(|s| matches!(s.work, run::Work::Lock(run::LockAction::Release)))
    {
        if !config.yes && !config.dry_run {
            let mut names: Vec<&str> = step.hosts.iter().map(|h| h.name.as_str()).collect();
            if names.len() > 6 {
                names.truncate(5);
                names.push("...");
            }
            let question = format!(
                "Remove the deploy lock of {} host(s) ({}), whoever holds it?",
                step.hosts.len(),
                names.join(", ")
            );
            match prompt::confirm(&question) {
                Some(true) => {}
                Some(false) => {
                    return Err(Error::usage("lock:release: not confirmed; nothing done"))
                }
                None => {
                    return Err(Error::usage_hint(
                        "lock:release removes another run's lock and needs a confirmation",
                        "run it on a terminal, or add --yes",
                    ))
                }
            }
        }
    }
    if config.canary.is_some() || config.batch.is_some() {
        if let Some(step) = steps.iter().find(|s| matches!(s.work, run::Work::Lock(_))) {
            return Err(Error::usage(format!(
                "`{}` does not roll in batches; leave out --batch and --canary",
                step.label
            )));
        }
    }
    if let (Some(previous), None, None) = (unused_env, command, bundle_load) {
        if !steps.is_empty() {
            return Err(no_task_after(previous));
        }
    }
    if let Some(path) = bundle_load {
        let hosts = if env.is_none() && overrides.hosts.is_empty() {
            vec![inventory::Host::this_machine()]
        } else {
            hosts_for(&env, "bundle load")?
        };
        steps.push(run::Step {
            label: format!("bundle load {}", path.display()),
            work: run::Work::BundleLoad(path.clone()),
            hosts,
            env: env.clone(),
            env_vars: env_vars(&env),
            running: Default::default(),
            batch: batch_for(&env)?,
        });
    }
    if let Some(command) = command {
        let hosts = hosts_for(&env, "the command")?;
        steps.push(run::Step {
            label: format!("-- {command}"),
            work: run::Work::Command(command.clone()),
            hosts,
            env: env.clone(),
            env_vars: env_vars(&env),
            running: Default::default(),
            batch: batch_for(&env)?,
        });
    }

    let masker = Masker::default();
    let secrets = match &config.secrets {
        Some(path) => SecretStore::load(path)?,
        None => SecretStore::default(),
    };
    for s in secrets.file_values() {
        masker.add(s);
    }
    let mode = config.output.unwrap_or_else(|| {
        if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
            OutputMode::Pretty
        } else {
            OutputMode::Plain
        }
    });
    let reporter = Arc::new(Reporter::new(mode, masker.clone(), config.verbose));
    if config.dry_run {
        reporter.message(
            None,
            false,
            "dry run: printing what would run; nothing is executed",
        );
    }

    let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("/"));
    let password = login_password(&config, &masker)?;
    let sudo_password = sudo_password(&config, &masker)?.or_else(|| password.clone());
    let keys = Arc::new(ssh::KeyCache::default());
    let default_identities: Vec<PathBuf> = ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|k| home.join(".ssh").join(k))
        .collect();
    if !config.dry_run {
        preload_keys(&keys, &steps, &default_identities);
    }
    let connect = ssh::ConnectOptions {
        keys,
        default_identities,
        use_agent: true,
        password,
    };
    let ssh_overrides = run::SshOverrides {
        known_hosts: config.known_hosts.clone(),
        global_known_hosts: config.global_known_hosts.clone(),
        accept_new: config
            .host_key_policy
            .map(|p| p == HostKeyPolicy::AcceptNew),
        connect_timeout: config.connect_timeout,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rigs")
        .thread_stack_size(8 * 1024 * 1024)
        // One blocking thread per running host, plus room for the runtime's own blocking work
        // (file reads of transfers), which must never wait for a host to finish.
        .max_blocking_threads(config.pool_size.unwrap_or(run::DEFAULT_POOL).clamp(1, 4096) + 64)
        .build()
        .map_err(|e| Error::io("<tokio runtime>", e))?;
    let runner = run::Runner::new(
        Arc::new(recipes),
        reporter.clone(),
        connect,
        cancel.clone(),
        run::Settings {
            pool_size: config.pool_size,
            max_fail: config.max_fail,
            sudo_password,
            sudo_adhoc: config.sudo,
            dry_run: config.dry_run,
            command_timeout: config.command_timeout,
            lock_wait: config.lock_wait,
            canary: config.canary,
            canary_wait: config.canary_wait,
        },
        secrets,
        masker,
        runtime.handle().clone(),
        ssh_overrides,
        home.join(".ssh/known_hosts"),
    );
    if let (Some(path), false) = (bundle_load, config.dry_run) {
        // A bundle that is damaged must stop the run before any host is touched.
        let verified = ship::bundle::verify(path).map_err(bundle_error)?;
        runner.shipments().insert_bundle(path, verified);
    }
    let watcher = cancel.clone();
    let notify = reporter.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            watcher.cancel();
            notify.message(
                None,
                true,
                "interrupted: stopping running commands (Ctrl-C again to quit at once)",
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(EXIT_INTERRUPTED);
            }
        }
    });
    let shows_history = steps.iter().find_map(|s| match &s.work {
        run::Work::History(filter) => Some(filter.clone()),
        _ => None,
    });
    let outcome = runtime.block_on(runner.run(steps));
    if let Some(filter) = shows_history {
        reporter.history(&runner.history_rows(), &filter.nothing_found());
    }
    reporter.summary(&outcome.hosts, outcome.interrupted);
    if outcome.refused.is_some() {
        runtime.shutdown_timeout(Duration::from_millis(500));
        return Ok(EXIT_HOST_FAILED);
    }
    runtime.shutdown_timeout(Duration::from_millis(500));
    Ok(if outcome.interrupted {
        EXIT_INTERRUPTED
    } else if outcome.any_failed() {
        EXIT_HOST_FAILED
    } else {
        EXIT_OK
    })
}

/// Checks every host's variables for every task against the declarations of the task's recipe
/// file, and fills in their defaults, before anything connects. Problems shared by several
/// hosts are told once, with the hosts.
fn check_variables(recipes: &Recipes, steps: &mut [run::Step], from_set: &[String]) -> Result<()> {
    let mut problems: Vec<(String, Vec<String>)> = Vec::new();
    for step in steps.iter_mut() {
        let run::Work::Task { task, .. } = &step.work else {
            continue;
        };
        for host in step.hosts.iter_mut() {
            for problem in recipes.check_variables(task, &mut host.vars, from_set) {
                let text = format!(
                    "{problem}\n    for {} ({})",
                    step.label,
                    recipes.file_of(task)
                );
                match problems.iter_mut().find(|(t, _)| *t == text) {
                    Some((_, hosts)) => hosts.push(host.name.clone()),
                    None => problems.push((text, vec![host.name.clone()])),
                }
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Variables {
        problems: problems
            .into_iter()
            .map(|(text, hosts)| format!("{text} on {}", hosts.join(", ")))
            .collect(),
    })
}

/// `history[:TASK]` and `lock:status|release`: built into rigs, unless a recipe defines
/// `history`. `history` is the history of the environment before it, filtered by `history`.
fn builtin_task(
    call: &task_call::TaskCall,
    recipes: &Recipes,
    history: history::Filter,
) -> Result<Option<run::Work>> {
    match call.name.as_str() {
        "history" if recipes.task("history").is_err() => {
            let task = match call.args.as_slice() {
                [] => None,
                [task_call::Arg::Positional(task)] if task_call::is_identifier(task) => {
                    Some(task.clone())
                }
                _ => {
                    return Err(Error::usage_hint(
                        format!("`{call}`: history takes at most one task name"),
                        "rigs env:NAME history shows the releases, history:TASK one task's runs, history --all every run",
                    ))
                }
            };
            Ok(Some(run::Work::History(history::Filter {
                task,
                ..history
            })))
        }
        "lock" => {
            let action = match call.single_value() {
                Some("status") => run::LockAction::Status,
                Some("release") => run::LockAction::Release,
                _ => {
                    return Err(Error::usage_hint(
                        format!("unknown lock command `{call}`"),
                        "rigs env:NAME lock:status, or lock:release to remove a stale lock",
                    ))
                }
            };
            Ok(Some(run::Work::Lock(action)))
        }
        _ => Ok(None),
    }
}

fn no_task_after(env: &task_call::TaskCall) -> Error {
    Error::usage_hint(
        format!("`{env}` is followed by no task"),
        "env:NAME selects the hosts for the tasks after it; put those tasks after it",
    )
}

/// The password for hosts that take one: asked once with `--ask-pass`, else `RIGS_PASSWORD`.
fn login_password(config: &Config, masker: &Masker) -> Result<Option<secret::Secret>> {
    ask_or_env(
        config.ask_pass,
        "SSH password: ",
        "--ask-pass",
        "RIGS_PASSWORD",
        config.dry_run,
        masker,
    )
}

/// The sudo password: asked once with `--ask-sudo-pass`, else `RIGS_SUDO_PASSWORD`.
fn sudo_password(config: &Config, masker: &Masker) -> Result<Option<secret::Secret>> {
    ask_or_env(
        config.ask_sudo_pass,
        "sudo password: ",
        "--ask-sudo-pass",
        "RIGS_SUDO_PASSWORD",
        config.dry_run,
        masker,
    )
}

/// A password from the terminal when its flag is given (the flag wins over the variable), else
/// from the environment. A dry run needs none and asks nothing.
fn ask_or_env(
    ask: bool,
    label: &str,
    flag: &str,
    variable: &str,
    dry_run: bool,
    masker: &Masker,
) -> Result<Option<secret::Secret>> {
    if dry_run {
        return Ok(None);
    }
    let password = if ask {
        Some(prompt::hidden(label).ok_or_else(|| {
            Error::usage_hint(
                format!("{flag} needs a terminal to ask on"),
                format!("set {variable} instead when running without one"),
            )
        })?)
    } else {
        std::env::var(variable).ok().map(secret::Secret::new)
    };
    if let Some(p) = &password {
        masker.add(p);
    }
    Ok(password)
}

/// Loads every identity file the run may use, asking for passphrases now rather than in the
/// middle of parallel output.
fn preload_keys(keys: &ssh::KeyCache, steps: &[run::Step], defaults: &[PathBuf]) {
    let mut paths: Vec<&std::path::Path> = Vec::new();
    for step in steps {
        for host in &step.hosts {
            if host.connection != inventory::Connection::Ssh {
                continue;
            }
            for endpoint in host.jumps.iter().chain(std::iter::once(&host.endpoint)) {
                let extra = if endpoint.identities_only {
                    &[][..]
                } else {
                    defaults
                };
                for p in endpoint.identities.iter().chain(extra) {
                    if !paths.contains(&p.as_path()) {
                        paths.push(p);
                    }
                }
            }
        }
    }
    let interactive = prompt::available();
    keys.preload(paths, |path, attempt| {
        if !interactive {
            return None;
        }
        let again = if attempt > 0 {
            "Wrong passphrase. "
        } else {
            ""
        };
        prompt::hidden(&format!(
            "{again}Enter passphrase for key {}: ",
            path.display()
        ))
    });
}
