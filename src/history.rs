//! The deployment history's files and lines, shared by the scheduler that writes them, the
//! `history()` recipe function and `rigs env:NAME history` that read them.

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

/// `rigs env:NAME history`: the newest `limit` entries across hosts, oldest first.
pub fn table(rows: &[Value]) -> String {
    let field = |r: &Value, k: &str| -> String {
        match &r[k] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    let headers = ["TIME", "HOST", "USER", "TASK", "RESULT", "VERSION", "NOTE"];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let version = ["version", "image_after"]
                .iter()
                .map(|k| field(r, k))
                .find(|v| !v.is_empty())
                .unwrap_or_default();
            [
                field(r, "time"),
                field(r, "host"),
                format!("{}@{}", field(r, "user"), field(r, "controller")),
                field(r, "label"),
                field(r, "result"),
                version,
                field(r, "note"),
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
}
