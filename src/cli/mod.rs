//! Command-line definitions (clap derive) and their conversion into a [`Config`].
//!
//! The clap struct is only the surface; everything downstream reads the validated [`Config`], so the
//! rules between flags (`--serial` vs `--pool-size`, `-R` needing roles, ...) live in one place.

mod plan_request;
mod words;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser, ValueEnum};

use crate::error::{Error, Result};
use crate::host_count::HostCount;
use crate::report::OutputMode;
use crate::task_call::TaskCall;

#[derive(Parser, Debug)]
#[command(
    name = "rigs",
    version,
    about = "Run Rhai recipes on groups of hosts over SSH, in parallel",
    long_about = "Run Rhai recipes on groups of hosts over SSH, in parallel.\n\n\
        Tasks run left to right; `env:NAME` selects an environment of the inventory for the tasks \
        after it. `deploy:1.2.3` passes \"1.2.3\" to task `deploy`; `deploy:tag=1.2.3,force=yes` \
        passes by name; `\\,` escapes a comma.\n\n\
        `rigs init [DIR]` writes a new project (recipes, inventory, CI workflow) and never \
        replaces a file without --force; `rigs inventory import ansible|kamal FILE|-` converts \
        an Ansible inventory or a Kamal deploy.yml into a rigs inventory.",
    after_help = "Examples:\n  rigs --list\n  rigs env:staging deploy:1.2.3\n  \
        rigs -H web-1,web-2 -- docker ps\n  rigs env:production --dry-run deploy:1.2.3\n  \
        rigs completions bash > /etc/bash_completion.d/rigs\n  \
        rigs init --image registry.example.com/shop --hosts web-1,web-2\n  \
        rigs inventory import ansible hosts.yml -o inventory/hosts.toml",
    max_term_width = 100
)]
pub struct Cli {
    /// Tasks to run, left to right: `env:NAME`, `TASK`, `TASK:ARG,KEY=VALUE`
    #[arg(value_name = "TASK[:ARGS]")]
    pub tasks: Vec<String>,

    /// Ad-hoc shell command to run on the selected hosts (after `--`)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,

