//! Deploy locks, one per host, held on the hosts themselves.
//!
//! A task whose doc comment has a line `@lock` takes the lock of every selected host before
//! anything runs, and gives it back when the run ends: on success, on failure and on Ctrl-C.
//! The lock protects a host, not an environment: environments are only names for selections
//! and may share hosts, so a lock per environment would let `env:staging deploy` run on a host
//! that `env:production` is deploying to. It lives in the login user's home, `~/.rigs/lock`, and
//! is a directory: `mkdir` either creates it or fails, atomically, so two runs can never both
//! believe they hold it. Inside, `info` says who holds it (user@controller, pid and that
//! process's start time), for what (environment and task words) and since when, so a second run
//! can say exactly that instead of just failing. A run that cannot take every host's lock gives
//! back what it took and starts nothing. Hosts that share a home folder (NFS) share the lock
//! too, so finding this run's own token counts as acquired. Releasing only removes a lock whose
//! token is this run's, so a run never frees a lock that someone else took after force-releasing
//! its own.
//!
//! A run killed with `kill -9` leaves its lock behind. When it ran on this very controller, rigs
//! can tell: its pid is gone, or now belongs to a process that started at another time. Such a
//! lock is taken over with a warning. A holder on another machine cannot be checked from here
//! and is never taken over; `lock:release` is for those.
//!
//! Earlier versions locked per environment in `~/.rigs/locks/ENV.lock`. Those are ignored when
//! locking, but `lock:status` reports them and `lock:release` removes them.

use serde_json::{json, Value};

use crate::quote::quote;
use crate::secret::Masker;

/// The lock directory, as a shell word.
const DIR: &str = "\"$HOME/.rigs/lock\"";

/// Lists the host's lock as `held INFO` and each old per-environment lock as `old NAME INFO`.
const REPORT: &str = "if [ -d \"$HOME/.rigs/lock\" ]; then \
     echo \"held $(cat \"$HOME/.rigs/lock/info\" 2>/dev/null)\"; fi; \
     for d in \"$HOME\"/.rigs/locks/*.lock; do if [ -d \"$d\" ]; then \
     echo \"old ${d##*/} $(cat \"$d/info\" 2>/dev/null)\"; fi; done";

/// What a lock's `info` file holds. `env` names the environments of the locking tasks, if any.
/// The task words may carry secrets (`deploy:TOKEN`): they are masked here, before the JSON is
/// serialised, since a secret escaped by serialising no longer matches the mask. The token is
/// left whole: releasing the lock looks for it.
pub fn info(token: &str, env: Option<&str>, tasks: &str, masker: &Masker) -> Value {
    let pid = std::process::id();
    json!({
        "token": token,
        "env": env.map(|e| masker.mask(e)),
        "user": crate::history::user(),
        "controller": crate::history::controller(),
        "pid": pid,
        "started": start_time(pid),
        "tasks": masker.mask(tasks),
        "since": crate::time::now(),
    })
}

/// A token that tells this run's locks apart from any other's.
pub fn token() -> String {
    use sha2::Digest;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!(
        "{}|{}|{nanos}",
        std::process::id(),
        crate::history::controller()
    );
    crate::hex::encode(&sha2::Sha256::digest(seed.as_bytes()))[..24].to_string()
}

/// `grep`'s pattern for a lock taken with `token`, as a shell word.
fn token_pattern(token: &str) -> String {
    quote(&format!("\"token\":\"{token}\""))
}

/// The first word of [`acquire_command`]'s answer when this run holds the lock...
const ACQUIRED: &str = "acquired";
/// ...and when another run does; the holder's info follows on the next line.
const HELD: &str = "held";

/// Prints `acquired`, or `held` and the holder's info on the next line: see [`Reply`].
pub fn acquire_command(info: &Value, token: &str) -> String {
    format!(
        "mkdir -p \"$HOME/.rigs\" && if mkdir {DIR} 2>/dev/null; then \
         printf '%s\\n' {} > {DIR}/info && echo {ACQUIRED}; \
         elif grep -qF {} {DIR}/info 2>/dev/null; then echo {ACQUIRED}; \
         else echo {HELD}; cat {DIR}/info 2>/dev/null; fi",
        quote(&info.to_string()),
        token_pattern(token)
    )
}

/// What [`acquire_command`] and [`take_over_command`] answered, read once where the reply
/// comes in.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// This run holds the lock now.
    Acquired,
    /// Another run holds it: the holder's `info`.
    Held(String),
    /// Neither: the command failed, and this is what it said on stderr.
    Failed(String),
}

impl Reply {
    pub fn parse(stdout: &str, stderr: &str) -> Reply {
        if stdout.starts_with(ACQUIRED) {
            Reply::Acquired
        } else if stdout.starts_with(HELD) {
            Reply::Held(stdout.lines().nth(1).unwrap_or("").to_string())
        } else {
            Reply::Failed(stderr.trim().to_string())
        }
    }
}

