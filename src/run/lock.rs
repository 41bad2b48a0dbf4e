//! Per-environment deploy locks, held on the hosts themselves.
//!
//! A task whose doc comment has a line `@lock` takes its environment's lock on every selected
//! host before anything runs, and gives it back when the run ends: on success, on failure and
//! on Ctrl-C. The lock is a directory (`~/.rigs/locks/ENV.lock`): `mkdir` either creates it or
//! fails, atomically, so two runs can never both believe they hold it. Inside, `info` says who
//! holds it (user@controller, pid), for what (the task words) and since when, so the second run
//! can say exactly that instead of just failing. Taking it on every host, not on one elected
//! host, means two runs over overlapping selections of one environment exclude each other too;
//! a run that cannot take it on every host gives back what it took and starts nothing.
//! Releasing only removes a lock whose token is this run's, so a run never frees a lock that
//! someone else took after force-releasing its own.

use serde_json::{json, Value};

use crate::quote::quote;

/// The lock directory of `env`, as a shell word. Environment names are TOML keys, so they may
/// hold anything; all but a safe set of characters are hex-encoded.
pub fn path(env: &str) -> String {
    let mut name = String::new();
    for b in env.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02x}"));
        }
    }
    format!("\"$HOME/.rigs/locks/{name}.lock\"")
}

/// What a lock's `info` file holds.
pub fn info(token: &str, env: &str, tasks: &str) -> Value {
    json!({
        "token": token,
        "env": env,
        "user": crate::history::user(),
        "controller": crate::history::controller(),
        "pid": std::process::id(),
        "tasks": tasks,
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
    crate::ssh::hex(&sha2::Sha256::digest(seed.as_bytes()))[..24].to_string()
}

/// Prints `acquired`, or `held` and the holder's info. Hosts that share a home folder (NFS)
/// share the lock too: finding this run's own token counts as acquired.
pub fn acquire_command(env: &str, info: &Value, token: &str) -> String {
    let d = path(env);
    format!(
        "mkdir -p \"$HOME/.rigs/locks\" && if mkdir {d} 2>/dev/null; then \
         printf '%s\\n' {} > {d}/info && echo acquired; \
         elif grep -q {} {d}/info 2>/dev/null; then echo acquired; \
         else echo held; cat {d}/info 2>/dev/null; fi",
        quote(&info.to_string()),
        quote(&format!("\"token\":\"{token}\""))
    )
}

/// Removes the lock if this run holds it.
pub fn release_command(env: &str, token: &str) -> String {
    let d = path(env);
    format!(
        "if grep -q {} {d}/info 2>/dev/null; then rm -rf {d}; fi",
        quote(&format!("\"token\":\"{token}\""))
    )
}

/// Removes the lock whoever holds it (`lock:release`).
pub fn force_release_command(env: &str) -> String {
    let d = path(env);
    format!("if [ -d {d} ]; then cat {d}/info 2>/dev/null; rm -rf {d}; echo released; fi")
}

/// Prints the holder's info, or nothing.
pub fn status_command(env: &str) -> String {
    let d = path(env);
    format!("if [ -d {d} ]; then cat {d}/info 2>/dev/null || echo '{{}}'; fi")
}

/// What a lock's holder looks like in a message: `alice@laptop (pid 42) since T for deploy:v2`.
pub fn describe(info: &str) -> String {
    let v: Value = serde_json::from_str(info.trim()).unwrap_or(Value::Null);
    let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
    if v.is_null() {
        return "an unknown holder (the lock has no readable info)".into();
    }
    format!(
        "{}@{} (pid {}) since {} for `{}`",
        s("user"),
        s("controller"),
        v["pid"].as_u64().unwrap_or(0),
        s("since"),
        s("tasks")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_paths_are_one_safe_shell_word() {
        assert_eq!(path("production"), "\"$HOME/.rigs/locks/production.lock\"");
        assert_eq!(path("a b$c"), "\"$HOME/.rigs/locks/a%20b%24c.lock\"");
    }

    #[test]
    fn holders_are_described_from_their_info() {
        let i = info("tok", "prod", "deploy:v2");
        let text = describe(&i.to_string());
        assert!(
            text.contains("for `deploy:v2`") && text.contains("since "),
            "{text}"
        );
        assert!(describe("garbage").contains("unknown holder"));
        assert!(release_command("prod", "tok").contains("\"token\":\"tok\""));
    }
}