    /// Recipe file or folder of *.rhai files
    #[arg(
        short = 'f',
        long = "recipes",
        value_name = "PATH",
        env = "RIGS_RECIPES"
    )]
    pub recipes: Option<PathBuf>,

    /// Inventory file or folder of *.toml files
    #[arg(
        short = 'I',
        long = "inventory",
        value_name = "PATH",
        env = "RIGS_INVENTORY"
    )]
    pub inventory: Option<PathBuf>,

    /// Hosts to run on (inventory names or [user@]host[:port]), comma-separated; with `init`,
    /// the staging hosts to write
    #[arg(
        short = 'H',
        long = "hosts",
        value_name = "LIST",
        value_delimiter = ',',
        help_heading = "Host selection"
    )]
    pub hosts: Vec<String>,

    /// Only hosts with these roles in the selected environment, comma-separated
    #[arg(
        short = 'R',
        long = "roles",
        value_name = "LIST",
        value_delimiter = ',',
        help_heading = "Host selection"
    )]
    pub roles: Vec<String>,

    /// Hosts to leave out, comma-separated
    #[arg(
        short = 'x',
        long = "exclude-hosts",
        value_name = "LIST",
        value_delimiter = ',',
        help_heading = "Host selection"
    )]
    pub exclude_hosts: Vec<String>,

    /// Only hosts whose name matches this glob (`*` and `?`)
    #[arg(long = "limit", value_name = "GLOB", help_heading = "Host selection")]
    pub limit: Option<String>,

    /// List the tasks with the first line of their docs
    #[arg(short = 'l', long = "list", help_heading = "Information")]
    pub list: bool,

    /// Show the full docs and parameters of a task or a built-in function (docker::run);
    /// `docker::` lists a module's functions, `::` all
    #[arg(
        short = 'd',
        long = "describe",
        value_name = "NAME",
        help_heading = "Information"
    )]
    pub describe: Option<String>,

    /// List the environments and hosts of the inventory
    #[arg(long = "list-hosts", help_heading = "Information")]
    pub list_hosts: bool,

    /// Override an inventory variable (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// File of KEY=VALUE lines read by `secret(NAME)` before the environment
    #[arg(long = "secrets", value_name = "FILE", env = "RIGS_SECRETS")]
    pub secrets: Option<PathBuf>,

    /// Run on at most N hosts at once (default: all, up to 256 at a time)
    #[arg(
        short = 'z',
        long = "pool-size",
        value_name = "N",
        help_heading = "Execution"
    )]
    pub pool_size: Option<usize>,

    /// One host at a time (same as --pool-size 1)
    #[arg(
        long = "serial",
        conflicts_with = "pool_size",
        help_heading = "Execution"
    )]
    pub serial: bool,

    /// Once N hosts (or P% of them) have failed, start no more hosts
    #[arg(long = "max-fail", value_name = "N|P%", help_heading = "Execution")]
    pub max_fail: Option<String>,

    /// Roll through the hosts N (or P%) at a time; a batch with a failed host stops the run
    /// (default: the environment's `batch`, else all at once)
    #[arg(long = "batch", value_name = "N|P%", help_heading = "Execution")]
    pub batch: Option<String>,

    /// Run on N hosts first, and on the rest only if all of them succeed
    #[arg(long = "canary", value_name = "N", help_heading = "Execution")]
    pub canary: Option<usize>,

    /// Seconds to wait after the canary hosts succeeded, before the rest
    #[arg(
        long = "canary-wait",
        value_name = "SECS",
        requires = "canary",
        help_heading = "Execution"
    )]
    pub canary_wait: Option<f64>,

    /// Seconds to wait for a host's deploy lock held by another run (default: refuse)
    #[arg(long = "lock-wait", value_name = "SECS", help_heading = "Execution")]
    pub lock_wait: Option<f64>,

    /// `history`: list every task's runs, not only releases (deploy, ship, promote, rollback
    /// and tasks that take the deploy lock)
    #[arg(long = "all", help_heading = "Output")]
    pub all: bool,

    /// Answer yes to confirmations (`lock:release`)
    #[arg(short = 'y', long = "yes", help_heading = "Execution")]
    pub yes: bool,

    /// Print what would run on which host; connect to nothing, change nothing
    #[arg(short = 'n', long = "dry-run", help_heading = "Execution")]
    pub dry_run: bool,

    /// Output style (default: pretty on a terminal, plain otherwise)
    #[arg(
        long = "output",
        value_enum,
        value_name = "STYLE",
        env = "RIGS_OUTPUT",
        help_heading = "Output"
    )]
    pub output: Option<OutputMode>,

    /// Show everything: queries (inspect, probes, locks, history), docker's own output, each
    /// task's start and end, and each connection (destination, time, authentication)
    #[arg(short = 'v', long = "verbose", help_heading = "Output")]
    pub verbose: bool,

    /// Log in as this user (overrides the inventory)
    #[arg(short = 'u', long = "user", value_name = "USER", help_heading = "SSH")]
    pub user: Option<String>,

    /// Private key to try (repeatable; tried before inventory and default keys)
    #[arg(
        short = 'i',
        long = "identity",
        value_name = "FILE",
        help_heading = "SSH"
    )]
    pub identity: Vec<PathBuf>,

    /// SSH port for every host (overrides the inventory; a `host:port` string still wins)
    #[arg(long = "port", value_name = "PORT", help_heading = "SSH")]
    pub port: Option<u16>,

    /// ssh_config file to read (default ~/.ssh/config when it exists)
    #[arg(
        short = 'F',
        long = "ssh-config",
        value_name = "FILE",
        help_heading = "SSH"
    )]
    pub ssh_config: Option<PathBuf>,

    /// Ask for the login password once, for hosts that take passwords (or set RIGS_PASSWORD)
    #[arg(long = "ask-pass", help_heading = "SSH")]
    pub ask_pass: bool,

    /// Run the ad-hoc command (after `--`) through sudo
    #[arg(long = "sudo", help_heading = "SSH")]
    pub sudo: bool,

    /// Ask for the sudo password once (or set RIGS_SUDO_PASSWORD; default: the login password)
    #[arg(long = "ask-sudo-pass", help_heading = "SSH")]
    pub ask_sudo_pass: bool,

    /// known_hosts file for every host (default: ssh_config's UserKnownHostsFile, else
    /// ~/.ssh/known_hosts)
    #[arg(
        long = "known-hosts",
        value_name = "FILE",
        env = "RIGS_KNOWN_HOSTS",
        help_heading = "SSH"
    )]
    pub known_hosts: Option<PathBuf>,

    /// System-wide known_hosts file, read as well as the user's and never written (default:
    /// /etc/ssh/ssh_known_hosts)
    #[arg(
        long = "global-known-hosts",
        value_name = "FILE",
        env = "RIGS_GLOBAL_KNOWN_HOSTS",
        help_heading = "SSH"
    )]
    pub global_known_hosts: Option<PathBuf>,

    /// What to do with a host key that is not in known_hosts (default: ssh_config's
    /// StrictHostKeyChecking, else strict; a changed key is always refused)
    #[arg(
        long = "host-key-policy",
        value_enum,
        value_name = "POLICY",
        help_heading = "SSH"
    )]
    pub host_key_policy: Option<HostKeyPolicy>,

    /// Seconds to wait for a connection and login (default: ssh_config's ConnectTimeout, else 10)
    #[arg(long = "connect-timeout", value_name = "SECS", help_heading = "SSH")]
    pub connect_timeout: Option<f64>,

    /// Seconds a single command may run before its host fails (default: no limit)
    #[arg(long = "command-timeout", value_name = "SECS", help_heading = "SSH")]
    pub command_timeout: Option<f64>,

    /// Compression of `bundle create` (default gzip, which every engine loads; zstd needs
    /// Docker 23 or later on the hosts)
    #[arg(
        long = "compress",
        value_name = "zstd|gzip|none",
        help_heading = "Bundles"
    )]
    pub compress: Option<String>,

    /// A compose file whose project and service images `bundle create` carries (repeatable, for
    /// override files; `--set KEY=VALUE` gives its interpolation variables)
    #[arg(long = "compose", value_name = "FILE", help_heading = "Bundles")]
    pub compose: Vec<String>,

    /// `init`: the image repository, without a tag, that the new inventory deploys (default
    /// registry.example.com/app)
    #[arg(long = "image", value_name = "REPO", help_heading = "Project setup")]
    pub image: Option<String>,

    /// `init`: replace the files it would otherwise leave alone; `inventory import`: replace the
    /// --out file
    #[arg(long = "force", help_heading = "Project setup")]
    pub force: bool,

    /// `inventory import`: write the TOML to FILE instead of stdout
    #[arg(
        short = 'o',
        long = "out",
        value_name = "FILE",
        help_heading = "Project setup"
    )]
    pub out: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum HostKeyPolicy {
    /// Refuse hosts whose key is not in known_hosts
    Strict,
    /// Record the key of a host seen for the first time
    AcceptNew,
}

