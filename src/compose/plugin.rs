//! Finds out whether a host can run `docker compose`, in one round trip.
//!
//! rigs needs the Compose v2 plugin (`docker compose`, not the Python `docker-compose` 1.x) at a
//! version that has `up --wait-timeout` (2.17). When it is missing, the common causes each have a
//! different fix (no Docker, only Compose 1.x, a standalone v2 binary not linked as a plugin, no
//! plugin package), so the probe gathers enough to tell them apart and [`judge`] names the fix.
//!
//! The probe prints one line per finding, each starting with a marker, and folds each command's
//! output onto that line, so parsing does not depend on what else the shell or Docker prints.

/// The oldest Compose with `docker compose up --wait-timeout` (added in 2.17.0).
const MINIMUM: (u64, u64) = (2, 17);

const INSTALL: &str = "install docker-compose-plugin (Docker's apt/yum repository), \
    docker-compose-v2 (Ubuntu) or docker-compose 2.x (Debian 13), or put the docker-compose \
    binary into ~/.docker/cli-plugins/";

/// One shell line run on the host that tells everything `judge` needs (the Compose v2 plugin's version, or why there is none).
pub const PROBE: &str = "if ! command -v docker >/dev/null 2>&1; then echo 'compose-docker: missing'; \
elif o=$(docker compose version --format json 2>&1) || { e=$o; o=$(docker compose version --short 2>/dev/null); }; \
then printf 'compose-v2: %s\\n' \"$(printf '%s' \"$o\" | tr '\\n' ' ')\"; \
else printf 'compose-error: %s\\n' \"$(printf '%s' \"$e\" | tr '\\n' ' ')\"; \
if command -v docker-compose >/dev/null 2>&1; \
then printf 'compose-standalone: %s\\n' \"$(docker-compose version --short 2>&1 | tr '\\n' ' ')\"; fi; fi";

/// The plugin's version ("2.26.1-4"), or the message for the user: what is missing and what to install.
pub fn judge(code: i64, stdout: &str, stderr: &str) -> Result<String, String> {
    let marker = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .map(str::trim)
    };
    if marker("compose-docker:").is_some() {
        return Err(
            "docker is not installed on this host (no `docker` command on PATH): install Docker \
             Engine and its Compose v2 plugin"
                .into(),
        );
    }
    if let Some(output) = marker("compose-v2:") {
        let version = version_of(output).ok_or_else(|| {
            format!(
                "`docker compose version` printed something rigs does not understand: {}",
                output.trim()
            )
        })?;
        return match numbers(&version) {
            Some(found) if found >= MINIMUM => Ok(version),
            _ => Err(format!(
                "rigs needs Compose {}.{} or later (up --wait-timeout); this host has {version}: \
                 upgrade it ({INSTALL})",
                MINIMUM.0, MINIMUM.1
            )),
        };
    }
    let Some(error) = marker("compose-error:") else {
        return Err(format!(
            "could not tell whether this host has Docker Compose: the probe exited with {code} \
             and printed {:?} (stderr {:?})",
            stdout.trim(),
            stderr.trim()
        ));
    };
    if let Some(standalone) = marker("compose-standalone:") {
        let version = standalone.trim().trim_start_matches('v');
        if version.starts_with("1.") {
            return Err(format!(
                "only the Python docker-compose 1.x is installed ({version}), which rigs does not \
                 support (end of life, no `up --wait`); install the Compose v2 plugin: {INSTALL}"
            ));
        }
        if numbers(version).is_some_and(|(major, _)| major >= 2) {
            return Err(format!(
                "this host has a standalone docker-compose {version} but docker does not use it \
                 as a plugin; link it with `mkdir -p ~/.docker/cli-plugins && ln -s \
                 \"$(command -v docker-compose)\" ~/.docker/cli-plugins/docker-compose` (as the \
                 user rigs connects as), or {INSTALL}"
            ));
        }
    }
    let known = ["not a docker command", "unknown command", "unknown flag"];
    let said = if known.iter().any(|k| error.contains(k)) || error.is_empty() {
        String::new()
    } else {
        format!(" (`docker compose version` said: {error})")
    };
    Err(format!(
        "this host's docker has no Compose v2 plugin{said}; {INSTALL}"
    ))
}

