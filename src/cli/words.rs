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
