//! Everything rigs prints while running: remote output, progress, the summary.
//!
//! All output goes through one [`Reporter`], which masks secrets, escapes the control characters
//! of text from outside rigs ([`escape()`]) so a host cannot forge lines or repaint the terminal,
//! and hands whole lines to the [`console`] writer, which puts each in one write under a lock
//! shared by stdout and stderr, so parallel hosts never interleave half-lines. Three styles:
//! - `plain`: remote stdout on stdout and remote stderr on stderr, each line prefixed `[host] `;
//!   rigs' own status lines on stderr;
//! - `pretty`: the same lines above one live progress line per running host (indicatif);
//! - `json`: one JSON object per line on stdout, each with an `event` field.

mod bar_terminal;
pub mod bundle;
mod check_table;
pub mod console;
mod escape;
pub mod exit;
mod history_table;
mod host_outcome;
pub mod hosts;
mod output_mode;
mod summary;

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use bar_terminal::BarTerminal;
pub use check_table::Readiness;
pub use escape::{escape, escape_lines};
pub use host_outcome::{Fault, HostOutcome, HostStatus};
pub use output_mode::OutputMode;
pub use summary::{bytes, first_useful_line, HostSummary};

use crate::secret::Masker;

/// The longest line of host output shown whole, in bytes: a longer one is shown in pieces of this
/// size, so a host printing without newlines cannot make the controller hold it all.
pub const LINE_CAP: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    fn name(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
}

pub struct Reporter {
    mode: OutputMode,
    masker: Masker,
    verbose: bool,
    bars: Option<Bars>,
    color: bool,
    transfers: Mutex<HashMap<String, Transfer>>,
    /// Hosts told that a line of theirs was cut into pieces.
    told_cut: Mutex<HashSet<String>>,
}

/// How many bytes a transfer will send, as far as the sender knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    Exact(u64),
    /// Worked out from what was sent so far (a compressed stream): it may move.
    Estimate(u64),
}

impl Total {
    pub fn bytes(self) -> u64 {
        match self {
            Total::Exact(b) | Total::Estimate(b) => b,
        }
    }

    pub fn is_estimate(self) -> bool {
        matches!(self, Total::Estimate(_))
    }
}

/// A host's transfer so far, for rates and throttling progress output.
struct Transfer {
    started: Instant,
    shown: Option<Instant>,
    /// Bytes at the last line shown: the first bytes to flow are shown at once.
    shown_bytes: u64,
    /// The largest estimated total so far, which is the one shown.
    top: u64,
    /// The highest percentage shown so far.
    percent: u64,
    /// Bytes of finished transfers (the summary's SENT column).
    total: u64,
}

impl Transfer {
    fn new(now: Instant) -> Transfer {
        Transfer {
            started: now,
            shown: None,
            shown_bytes: 0,
            top: 0,
            percent: 0,
            total: 0,
        }
    }

    /// The total and percentage to show for `done` bytes of `total`: an estimate only grows
    /// and the percentage only rises, so the display never runs backwards.
    fn shown_total(&mut self, done: u64, total: Option<Total>) -> (Option<Total>, Option<u64>) {
        let total = match total {
            Some(Total::Estimate(bytes)) => {
                self.top = self.top.max(bytes).max(done);
                Some(Total::Estimate(self.top))
            }
            other => other,
        };
        let percent = total.map(|total| {
            let bytes = total.bytes().max(1);
            let mut p = (done.min(bytes) * 100) / bytes;
            if total.is_estimate() && done < bytes {
                // An estimate may be short: 100% is for when the transfer says it is done.
                p = p.min(99);
            }
            self.percent = self.percent.max(p);
            self.percent
        });
        (total, percent)
    }
}

struct Bars {
    multi: MultiProgress,
    running: Mutex<Vec<(String, ProgressBar)>>,
}