/// What the user asked for, validated.
#[derive(Debug)]
pub enum Action {
    List,
    Describe(String),
    ListHosts,
    Completions(clap_complete::Shell),
    Man,
    Run(Run),
    /// `bundle create FILE [IMAGE...]`, with `--compose` files or at least one image.
    BundleCreate {
        path: PathBuf,
        images: Vec<String>,
        compression: crate::ship::Compression,
        /// The compose files as given with `--compose`, in order.
        compose: Vec<String>,
    },
    /// `bundle verify FILE`
    BundleVerify(PathBuf),
    /// `bundle extract FILE DIR`
    BundleExtract {
        path: PathBuf,
        dir: PathBuf,
    },
    /// `init [DIR]`: write a new project.
    Init(crate::init::Options),
    /// `inventory import KIND FILE|-`: convert another tool's inventory.
    InventoryImport(Import),
}

/// Which other tool's inventory `inventory import` reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ImportKind {
    Ansible,
    Kamal,
}

impl ImportKind {
    pub fn name(self) -> &'static str {
        match self {
            ImportKind::Ansible => "ansible",
            ImportKind::Kamal => "kamal",
        }
    }
}

/// `inventory import KIND FILE|- [-o FILE] [--force]`
#[derive(Debug)]
pub struct Import {
    pub kind: ImportKind,
    /// The file to read; `-` is stdin.
    pub input: PathBuf,
    /// Where the TOML goes instead of stdout.
    pub out: Option<PathBuf>,
    /// Replace `out` when it exists.
    pub force: bool,
}

