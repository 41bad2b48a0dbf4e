//! The end-of-run summary: one row per host, in selection order.

use std::time::Duration;

use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStatus {
    Ok,
    Failed,
    /// Never started (Ctrl-C before its turn).
    Skipped,
    Interrupted,
}

impl HostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Ok => "ok",
            HostStatus::Failed => "failed",
            HostStatus::Skipped => "skipped",
            HostStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone)]
pub struct HostSummary {
    pub host: String,
    pub status: HostStatus,
    pub duration: Duration,
    /// The tasks that ran to completion on it.
    pub tasks: Vec<String>,
    pub error: Option<String>,
    /// Bytes streamed to it from the controller (images, files).
    pub bytes_sent: u64,
    /// What its last task said of the outcome with `note(...)`, e.g. the version it runs.
    pub note: Option<String>,
    /// The version its last task recorded with `record("version", ...)`.
    pub version: Option<String>,
}

pub fn json(hosts: &[HostSummary], interrupted: bool) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = hosts
        .iter()
        .map(|h| {
            json!({
                "host": h.host, "status": h.status.as_str(), "error": h.error,
                "tasks": h.tasks, "duration_ms": h.duration.as_millis() as u64,
                "bytes_sent": h.bytes_sent, "note": h.note,
            })
        })
        .collect();
    let count = |s: HostStatus| hosts.iter().filter(|h| h.status == s).count();
    json!({
        "event": "summary", "hosts": rows, "interrupted": interrupted,
        "ok": count(HostStatus::Ok), "failed": count(HostStatus::Failed),
        "skipped": count(HostStatus::Skipped) + count(HostStatus::Interrupted),
        "bytes_sent": hosts.iter().map(|h| h.bytes_sent).sum::<u64>(),
    })
}

pub fn table(
    hosts: &[HostSummary],
    interrupted: bool,
    paint: impl Fn(&str, &str) -> String,
) -> String {
    if hosts.is_empty() {
        return String::new();
    }
    let host_w = hosts
        .iter()
        .map(|h| h.host.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let sent = hosts.iter().any(|h| h.bytes_sent > 0);
    let note_w = hosts
        .iter()
        .filter_map(|h| h.note.as_ref().map(|n| n.chars().count()))
        .max();
    let mut header = format!("\n{:<host_w$}  {:<11}  {:>8}", "HOST", "STATUS", "TIME");
    if sent {
        header.push_str(&format!("  {:>9}", "SENT"));
    }
    if let Some(w) = note_w {
        header.push_str(&format!("  {:<w$}", "NOTE", w = w.max(4)));
    }
    header.push_str("  ERROR\n");
    let mut out = header;
    for h in hosts {
        let status = format!("{:<11}", h.status.as_str());
        let status = match h.status {
            HostStatus::Ok => paint("32", &status),
            HostStatus::Failed => paint("31", &status),
            _ => paint("33", &status),
        };
        let error = h
            .error
            .as_deref()
            .and_then(|e| e.lines().next())
            .unwrap_or("");
        let mut row = format!(
            "{:<host_w$}  {status}  {:>8}",
            h.host,
            super::seconds(h.duration)
        );
        if sent {
            row.push_str(&format!("  {:>9}", bytes(h.bytes_sent)));
        }
        if let Some(w) = note_w {
            row.push_str(&format!(
                "  {:<w$}",
                h.note.as_deref().unwrap_or(""),
                w = w.max(4)
            ));
        }
        row.push_str(&format!("  {error}"));
        out.push_str(row.trim_end());
        out.push('\n');
    }
    let count = |s: HostStatus| hosts.iter().filter(|h| h.status == s).count();
    let mut parts = vec![format!("{} ok", count(HostStatus::Ok))];
    for (s, n) in [
        (HostStatus::Failed, count(HostStatus::Failed)),
        (HostStatus::Interrupted, count(HostStatus::Interrupted)),
        (HostStatus::Skipped, count(HostStatus::Skipped)),
    ] {
        if n > 0 {
            parts.push(format!("{n} {}", s.as_str()));
        }
    }
    let noun = if hosts.len() == 1 { "host" } else { "hosts" };
    let total: u64 = hosts.iter().map(|h| h.bytes_sent).sum();
    out.push_str(&format!(
        "{} {noun}: {}{}{}\n",
        hosts.len(),
        parts.join(", "),
        if sent {
            format!(", {} sent", bytes(total))
        } else {
            String::new()
        },
        if interrupted { " (interrupted)" } else { "" }
    ));
    out
}

/// A byte count the way people read them: `512 B`, `20.4 kB`, `1.31 GB` (powers of 1000).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.digits$} {}", UNITS[unit])
}
