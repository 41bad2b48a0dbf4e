//! The test harness: real OpenSSH servers on loopback and a builder that runs the real binary.
//!
//! Nothing here mocks SSH. [`SshLab`] starts `sshd` processes with their own host keys, config
//! and log, and kills them by PID when dropped; [`Project`] writes recipes and inventories into a
//! temporary folder and runs `rigs` there from an empty environment with a private HOME and its
//! own system-wide known_hosts file, so neither the developer's exported variables, nor their
//! `~/.ssh`, nor the machine's `/etc/ssh/ssh_known_hosts` change a result.
#![allow(dead_code)]

mod agent;
mod docker;
mod engine;
mod netns;
mod project;
mod sshd;
mod user;

pub use agent::SshAgent;
pub use docker::{DockerLab, LabOptions, REGISTRY_PASSWORD, REGISTRY_USER};
pub(crate) use engine::on_engines;
pub use engine::Engine;
pub use netns::BastionLab;
pub use project::{Project, RunOutput, GLOBAL_KNOWN_HOSTS};
pub use sshd::{keygen, unused_port, ClosedPort, SshLab};
pub use user::{ensure_test_user, TEST_PASSWORD, TEST_USER};

/// Whether a process whose command line contains `pattern` runs on this machine (where every
/// lab host lives), after giving a just-signalled process a moment to exit.
pub fn process_running(pattern: &str) -> bool {
    for _ in 0..20 {
        let out = std::process::Command::new("pgrep")
            .arg("-f")
            .arg(pattern)
            .output()
            .expect("pgrep");
        if !out.status.success() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    true
}

/// Quotes a value for a POSIX shell line in a test recipe.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Per host in a JSON run's `summary` event, in order: its name, status, note and error ("" for a
/// note or error it lacks).
pub fn summary_hosts(summary: &serde_json::Value) -> Vec<(String, String, String, String)> {
    summary["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_string(),
                h["status"].as_str().unwrap().to_string(),
                h["note"].as_str().unwrap_or("").to_string(),
                h["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// `summary_hosts` of the last `summary` event of a `--output json` run's stdout.
#[track_caller]
pub fn run_summary(stdout: &str) -> Vec<(String, String, String, String)> {
    let all = json_events(stdout);
    let s = all
        .iter()
        .rev()
        .find(|e| e["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    summary_hosts(s)
}

/// The events of a `--output json` run's stdout, in order. Every line must be one JSON object:
/// anything else on stdout fails the test, with the line shown.
#[track_caller]
pub fn json_events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .enumerate()
        .map(
            |(i, line)| match serde_json::from_str::<serde_json::Value>(line) {
                Ok(event) if event.is_object() => event,
                Ok(_) => panic!("stdout line {}: not a JSON object: {line}", i + 1),
                Err(e) => panic!("stdout line {}: not JSON ({e}): {line}", i + 1),
            },
        )
        .collect()
}