/// Tasks to run on hosts: the words after the options, then what runs after them.
#[derive(Debug)]
pub struct Run {
    /// `env:NAME` and the tasks, left to right.
    pub calls: Vec<TaskCall>,
    /// The ad-hoc command after `--`.
    pub command: Option<String>,
    /// `bundle load FILE`: load a bundle on the selected hosts (or this machine).
    pub bundle_load: Option<PathBuf>,
}

/// Everything downstream needs from the command line.
#[derive(Debug)]
pub struct Config {
    pub action: Action,
    pub recipes: Option<PathBuf>,
    pub inventory: Option<PathBuf>,
    pub hosts: Vec<String>,
    pub roles: Vec<String>,
    pub exclude_hosts: Vec<String>,
    pub limit: Option<String>,
    pub set: Vec<(String, String)>,
    pub secrets: Option<PathBuf>,
    pub pool_size: Option<usize>,
    pub max_fail: Option<HostCount>,
    pub batch: Option<HostCount>,
    pub canary: Option<usize>,
    pub canary_wait: Option<Duration>,
    pub lock_wait: Option<Duration>,
    pub yes: bool,
    pub dry_run: bool,
    /// `--all`: the history of every task, not only releases.
    pub all: bool,
    pub output: Option<OutputMode>,
    pub verbose: bool,
    pub user: Option<String>,
    pub identities: Vec<PathBuf>,
    pub port: Option<u16>,
    pub known_hosts: Option<PathBuf>,
    pub global_known_hosts: Option<PathBuf>,
    pub host_key_policy: Option<HostKeyPolicy>,
    pub connect_timeout: Option<Duration>,
    pub ssh_config: Option<PathBuf>,
    pub ask_pass: bool,
    pub sudo: bool,
    pub ask_sudo_pass: bool,
    pub command_timeout: Option<Duration>,
}

impl Config {
    /// Parses the process arguments. `Err(Ok(text))` is clap's help or version to print on stdout;
    /// `Err(Err(e))` a usage error.
    pub fn from_args(
        args: impl IntoIterator<Item = OsString>,
    ) -> std::result::Result<Config, CliExit> {
        let cli = Cli::try_parse_from(args).map_err(CliExit::Clap)?;
        Config::from_cli(cli).map_err(CliExit::Error)
    }

