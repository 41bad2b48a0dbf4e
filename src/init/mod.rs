//! Starting a project: `rigs init` writes one, `rigs inventory import` ([`import`]) converts the
//! inventory of the tool a team comes from.
//!
//! `init` runs in folders that already hold work (an app's repository, a half-set-up project),
//! so it never replaces a file unless `--force` says so, never writes through a symbolic link
//! (a linked `recipes/docker.rhai` is how a project follows rigs' own recipes, and writing
//! through it would change the rigs checkout), and leaves `inventory/hosts.toml` out of an
//! inventory folder that already has files, whose environments it could clash with. Everything
//! it writes must work as it is: the inventory loads and passes the standard recipes' variable
//! checks, so the first `rigs env:staging --dry-run deploy:1.0.0` already runs.

pub mod import;
mod templates;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The image an inventory deploys when `--image` does not name one.
pub const DEFAULT_IMAGE: &str = "registry.example.com/app";

/// The staging hosts an inventory lists when `--hosts` names none.
const EXAMPLE_HOSTS: [&str; 1] = ["stg-1"];

/// `rigs init`, validated.
#[derive(Debug)]
pub struct Options {
    pub dir: PathBuf,
    pub image: String,
    /// The staging hosts; empty for the example ones.
    pub hosts: Vec<String>,
    pub force: bool,
    pub dry_run: bool,
}

/// `--image`: a repository without a tag or digest, as Docker writes one.
pub fn check_image(image: &str) -> std::result::Result<String, String> {
    let image = image.trim();
    let (host, path) = match templates::registry_host(image) {
        Some(host) => (host, &image[host.len() + 1..]),
        None => ("", image),
    };
    let path_ok = !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
    let host_ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
    if path_ok && host_ok {
        return Ok(image.to_string());
    }
    let hint = if path.contains(':') || path.contains('@') {
        "give the repository without a tag or digest (--image registry.example.com/shop): the \
         tag is what `deploy:TAG` takes"
    } else {
        "a repository is lowercase letters, digits, `.`, `_`, `-` and `/`, after an optional \
         registry host: --image registry.example.com/shop"
    };
    Err(format!(
        "--image `{image}` is not an image repository; {hint}"
    ))
}

/// `--hosts`: bare host names or addresses, each at most once, since each becomes a
/// `[hosts.NAME]` entry as well as a staging host.
pub fn check_hosts(hosts: &[String]) -> std::result::Result<Vec<String>, String> {
    let mut checked: Vec<String> = Vec::new();
    for raw in hosts {
        let host = raw.trim();
        let spec = crate::inventory::HostSpec::parse(host).map_err(|e| {
            if host.is_empty() {
                "--hosts has an empty host name (two commas, or a comma at an end)".to_string()
            } else {
                format!("--hosts: {e}")
            }
        })?;
        if spec.user.is_some() || spec.port.is_some() {
            return Err(format!(
                "--hosts `{host}`: give the bare host name; set `user` in [defaults] and `port` \
                 in its [hosts.NAME] entry of the inventory init writes"
            ));
        }
        if checked.iter().any(|h| h == host) {
            return Err(format!("--hosts names `{host}` twice"));
        }
        checked.push(host.to_string());
    }
    Ok(checked)
}

/// What happened to one file.
enum Outcome {
    Wrote,
    Replaced,
    Appended,
    /// Left alone, and why.
    Skipped(String),
}

/// What a file is to hold.
enum Content {
    Whole(String),
    /// `.gitignore`: this text, or this line added to the file that exists.
    Ignore,
}

/// Writes the project `options` describes and returns what to print: what it wrote, what it
/// left alone, and what to run next.
pub fn init(options: &Options) -> Result<String> {
    let hosts: Vec<String> = if options.hosts.is_empty() {
        EXAMPLE_HOSTS.iter().map(|h| h.to_string()).collect()
    } else {
        options.hosts.clone()
    };
    let files: [(&str, Content); 5] = [
        (
            "recipes/docker.rhai",
            Content::Whole(templates::docker_rhai()),
        ),
        (
            "recipes/tasks.rhai",
            Content::Whole(templates::TASKS_RHAI.to_string()),
        ),
        (
            "inventory/hosts.toml",
            Content::Whole(templates::inventory(&options.image, &hosts)),
        ),
        (".gitignore", Content::Ignore),
        (
            ".github/workflows/deploy.yml",
            Content::Whole(templates::workflow()),
        ),
    ];
    let dir = &options.dir;
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Failed {
            message: format!(
                "rigs init: {} is a file, not a folder; nothing was written",
                dir.display()
            ),
            code: crate::error::EXIT_USAGE,
        });
    }
    let mut outcomes = Vec::new();
    for (rel, content) in &files {
        let outcome = write_one(dir, rel, content, options)?;
        outcomes.push((*rel, outcome));
    }
    Ok(report(options, &outcomes))
}

