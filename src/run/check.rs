//! `rigs env:NAME check`: would a deploy work on these hosts?
//!
//! The first deploy to a new fleet fails for reasons that have nothing to do with the app: a host
//! key nobody accepted, a login without the docker group, Docker missing or stopped, no Compose
//! plugin, a full disk, a registry the host cannot reach, a clock far enough off to break TLS and
//! registry tokens, a deploy lock someone left. `check` asks each host all of it in one round
//! trip (plus one for the lock), fails the hosts that are not ready with what to do about each
//! problem, and gathers one row per host for a table. Connecting is itself the first check: a
//! host that cannot be reached, or whose key does not match, fails as any task would, and the
//! table shows it with that reason.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::quote::quote;
pub use crate::report::Readiness;

/// Less free space than this on Docker's data root is a problem: an image pull or load of a
/// typical app needs a few hundred megabytes, unpacked layers about as much again.
const MIN_FREE: u64 = 2 * 1024 * 1024 * 1024;
/// A clock this far off breaks TLS certificates and registry tokens.
const MAX_SKEW: f64 = 60.0;
/// A clock this far off is worth a word.
const NOTE_SKEW: f64 = 5.0;

/// What the check needs to know of the host besides its answers.
pub struct Expect<'a> {
    pub host: &'a str,
    /// The registry the host pulls from (`host[:port]`), unless it is air-gapped.
    pub registry: Option<String>,
    pub airgapped: bool,
    /// The project deploys a Compose project: the plugin is required.
    pub compose: bool,
    /// Whether sudo was asked for (`--sudo`, `--ask-sudo-pass`).
    pub sudo: bool,
}

/// The one script that asks everything but the lock; `key\tvalue` lines.
pub fn probe(registry: Option<&str>, repository: Option<&str>) -> String {
    let registry_probe = match registry {
        None => String::new(),
        Some(r) => {
            let https = quote(&format!("https://{r}/v2/"));
            let http = quote(&format!("http://{r}/v2/"));
            format!(
                "if command -v curl >/dev/null 2>&1; then \
                 c=$(curl -sS -o /dev/null -w '%{{http_code}}' --max-time 5 {https} 2>/dev/null); \
                 case $c in 2*|3*|4*) ;; *) c=$(curl -sS -o /dev/null -w '%{{http_code}}' --max-time 5 {http} 2>&1);; esac; \
                 printf 'registry\\t%s\\n' \"$c\"; \
                 elif command -v wget >/dev/null 2>&1; then \
                 c=$(wget -S --spider -T 5 {https} 2>&1 | grep -m1 'HTTP/' || wget -S --spider -T 5 {http} 2>&1 | grep -m1 'HTTP/'); \
                 printf 'registry\\t%s\\n' \"$(printf '%s' \"$c\" | awk '{{print $2}}')\"; \
                 else printf 'registry\\tno-tool\\n'; fi; "
            )
        }
    };
    // The app's newest image on the host: a new version needs about as much room again.
    let image_probe = match repository {
        None => String::new(),
        Some(repo) => format!(
            "s=$(docker images --no-trunc --format '{{{{.ID}}}}' -- {} 2>/dev/null | head -n 1); \
             [ -n \"$s\" ] && printf 'image\\t%s\\n' \"$(docker image inspect --format '{{{{.Size}}}}' -- \"$s\" 2>/dev/null)\"; ",
            quote(repo)
        ),
    };
    format!(
        "printf 'user\\t%s\\n' \"$(id -un 2>/dev/null)\"; \
         printf 'time\\t%s\\n' \"$(date +%s.%N 2>/dev/null | grep -v N || date +%s)\"; \
         if sudo -n true >/dev/null 2>&1; then printf 'sudo\\tyes\\n'; \
         elif command -v sudo >/dev/null 2>&1; then printf 'sudo\\tpassword\\n'; else printf 'sudo\\tnone\\n'; fi; \
         if ! command -v docker >/dev/null 2>&1; then printf 'docker\\tmissing\\n'; \
         elif i=$(docker info --format '{{{{.ServerVersion}}}}|{{{{.DockerRootDir}}}}|{{{{.Driver}}}}|{{{{json .DriverStatus}}}}' 2>&1); then \
         printf 'docker\\t%s\\n' \"$i\"; r=${{i#*|}}; r=${{r%%|*}}; \
         f=$(df -Pk \"$r\" 2>/dev/null || df -Pk \"$(dirname \"$r\")\" 2>/dev/null); \
         printf 'free\\t%s\\n' \"$(printf '%s\\n' \"$f\" | awk 'NR==2 {{print $4}}')\"; \
         else printf 'docker-error\\t%s\\n' \"$(printf '%s' \"$i\" | tr '\\n' ' ')\"; fi; \
         {image_probe}{registry_probe}{compose}",
        compose = crate::compose::plugin::PROBE,
    )
}

