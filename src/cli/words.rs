//! The words after the options: `completions SHELL` and `man`, the `bundle` commands, or the
//! tasks to run (`env:NAME`, `TASK:ARGS`), each parsed by [`TaskCall`].

use std::path::PathBuf;

use clap::ValueEnum;

use super::{Action, Run};
use crate::error::{Error, Result};
use crate::task_call::TaskCall;

/// Tasks to run, then maybe the ad-hoc command (`command`, the words after `--`): there must be
/// at least one of them besides `env:NAME`.
pub(super) fn tasks(words: &[String], command: &[String]) -> Result<Action> {
    let calls = words
        .iter()
        .map(|w| TaskCall::parse(w))
        .collect::<Result<Vec<_>>>()?;
    let command = (!command.is_empty()).then(|| command.join(" "));
    if calls.iter().all(|c| c.name == "env") && command.is_none() {
        return Err(Error::usage_hint(
            if calls.is_empty() {
                "no task given".to_string()
            } else {
                "no task given after env:".to_string()
            },
            "name a task (`rigs --list` shows them) or an ad-hoc command after `--`, \
             e.g. `rigs env:staging uptime` or `rigs -H web-1 -- uptime`",
        ));
    }
    Ok(Action::Run(Run {
        calls,
        command,
        bundle_load: None,
    }))
}

/// `rigs completions SHELL` and `rigs man` are built-in words, recognised only in first place.
pub(super) fn builtin_command(words: &[String]) -> Result<Option<Action>> {
    match words.first().map(String::as_str) {
        Some("completions") => {
            let shell = match words.get(1..) {
                Some([shell]) => shell,
                _ => {
                    return Err(Error::usage_hint(
                        "`rigs completions` takes one shell name",
                        "rigs completions bash|zsh|fish|elvish|powershell",
                    ))
                }
            };
            let shell =
                <clap_complete::Shell as ValueEnum>::from_str(shell, true).map_err(|_| {
                    Error::usage_hint(
                        format!("unknown shell `{shell}`"),
                        "rigs completions bash|zsh|fish|elvish|powershell",
                    )
                })?;
            Ok(Some(Action::Completions(shell)))
        }
        Some("man") if words.len() == 1 => Ok(Some(Action::Man)),
        _ => Ok(None),
    }
}

const INIT_USAGE: &str =
    "rigs init [--image REPO] [--hosts HOST,HOST...] [--force] [--dry-run] [DIR]";

const IMPORT_USAGE: &str = "rigs inventory import ansible|kamal FILE|- [-o FILE [--force]]";

/// `rigs init [DIR]` and `rigs inventory import KIND FILE`, recognised only in first place like
/// the other built-in words, so `rigs env:NAME init` still runs a recipe's task `init`.
pub(super) fn setup_command(cli: &super::Cli) -> Result<Option<Action>> {
    let words = &cli.tasks;
    match words.first().map(String::as_str) {
        Some("init") => {
            let dir = match &words[1..] {
                [] => PathBuf::from("."),
                [dir] => PathBuf::from(dir),
                [_, extra, ..] => {
                    return Err(Error::usage_hint(
                        format!("`rigs init` takes one folder, and `{extra}` is a second one"),
                        INIT_USAGE,
                    ))
                }
            };
            let hosts = crate::init::check_hosts(&cli.hosts)
                .map_err(|message| Error::usage_hint(message, INIT_USAGE))?;
            let image = match &cli.image {
                Some(image) => crate::init::check_image(image)
                    .map_err(|message| Error::usage_hint(message, INIT_USAGE))?,
                None => crate::init::DEFAULT_IMAGE.to_string(),
            };
            Ok(Some(Action::Init(crate::init::Options {
                dir,
                image,
                hosts,
                force: cli.force,
                dry_run: cli.dry_run,
            })))
        }
        Some("inventory") => import_command(&words[1..], cli).map(Some),
        _ => Ok(None),
    }
}

fn import_command(args: &[String], cli: &super::Cli) -> Result<Action> {
    let usage = |message: String| Error::usage_hint(message, IMPORT_USAGE);
    let (kind, input) = match args {
        [] => return Err(usage("`rigs inventory` needs a command".into())),
        [sub, ..] if sub != "import" => {
            return Err(usage(format!(
                "unknown inventory command `{sub}` (expected import)"
            )))
        }
        [_] => {
            return Err(usage(
                "`inventory import` needs the kind of inventory (ansible or kamal) and a file"
                    .into(),
            ))
        }
        [_, kind, rest @ ..] => {
            let kind = match kind.to_ascii_lowercase().as_str() {
                "ansible" => super::ImportKind::Ansible,
                "kamal" => super::ImportKind::Kamal,
                _ => {
                    return Err(usage(format!(
                        "unknown inventory kind `{kind}`: rigs imports `ansible` (an INI or YAML \
                         inventory) and `kamal` (config/deploy.yml)"
                    )))
                }
            };
            match rest {
                [input] => (kind, PathBuf::from(input)),
                [] => {
                    return Err(usage(format!(
                        "`inventory import {}` needs the file to read (`-` reads stdin)",
                        kind.name()
                    )))
                }
                [_, extra, ..] => {
                    return Err(usage(format!(
                        "`inventory import` reads one file, and `{extra}` is a second one"
                    )))
                }
            }
        }
    };
    Ok(Action::InventoryImport(super::Import {
        kind,
        input,
        out: cli.out.clone(),
        force: cli.force,
    }))
}

