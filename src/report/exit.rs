//! What rigs prints when it stops before a run or instead of one: an error, or clap's help,
//! version and usage errors. Both go through the one [`console`] writer like everything else.

use std::io::IsTerminal;

use super::{console, escape_lines, StreamKind};
use crate::error::Error;

/// An error that stops rigs, on stderr. It may quote a host or a file, hence the escaping.
pub fn error(e: &Error) {
    console::line(StreamKind::Stderr, &escape_lines(&e.to_string()));
}

/// Help, the version or a usage error, as clap would print it: coloured on a terminal (unless
/// `NO_COLOR` or a dumb `TERM`).
pub fn clap(e: &clap::Error) {
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
