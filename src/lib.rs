//! rigs: a Fabric-style remote task runner.
//!
//! Data flows one way: the command line ([`cli`]) and the words after it ([`task_call`]) become a
//! [`plan`]: the steps, their hosts from the [`inventory`] and their tasks from the
//! [`recipe`]s. The scheduler ([`run`](mod@run)) runs each step on its hosts over [`ssh`], with
//! the [`credentials`] gathered beforehand; [`report`] prints what happened. [`run()`] only
//! wires these together; `main.rs` turns its result into the process exit code.

pub mod cancel;
pub mod cli;
pub mod compose;
pub mod credentials;
pub mod diagnostic;
pub mod error;
pub mod glob;
pub mod hex;
pub mod history;
pub mod host_count;
pub mod import;
pub mod init;
pub mod inventory;
pub mod plan;
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
use std::sync::Arc;

use cancel::Cancel;
use cli::{Action, CliExit, Config};
use credentials::{prompt, Credentials};
use error::{Error, Result, EXIT_HOST_FAILED, EXIT_OK, EXIT_USAGE};
use plan::Plan;
use recipe::Recipes;
use report::{console, OutputMode, Reporter, StreamKind};
use secret::Masker;

/// Runs rigs with these process arguments and returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let config = match Config::from_args(args) {
        Ok(config) => config,
        Err(CliExit::Clap(e)) => {
            report::exit::clap(&e);
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
        Err(CliExit::Error(e)) => return failed(&e),
    };
    execute(&config).unwrap_or_else(|e| failed(&e))
}

fn failed(e: &Error) -> i32 {
    report::exit::error(e);
    e.exit_code()
}

fn execute(config: &Config) -> Result<i32> {
    let cancel = Cancel::default();
    let text = match &config.action {
        Action::Run(run) => return run_plan(config, run, cancel),
        Action::Completions(shell) => return stdout(&cli::completions(*shell)),
        Action::Man => return stdout(&cli::man()?),
        Action::Init(options) => init::init(options)?,
        Action::InventoryImport(request) => {
            let printed = init::import::run(request)?;
            console::write(StreamKind::Stderr, printed.stderr.as_bytes());
            printed.stdout
        }
        Action::List => Recipes::load(config.recipes.as_deref(), cancel)?.list_text(),
        Action::Describe(name) => {
            Recipes::load(config.recipes.as_deref(), cancel)?.describe(name)?
        }
        Action::ListHosts => report::hosts::listing(&inventory::load(config.inventory.as_deref())?),
        Action::BundleCreate {
            path,
            images,
            compression,
            compose,
        } => {
            let started = std::time::Instant::now();
            let failed = |message: String, code: i32| Error::Failed {
                message: format!("bundle create {}: {message}", path.display()),
                code,
            };
            let prepared = if compose.is_empty() {
                None
            } else {
                let prepared = ship::pack::prepare_compose(compose, &config.set);
                Some(prepared.map_err(|e| match e {
                    ship::pack::ComposeError::Project(m) => failed(m, EXIT_USAGE),
                    ship::pack::ComposeError::Controller(m) => failed(m, EXIT_HOST_FAILED),
                })?)
            };
            let manifest = ship::pack::create(path, images, *compression, prepared)
                .map_err(|message| failed(message, EXIT_HOST_FAILED))?;
            report::bundle::created(path, &listing(&manifest), started.elapsed())
        }
        Action::BundleVerify(path) => {
            let verified = ship::bundle::verify(path).map_err(bundle_error)?;
            report::bundle::verified(path, &listing(&verified.manifest))
        }
        Action::BundleExtract { path, dir } => {
            let manifest = ship::bundle::extract(path, dir).map_err(bundle_error)?;
            report::bundle::extracted(path, dir, &listing(&manifest))
        }
    };
    stdout(text.as_bytes())
}

fn stdout(bytes: &[u8]) -> Result<i32> {
    console::write(StreamKind::Stdout, bytes);
    Ok(EXIT_OK)
}

fn bundle_error(e: ship::bundle::BundleError) -> Error {
    Error::Failed {
        message: e.to_string(),
        code: EXIT_USAGE,
    }
}

/// What the bundle listings show of a manifest.
fn listing(m: &ship::bundle::BundleManifest) -> report::bundle::BundleListing<'_> {
    report::bundle::BundleListing {
        format: m.format,
        rigs_version: &m.rigs_version,
        created: &m.created,
        archive: &m.archive.name,
        bytes: m.archive.bytes,
        compression: m.archive.compression.name(),
        sha256: &m.archive.sha256,
        images: m
            .images
            .iter()
            .map(|i| report::bundle::ImageListing {
                reference: &i.reference,
                id: &i.id,
                layers: i.diff_ids.len(),
                bytes: i.size,
            })
            .collect(),
        compose: m.compose.as_ref().map(|c| report::bundle::ComposeListing {
            compose_files: c.compose_files.iter().map(String::as_str).collect(),
            files: c.project_files.len(),
            services: c
                .services
                .iter()
                .map(|(s, i)| (s.as_str(), i.as_str()))
                .collect(),
            variables: c.variables.keys().map(String::as_str).collect(),
        }),
    }
}

/// Plans the run, asks what must be asked, runs it, and reports.
fn run_plan(config: &Config, run: &cli::Run, cancel: Cancel) -> Result<i32> {
    let plan = Plan::load(config.plan_request(run), cancel.clone())?;
    plan.confirm(prompt::confirm)?;
    let masker = Masker::default();
    let secrets = credentials::secret_store(config.secrets.as_deref(), &masker)?;
    let mode = OutputMode::or_detect(config.output);
    let reporter = Arc::new(Reporter::new(mode, masker.clone(), config.verbose));
    if config.dry_run {
        let text = "dry run: printing what would run; nothing is executed";
        reporter.message(None, false, text);
    }
    let credentials = Credentials::gather(config.ask(), plan.hosts(), &masker)?;
    let history = plan.history();
    let checks = plan.checks();
    let Plan {
        steps,
        recipes,
        mut settings,
        ssh: overrides,
        bundle,
        ..
    } = plan;
    settings.sudo_password = credentials.sudo_password;
    let context = run::Context {
        recipes: Arc::new(recipes),
        reporter: reporter.clone(),
        pool: ssh::Pool::new(credentials.connect, overrides, cancel.clone()),
        secrets,
        masker,
        cancel,
    };
    let runner = run::Runner::new(context, settings)?;
    if let (Some(path), false) = (&bundle, config.dry_run) {
        // A bundle that is damaged must stop the run before any host is touched.
        let verified = ship::bundle::verify(path).map_err(bundle_error)?;
        runner.shipments().insert_bundle(path, verified);
    }
    let outcome = runner.run(steps);
    if let Some(filter) = history {
        reporter.history(&runner.history_rows(), &filter.nothing_found());
    }
    if checks {
        reporter.check(&runner.check_rows(), &outcome.hosts);
    }
    reporter.summary(&outcome.hosts, outcome.interrupted);
    Ok(outcome.exit_code())
}
