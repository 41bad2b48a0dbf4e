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
}

pub fn json(hosts: &[HostSummary], interrupted: bool) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = hosts
        .iter()
        .map(|h| {
            json!({
                "host": h.host, "status": h.status.as_str(), "error": h.error,
                "tasks": h.tasks, "duration_ms": h.duration.as_millis() as u64,
            })
        })
        .collect();
    let count = |s: HostStatus| hosts.iter().filter(|h| h.status == s).count();
    json!({
        "event": "summary", "hosts": rows, "interrupted": interrupted,
        "ok": count(HostStatus::Ok), "failed": count(HostStatus::Failed),
        "skipped": count(HostStatus::Skipped) + count(HostStatus::Interrupted),
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
    let mut out = format!(
        "\n{:<host_w$}  {:<11}  {:>8}  ERROR\n",
        "HOST", "STATUS", "TIME"
    );
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
        out.push_str(
            format!(
                "{:<host_w$}  {status}  {:>8}  {error}",
                h.host,
                super::seconds(h.duration)
            )
            .trim_end(),
        );
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
    out.push_str(&format!(
        "{} {noun}: {}{}\n",
        hosts.len(),
        parts.join(", "),
        if interrupted { " (interrupted)" } else { "" }
    ));
    out
}