fn write_one(dir: &Path, rel: &str, content: &Content, options: &Options) -> Result<Outcome> {
    let path = dir.join(rel);
    let existing = fs::symlink_metadata(&path).ok();
    if let Some(meta) = &existing {
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path)
                .map(|t| format!(" to {}", t.display()))
                .unwrap_or_default();
            return Ok(Outcome::Skipped(format!(
                "it is a link{target}, and rigs init never writes through one"
            )));
        }
        if meta.is_dir() {
            return Err(Error::Failed {
                message: format!(
                    "rigs init: {} is a folder where init writes a file; move it away or run \
                     init in another folder",
                    path.display()
                ),
                code: crate::error::EXIT_USAGE,
            });
        }
    }
    let text = match content {
        Content::Whole(text) => text,
        Content::Ignore => {
            let Some(_) = existing else {
                return create(&path, templates::GITIGNORE, options);
            };
            let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let current = String::from_utf8_lossy(&bytes);
            let ignored = current.lines().any(|l| {
                matches!(
                    l.trim(),
                    ".rigs" | ".rigs/" | "/.rigs" | "/.rigs/" | ".rigs/*"
                )
            });
            if ignored {
                return Ok(Outcome::Skipped(format!(
                    "it already ignores {}",
                    templates::GITIGNORE_LINE
                )));
            }
            if !options.dry_run {
                let mut file = fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| Error::io(&path, e))?;
                let gap = if current.is_empty() || current.ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                file.write_all(format!("{gap}{}", templates::GITIGNORE_APPENDED).as_bytes())
                    .map_err(|e| Error::io(&path, e))?;
            }
            return Ok(Outcome::Appended);
        }
    };
    if existing.is_some() {
        if !options.force {
            return Ok(Outcome::Skipped(
                "it exists; --force replaces it".to_string(),
            ));
        }
        if !options.dry_run {
            fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        }
        return Ok(Outcome::Replaced);
    }
    if rel.starts_with("inventory/") && !options.force {
        let others = other_toml_files(&dir.join("inventory"));
        if !others.is_empty() {
            return Ok(Outcome::Skipped(format!(
                "inventory/ already holds {}, whose environments it could clash with; \
                 --force writes it anyway",
                others.join(", ")
            )));
        }
    }
    create(&path, text, options)
}

/// The `*.toml` files of the inventory folder, which rigs would read together with ours.
fn other_toml_files(folder: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml") && n != "hosts.toml")
        .collect();
    names.sort();
    names
}

