//! The three output styles, and which one a run gets when nobody names one.
//!
//! The style belongs to the output, not to the command line: the command line only lets the user
//! pick one (`--output`, `RIGS_OUTPUT`), so the type lives here and `cli` uses it.

use std::io::IsTerminal;

use clap::ValueEnum;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    /// Live progress per host, then a summary table
    Pretty,
    /// Lines prefixed with `[host] `
    Plain,
    /// One JSON object per line
    Json,
}

impl OutputMode {
    /// `chosen`, else pretty when both stdout and stderr are terminals, else plain.
    pub fn or_detect(chosen: Option<OutputMode>) -> OutputMode {
        chosen.unwrap_or_else(|| {
            if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
                OutputMode::Pretty
            } else {
                OutputMode::Plain
            }
        })
    }
}