    fn from_cli(cli: Cli) -> Result<Config> {
        let set = cli
            .set
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) if crate::task_call::is_identifier(k) => {
                    Ok((k.to_string(), v.to_string()))
                }
                _ => Err(Error::usage_hint(
                    format!("--set expects KEY=VALUE, got `{kv}`"),
                    "for example --set image=registry.example.com/app",
                )),
            })
            .collect::<Result<Vec<_>>>()?;

        let pool_size = match (cli.serial, cli.pool_size) {
            (true, _) => Some(1),
            (_, Some(0)) => return Err(Error::usage("--pool-size must be at least 1")),
            (_, n) => n,
        };
        let connect_timeout = cli
            .connect_timeout
            .map(|s| seconds("--connect-timeout", s))
            .transpose()?;
        let command_timeout = cli
            .command_timeout
            .map(|s| seconds("--command-timeout", s))
            .transpose()?;

        let max_fail = cli
            .max_fail
            .as_deref()
            .map(|m| {
                HostCount::parse(m).ok_or_else(|| {
                    Error::usage_hint(
                        format!("--max-fail expects N or P%, got `{m}`"),
                        "for example --max-fail 2 or --max-fail 10%",
                    )
                })
            })
            .transpose()?;
        let batch = cli
            .batch
            .as_deref()
            .map(|b| {
                HostCount::parse(b).ok_or_else(|| {
                    Error::usage_hint(
                        format!("--batch expects N or P% (at least 1), got `{b}`"),
                        "for example --batch 2 or --batch 25%",
                    )
                })
            })
            .transpose()?;
        if cli.canary == Some(0) {
            return Err(Error::usage("--canary must be at least 1"));
        }
        let canary_wait = cli
            .canary_wait
            .map(|s| seconds("--canary-wait", s))
            .transpose()?;
        let lock_wait = cli
            .lock_wait
            .map(|s| seconds("--lock-wait", s))
            .transpose()?;
        let informational = [cli.list, cli.describe.is_some(), cli.list_hosts];
        if informational.iter().filter(|b| **b).count() > 1 {
            return Err(Error::usage(
                "use only one of --list, --describe and --list-hosts",
            ));
        }
        let action = if cli.list {
            Action::List
        } else if let Some(task) = cli.describe.clone() {
            Action::Describe(task)
        } else if cli.list_hosts {
            Action::ListHosts
        } else if let Some(action) = words::builtin_command(&cli.tasks)? {
            action
        } else if let Some(action) = words::setup_command(&cli)? {
            action
        } else if let Some(action) =
            words::bundle_command(&cli.tasks, cli.compress.as_deref(), &cli.compose)?
        {
            if !cli.command.is_empty() {
                return Err(Error::usage(
                    "an ad-hoc command after `--` cannot be combined with `bundle`",
                ));
            }
            action
        } else {
            words::tasks(&cli.tasks, &cli.command)?
        };
        if cli.compress.is_some() && !matches!(action, Action::BundleCreate { .. }) {
            return Err(Error::usage_hint(
                "--compress only applies to `bundle create`",
                "recipes choose with docker::ship(image, #{ compress: \"zstd\" })",
            ));
        }
        if !cli.compose.is_empty() && !matches!(action, Action::BundleCreate { .. }) {
            return Err(Error::usage_hint(
                "--compose only applies to `bundle create`",
                "recipes name their compose files themselves",
            ));
        }
        if !set.is_empty()
            && matches!(&action, Action::BundleCreate { compose, .. } if compose.is_empty())
        {
            return Err(Error::usage_hint(
                "--set with `bundle create` gives a compose project's variables, and there is \
                 no --compose",
                "rigs bundle create FILE --compose compose.yaml --set TAG=1.2.3",
            ));
        }
        setup_options_fit(&cli, &action)?;
        if !matches!(action, Action::Run(_)) && !cli.command.is_empty() {
            return Err(Error::usage(
                "an ad-hoc command after `--` cannot be combined with this action",
            ));
        }

        Ok(Config {
            action,
            recipes: cli.recipes,
            inventory: cli.inventory,
            hosts: nonempty(cli.hosts),
            roles: nonempty(cli.roles),
            exclude_hosts: nonempty(cli.exclude_hosts),
            limit: cli.limit,
            set,
            secrets: cli.secrets,
            pool_size,
            max_fail,
            batch,
            canary: cli.canary,
            canary_wait,
            lock_wait,
            yes: cli.yes,
            dry_run: cli.dry_run,
            all: cli.all,
            output: cli.output,
            verbose: cli.verbose,
            user: cli.user,
            identities: cli.identity,
            port: cli.port,
            known_hosts: cli.known_hosts,
            global_known_hosts: cli.global_known_hosts,
            host_key_policy: cli.host_key_policy,
            connect_timeout,
            ssh_config: cli.ssh_config,
            ask_pass: cli.ask_pass,
            sudo: cli.sudo,
            ask_sudo_pass: cli.ask_sudo_pass,
            command_timeout,
        })
    }
}

