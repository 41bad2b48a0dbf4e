//! The end-of-run summary: one row per host, in selection order.

use std::time::Duration;

use serde_json::json;

use super::{escape, HostOutcome, HostStatus};

#[derive(Debug, Clone)]
pub struct HostSummary {
    pub host: String,
    /// How it ended: the STATUS and ERROR columns.
    pub outcome: HostOutcome,
    pub duration: Duration,
    /// The tasks that ran to completion on it.
    pub tasks: Vec<String>,
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
                "host": h.host, "status": h.outcome.status().as_str(), "error": h.outcome.error(),
                "tasks": h.tasks, "duration_ms": h.duration.as_millis() as u64,
                "bytes_sent": h.bytes_sent, "note": h.note, "version": h.version,
            })
        })
        .collect();
    let count = |s: HostStatus| hosts.iter().filter(|h| h.outcome.status() == s).count();
    json!({
        "event": "summary", "hosts": rows, "interrupted": interrupted,
        "ok": count(HostStatus::Ok), "failed": count(HostStatus::Failed),
        "skipped": count(HostStatus::Skipped) + count(HostStatus::Interrupted),
        "bytes_sent": hosts.iter().map(|h| h.bytes_sent).sum::<u64>(),
    })
}

/// The summary table: one line per host, each cut to `width` characters when given (the
/// terminal's), so a long error never wraps into the next host's row. VERSION is what the
/// task recorded with `record("version", ...)`, else its `note(...)` (the column is NOTE when
/// no host recorded a version: `check`, `lock:status`); ERROR is the first useful
/// line of the failure (the whole text is printed above, as the host failed). Cells are
/// [escaped](super::escape): notes, versions and errors come from the hosts.
pub fn table(
    hosts: &[HostSummary],
    interrupted: bool,
    width: Option<usize>,
    paint: impl Fn(&str, &str) -> String,
) -> String {
    if hosts.is_empty() {
        return String::new();
    }
    let shown_version = |h: &HostSummary| {
        h.version
            .as_deref()
            .or(h.note.as_deref())
            .map(|v| escape(v).into_owned())
    };
    let host_w = hosts
        .iter()
        .map(|h| h.host.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let sent = hosts.iter().any(|h| h.bytes_sent > 0);
    let version_w = hosts
        .iter()
        .filter_map(|h| shown_version(h).map(|v| v.chars().count()))
        .max();
    let errors = hosts.iter().any(|h| h.outcome.error().is_some());
    let mut header = format!("{:<host_w$}  {:<11}  {:>8}", "HOST", "STATUS", "TIME");
    if sent {
        header.push_str(&format!("  {:>9}", "SENT"));
    }
    if let Some(w) = version_w {
        let title = if hosts.iter().any(|h| h.version.is_some()) {
            "VERSION"
        } else {
            "NOTE"
        };
        header.push_str(&format!("  {title:<w$}", w = w.max(7)));
    }
    if errors {
        header.push_str("  ERROR");
    }
    let mut out = format!("\n{}\n", cut(header.trim_end(), width));
    // Where the status word sits in a row, to colour it after the row is cut.
    let status_at = host_w + 2;
    for h in hosts {
        let mut row = format!(
            "{:<host_w$}  {:<11}  {:>8}",
            h.host,
            h.outcome.status().as_str(),
            super::seconds(h.duration)
        );
        if sent {
            row.push_str(&format!("  {:>9}", bytes(h.bytes_sent)));
        }
        if let Some(w) = version_w {
            row.push_str(&format!(
                "  {:<w$}",
                shown_version(h).unwrap_or_default(),
                w = w.max(7)
            ));
        }
        if let Some(e) = h.outcome.error() {
            row.push_str(&format!("  {}", escape(&first_useful_line(e))));
        }
        let row = cut(row.trim_end(), width);
        let code = match h.outcome.status() {
            HostStatus::Ok => "32",
            HostStatus::Failed => "31",
            _ => "33",
        };
        let chars: Vec<char> = row.chars().collect();
        let status_end = (status_at + h.outcome.status().as_str().len()).min(chars.len());
        if status_at < status_end {
            let before: String = chars[..status_at].iter().collect();
            let status: String = chars[status_at..status_end].iter().collect();
            let after: String = chars[status_end..].iter().collect();
            out.push_str(&format!("{before}{}{after}", paint(code, &status)));
        } else {
            out.push_str(&row);
        }
        out.push('\n');
    }
    let count = |s: HostStatus| hosts.iter().filter(|h| h.outcome.status() == s).count();
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

/// The line of an error worth a summary cell: the first that is not empty, joined with the
/// next one when it only announces it (`...; its last log lines:`).
pub fn first_useful_line(error: &str) -> String {
    let mut lines = error.lines().map(str::trim).filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return String::new();
    };
    match (first.ends_with(':'), lines.next()) {
        (true, Some(next)) => format!("{first} {next}"),
        _ => first.to_string(),
    }
}

/// `text` cut to `width` characters, the last one an ellipsis when something was cut.
fn cut(text: &str, width: Option<usize>) -> String {
    match width {
        Some(w) if w > 0 && text.chars().count() > w => {
            let mut kept: String = text.chars().take(w - 1).collect();
            kept.push('…');
            kept
        }
        _ => text.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, outcome: HostOutcome) -> HostSummary {
        HostSummary {
            host: name.into(),
            outcome,
            duration: Duration::from_millis(1500),
            tasks: Vec::new(),
            bytes_sent: 0,
            note: Some("noted".into()),
            version: None,
        }
    }

    fn failed(message: &str) -> HostOutcome {
        HostOutcome::Failed {
            message: message.into(),
            fault: None,
        }
    }

    #[test]
    fn rows_show_the_version_else_the_note_and_are_cut_to_the_width() {
        let long = "container `app` exited with code 1 while waiting for it to become healthy";
        let mut ok = host("web-1", HostOutcome::Ok);
        ok.version = Some("1.2.3".into());
        let hosts = [ok, host("web-2", failed(long))];
        let whole = table(&hosts, false, None, |_, s| s.to_string());
        let lines: Vec<&str> = whole.lines().collect();
        assert_eq!(lines[1], "HOST   STATUS           TIME  VERSION  ERROR");
        assert_eq!(lines[2], "web-1  ok              1.50s  1.2.3");
        assert!(lines[3].ends_with(long), "{whole}");
        assert!(lines[3].contains(" noted "), "{whole}");
        let cut = table(&hosts, false, Some(60), |_, s| s.to_string());
        let row = cut.lines().nth(3).unwrap();
        assert_eq!(row.chars().count(), 60, "{cut}");
        assert!(row.ends_with('…'), "{cut}");
        let painted = table(&hosts, false, Some(60), |code, s| format!("<{code}>{s}</>"));
        assert!(painted.contains("<31>failed</>"), "{painted}");
    }

    #[test]
    fn the_sent_column_and_total_appear_only_when_bytes_were_sent() {
        let mut a = host("web-1", HostOutcome::Ok);
        a.note = None;
        a.bytes_sent = 20_400_000;
        let mut b = host("web-2", HostOutcome::Ok);
        b.note = None;
        b.bytes_sent = 1_310_000_000;
        let text = table(&[a, b.clone()], false, None, |_, s| s.to_string());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1], "HOST   STATUS           TIME       SENT",
            "{text}"
        );
        assert_eq!(
            lines[2], "web-1  ok              1.50s    20.4 MB",
            "{text}"
        );
        assert_eq!(
            lines[3], "web-2  ok              1.50s    1.31 GB",
            "{text}"
        );
        assert_eq!(lines[4], "2 hosts: 2 ok, 1.33 GB sent", "{text}");
        let json = json(&[b], true);
        assert_eq!(json["bytes_sent"], 1_310_000_000u64);
        assert_eq!(json["hosts"][0]["bytes_sent"], 1_310_000_000u64);
        assert_eq!(json["interrupted"], true);

        let nothing = host("web-3", HostOutcome::Ok);
        let text = table(&[nothing], true, None, |_, s| s.to_string());
        assert!(!text.contains("SENT") && !text.contains(" sent"), "{text}");
        assert!(text.ends_with("1 host: 1 ok (interrupted)\n"), "{text}");
    }

    #[test]
    fn cells_from_hosts_show_their_control_characters() {
        let mut forged = host("web-1", failed("boom\r\x1b[2Jok"));
        forged.version = Some("1.0\x1b]0;title\x07".into());
        let text = table(&[forged], false, None, |_, s| s.to_string());
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        let row = text.lines().nth(2).unwrap();
        assert!(
            row.ends_with("  1.0\\x1b]0;title\\x07  boom\\r\\x1b[2Jok"),
            "{row}"
        );
    }

    #[test]
    fn the_useful_line_of_an_error_joins_a_header_to_what_it_announces() {
        assert_eq!(first_useful_line("\n  exit 3\nmore"), "exit 3");
        assert_eq!(
            first_useful_line("its last log lines:\nstarting\nagain"),
            "its last log lines: starting"
        );
        assert_eq!(first_useful_line(""), "");
    }
}
