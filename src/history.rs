//! The deployment history: who ran what, where, when, and how it ended. Its files, and
//! [`HistoryEntry`], the one line each task run adds, written and read here for the scheduler
//! that appends it, the `history()` recipe function and `rigs env:NAME history` that read it.
//!
//! Every task run on a host appends one JSON line to `~/.rigs/history.jsonl` on that host and
//! to `.rigs/history.jsonl` in the controller's project folder. The host's copy is what the next
//! person sees, whichever machine they deploy from, and what `rollback` reads to find the last
//! good version; the controller's copy survives hosts that are rebuilt. Lines are only ever
//! appended, each in one write(2) on a file opened for appending (`dd oflag=append` on the host),
//! so concurrent runs cannot corrupt each other's lines, however long they are.
//!
//! A host's file holds every run on it, whatever the environment and task, so the table filters:
//! one environment's runs, releases only unless `--all` (status checks and log reads would bury
//! the deploys), one task with `history:TASK`.

use std::io::Write;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The host's history file, as a shell word.
pub const HOST_FILE: &str = "\"$HOME/.rigs/history.jsonl\"";
/// The controller's history file, relative to the project folder.
pub const LOCAL_FILE: &str = ".rigs/history.jsonl";

/// One line of the history: one task run on one host. A line is a JSON object whose keys come
/// out in name order, the task's `record(...)` fields among them; a field the entry names itself
/// is never overwritten by a record of the same name. Reading is lenient: a field a line lacks
/// (an older rigs wrote it) is left empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryEntry {
    /// When the line was written, RFC 3339 in UTC.
    pub time: String,
    /// Who ran it ([`user`]) and from which machine ([`controller`]).
    pub user: String,
    pub controller: String,
    pub env: Option<String>,
    pub host: String,
    /// The task's name; `--` for an ad-hoc command, `bundle load` for a bundle.
    pub task: String,
    pub args: Vec<String>,
    /// As the user wrote it: `deploy:1.2.3`.
    pub label: String,
    /// The task took the deploy lock: `rigs env:NAME history` lists it with the releases.
    #[serde(skip_serializing_if = "is_false")]
    pub lock: bool,
    /// `ok`, `failed` or `interrupted`.
    pub result: String,
    pub error: Option<String>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What the task recorded with `record(...)`: `version`, `running`, `docker_images`...
    #[serde(flatten)]
    pub records: Map<String, Value>,
}

impl HistoryEntry {
    /// The entry as its JSON line's object.
    pub fn to_json(&self) -> Value {
        let named = HistoryEntry {
            records: Map::new(),
            ..self.clone()
        };
        let mut json = serde_json::to_value(named).expect("a history entry is JSON");
        if let Value::Object(fields) = &mut json {
            for (k, v) in &self.records {
                fields.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        json
    }

    /// The entry from a JSON object; `None` for what is not one.
    pub fn from_json(json: Value) -> Option<HistoryEntry> {
        json.is_object()
            .then(|| serde_json::from_value(json).ok())
            .flatten()
    }

    /// A recorded field as text: `version` for the table, empty when absent.
    pub fn record_text(&self, name: &str) -> String {
        match self.records.get(name) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The entries of `text` (history lines, as [`read_command`] prints them) that are about `host`,
/// in file order. Hosts that share a home folder (NFS) share one file, so a file holds other
/// hosts' lines too; lines that are not entries are skipped.
pub fn entries(text: &str, host: &str) -> Vec<HistoryEntry> {
    parse(text).into_iter().filter(|e| e.host == host).collect()
}

/// Every entry of `text`, in file order.
fn parse(text: &str) -> Vec<HistoryEntry> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter_map(HistoryEntry::from_json)
        .collect()
}

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

/// The host command that appends a `len`-byte line, read from stdin, to the host's history
/// in a single write(2) on an `O_APPEND` descriptor, so that runs appending at the same moment
/// cannot interleave their lines. A shell's `printf ... >> file` does not promise that: dash
/// writes the text and its newline apart, bash writes long lines in pieces. `dd` with one block
/// of exactly `len` bytes does (`iflag=fullblock` waits until stdin has delivered all of it);
/// GNU and BusyBox `dd` both know these flags.
pub fn append_command(len: usize) -> String {
    format!(
        "mkdir -p \"$HOME/.rigs\" && dd of={HOST_FILE} bs={len} count=1 iflag=fullblock \
         oflag=append conv=notrunc status=none"
    )
}

/// Serialises appends to the controller's file between hosts of one run.
static LOCAL: Mutex<()> = Mutex::new(());

/// Appends `line` (ending in a newline) to the controller's file, in one write(2): other rigs
/// runs append too.
pub fn append_local(line: &str) -> std::io::Result<()> {
    let _guard = LOCAL.lock().expect("history lock");
    std::fs::create_dir_all(".rigs")?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(LOCAL_FILE)?
        .write_all(line.as_bytes())
}

/// The host command that prints the last `limit` lines of its history.
pub fn read_command(limit: usize) -> String {
    format!("tail -n {limit} {HOST_FILE} 2>/dev/null || true")
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
    pub fn keeps(&self, entry: &HistoryEntry) -> bool {
        if self.env.is_some() && entry.env != self.env {
            return false;
        }
        match &self.task {
            Some(wanted) => entry.task == *wanted,
            None => self.all || entry.lock || RELEASE_TASKS.contains(&entry.task.as_str()),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: Value) -> HistoryEntry {
        HistoryEntry::from_json(json).expect("an entry")
    }

    #[test]
    fn parses_lines_and_skips_junk() {
        let text =
            "{\"time\":\"t1\",\"host\":\"a\"}\nnot json\n[1]\n{\"time\":\"t2\",\"host\":\"a\"}\n\
                    {\"time\":\"t3\",\"host\":\"b\"}\n";
        let entries = entries(text, "a");
        assert_eq!(
            entries.iter().map(|e| e.time.as_str()).collect::<Vec<_>>(),
            ["t1", "t2"]
        );
    }

    #[test]
    fn a_line_reads_back_as_it_was_written() {
        let line = r#"{"args":["1.2.3"],"controller":"laptop","docker_images":{"app":["sha256:1"]},"duration_ms":1500,"env":"lab","error":null,"host":"h1","label":"deploy:1.2.3","lock":true,"note":"1.2.3 live","result":"ok","task":"deploy","time":"2026-12-03T07:00:00Z","user":"alice","version":"1.2.3"}"#;
        let read = entries(line, "h1");
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].to_json().to_string(), line);
        assert_eq!(read[0].record_text("version"), "1.2.3");
        let bare = r#"{"args":[],"controller":"c","duration_ms":0,"env":null,"error":"boom","host":"h1","label":"--","result":"failed","task":"--","time":"t","user":"u"}"#;
        assert_eq!(entries(bare, "h1")[0].to_json().to_string(), bare);
    }

    #[test]
    fn recorded_fields_never_replace_the_entrys_own() {
        let mut e = entry(serde_json::json!({"host": "h1", "result": "ok"}));
        e.records.insert("result".into(), "forged".into());
        e.records.insert("version".into(), 3.into());
        let json = e.to_json();
        assert_eq!(json["result"], "ok");
        assert_eq!(json["version"], 3);
        assert_eq!(e.record_text("version"), "3");
    }

    #[test]
    fn filters_by_environment_release_and_task() {
        let row = |env: &str, task: &str, lock: bool| {
            entry(serde_json::json!({"env": env, "task": task, "lock": lock}))
        };
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
}
