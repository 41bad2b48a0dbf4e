//! The words after the options: `env:staging deploy:1.2.3 status deploy:tag=1.2.3,force=yes`.
//!
//! Fabric 1 grammar: a task name, then optionally `:` and a comma-separated argument list. An
//! argument `key=value` (key an identifier) is passed by name, anything else by position; `\,`,
//! `\=` and `\\` escape. Only the first `:` separates, so `deploy:sha256:abc` passes `sha256:abc`.

use std::fmt;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Positional(String),
    Named(String, String),
}

/// One word of the invocation, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCall {
    pub name: String,
    pub args: Vec<Arg>,
}

impl TaskCall {
    pub fn parse(word: &str) -> Result<TaskCall> {
        let (name, rest) = match word.split_once(':') {
            Some((name, rest)) => (name, Some(rest)),
            None => (word, None),
        };
        if name.is_empty() {
            return Err(Error::usage_hint(
                format!("`{word}` has no task name before `:`"),
                "write TASK or TASK:ARG,... e.g. deploy:1.2.3",
            ));
        }
        if !is_identifier(name) {
            return Err(Error::usage_hint(
                format!("`{name}` is not a valid task name (in `{word}`)"),
                "task names are letters, digits and `_`, as in the recipe's `fn` name; \
                 run `rigs --list` to see them",
            ));
        }
        let args = match rest {
            None => Vec::new(),
            Some(rest) => parse_args(rest, word)?,
        };
        Ok(TaskCall {
            name: name.to_string(),
            args,
        })
    }

    /// The single positional argument of a built-in like `env:NAME`.
    pub fn single_value(&self) -> Option<&str> {
        match self.args.as_slice() {
            [Arg::Positional(v)] => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for TaskCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (i, arg) in self.args.iter().enumerate() {
            f.write_str(if i == 0 { ":" } else { "," })?;
            match arg {
                Arg::Positional(v) => f.write_str(&written(v)[1])?,
                Arg::Named(k, v) => write!(f, "{k}={}", written(v)[0])?,
            }
        }
        Ok(())
    }
}

/// `v` as a task call word writes it: as a named argument's value (`\` and `,` escaped), and as
/// a positional argument (`=` escaped too). Labels show arguments so, and secrets are masked in
/// these forms as well.
pub fn written(v: &str) -> [String; 2] {
    let named = v.replace('\\', "\\\\").replace(',', "\\,");
    let positional = named.replace('=', "\\=");
    [named, positional]
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_args(rest: &str, word: &str) -> Result<Vec<Arg>> {
    // Each piece keeps whether its `=` was escaped, which decides positional vs named.
    let mut pieces: Vec<(String, Option<usize>)> = Vec::new();
    let mut current = String::new();
    let mut first_eq: Option<usize> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => current.push(next),
                None => {
                    return Err(Error::usage_hint(
                        format!("`{word}` ends with a lone `\\`"),
                        "escape a backslash as `\\\\`",
                    ))
                }
            },
            ',' => {
                pieces.push((std::mem::take(&mut current), first_eq.take()));
            }
            '=' if first_eq.is_none() => {
                first_eq = Some(current.len());
                current.push('=');
            }
            c => current.push(c),
        }
    }
    pieces.push((current, first_eq));

    let mut args = Vec::with_capacity(pieces.len());
    let mut seen_named = false;
    for (piece, eq) in pieces {
        let named = eq.and_then(|at| {
            let (key, value) = (&piece[..at], &piece[at + 1..]);
            is_identifier(key).then(|| (key.to_string(), value.to_string()))
        });
        match named {
            Some((key, value)) => {
                if args
                    .iter()
                    .any(|a| matches!(a, Arg::Named(k, _) if *k == key))
                {
                    return Err(Error::usage(format!(
                        "argument `{key}` is given twice in `{word}`"
                    )));
                }
                seen_named = true;
                args.push(Arg::Named(key, value));
            }
            None => {
                if seen_named {
                    return Err(Error::usage_hint(
                        format!("positional argument `{piece}` follows a named one in `{word}`"),
                        "put positional arguments first, or escape a literal `=` as `\\=`",
                    ));
                }
                args.push(Arg::Positional(piece));
            }
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(v: &str) -> Arg {
        Arg::Positional(v.into())
    }
    fn named(k: &str, v: &str) -> Arg {
        Arg::Named(k.into(), v.into())
    }

    #[test]
    fn bare_task() {
        assert_eq!(
            TaskCall::parse("status").unwrap(),
            TaskCall {
                name: "status".into(),
                args: vec![]
            }
        );
    }

    #[test]
    fn positional_and_named() {
        assert_eq!(
            TaskCall::parse("deploy:1.2.3").unwrap().args,
            vec![pos("1.2.3")]
        );
        assert_eq!(
            TaskCall::parse("deploy:tag=1.2.3,force=yes").unwrap().args,
            vec![named("tag", "1.2.3"), named("force", "yes")]
        );
        assert_eq!(
            TaskCall::parse("deploy:1.2.3,force=yes").unwrap().args,
            vec![pos("1.2.3"), named("force", "yes")]
        );
    }

    #[test]
    fn only_first_colon_splits() {
        assert_eq!(
            TaskCall::parse("deploy:sha256:abc").unwrap().args,
            vec![pos("sha256:abc")]
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            TaskCall::parse(r"say:a\,b,c").unwrap().args,
            vec![pos("a,b"), pos("c")]
        );
        assert_eq!(TaskCall::parse(r"say:a\=b").unwrap().args, vec![pos("a=b")]);
        assert_eq!(
            TaskCall::parse(r"say:a\\b").unwrap().args,
            vec![pos(r"a\b")]
        );
        assert!(TaskCall::parse(r"say:oops\").is_err());
    }

    #[test]
    fn equals_in_value_and_non_identifier_keys() {
        assert_eq!(
            TaskCall::parse("run:cmd=a=b").unwrap().args,
            vec![named("cmd", "a=b")]
        );
        assert_eq!(
            TaskCall::parse("run:echo a=b").unwrap().args,
            vec![pos("echo a=b")]
        );
    }

    #[test]
    fn empty_pieces_are_empty_strings() {
        assert_eq!(TaskCall::parse("t:").unwrap().args, vec![pos("")]);
        assert_eq!(
            TaskCall::parse("t:a,,b").unwrap().args,
            vec![pos("a"), pos(""), pos("b")]
        );
    }

    #[test]
    fn errors() {
        assert!(TaskCall::parse(":x").is_err());
        assert!(TaskCall::parse("de-ploy").is_err());
        assert!(TaskCall::parse("t:a=1,b").is_err());
        assert!(TaskCall::parse("t:a=1,a=2").is_err());
    }

    #[test]
    fn display_round_trips() {
        for w in [
            "deploy:1.2.3",
            r"say:a\,b,k=v",
            "status",
            r"say:a\=b",
            "say:k=a=b",
        ] {
            assert_eq!(TaskCall::parse(w).unwrap().to_string(), w);
        }
    }
}