/// Writes a file that did not exist; one that appeared meanwhile is left alone.
fn create(path: &Path, text: &str, options: &Options) -> Result<Outcome> {
    if options.dry_run {
        return Ok(Outcome::Wrote);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    match file {
        Ok(mut file) => {
            file.write_all(text.as_bytes())
                .map_err(|e| Error::io(path, e))?;
            Ok(Outcome::Wrote)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Outcome::Skipped(
            "it exists; --force replaces it".to_string(),
        )),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn report(options: &Options, outcomes: &[(&str, Outcome)]) -> String {
    let dry = options.dry_run;
    let mut text = String::new();
    let width = outcomes.iter().map(|(rel, _)| rel.len()).max().unwrap_or(0);
    let changed = outcomes
        .iter()
        .filter(|(_, o)| !matches!(o, Outcome::Skipped(_)))
        .count();
    for (rel, outcome) in outcomes {
        let (verb, why) = match outcome {
            Outcome::Wrote => (if dry { "would write" } else { "wrote" }, String::new()),
            Outcome::Replaced => (
                if dry { "would replace" } else { "replaced" },
                String::new(),
            ),
            Outcome::Appended => (
                if dry { "would add to" } else { "added to" },
                format!("  (the line {})", templates::GITIGNORE_LINE),
            ),
            Outcome::Skipped(why) => ("skipped", format!("  ({why})")),
        };
        let why = if why.is_empty() {
            why
        } else {
            format!("{:pad$}{why}", "", pad = width - rel.len())
        };
        text.push_str(&format!("{verb:>13} {rel}{why}\n"));
    }
    let place = if options.dir == Path::new(".") {
        "this folder".to_string()
    } else {
        options.dir.display().to_string()
    };
    if dry {
        text.push_str("\ndry run: nothing was written\n");
        return text;
    }
    if changed == 0 {
        text.push_str(&format!(
            "\nnothing was written: {place} already has every file rigs init writes \
             (`rigs init --force` replaces them)\n"
        ));
        return text;
    }
    text.push_str("\nNext steps:\n");
    if options.dir != Path::new(".") {
        let dir = crate::quote::quote(&options.dir.display().to_string());
        text.push_str(&format!("  cd {dir}\n"));
    }
    let mut steps = vec![("rigs --list", "the tasks: the standard ones and yours")];
    if templates::registry_host(&options.image).is_some() {
        steps.push((
            "export REGISTRY_PASSWORD=...",
            "or --secrets FILE; every deploy reads it",
        ));
    }
    steps.extend([
        (
            "rigs env:staging --dry-run deploy:1.0.0",
            "what a deploy runs where; connects to nothing",
        ),
        (
            "rigs env:staging check",
            "once the hosts are real: are they ready?",
        ),
        ("rigs env:staging deploy:1.0.0", "the first deploy"),
    ]);
    for (command, why) in steps {
        text.push_str(&format!("  {command:<41} # {why}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn image_must_be_a_repository() {
        assert_eq!(
            check_image("registry.example.com/shop").unwrap(),
            "registry.example.com/shop"
        );
        assert!(check_image("localhost:5000/team/app").is_ok());
        assert!(check_image("app").is_ok());
        assert!(check_image("shop:1.0")
            .unwrap_err()
            .contains("without a tag"));
        assert!(check_image("registry.example.com/shop@sha256:ab").is_err());
        assert!(check_image("Registry/Shop").is_err());
        assert!(check_image("").is_err());
        assert!(check_image("a//b").is_err());
        assert!(check_image("reg.example.com/").is_err());
        assert!(check_image("a b").is_err());
    }

    #[test]
    fn hosts_must_be_bare_names_once_each() {
        assert_eq!(
            check_hosts(&strings(&["web-1", "10.0.0.5"])).unwrap(),
            ["web-1", "10.0.0.5"]
        );
        assert!(check_hosts(&strings(&["web-1", ""]))
            .unwrap_err()
            .contains("empty host name"));
        assert!(check_hosts(&strings(&["deploy@web-1"]))
            .unwrap_err()
            .contains("bare host name"));
        assert!(check_hosts(&strings(&["web-1:2222"])).is_err());
        assert!(check_hosts(&strings(&["a", "a"]))
            .unwrap_err()
            .contains("twice"));
        assert!(check_hosts(&strings(&["web 1"])).is_err());
        assert!(check_hosts(&strings(&["we\"b"])).is_err());
    }

    fn options(dir: &Path) -> Options {
        Options {
            dir: dir.to_path_buf(),
            image: DEFAULT_IMAGE.to_string(),
            hosts: Vec::new(),
            force: false,
            dry_run: false,
        }
    }

    #[test]
    fn writes_once_then_skips_and_force_replaces() {
        let temp = tempfile::tempdir().unwrap();
        let text = init(&options(temp.path())).unwrap();
        assert!(text.contains("wrote recipes/docker.rhai"), "{text}");
        assert!(text.contains("Next steps"), "{text}");
        let again = init(&options(temp.path())).unwrap();
        assert!(again.contains("nothing was written"), "{again}");
        assert_eq!(again.matches("skipped").count(), 5, "{again}");
        let forced = init(&Options {
            force: true,
            ..options(temp.path())
        })
        .unwrap();
        assert!(forced.contains("replaced inventory/hosts.toml"), "{forced}");
        let ignore = fs::read_to_string(temp.path().join(".gitignore")).unwrap();
        assert_eq!(ignore.matches(".rigs/").count(), 1, "{ignore}");
    }

    #[test]
    fn gitignore_gets_the_line_once() {
        let temp = tempfile::tempdir().unwrap();
        fs::write(temp.path().join(".gitignore"), "/target").unwrap();
        let text = init(&options(temp.path())).unwrap();
        assert!(text.contains("added to .gitignore"), "{text}");
        let ignore = fs::read_to_string(temp.path().join(".gitignore")).unwrap();
        assert!(ignore.starts_with("/target\n"), "{ignore}");
        assert!(ignore.ends_with(".rigs/\n"), "{ignore}");
        init(&options(temp.path())).unwrap();
        let again = fs::read_to_string(temp.path().join(".gitignore")).unwrap();
        assert_eq!(ignore, again);
    }

    #[test]
    fn links_and_other_inventories_are_left_alone() {
        let temp = tempfile::tempdir().unwrap();
        let standard = temp.path().join("standard.rhai");
        fs::write(&standard, "// theirs\n").unwrap();
        fs::create_dir_all(temp.path().join("recipes")).unwrap();
        fs::create_dir_all(temp.path().join("inventory")).unwrap();
        std::os::unix::fs::symlink(&standard, temp.path().join("recipes/docker.rhai")).unwrap();
        fs::write(temp.path().join("inventory/prod.toml"), "").unwrap();
        let text = init(&options(temp.path())).unwrap();
        assert!(text.contains("already holds prod.toml"), "{text}");
        assert!(!temp.path().join("inventory/hosts.toml").exists());
        let text = init(&Options {
            force: true,
            ..options(temp.path())
        })
        .unwrap();
        assert!(text.contains("it is a link"), "{text}");
        assert_eq!(fs::read_to_string(&standard).unwrap(), "// theirs\n");
        assert!(temp.path().join("inventory/hosts.toml").exists());
    }

    #[test]
    fn dry_run_writes_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("new");
        let text = init(&Options {
            dry_run: true,
            ..options(&dir)
        })
        .unwrap();
        assert!(text.contains("would write inventory/hosts.toml"), "{text}");
        assert!(!dir.exists());
    }
}