const BUNDLE_USAGE: &str = "rigs [--compress zstd|gzip|none] bundle create FILE IMAGE...\n  \
     rigs bundle create FILE --compose compose.yaml [--set KEY=VALUE...] [IMAGE...]\n  \
     rigs bundle verify FILE\n  rigs bundle extract FILE DIR\n  \
     rigs [env:NAME | -H HOST] bundle load FILE";

/// `bundle ...` after any `env:NAME` words.
pub(super) fn bundle_command(
    words: &[String],
    compress: Option<&str>,
    compose: &[String],
) -> Result<Option<Action>> {
    let envs = words.iter().take_while(|w| w.starts_with("env:")).count();
    let rest = &words[envs..];
    if rest.first().map(String::as_str) != Some("bundle") {
        return Ok(None);
    }
    let usage = |message: String| Error::usage_hint(message, BUNDLE_USAGE);
    let args = &rest[1..];
    let sub = args.first().map(String::as_str);
    if envs > 0 && sub != Some("load") {
        return Err(usage(format!(
            "`bundle {}` runs on this machine: it takes no env:NAME",
            sub.unwrap_or("")
        )));
    }
    match (sub, args.get(1..).unwrap_or(&[])) {
        (Some("create"), [path, images @ ..]) if !images.is_empty() || !compose.is_empty() => {
            let compression = match compress {
                None => crate::ship::Compression::Gzip,
                Some(c) => crate::ship::Compression::parse(c).ok_or_else(|| {
                    usage(format!("--compress takes zstd, gzip or none, not `{c}`"))
                })?,
            };
            Ok(Some(Action::BundleCreate {
                path: PathBuf::from(path),
                images: images.to_vec(),
                compression,
                compose: compose.to_vec(),
            }))
        }
        (Some("create"), _) => Err(usage(
            "`bundle create` takes the bundle file and at least one image or --compose file".into(),
        )),
        (Some("verify"), [path]) => Ok(Some(Action::BundleVerify(PathBuf::from(path)))),
        (Some("extract"), [path, dir]) => Ok(Some(Action::BundleExtract {
            path: PathBuf::from(path),
            dir: PathBuf::from(dir),
        })),
        (Some("load"), [path]) => {
            let calls = words[..envs]
                .iter()
                .map(|w| TaskCall::parse(w))
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Action::Run(Run {
                calls,
                command: None,
                bundle_load: Some(PathBuf::from(path)),
            })))
        }
        (Some(sub @ ("verify" | "extract" | "load")), _) => {
            Err(usage(format!("wrong arguments for `bundle {sub}`")))
        }
        (Some(other), _) => Err(usage(format!(
            "unknown bundle command `{other}` (expected create, verify, extract or load)"
        ))),
        (None, _) => Err(usage("`bundle` needs a command".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::parse;

    fn message(args: &[&str]) -> String {
        parse(args).unwrap_err().to_string()
    }

    #[test]
    fn bundle_commands_parse() {
        match parse(&[
            "--compress",
            "zstd",
            "bundle",
            "create",
            "a.rigs",
            "x:1",
            "y:2",
        ])
        .unwrap()
        .action
        {
            Action::BundleCreate {
                path,
                images,
                compression,
                compose,
            } => {
                assert!(compose.is_empty());
                assert_eq!(path, PathBuf::from("a.rigs"));
                assert_eq!(images, vec!["x:1".to_string(), "y:2".into()]);
                assert_eq!(compression, crate::ship::Compression::Zstd);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["bundle", "create", "a.rigs", "x:1"])
            .unwrap()
            .action
        {
            Action::BundleCreate { compression, .. } => {
                assert_eq!(compression, crate::ship::Compression::Gzip)
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["bundle", "verify", "a.rigs"]).unwrap().action,
            Action::BundleVerify(_)
        ));
        match parse(&["env:airgap", "bundle", "load", "a.rigs"])
            .unwrap()
            .action
        {
            Action::Run(run) => {
                assert_eq!(run.calls.len(), 1);
                assert_eq!(run.bundle_load, Some(PathBuf::from("a.rigs")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_bundle_commands_say_how_to_write_them() {
        assert!(message(&["bundle"]).contains("needs a command"));
        assert!(message(&["bundle", "create", "a.rigs"]).contains("at least one image"));
        assert!(message(&["bundle", "unpack", "a"]).contains("unknown bundle command `unpack`"));
        assert!(message(&["bundle", "verify"]).contains("bundle verify FILE"));
        assert!(message(&["env:x", "bundle", "create", "a", "b"]).contains("takes no env:NAME"));
        assert!(
            message(&["--compress", "lz4", "bundle", "create", "a", "b"])
                .contains("zstd, gzip or none")
        );
        assert!(message(&["--compress", "zstd", "env:x", "deploy"]).contains("only applies"));
        assert!(message(&["--compose", "c.yaml", "env:x", "deploy"]).contains("only applies"));
        assert!(message(&["--compose", "c.yaml", "bundle", "verify", "a"]).contains("only applies"));
        assert!(
            message(&["--set", "TAG=1", "bundle", "create", "a", "x:1"]).contains("no --compose")
        );
    }

    #[test]
    fn init_takes_a_folder_an_image_and_hosts() {
        match parse(&["init"]).unwrap().action {
            Action::Init(o) => {
                assert_eq!(o.dir, PathBuf::from("."));
                assert_eq!(o.image, crate::init::DEFAULT_IMAGE);
                assert!(o.hosts.is_empty() && !o.force && !o.dry_run);
            }
            other => panic!("{other:?}"),
        }
        let args = [
            "init",
            "shop",
            "--image",
            "registry.example.com/shop",
            "--hosts",
            "web-1,web-2",
            "--force",
        ];
        match parse(&args).unwrap().action {
            Action::Init(o) => {
                assert_eq!(o.dir, PathBuf::from("shop"));
                assert_eq!(o.image, "registry.example.com/shop");
                assert_eq!(o.hosts, ["web-1", "web-2"]);
                assert!(o.force);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["env:staging", "init"]).unwrap().action,
            Action::Run(_)
        ));
    }

    #[test]
    fn bad_init_commands_say_how_to_write_them() {
        assert!(message(&["init", "a", "b"]).contains("`b` is a second one"));
        assert!(message(&["init", "--hosts", "a,,b"]).contains("empty host name"));
        assert!(message(&["init", "--hosts", "root@a"]).contains("bare host name"));
        assert!(message(&["init", "--image", "shop:1.0"]).contains("without a tag"));
        assert!(message(&["init", "-o", "x"]).contains("only applies to `rigs inventory import`"));
        assert!(message(&["init", "--", "ls"]).contains("cannot be combined"));
        assert!(message(&["--image", "a/b", "env:x", "deploy"]).contains("only applies"));
        assert!(message(&["--force", "env:x", "deploy"]).contains("only applies"));
    }

    #[test]
    fn inventory_import_takes_a_kind_and_a_file() {
        let args = ["inventory", "import", "ansible", "hosts.yml"];
        match parse(&args).unwrap().action {
            Action::InventoryImport(i) => {
                assert_eq!(i.kind, super::super::ImportKind::Ansible);
                assert_eq!(i.input, PathBuf::from("hosts.yml"));
                assert_eq!(i.out, None);
            }
            other => panic!("{other:?}"),
        }
        let args = [
            "inventory",
            "import",
            "Kamal",
            "-",
            "-o",
            "inv.toml",
            "--force",
        ];
        match parse(&args).unwrap().action {
            Action::InventoryImport(i) => {
                assert_eq!(i.kind, super::super::ImportKind::Kamal);
                assert_eq!(i.input, PathBuf::from("-"));
                assert_eq!(i.out, Some(PathBuf::from("inv.toml")));
                assert!(i.force);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_inventory_imports_say_how_to_write_them() {
        assert!(message(&["inventory"]).contains("needs a command"));
        assert!(message(&["inventory", "export"]).contains("unknown inventory command `export`"));
        assert!(message(&["inventory", "import"]).contains("ansible or kamal"));
        let unknown = message(&["inventory", "import", "chef", "x"]);
        assert!(
            unknown.contains("`chef`")
                && unknown.contains("`ansible`")
                && unknown.contains("`kamal`"),
            "{unknown}"
        );
        assert!(message(&["inventory", "import", "ansible"]).contains("needs the file"));
        assert!(message(&["inventory", "import", "ansible", "a", "b"]).contains("one file"));
        assert!(
            message(&["inventory", "import", "ansible", "a", "--force"]).contains("there is none")
        );
        assert!(message(&["inventory", "import", "ansible", "a", "-n"]).contains("--dry-run"));
    }

    #[test]
    fn bundle_create_with_compose_needs_no_image() {
        let args = [
            "bundle",
            "create",
            "a.rigs",
            "--compose",
            "c.yaml",
            "--compose",
            "o.yaml",
            "--set",
            "TAG=1",
        ];
        let config = parse(&args).unwrap();
        assert_eq!(config.set, [("TAG".to_string(), "1".to_string())]);
        match config.action {
            Action::BundleCreate {
                images, compose, ..
            } => {
                assert!(images.is_empty());
                assert_eq!(compose, ["c.yaml", "o.yaml"]);
            }
            other => panic!("{other:?}"),
        }
        let with_image = parse(&["bundle", "create", "a.rigs", "x:1", "--compose", "c.yaml"]);
        match with_image.unwrap().action {
            Action::BundleCreate { images, .. } => assert_eq!(images, ["x:1"]),
            other => panic!("{other:?}"),
        }
    }
}