impl Reporter {
    pub fn new(mode: OutputMode, masker: Masker, verbose: bool) -> Reporter {
        let bars = (mode == OutputMode::Pretty).then(|| {
            // As indicatif itself decides: live lines only on a terminal that can show them.
            let dumb = std::env::var("TERM").map_or(true, |t| t == "dumb");
            let target = if std::io::stderr().is_terminal() && !dumb {
                ProgressDrawTarget::term_like_with_hz(Box::new(BarTerminal::default()), 15)
            } else {
                ProgressDrawTarget::hidden()
            };
            Bars {
                multi: MultiProgress::with_draw_target(target),
                running: Mutex::new(Vec::new()),
            }
        });
        let color = mode == OutputMode::Pretty && std::env::var_os("NO_COLOR").is_none();
        Reporter {
            mode,
            masker,
            verbose,
            bars,
            color,
            transfers: Mutex::new(HashMap::new()),
            told_cut: Mutex::new(HashSet::new()),
        }
    }

    /// Progress of a transfer to `host`: a live status line in pretty mode, at most one line
    /// every few seconds otherwise. An estimated total is shown with `~`, and what is shown never
    /// runs backwards: the estimate only grows and the percentage only rises.
    pub fn progress(&self, host: &str, task: &str, what: &str, done: u64, total: Option<Total>) {
        let now = Instant::now();
        let (rate, due, total, percent) = {
            let mut all = self.transfers.lock().expect("transfers lock");
            let t = all
                .entry(host.to_string())
                .or_insert_with(|| Transfer::new(now));
            if done == 0 {
                *t = Transfer {
                    total: t.total,
                    ..Transfer::new(now)
                };
            }
            let every = match self.mode {
                OutputMode::Pretty => Duration::from_millis(200),
                OutputMode::Json => Duration::from_secs(1),
                OutputMode::Plain => Duration::from_secs(5),
            };
            // Plain output gets a line only for transfers long enough to need one.
            let due = match t.shown {
                None if self.mode == OutputMode::Plain => {
                    t.shown = Some(now);
                    false
                }
                None => true,
                Some(_) if t.shown_bytes == 0 && done > 0 && self.mode != OutputMode::Plain => true,
                Some(s) => now - s >= every,
            };
            if due {
                t.shown = Some(now);
                t.shown_bytes = done;
            }
            let (total, percent) = t.shown_total(done, total);
            let secs = (now - t.started).as_secs_f64();
            let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
            (rate, due, total, percent)
        };
        if !due {
            return;
        }
        let mut text = format!("{}: {}", self.clean(what), bytes(done));
        match (total, percent) {
            (Some(total), Some(percent)) if total.bytes() > 0 => {
                let tilde = if total.is_estimate() { "~" } else { "" };
                text.push_str(&format!(" of {tilde}{} ({percent}%)", bytes(total.bytes())));
                if rate > 0.0 && done < total.bytes() {
                    text.push_str(&format!(
                        ", {}/s, {tilde}{:.0} s left",
                        bytes(rate as u64),
                        (total.bytes() - done) as f64 / rate
                    ));
                }
            }
            _ if rate > 0.0 => text.push_str(&format!(", {}/s", bytes(rate as u64))),
            _ => {}
        }
        match self.mode {
            OutputMode::Json => self.json(json!({
                "event": "progress", "host": host, "task": task, "what": what,
                "bytes": done, "total": total.map(Total::bytes),
                "estimate": total.is_some_and(Total::is_estimate),
                "bytes_per_second": rate as u64,
            })),
            OutputMode::Pretty => self.set_status(host, &format!("{task} {text}")),
            OutputMode::Plain => self.line(StreamKind::Stderr, &format!("[{host}] {text}")),
        }
    }

    /// A batch of a rolling run starts.
    pub fn batch(&self, number: usize, total: usize, hosts: &[&str], task: &str) {
        match self.mode {
            OutputMode::Json => self.json(json!({
                "event": "batch", "task": task, "batch": number, "batches": total, "hosts": hosts,
            })),
            _ => self.line(
                StreamKind::Stderr,
                &format!("batch {number}/{total} of {task}: {}", hosts.join(", ")),
            ),
        }
    }