/// Removes the lock of a holder that is gone, only while it still names that holder
/// (`dead_token`), then takes the lock as `acquire_command` does. Check and removal are two
/// commands, not one atomic step: two runs of this controller that found the same dead holder at
/// the same moment could both take the lock, if one removes the other's fresh lock between them.
pub fn take_over_command(dead_token: &str, info: &Value, token: &str) -> String {
    format!(
        "if grep -qF {} {DIR}/info 2>/dev/null; then rm -rf {DIR}; fi; {}",
        token_pattern(dead_token),
        acquire_command(info, token)
    )
}

/// Removes the lock if this run holds it.
pub fn release_command(token: &str) -> String {
    format!(
        "if grep -qF {} {DIR}/info 2>/dev/null; then rm -rf {DIR}; fi",
        token_pattern(token)
    )
}

/// The warning for `host`, whose lock this run could not give back (`why`: the connection was
/// lost, the command failed): the lock stays, so it says how to remove it.
pub fn release_failed(host: &str, why: &str) -> String {
    format!(
        "could not release the lock on {host}: {why}\n\
         the host stays locked until `rigs -H {host} lock:release` removes the lock \
         (a later run from this controller takes it over by itself)"
    )
}

/// Reports the host's locks (see `Status`), old per-environment ones included.
pub fn status_command() -> String {
    REPORT.to_string()
}

/// Reports the host's locks as `status_command` does, then removes them whoever holds them
/// (`lock:release`).
pub fn force_release_command() -> String {
    format!("{REPORT}; rm -rf {DIR} \"$HOME\"/.rigs/locks/*.lock")
}

/// What `status_command` found on a host.
#[derive(Debug, Default, PartialEq)]
pub struct Status {
    /// The host lock's info, when it is held.
    pub holder: Option<String>,
    /// Old per-environment locks: folder name and info.
    pub old: Vec<(String, String)>,
}