/// Seconds since the epoch on the controller.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Reads the probe's answers. `midpoint` is the controller's time halfway through the probe;
/// `lock` what the lock status said (`None`: not locked).
pub fn judge(
    expect: &Expect,
    answers: &str,
    compose: (i64, &str),
    midpoint: f64,
    lock: Option<String>,
) -> Readiness {
    let field = |key: &str| {
        answers
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('\t')))
            .map(str::trim)
    };
    let mut r = Readiness {
        host: expect.host.to_string(),
        user: field("user").unwrap_or("").to_string(),
        ..Readiness::default()
    };
    let mut problem = |text: String| r.problems.push(text);

    r.sudo = match field("sudo") {
        Some("yes") => "yes".into(),
        Some("password") => "with password".into(),
        _ => "no".into(),
    };
    if expect.sudo && r.sudo == "no" {
        problem(format!(
            "sudo is not installed for {}, and this run asked for sudo: install sudo and give the login a sudoers entry",
            r.user
        ));
    }

    match (field("docker"), field("docker-error")) {
        (Some("missing"), _) => {
            r.docker = "missing".into();
            problem(
                "docker is not installed: install Docker Engine (docker.io or docker-ce) and start it"
                    .into(),
            );
        }
        (Some(info), _) => {
            let mut parts = info.splitn(4, '|');
            let version = parts.next().unwrap_or("");
            let _root = parts.next();
            let driver = parts.next().unwrap_or("");
            let status = parts.next().unwrap_or("");
            r.docker = version.to_string();
            r.store = if status.contains("io.containerd.snapshotter") {
                "containerd".into()
            } else {
                driver.to_string()
            };
        }
        (None, Some(err)) => {
            r.docker = "unreachable".into();
            let what = if err.contains("permission denied") {
                format!(
                    "{} may not use the docker engine ({}): add it to the docker group, or deploy with sudo",
                    r.user,
                    crate::report::escape(err)
                )
            } else if err.contains("Cannot connect") || err.contains("Is the docker daemon running")
            {
                format!(
                    "the docker engine is not running ({}): start it (systemctl start docker)",
                    crate::report::escape(err)
                )
            } else {
                format!("docker info failed: {}", crate::report::escape(err))
            };
            problem(what);
        }
        (None, None) => {
            r.docker = "?".into();
            problem("the host did not answer the check (no `sh`?)".into());
        }
    }

    let image = field("image").and_then(|s| s.parse::<u64>().ok());
    let needed = image.map_or(MIN_FREE, |size| MIN_FREE.max(size.saturating_mul(2)));
    match field("free").and_then(|f| f.parse::<u64>().ok()) {
        Some(kb) => {
            let free = kb.saturating_mul(1024);
            r.disk_free = crate::report::bytes(free);
            if free < needed {
                let against = match image {
                    Some(size) => format!(
                        "; the app's image here is {}, and a new version needs about twice that",
                        crate::report::bytes(size)
                    ),
                    None => String::new(),
                };
                problem(format!(
                    "only {} free where docker keeps its images{against}: free space (docker system prune, or a bigger disk) before deploying",
                    r.disk_free
                ));
            }
        }
        None if r.docker.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
            r.disk_free = "?".into();
        }
        None => {}
    }

    r.compose = match crate::compose::plugin::judge(compose.0, compose.1, "") {
        Ok(v) => v,
        Err(why) => {
            if expect.compose {
                problem(why);
                "missing".into()
            } else {
                "-".into()
            }
        }
    };

    r.registry = match (&expect.registry, expect.airgapped) {
        (_, true) => "air-gapped".into(),
        (None, false) => "-".into(),
        (Some(reg), false) => match field("registry") {
            Some(code) if code.starts_with(['2', '3', '4']) && code.len() == 3 => {
                format!("{reg} ok")
            }
            Some("no-tool") => format!("{reg} ?"),
            other => {
                problem(format!(
                    "cannot reach the registry {reg} from the host ({}): open the way to it, or mark the host airgapped = true to ship images instead",
                    match other {
                        Some(o) if !o.is_empty() => crate::report::escape(o).into_owned(),
                        _ => "no answer".into(),
                    }
                ));
                format!("{reg} unreachable")
            }
        },
    };

    r.clock = match field("time").and_then(|t| t.parse::<f64>().ok()) {
        Some(t) => {
            let skew = t - midpoint;
            if skew.abs() > MAX_SKEW {
                problem(format!(
                    "the host's clock is {skew:+.0} s off the controller's: TLS and registry tokens fail; run an NTP client (systemd-timesyncd, chrony)"
                ));
            }
            if skew.abs() >= NOTE_SKEW {
                format!("{skew:+.0} s")
            } else {
                "ok".into()
            }
        }
        None => "?".into(),
    };

    r.lock = match lock {
        None => "free".into(),
        Some(holder) => {
            problem(format!(
                "the deploy lock is held by {holder}: wait for that run, or `rigs env:NAME lock:release` if it is gone"
            ));
            "held".into()
        }
    };
    r.ready = r.problems.is_empty();
    r
}