    /// Records bytes a finished transfer sent to `host`.
    pub fn transferred(&self, host: &str, bytes: u64) {
        let mut all = self.transfers.lock().expect("transfers lock");
        let t = all
            .entry(host.to_string())
            .or_insert_with(|| Transfer::new(Instant::now()));
        *t = Transfer {
            total: t.total + bytes,
            ..Transfer::new(t.started)
        };
    }

    /// Bytes sent to `host` over the whole run.
    pub fn bytes_sent(&self, host: &str) -> u64 {
        self.transfers
            .lock()
            .expect("transfers lock")
            .get(host)
            .map_or(0, |t| t.total)
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Writes one event, masked field by field before it is serialised: JSON escaping would hide
    /// a secret holding `"`, `\` or a control character from a mask applied afterwards.
    fn json(&self, mut value: serde_json::Value) {
        self.masker.mask_json(&mut value);
        console::line(StreamKind::Stdout, &escape::escape_json(value.to_string()));
    }

    /// Writes one line (or a block of lines) to stdout or stderr, above the bars in pretty mode.
    /// Text from outside rigs in it has been through [`Reporter::clean`].
    fn line(&self, stream: StreamKind, text: &str) {
        let text = self.masker.mask(text);
        if let Some(bars) = &self.bars {
            if !bars.multi.is_hidden() {
                bars.multi.suspend(|| console::line(stream, &text));
                return;
            }
        }
        console::line(stream, &text);
    }

    /// Text from outside rigs (host output, messages, errors), ready for a plain or pretty
    /// line: masked, then escaped (masking first, so a secret with a control character in it
    /// is still found).
    fn clean(&self, text: &str) -> String {
        escape(&self.masker.mask(text)).into_owned()
    }

    pub fn task_start(&self, host: &str, task: &str) {
        match self.mode {
            OutputMode::Json => {
                self.json(json!({"event": "task_start", "host": host, "task": task}))
            }
            // Every command line names its host; a task line per host is for -v.
            OutputMode::Plain if self.verbose => {
                self.line(StreamKind::Stderr, &format!("[{host}] task {task}"))
            }
            OutputMode::Plain => {}
            OutputMode::Pretty => {
                if let Some(bars) = &self.bars {
                    let bar = bars.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(self.clean(host));
                    bar.set_message(self.clean(task));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bars.running
                        .lock()
                        .expect("bars lock")
                        .push((host.to_string(), bar));
                }
            }
        }
    }

    /// A command about to run. `verbose_only` marks queries and bookkeeping, which change
    /// nothing the user asked for: the plain and pretty views show them with `-v` only, JSON
    /// always (marked `"verbose_only": true`).
    pub fn command(
        &self,
        host: &str,
        task: &str,
        command: &str,
        local: bool,
        dry_run: bool,
        verbose_only: bool,
    ) {
        match self.mode {
            OutputMode::Json => self.json(json!({
                "event": "command", "host": host, "task": task, "command": command,
                "local": local, "dry_run": dry_run, "verbose_only": verbose_only,
            })),
            _ => {
                let masked = self.masker.mask(command);
                let sigil = match (local, dry_run) {
                    (false, false) => "$",
                    (true, false) => "local$",
                    (false, true) => "would run:",
                    (true, true) => "would run locally:",
                };
                let shown = escape(&masked);
                if self.mode == OutputMode::Pretty && !dry_run {
                    self.set_status(host, &format!("{task} {sigil} {shown}"));
                }
                if verbose_only && !self.verbose {
                    return;
                }
                self.line(StreamKind::Stderr, &format!("[{host}] {sigil} {shown}"));
            }
        }
    }

    /// Whether output that only `-v` shows in the plain and pretty views is wanted: with `-v`,
    /// and always in JSON, which is for machines and keeps every event.
    pub fn shows_verbose_output(&self) -> bool {
        self.verbose || self.mode == OutputMode::Json
    }

    fn set_status(&self, host: &str, text: &str) {
        if let Some(bars) = &self.bars {
            let running = bars.running.lock().expect("bars lock");
            if let Some((_, bar)) = running.iter().find(|(h, _)| h == host) {
                bar.set_message(self.clean(text));
            }
        }
    }

    /// A line of a command's output; `cut` when it is a piece of a line longer than
    /// [`LINE_CAP`] that goes on in the next one (marked `…`, and told once per host).
    pub fn output(&self, host: &str, stream: StreamKind, line: &str, cut: bool) {
        if cut
            && self
                .told_cut
                .lock()
                .expect("told_cut lock")
                .insert(host.to_string())
        {
            self.message(
                Some(host),
                true,
                &format!(
                    "a line of output is longer than {} KiB: it is shown in pieces, each but \
                     the last ending in …",
                    LINE_CAP / 1024
                ),
            );
        }
        if self.mode == OutputMode::Json {
            let mut event = json!({
                "event": "output", "host": host, "stream": stream.name(), "line": line,
            });
            if cut {
                event["cut"] = true.into();
            }
            return self.json(event);
        }
        let mark = if cut { "…" } else { "" };
        let line = self.clean(line);
        match self.mode {
            OutputMode::Pretty if stream == StreamKind::Stderr => self.line(
                stream,
                &format!("{} {line}{mark}", self.paint("33", &format!("[{host}]"))),
            ),
            _ => self.line(stream, &format!("[{host}] {line}{mark}")),
        }
    }

    pub fn message(&self, host: Option<&str>, warn: bool, text: &str) {
        match self.mode {
            OutputMode::Json => self.json(json!({
                "event": "message", "host": host, "level": if warn { "warn" } else { "info" },
                "text": text,
            })),
            _ => {
                let prefix = host.map(|h| format!("[{h}] ")).unwrap_or_default();
                let block: Vec<String> = text
                    .lines()
                    .map(|l| {
                        let l = self.clean(l);
                        if warn {
                            format!("{prefix}{} {l}", self.paint("33", "warning:"))
                        } else {
                            format!("{prefix}{l}")
                        }
                    })
                    .collect();
                if !block.is_empty() {
                    self.line(StreamKind::Stderr, &block.join("\n"));
                }
            }
        }
    }

    /// A detail for `-v` (and JSON): connections, passed health checks.
    pub fn verbose(&self, host: &str, text: &str) {
        if self.shows_verbose_output() {
            self.message(Some(host), false, text);
        }
    }

    pub fn task_end(
        &self,
        host: &str,
        task: &str,
        status: HostStatus,
        error: Option<&str>,
        detail: Option<&str>,
        took: Duration,
    ) {
        if let Some(bars) = &self.bars {
            let mut running = bars.running.lock().expect("bars lock");
            if let Some(i) = running.iter().position(|(h, _)| h == host) {
                let (_, bar) = running.remove(i);
                bar.finish_and_clear();
                bars.multi.remove(&bar);
            }
        }
        match self.mode {
            OutputMode::Json => self.json(json!({
                "event": "task_end", "host": host, "task": task, "status": status.as_str(),
                "error": error, "duration_ms": took.as_millis() as u64,
            })),
            _ => match status {
                HostStatus::Ok => {
                    // The summary says it for every host; -v says it as each one ends.
                    if self.mode == OutputMode::Plain && self.verbose {
                        self.line(
                            StreamKind::Stderr,
                            &format!("[{host}] ok {task} ({})", seconds(took)),
                        );
                    }
                }
                _ => {
                    let text = detail.or(error).unwrap_or("");
                    let mut lines = text.lines().map(|l| self.clean(l));
                    let first = lines.next().unwrap_or_default();
                    let label = self.paint("31", status.as_str());
                    // One write, so another host's lines cannot land inside this block.
                    let mut block = format!("[{host}] {label} {task}: {first}");
                    for l in lines {
                        block.push_str(&format!("\n[{host}]   {l}"));
                    }
                    self.line(StreamKind::Stderr, &block);
                }
            },
        }
    }

    /// `rigs env:NAME history`: a `history` event per row in JSON, else the table on stdout, or
    /// `nothing` when no row passed the filter.
    pub fn history(&self, entries: &[crate::history::HistoryEntry], nothing: &str) {
        match self.mode {
            OutputMode::Json => {
                for entry in entries {
                    let mut event = entry.to_json();
                    event["event"] = "history".into();
                    self.json(event);
                }
            }
            _ if entries.is_empty() => self.line(StreamKind::Stdout, nothing),
            _ => {
                // Masked before the table escapes its cells: an escaped secret no longer matches.
                let masked: Vec<_> = entries
                    .iter()
                    .filter_map(|entry| {
                        let mut json = entry.to_json();
                        self.masker.mask_json(&mut json);
                        crate::history::HistoryEntry::from_json(json)
                    })
                    .collect();
                let table = history_table::table(&masked);
                self.line(StreamKind::Stdout, table.trim_end_matches('\n'));
            }
        }
    }

    /// `rigs env:NAME check`: a `check` event per host in JSON, else the table on stdout and
    /// what to do about each problem.
    pub fn check(&self, answers: &[Readiness], hosts: &[HostSummary]) {
        let rows = check_table::rows(answers, hosts);
        match self.mode {
            OutputMode::Json => {
                for row in &rows {
                    let mut event = serde_json::to_value(row).unwrap_or_default();
                    event["event"] = "check".into();
                    self.masker.mask_json(&mut event);
                    self.json(event);
                }
            }
            _ => {
                let table = check_table::table(&rows);
                let table = self.masker.mask(&table).into_owned();
                self.line(StreamKind::Stdout, table.trim_end_matches('\n'));
            }
        }
    }

    pub fn summary(&self, hosts: &[HostSummary], interrupted: bool) {
        if let Some(bars) = &self.bars {
            let _ = bars.multi.clear();
        }
        match self.mode {
            OutputMode::Json => self.json(summary::json(hosts, interrupted)),
            _ => {
                let width = terminal_width();
                let text = summary::table(hosts, interrupted, width, |code, s| self.paint(code, s));
                if let Some(text) = text.strip_suffix('\n') {
                    self.line(StreamKind::Stderr, text);
                }
            }
        }
    }
}

/// The width of the terminal on stderr, where the summary goes; `None` when stderr is not a
/// terminal (a log file keeps whole lines).
fn terminal_width() -> Option<usize> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let columns = bar_terminal::size().map_or(0, |(_, columns)| columns);
    Some(if columns > 0 {
        usize::from(columns)
    } else {
        80
    })
}

pub fn seconds(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimated_total_only_grows_and_the_percentage_only_rises() {
        let mut t = Transfer::new(Instant::now());
        let mut last = (0, 0);
        // The compression ratio seen so far swings: the raw estimates go up and down.
        for (done, estimate) in [
            (10, 100),
            (30, 60),
            (50, 140),
            (70, 90),
            (90, 120),
            (120, 80),
        ] {
            let (total, percent) = t.shown_total(done, Some(Total::Estimate(estimate)));
            let (total, percent) = (total.unwrap(), percent.unwrap());
            assert!(total.is_estimate());
            assert!(
                total.bytes() >= last.0 && total.bytes() >= done,
                "{total:?}"
            );
            assert!(percent >= last.1 && percent <= 99, "{percent}");
            last = (total.bytes(), percent);
        }
        let mut t = Transfer::new(Instant::now());
        assert_eq!(
            t.shown_total(50, Some(Total::Exact(50))),
            (Some(Total::Exact(50)), Some(100))
        );
        assert_eq!(t.shown_total(50, None), (None, None));
    }
}