impl Status {
    pub fn parse(stdout: &str) -> Status {
        let mut status = Status::default();
        for line in stdout.lines() {
            if let Some(info) = line.strip_prefix(HELD) {
                status.holder = Some(info.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("old ") {
                let (name, info) = rest.split_once(' ').unwrap_or((rest, ""));
                status.old.push((name.to_string(), info.trim().to_string()));
            }
        }
        status
    }
}

/// The holder's `user@controller` and what it runs (`env:production deploy:1.2.3`).
fn holder(v: &Value) -> (String, String) {
    let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
    let tasks = s("tasks");
    let what = match v["env"].as_str() {
        Some(env) if !env.is_empty() => env
            .split(' ')
            .map(|e| format!("env:{e}"))
            .chain([tasks])
            .collect::<Vec<_>>()
            .join(" "),
        _ => tasks,
    };
    (format!("{}@{}", s("user"), s("controller")), what)
}

/// What a lock's holder looks like in a message:
/// `alice@laptop (pid 42) since T for env:production deploy:1.2.3`.
pub fn describe(info: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(info.trim()) else {
        return "an unknown holder (the lock has no readable info)".into();
    };
    let (who, what) = holder(&v);
    format!(
        "{who} (pid {}) since {} for {what}",
        v["pid"].as_u64().unwrap_or(0),
        v["since"].as_str().unwrap_or("?"),
    )
}

/// The token of the lock's holder if that holder was a run on this controller that has ended,
/// with the warning to print when taking the lock over from it on `host`.
pub fn dead_holder(info: &str, host: &str) -> Option<(String, String)> {
    let v: Value = serde_json::from_str(info.trim()).ok()?;
    if v["controller"].as_str()? != crate::history::controller() {
        return None;
    }
    let pid = u32::try_from(v["pid"].as_u64()?).ok()?;
    let token = v["token"].as_str()?;
    if running(pid, v["started"].as_u64()) {
        return None;
    }
    let (who, what) = holder(&v);
    Some((
        token.to_string(),
        format!(
            "took over the lock on {host} from {who} (pid {pid}, no longer running) for {what}"
        ),
    ))
}

/// Whether process `pid` runs on this machine and, when `started` is known, is the process that
/// started then rather than a later one given the same pid. When in doubt, it runs.
pub fn running(pid: u32, started: Option<u64>) -> bool {
    let Ok(id) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if id <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists.
    let alive = unsafe { libc::kill(id, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !alive {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| parse_stat(&s)) {
        // A process killed but not yet reaped by its parent is a zombie: it runs no more.
        Ok(Some(('Z', _))) => false,
        Ok(Some((_, now))) => started.is_none_or(|then| then == now),
        // /proc may hide other users' processes (hidepid): kill said it exists.
        _ => true,
    }
}

/// When process `pid` started, in clock ticks after boot.
pub fn start_time(pid: u32) -> Option<u64> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?).map(|(_, t)| t)
}

/// A `/proc/PID/stat` line's state (field 3) and start time (field 22).
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // Field 2, the command name, is in parentheses and may itself hold spaces and parentheses.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let started = fields.nth(18)?.parse().ok()?;
    Some((state, started))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_take_and_free_only_this_runs_lock() {
        let i = info("tok", Some("prod"), "deploy:v2", &Masker::default());
        let acquire = acquire_command(&i, "tok");
        assert!(
            acquire.contains("mkdir \"$HOME/.rigs/lock\" 2>/dev/null"),
            "{acquire}"
        );
        assert!(acquire.contains(&quote(&i.to_string())), "{acquire}");
        assert!(
            acquire.contains("grep -qF '\"token\":\"tok\"'"),
            "{acquire}"
        );
        assert_eq!(
            release_command("tok"),
            "if grep -qF '\"token\":\"tok\"' \"$HOME/.rigs/lock\"/info 2>/dev/null; \
             then rm -rf \"$HOME/.rigs/lock\"; fi"
        );
        let take = take_over_command("old'one", &i, "tok");
        assert!(
            take.starts_with("if grep -qF '\"token\":\"old'\\''one\"' \"$HOME/.rigs/lock\"/info"),
            "the dead holder's token is checked, quoted, before removing: {take}"
        );
        assert!(take.ends_with(&acquire), "{take}");
        assert!(force_release_command().starts_with(&status_command()));
    }

    #[test]
    fn acquire_replies_are_read_once() {
        assert_eq!(Reply::parse("acquired\n", ""), Reply::Acquired);
        assert_eq!(
            Reply::parse("held\n{\"pid\":7}\n", ""),
            Reply::Held("{\"pid\":7}".into())
        );
        assert_eq!(Reply::parse("held\n", ""), Reply::Held(String::new()));
        assert_eq!(
            Reply::parse("", "  mkdir: Permission denied\n"),
            Reply::Failed("mkdir: Permission denied".into())
        );
    }

    #[test]
    fn a_failed_release_names_the_host_and_the_command_that_frees_it() {
        let text = release_failed("web-1", "connection lost");
        assert_eq!(
            text.lines().next(),
            Some("could not release the lock on web-1: connection lost")
        );
        assert!(text.contains("`rigs -H web-1 lock:release`"), "{text}");
    }

    #[test]
    fn the_info_file_holds_no_secret_in_any_form() {
        let masker = Masker::default();
        let secret = "pa\"ss\\word\u{1}";
        masker.add(&crate::secret::Secret::new(secret));
        let i = info("tok", Some("prod"), &format!("deploy:{secret}"), &masker);
        let escaped = serde_json::to_string(secret).unwrap();
        let escaped = escaped.trim_matches('"');
        let command = acquire_command(&i, "tok");
        for text in [i.to_string(), command] {
            assert!(!text.contains(secret) && !text.contains(escaped), "{text}");
        }
        assert_eq!(i["tasks"], "deploy:****");
        assert_eq!(i["token"], "tok");
    }

    #[test]
    fn status_lists_the_host_lock_and_old_environment_locks() {
        let s = Status::parse("held {\"pid\":7}\nold prod.lock {\"pid\":8}\nold x.lock \n");
        assert_eq!(s.holder.as_deref(), Some("{\"pid\":7}"));
        assert_eq!(
            s.old,
            [
                ("prod.lock".to_string(), "{\"pid\":8}".to_string()),
                ("x.lock".to_string(), String::new())
            ]
        );
        assert_eq!(Status::parse(""), Status::default());
    }

    #[test]
    fn holders_are_described_from_their_info() {
        let i = info("tok", Some("prod"), "deploy:v2", &Masker::default());
        let text = describe(&i.to_string());
        assert!(
            text.contains("for env:prod deploy:v2") && text.contains("since "),
            "{text}"
        );
        let text = describe(&info("tok", None, "hold:3", &Masker::default()).to_string());
        assert!(text.ends_with(" for hold:3"), "{text}");
        assert!(describe("garbage").contains("unknown holder"));
    }

    #[test]
    fn stat_lines_give_state_and_start_time() {
        let line = "4242 (a) b (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 19 20";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn a_process_runs_only_with_its_own_start_time() {
        let me = std::process::id();
        let started = start_time(me).expect("this process's start time");
        assert!(running(me, Some(started)));
        assert!(running(me, None));
        assert!(!running(me, Some(started + 1)), "a reused pid");
        assert!(!running(0, None));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!running(pid, None), "a finished process");
    }

    #[test]
    fn only_ended_runs_of_this_controller_are_taken_over() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let started = start_time(pid);
        child.wait().unwrap();
        let mut dead = info("dead", Some("prod"), "deploy:v2", &Masker::default());
        dead["pid"] = pid.into();
        dead["started"] = started.into();
        let (token, warning) = dead_holder(&dead.to_string(), "h1").expect("taken over");
        assert_eq!(token, "dead");
        assert!(
            warning.starts_with("took over the lock on h1 from ")
                && warning.ends_with(&format!(
                    "(pid {pid}, no longer running) for env:prod deploy:v2"
                )),
            "{warning}"
        );
        dead["controller"] = "elsewhere".into();
        assert_eq!(
            dead_holder(&dead.to_string(), "h1"),
            None,
            "another machine"
        );
        let alive = info("alive", None, "hold:3", &Masker::default());
        assert_eq!(dead_holder(&alive.to_string(), "h1"), None, "this very run");
        assert_eq!(dead_holder("garbage", "h1"), None);
    }
}