/// The compose probe's part of the answers: its marker lines, and a code `judge` reads as
/// "the probe ran".
pub fn compose_part(answers: &str) -> String {
    answers
        .lines()
        .filter(|l| l.starts_with("compose-"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The short line the summary shows for a ready host.
pub fn note(r: &Readiness) -> String {
    let mut parts = vec![format!("docker {}", r.docker)];
    if !r.store.is_empty() {
        parts[0].push_str(&format!(" ({})", r.store));
    }
    if r.compose != "-" && !r.compose.is_empty() {
        parts.push(format!("compose {}", r.compose));
    }
    if !r.disk_free.is_empty() {
        parts.push(format!("{} free", r.disk_free));
    }
    parts.push(if r.ready { "ready" } else { "not ready" }.into());
    parts.join(", ")
}

/// The registry a host pulls from, from the standard recipes' variables: `registry`, else the
/// host part of `image` when it names one (`registry.example.com/app`, `127.0.0.1:5000/app`).
pub fn registry_of(vars: &toml::Table) -> Option<String> {
    if let Some(r) = vars.get("registry").and_then(|v| v.as_str()) {
        return Some(r.to_string());
    }
    let image = vars.get("image").and_then(|v| v.as_str())?;
    let (first, _) = image.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then(|| first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect() -> Expect<'static> {
        Expect {
            host: "web-1",
            registry: Some("registry.example.com".into()),
            airgapped: false,
            compose: false,
            sudo: false,
        }
    }

    const READY: &str = "user\tdeploy\ntime\t1000.5\nsudo\tyes\n\
        docker\t26.1.5|/var/lib/docker|overlayfs|[[\"driver-type\",\"io.containerd.snapshotter.v1\"]]\n\
        free\t52428800\nregistry\t401\ncompose-v2: {\"version\":\"2.26.1-4\"}\n";

    #[test]
    fn a_ready_host() {
        let r = judge(&expect(), READY, (0, &compose_part(READY)), 1000.0, None);
        assert!(r.ready, "{r:?}");
        assert_eq!(r.docker, "26.1.5");
        assert_eq!(r.store, "containerd");
        assert_eq!(r.compose, "2.26.1-4");
        assert_eq!(r.registry, "registry.example.com ok");
        assert_eq!(r.clock, "ok");
        assert_eq!(r.lock, "free");
        assert!(note(&r).starts_with("docker 26.1.5 (containerd), compose 2.26.1-4"));
    }

    #[test]
    fn each_problem_says_what_to_do() {
        let answers = "user\tdeploy\ntime\t2000\nsudo\tnone\ndocker\tmissing\nregistry\t000\n\
                       compose-docker: missing\n";
        let e = Expect {
            compose: true,
            sudo: true,
            ..expect()
        };
        let r = judge(
            &e,
            answers,
            (0, &compose_part(answers)),
            1000.0,
            Some("ann".into()),
        );
        assert!(!r.ready);
        let all = r.problems.join("\n");
        for needle in [
            "install sudo",
            "install Docker Engine",
            "cannot reach the registry registry.example.com",
            "+1000 s off",
            "lock is held by ann",
            "docker is not installed",
        ] {
            assert!(all.contains(needle), "no `{needle}` in {all}");
        }
        let low = "user\td\ntime\t1000\nsudo\tyes\ndocker\t20.10.24|/var/lib/docker|overlay2|[]\nfree\t1024\n";
        let r = judge(
            &Expect {
                registry: None,
                ..expect()
            },
            low,
            (0, ""),
            1000.0,
            None,
        );
        assert_eq!(r.store, "overlay2");
        assert!(
            r.problems[0].contains("free where docker keeps its images"),
            "{r:?}"
        );
        let big = "user\td\ntime\t1000\nsudo\tyes\ndocker\t26.1.5|/d|overlayfs|[]\n\
                   free\t3145728\nimage\t2147483648\n";
        let r = judge(
            &Expect {
                registry: None,
                ..expect()
            },
            big,
            (0, ""),
            1000.0,
            None,
        );
        assert!(
            r.problems[0].contains("the app's image here is 2.15 GB"),
            "{r:?}"
        );
    }

    #[test]
    fn registries_from_the_standard_variables() {
        let t = |s: &str| toml::from_str::<toml::Table>(s).unwrap();
        assert_eq!(
            registry_of(&t("image = \"r.example/app\"")).as_deref(),
            Some("r.example")
        );
        assert_eq!(
            registry_of(&t("image = \"127.0.0.1:5000/app\"")).as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(registry_of(&t("image = \"library/app\"")), None);
        assert_eq!(
            registry_of(&t("registry = \"r:1\"\nimage = \"x/y\"")).as_deref(),
            Some("r:1")
        );
    }
}
