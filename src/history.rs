//! The deployment history's files and lines, shared by the scheduler that writes them, the
//! `history()` recipe function and `rigs env:NAME history` that read them.
//!
//! A host's file holds every run on it, whatever the environment and task, so the table filters:
//! one environment's runs, releases only unless `--all` (status checks and log reads would bury
//! the deploys), one task with `history:TASK`.

use serde_json::Value;

/// The host's history file, as a shell word.
pub const HOST_FILE: &str = "\"$HOME/.rigs/history.jsonl\"";
/// The controller's history file, relative to the project folder.
pub const LOCAL_FILE: &str = ".rigs/history.jsonl";

/// The user running rigs, as the history names them.
pub fn user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var) {
            if !u.is_empty() {
                return u;
            }
        }
    }
    // SAFETY: getuid has no preconditions; getpwuid_r writes only into the buffers given.
    let uid = unsafe { libc::getuid() };
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc == 0 && !found.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: on success pw_name points at a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return name.to_string_lossy().into_owned();
    }
    format!("uid {uid}")
}

/// This machine's host name.
pub fn controller() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|b| *b == 0).unwrap_or(0);
    if ok && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown".into()
    }
}

/// Reads the last `limit` lines of the host's history.
pub fn read_command(limit: usize) -> String {
    format!("tail -n {limit} {HOST_FILE} 2>/dev/null || true")
}

/// History lines as JSON values; lines that are not JSON objects are skipped.
pub fn parse(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(Value::is_object)
        .collect()
}

/// The tasks `rigs env:NAME history` lists without `--all`: the ones that change what runs.
/// Tasks that took the deploy lock (`@lock`, marked `"lock": true` in their line) count too.
pub const RELEASE_TASKS: [&str; 4] = ["deploy", "ship", "promote", "rollback"];

/// Which history lines `rigs [env:NAME] history[:TASK] [--all]` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this environment's runs (`env:NAME` before `history`); every one without.
    pub env: Option<String>,
    /// Only runs of this task (`history:TASK`).
    pub task: Option<String>,
    /// Every task, not only releases (`--all`).
    pub all: bool,
}

impl Filter {
    pub fn keeps(&self, row: &Value) -> bool {
        if let Some(env) = &self.env {
            if row["env"].as_str() != Some(env.as_str()) {
                return false;
            }
        }
        let task = row["task"].as_str().unwrap_or("");
        match &self.task {
            Some(wanted) => task == wanted,
            None => self.all || row["lock"] == Value::Bool(true) || RELEASE_TASKS.contains(&task),
        }
    }
}

impl Filter {
    /// What `rigs env:NAME history` says when no line passes.
    pub fn nothing_found(&self) -> String {
        let env = self
            .env
            .as_ref()
            .map(|e| format!(" of env:{e}"))
            .unwrap_or_default();
        match (&self.task, self.all) {
            (Some(task), _) => format!("No run of `{task}`{env} in the history of these hosts."),
            (None, true) => format!("No run{env} in the history of these hosts."),
            (None, false) => {
                format!("No release{env} in the history of these hosts; `--all` shows every task.")
            }
        }
    }
}

/// The longest ERROR cell of the history table; the JSON output has the whole text.
const ERROR_WIDTH: usize = 60;

/// `rigs env:NAME history`: one row per task run, oldest first. The cells come from files on
/// the hosts: their control characters are [escaped](crate::report::escape).
pub fn table(rows: &[Value]) -> String {
    let raw = |r: &Value, k: &str| -> String {
        match &r[k] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    let field = |r: &Value, k: &str| crate::report::escape(&raw(r, k)).into_owned();
    let headers = [
        "TIME", "HOST", "USER", "ENV", "TASK", "RESULT", "VERSION", "NOTE", "ERROR",
    ];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            let error = crate::report::first_useful_line(&raw(r, "error"));
            let mut error = crate::report::escape(&error).into_owned();
            if error.chars().count() > ERROR_WIDTH {
                error = error.chars().take(ERROR_WIDTH - 1).collect::<String>() + "…";
            }
            [
                field(r, "time"),
                field(r, "host"),
                format!("{}@{}", field(r, "user"), field(r, "controller")),
                field(r, "env"),
                field(r, "label"),
                field(r, "result"),
                field(r, "version"),
                field(r, "note"),
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

    #[test]
    fn parses_lines_and_skips_junk() {
        let rows = parse("{\"time\":\"t1\",\"host\":\"a\"}\nnot json\n[1]\n{\"time\":\"t2\"}\n");
        assert_eq!(rows.len(), 2);
        let text = table(&rows);
        assert!(text.starts_with("TIME"), "{text}");
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn filters_by_environment_release_and_task() {
        let row = |env: &str, task: &str, lock: bool| serde_json::json!({"env": env, "task": task, "lock": lock});
        let lab = Filter {
            env: Some("lab".into()),
            ..Filter::default()
        };
        assert!(lab.keeps(&row("lab", "deploy", false)));
        assert!(lab.keeps(&row("lab", "hold", true)));
        assert!(!lab.keeps(&row("lab", "status", false)));
        assert!(!lab.keeps(&row("other", "deploy", false)));
        let all = Filter {
            all: true,
            ..lab.clone()
        };
        assert!(all.keeps(&row("lab", "status", false)));
        assert!(!all.keeps(&row("other", "status", false)));
        let status = Filter {
            task: Some("status".into()),
            ..lab
        };
        assert!(status.keeps(&row("lab", "status", false)));
        assert!(!status.keeps(&row("lab", "deploy", false)));
        assert!(Filter::default().keeps(&row("other", "rollback", false)));
    }

    #[test]
    fn long_errors_are_cut_to_their_first_useful_line() {
        let long = format!("{}\nsecond line", "x".repeat(100));
        let rows = [serde_json::json!({"error": long, "result": "failed"})];
        let text = table(&rows);
        let row = text.lines().nth(1).unwrap();
        assert!(row.ends_with('…'), "{text}");
        assert!(!text.contains("second line"), "{text}");
    }

    #[test]
    fn cells_show_their_control_characters() {
        let rows = [serde_json::json!({
            "host": "h1", "note": "\r[h9] ok\x1b[2J", "error": "boom\u{9b}1m\nmore",
        })];
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
