//! The one error type for failures that stop rigs before or instead of running tasks.
//!
//! A failure on one host is not an `Error`: it is an outcome recorded in the summary, and the other
//! hosts carry on. An `Error` means rigs could not start (bad usage, a broken inventory or recipe) or
//! was interrupted, so each variant knows its exit code and renders a message that says what
//! happened, where, and what to do.

use std::fmt;
use std::path::PathBuf;

use crate::diagnostic::Diagnostic;

/// Exit code: every host succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit code: at least one host failed.
pub const EXIT_HOST_FAILED: i32 = 1;
/// Exit code: usage, inventory or recipe error; nothing was run.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: interrupted by Ctrl-C.
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug)]
pub enum Error {
    /// Bad command line: wrong flags, malformed `TASK:ARGS`, conflicting options.
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// A problem in a user file that can be pointed at (inventory, recipe, secrets file).
    Source(Box<Diagnostic>),
    /// A file that could not be read or written.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A name that does not exist, with the closest names that do.
    Unknown {
        kind: &'static str,
        name: String,
        suggestions: Vec<String>,
        hint: String,
    },
    /// Variables that do not match what the recipes declare (`const VARIABLES`), one line per
    /// problem naming the task, the recipe file and the hosts.
    Variables { problems: Vec<String> },
    /// Work done on this machine alone failed (`bundle create`, `bundle verify`).
    Failed { message: String, code: i32 },
    /// Ctrl-C before any host was started.
    Interrupted,
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Interrupted => EXIT_INTERRUPTED,
            Error::Failed { code, .. } => *code,
            _ => EXIT_USAGE,
        }
    }
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Self {
        Error::Source(Box::new(d))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage { message, hint } => {
                write!(f, "error: {message}")?;
                if let Some(hint) = hint {
                    write!(f, "\n  hint: {hint}")?;
                }
                Ok(())
            }
            Error::Source(d) => write!(f, "{d}"),
            Error::Io { path, source } => write!(f, "error: {}: {source}", path.display()),
            Error::Unknown {
                kind,
                name,
                suggestions,
                hint,
            } => {
                write!(f, "error: unknown {kind} `{name}`")?;
                match suggestions.as_slice() {
                    [] => {}
                    [one] => write!(f, "\n  did you mean `{one}`?")?,
                    many => {
                        let list: Vec<String> = many.iter().map(|s| format!("`{s}`")).collect();
                        write!(f, "\n  did you mean one of {}?", list.join(", "))?
                    }
                }
                write!(f, "\n  hint: {hint}")
            }
            Error::Variables { problems } => {
                write!(
                    f,
                    "error: the variables do not match what the recipes declare; nothing was run"
                )?;
                for p in problems {
                    write!(f, "\n  {p}")?;
                }
                write!(
                    f,
                    "\n  hint: set variables in the inventory ([vars], [env.NAME] vars, [hosts.NAME] \
                     vars) or with --set NAME=VALUE; `rigs -d TASK` lists the ones a task reads"
                )
            }
            Error::Failed { message, .. } => write!(f, "error: {message}"),
            Error::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names from `candidates` close to `name`, best first: what "did you mean" offers.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, c)| {
            *score >= 0.8
                || strsim::damerau_levenshtein(name, c) <= (name.len() / 3).max(1)
                || (name.len() > 2 && (c.contains(name) || name.contains(*c)))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}