/// `--image`, `--force` and `--out` belong to `init` and `inventory import`; anywhere else they
/// would be silently ignored, so they are refused. `--dry-run` is refused with `inventory import`,
/// which changes nothing but its --out file.
fn setup_options_fit(cli: &Cli, action: &Action) -> Result<()> {
    let (init, import) = (
        matches!(action, Action::Init(_)),
        matches!(action, Action::InventoryImport(_)),
    );
    if cli.image.is_some() && !init {
        return Err(Error::usage_hint(
            "--image only applies to `rigs init`",
            "set the image of an existing project in the inventory ([vars] image), or \
             --set image=REPO for one run",
        ));
    }
    if cli.out.is_some() && !import {
        return Err(Error::usage_hint(
            "-o/--out only applies to `rigs inventory import`",
            "the output style is --output pretty|plain|json",
        ));
    }
    if cli.force && !init && !(import && cli.out.is_some()) {
        return Err(Error::usage_hint(
            if import {
                "--force with `inventory import` replaces the -o FILE, and there is none"
            } else {
                "--force only applies to `rigs init` and `rigs inventory import -o FILE`"
            },
            "rigs init --force, or rigs inventory import ansible hosts.yml -o FILE --force",
        ));
    }
    if import && cli.dry_run {
        return Err(Error::usage_hint(
            "--dry-run does not apply to `inventory import`",
            "without -o it only prints the converted inventory",
        ));
    }
    Ok(())
}

/// How argument parsing ended when it did not produce a [`Config`].
pub enum CliExit {
    Clap(clap::Error),
    Error(Error),
}

fn nonempty(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn seconds(flag: &str, value: f64) -> Result<Duration> {
    crate::time::seconds(value).ok_or_else(|| {
        Error::usage(format!(
            "{flag} must be a number of seconds {}, got {value}",
            crate::time::seconds_range()
        ))
    })
}

pub fn command() -> clap::Command {
    Cli::command()
}

/// `rigs completions SHELL`: the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "rigs", &mut out);
    out
}

/// `rigs man`: the man page, in roff.
pub fn man() -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command())
        .render(&mut out)
        .map_err(|e| Error::io("<stdout>", e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The [`Config`] of `rigs ARGS...`, for the tests of the command line.
    pub(super) fn parse(args: &[&str]) -> Result<Config> {
        let cli = Cli::try_parse_from(std::iter::once("rigs").chain(args.iter().copied())).unwrap();
        Config::from_cli(cli)
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn tasks_and_command() {
        let c = parse(&["env:staging", "deploy:1.2.3"]).unwrap();
        let Action::Run(run) = c.action else {
            panic!("{:?}", c.action)
        };
        assert_eq!(run.calls.len(), 2);
        assert_eq!(run.calls[1].to_string(), "deploy:1.2.3");
        assert_eq!(run.command, None);
        let c = parse(&["-H", "a,b", "--", "docker", "ps"]).unwrap();
        assert_eq!(c.hosts, vec!["a", "b"]);
        let Action::Run(run) = c.action else {
            panic!("{:?}", c.action)
        };
        assert_eq!(run.command.as_deref(), Some("docker ps"));
    }

    #[test]
    fn usage_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["env:staging"]).is_err());
        assert!(parse(&["--set", "novalue", "t"]).is_err());
        assert!(parse(&["--pool-size", "0", "t"]).is_err());
        assert!(parse(&["completions", "tcsh"]).is_err());
        assert!(parse(&["--connect-timeout", "0", "t"]).is_err());
    }

    #[test]
    fn serial_is_pool_of_one() {
        assert_eq!(parse(&["--serial", "t"]).unwrap().pool_size, Some(1));
    }
}
