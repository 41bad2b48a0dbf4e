//! `rigs env:NAME history`: the history entries the hosts hold, as a table.
//!
//! The table is text for a person, so it lives with the other output; the entries and which ones
//! are shown are [`history`](crate::history)'s.

use super::{escape, first_useful_line};
use crate::history::HistoryEntry;

/// The longest ERROR cell of the history table; the JSON output has the whole text.
const ERROR_WIDTH: usize = 60;

/// `rigs env:NAME history`: one row per task run, oldest first. The cells come from files on
/// the hosts: their control characters are [escaped](escape()).
pub fn table(entries: &[HistoryEntry]) -> String {
    let cell = |text: &str| escape(text).into_owned();
    let headers = [
        "TIME", "HOST", "USER", "ENV", "TASK", "RESULT", "VERSION", "NOTE", "ERROR",
    ];
    let cells: Vec<[String; 9]> = entries
        .iter()
        .map(|e| {
            let error = first_useful_line(e.error.as_deref().unwrap_or(""));
            let mut error = cell(&error);
            if error.chars().count() > ERROR_WIDTH {
                error = error.chars().take(ERROR_WIDTH - 1).collect::<String>() + "…";
            }
            [
                cell(&e.time),
                cell(&e.host),
                format!("{}@{}", cell(&e.user), cell(&e.controller)),
                cell(e.env.as_deref().unwrap_or("")),
                cell(&e.label),
                cell(&e.result),
                cell(&e.record_text("version")),
                cell(e.note.as_deref().unwrap_or("")),
                error,
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt_row = |row: &[String]| -> String {
        let mut line = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        line.trim_end().to_string() + "\n"
    };
    let mut out = fmt_row(&headers.map(String::from));
    for row in &cells {
        out.push_str(&fmt_row(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: serde_json::Value) -> HistoryEntry {
        HistoryEntry::from_json(json).expect("an entry")
    }

    #[test]
    fn one_line_of_headers_then_one_per_entry() {
        let rows = [
            entry(serde_json::json!({"time": "t1", "host": "a", "result": "ok"})),
            entry(serde_json::json!({"time": "t2", "host": "a", "result": "failed"})),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("TIME  HOST  USER"), "{text}");
        assert!(lines[1].starts_with("t1    a "), "{text}");
    }

    #[test]
    fn long_errors_are_cut_to_their_first_useful_line() {
        let long = format!("{}\nsecond line", "x".repeat(100));
        let rows = [entry(
            serde_json::json!({"error": long, "result": "failed"}),
        )];
        let text = table(&rows);
        let row = text.lines().nth(1).unwrap();
        assert!(row.ends_with('…'), "{text}");
        assert!(!text.contains("second line"), "{text}");
    }

    #[test]
    fn cells_show_their_control_characters() {
        let rows = [entry(serde_json::json!({
            "host": "h1", "note": "\r[h9] ok\x1b[2J", "error": "boom\u{9b}1m\nmore",
        }))];
        let text = table(&rows);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(
            text.contains("\\r[h9] ok\\x1b[2J") && text.contains("boom\\u{9b}1m"),
            "{text}"
        );
    }
}