/// The version in `docker compose version` output: `{"version":"v2.26.1"}` or a bare `2.26.1`.
fn version_of(output: &str) -> Option<String> {
    let output = output.trim();
    // Warnings may precede the JSON, as the probe folds stderr into the same line.
    let json = output
        .rfind('{')
        .and_then(|start| serde_json::from_str::<serde_json::Value>(&output[start..]).ok());
    let raw = match json {
        Some(value) => value.get("version")?.as_str()?.to_string(),
        None => output.split_whitespace().last()?.to_string(),
    };
    let version = raw.trim_start_matches('v').to_string();
    numbers(&version).map(|_| version)
}

/// Major and minor of `2.26.1-4`.
fn numbers(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_version_from_json() {
        let out = "compose-v2: {\"version\":\"2.26.1-4\"}\n";
        assert_eq!(judge(0, out, "").unwrap(), "2.26.1-4");
        let out = "compose-v2: {\"version\":\"v2.29.7\"}\n";
        assert_eq!(judge(0, out, "").unwrap(), "2.29.7");
        assert_eq!(judge(0, "compose-v2: 2.40.0 \n", "").unwrap(), "2.40.0");
        let warned =
            "compose-v2: WARNING: config.json is not readable {\"version\":\"v2.27.0\"} \n";
        assert_eq!(judge(0, warned, "").unwrap(), "2.27.0");
        assert_eq!(
            judge(0, "compose-v2: {\"version\":\"5.0.1\"}\n", "").unwrap(),
            "5.0.1"
        );
    }

    #[test]
    fn old_v2_is_refused_with_its_version() {
        let e = judge(0, "compose-v2: {\"version\":\"v2.12.2\"}\n", "").unwrap_err();
        assert!(e.contains("2.17") && e.contains("2.12.2"), "{e}");
        assert_eq!(
            judge(0, "compose-v2: {\"version\":\"2.17.0\"}\n", "").unwrap(),
            "2.17.0"
        );
    }

    #[test]
    fn no_plugin_and_nothing_else() {
        let out =
            "compose-error: docker: 'compose' is not a docker command. See 'docker --help' \n";
        let e = judge(0, out, "").unwrap_err();
        assert!(e.contains("no Compose v2 plugin"), "{e}");
        assert!(
            e.contains("docker-compose-plugin") && e.contains("docker-compose-v2"),
            "{e}"
        );
        assert!(!e.contains("said"), "{e}");
    }

    #[test]
    fn no_plugin_with_an_unexpected_message_shows_it() {
        let out = "compose-error: permission denied \n";
        let e = judge(0, out, "").unwrap_err();
        assert!(e.contains("permission denied"), "{e}");
    }

    #[test]
    fn only_python_compose_v1() {
        let out = "compose-error: docker: 'compose' is not a docker command. \n\
                   compose-standalone: 1.29.2 \n";
        let e = judge(0, out, "").unwrap_err();
        assert!(
            e.contains("Python docker-compose 1.x") && e.contains("1.29.2"),
            "{e}"
        );
        assert!(e.contains("docker-compose-plugin"), "{e}");
    }

    #[test]
    fn standalone_v2_not_linked_as_plugin() {
        let out = "compose-error: docker: 'compose' is not a docker command. \n\
                   compose-standalone: v2.24.6 \n";
        let e = judge(0, out, "").unwrap_err();
        assert!(e.contains("~/.docker/cli-plugins/docker-compose"), "{e}");
        assert!(e.contains("ln -s"), "{e}");
    }

    #[test]
    fn no_docker() {
        let e = judge(0, "compose-docker: missing\n", "").unwrap_err();
        assert!(e.contains("docker is not installed"), "{e}");
    }

    #[test]
    fn unexpected_probe_output() {
        let e = judge(127, "", "sh: syntax error").unwrap_err();
        assert!(e.contains("127") && e.contains("syntax error"), "{e}");
        let e = judge(0, "compose-v2: garbage\n", "").unwrap_err();
        assert!(e.contains("garbage"), "{e}");
    }

    #[test]
    fn probe_runs_in_posix_sh() {
        let Ok(out) = std::process::Command::new("sh")
            .args(["-c", PROBE])
            .output()
        else {
            return;
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.lines().any(|l| l.starts_with("compose-")),
            "{stdout:?} {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
