//! The check `docker::wait_healthy` waits for: what to probe, the shell line of one probe with
//! the tools found where it runs, and what its result means.
//!
//! Parsing and judging are apart from the waiting (`health.rs`) so that every probe line and
//! every verdict can be tested without a host: the lines are the product here, each value in
//! them quoted by the one quoting helper, one line per tool so a failure reads plainly.

use std::time::Duration;

use rhai::{Array, Dynamic, Map, FLOAT};

use super::scope::CommandResult;
use super::spec::{FunctionSpec, Kind, OptionSpec, Range, SUDO};
use crate::quote::quote;

/// Docker's own health status, empty when the container has no HEALTHCHECK.
const HEALTH_FORMAT: &str = "{{if .State.Health}}{{.State.Health.Status}}{{end}}";
/// The longest a single HTTP or TCP probe may take, in seconds.
const MAX_PROBE_SECS: u64 = 5;
/// Extra time the connection gives a probe beyond its own limit before it counts as hung.
const PROBE_GRACE: Duration = Duration::from_secs(5);

/// Prints which probe tools exist where it runs; the `case` lines tell variants apart by their
/// help text (busybox builds may lack `wget -T`, and busybox `nc` has no `-z`).
pub(super) const DETECT_TOOLS: &str = "for t in curl wget nc bash timeout; do command -v \"$t\" >/dev/null 2>&1 && echo \"$t\"; done; \
     case \"$(wget --help 2>&1 </dev/null)\" in *-T*) echo wget-T;; esac; \
     case \"$(wget --help 2>&1 </dev/null)\" in *--tries*) echo wget-t;; esac; \
     case \"$(nc -h 2>&1 </dev/null)\" in *-z*) echo nc-z;; esac; true";

/// Connects to `$1:$2` with bash's `/dev/tcp`; host and port arrive as arguments, never spliced.
const BASH_TCP: &str = "exec 3<>\"/dev/tcp/$1/$2\"";

pub static WAIT_HEALTHY: FunctionSpec = FunctionSpec {
    name: "docker::wait_healthy",
    params: &["name"],
    options: &[
        OptionSpec::new(
            "http",
            Kind::Custom("string", "a URL starting with http:// or https://"),
            "",
            "healthy when an HTTP GET from the host answers with an `expect` status",
        ),
        OptionSpec::new(
            "expect",
            Kind::Custom("int|array", "an HTTP status or an array of them"),
            "200",
            "the statuses an `http` check accepts",
        ),
        OptionSpec::new(
            "tcp",
            Kind::Custom("int", "a port number (1 to 65535)"),
            "",
            "healthy when a TCP connect from the host to this port succeeds",
        ),
        OptionSpec::new(
            "host",
            Kind::Custom("string", "a non-empty string"),
            "127.0.0.1",
            "where a `tcp` check connects",
        ),
        OptionSpec::new(
            "cmd",
            Kind::Custom("string", "a non-empty string"),
            "",
            "healthy when this shell command exits 0 on the host",
        ),
        OptionSpec::new(
            "docker",
            Kind::Custom("bool", "true (wait for the container's HEALTHCHECK)"),
            "true",
            "healthy when Docker reports the container's HEALTHCHECK as healthy",
        ),
        OptionSpec::new(
            "inside",
            Kind::Bool,
            "false",
            "run the http, tcp or cmd check inside the container (docker exec)",
        ),
        OptionSpec::new(
            "timeout",
            Kind::Duration(Range {
                zero: false,
                max: 86_400,
                max_text: "a day",
            }),
            "60",
            "give up after this long",
        ),
        OptionSpec::new(
            "interval",
            Kind::Duration(Range {
                zero: true,
                max: 3_600,
                max_text: "an hour",
            }),
            "1",
            "time between probes",
        ),
        OptionSpec::new(
            "retries",
            Kind::Custom("int", "a number of probes, 1 or more"),
            "",
            "give up after this many probes",
        ),
        SUDO,
    ],
    returns: "map #{ healthy, probes, seconds }",
    doc: "Waits until container `name` on the host is healthy, probing from the host.\n\
          One check: http, tcp, cmd, or (without one) the container's own HEALTHCHECK. Fails at\n\
          once when the container exits or restarts, with its last log lines.",
};

/// What one probe looks at.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Probe {
    /// An HTTP GET whose status must be one of `expect`.
    Http { url: String, expect: Vec<i64> },
    /// A TCP connect.
    Tcp { host: String, port: u16 },
    /// A shell command that must exit 0.
    Cmd(String),
    /// The container's own HEALTHCHECK status.
    Docker,
}

/// A parsed check map: what to probe, where, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Check {
    pub(super) probe: Probe,
    /// Probe inside the container (`docker exec`) instead of on the host.
    pub(super) inside: bool,
    /// As given, for messages.
    pub(super) timeout_secs: FLOAT,
    pub(super) timeout: Duration,
    pub(super) interval: Duration,
    pub(super) retries: Option<u64>,
    /// Every command of the wait runs through sudo.
    pub(super) sudo: bool,
}

impl Default for Check {
    fn default() -> Check {
        Check {
            probe: Probe::Docker,
            inside: false,
            timeout_secs: 60.0,
            timeout: Duration::from_secs(60),
            interval: Duration::from_secs(1),
            retries: None,
            sudo: false,
        }
    }
}

/// The probe tools found on the host or in the container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Tools {
    pub(super) curl: bool,
    pub(super) wget: bool,
    /// `wget -T SECONDS` (GNU wget; not every busybox build).
    pub(super) wget_timeout: bool,
    /// `wget -t TRIES` (GNU wget, which otherwise retries a silent server 20 times).
    pub(super) wget_tries: bool,
    pub(super) nc: bool,
    /// `nc -z` (OpenBSD, GNU and nmap netcat; busybox has none).
    pub(super) nc_zero: bool,
    pub(super) bash: bool,
    /// coreutils or busybox `timeout`, to bound bash's `/dev/tcp` connect.
    pub(super) timeout: bool,
}

impl Tools {
    /// Reads what [`DETECT_TOOLS`] printed.
    pub(super) fn parse(listing: &str) -> Tools {
        let mut t = Tools::default();
        for word in listing.split_whitespace() {
            match word {
                "curl" => t.curl = true,
                "wget" => t.wget = true,
                "wget-T" => t.wget_timeout = true,
                "wget-t" => t.wget_tries = true,
                "nc" => t.nc = true,
                "nc-z" => t.nc_zero = true,
                "bash" => t.bash = true,
                "timeout" => t.timeout = true,
                _ => {}
            }
        }
        t
    }

    /// What a dry run shows, where nothing is looked up: the usual tools of each place.
    pub(super) fn assumed(inside: bool) -> Tools {
        Tools {
            curl: !inside,
            wget: true,
            nc: true,
            nc_zero: !inside,
            bash: !inside,
            ..Tools::default()
        }
    }
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    Healthy,
    /// Not yet; the text says what the probe saw.
    NotYet(String),
    /// Docker's HEALTHCHECK gave up: waiting longer cannot help.
    Unhealthy,
    /// `docker: true` on a container without a HEALTHCHECK.
    NoHealthcheck,
}

/// The container's state as one `docker container inspect` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct State {
    pub(super) status: String,
    pub(super) restarts: i64,
    pub(super) exit_code: i64,
}

impl State {
    pub(super) fn parse(line: &str) -> Option<State> {
        let mut words = line.split_whitespace();
        Some(State {
            status: words.next()?.to_string(),
            restarts: words.next()?.parse().ok()?,
            exit_code: words.next()?.parse().ok()?,
        })
    }
}

fn text(key: &str, v: &Dynamic) -> Result<String, String> {
    match v.clone().into_string() {
        Ok(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(format!("option `{key}` must be a non-empty string")),
    }
}

fn status_code(v: &Dynamic) -> Option<i64> {
    v.as_int().ok().filter(|c| (100..=599).contains(c))
}

impl Check {
    /// Reads a check map, rejecting unknown keys, wrong types and contradictions.
    pub(super) fn parse(map: &Map) -> Result<Check, String> {
        WAIT_HEALTHY.check(map)?;
        let mut check = Check::default();
        let mut url = None;
        let mut expect = None;
        let mut port = None;
        let mut host = None;
        let mut cmd = None;
        let mut docker = false;
        for (key, value) in map {
            let key = key.as_str();
            match key {
                "http" => {
                    let u = text(key, value)?;
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        return Err(format!(
                            "option `http` must be a URL starting with http:// or https://, not `{u}`"
                        ));
                    }
                    url = Some(u);
                }
                "expect" => {
                    let codes = if let Some(c) = status_code(value) {
                        vec![c]
                    } else if let Some(a) = value.read_lock::<Array>() {
                        a.iter()
                            .map(status_code)
                            .collect::<Option<Vec<_>>>()
                            .filter(|c| !c.is_empty())
                            .ok_or("option `expect` must be an HTTP status or an array of them")?
                    } else {
                        return Err(
                            "option `expect` must be an HTTP status or an array of them".into()
                        );
                    };
                    expect = Some(codes);
                }
                "tcp" => {
                    port = Some(
                        value
                            .as_int()
                            .ok()
                            .and_then(|p| u16::try_from(p).ok())
                            .filter(|p| *p > 0)
                            .ok_or("option `tcp` must be a port number (1 to 65535)")?,
                    )
                }
                "host" => host = Some(text(key, value)?),
                "cmd" => cmd = Some(text(key, value)?),
                "docker" => {
                    match value.as_bool() {
                        Ok(true) => docker = true,
                        _ => return Err(
                            "option `docker` must be true (wait for the container's HEALTHCHECK)"
                                .into(),
                        ),
                    }
                }
                "inside" => {
                    check.inside = value
                        .as_bool()
                        .map_err(|_| "option `inside` must be true or false")?
                }
                // Checked against the table above.
                "timeout" => {
                    let secs = super::spec::seconds(value).unwrap_or(60.0);
                    check.timeout_secs = secs;
                    check.timeout = Duration::from_secs_f64(secs);
                }
                "interval" => {
                    let secs = super::spec::seconds(value).unwrap_or(1.0);
                    check.interval = Duration::from_secs_f64(secs);
                }
                "sudo" => check.sudo = value.as_bool().unwrap_or(false),
                "retries" => {
                    check.retries = Some(
                        value
                            .as_int()
                            .ok()
                            .and_then(|r| u64::try_from(r).ok())
                            .filter(|r| *r > 0)
                            .ok_or("option `retries` must be a number of probes, 1 or more")?,
                    )
                }
                _ => {}
            }
        }
        let kinds = [url.is_some(), port.is_some(), cmd.is_some(), docker];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err("give one check: http, tcp, cmd or docker".into());
        }
        if expect.is_some() && url.is_none() {
            return Err("option `expect` goes with `http`".into());
        }
        if host.is_some() && port.is_none() {
            return Err("option `host` goes with `tcp`".into());
        }
        check.probe = if let Some(url) = url {
            Probe::Http {
                url,
                expect: expect.unwrap_or_else(|| vec![200]),
            }
        } else if let Some(port) = port {
            Probe::Tcp {
                host: host.unwrap_or_else(|| "127.0.0.1".into()),
                port,
            }
        } else if let Some(cmd) = cmd {
            Probe::Cmd(cmd)
        } else {
            Probe::Docker
        };
        if check.inside && check.probe == Probe::Docker {
            return Err("option `inside` goes with http, tcp or cmd".into());
        }
        Ok(check)
    }

    /// One HTTP or TCP probe's own limit: whole seconds, as `nc -w` and `wget -T` want them.
    pub(super) fn probe_secs(&self) -> u64 {
        (self.timeout_secs.ceil() as u64).clamp(1, MAX_PROBE_SECS)
    }

    /// Where the probe runs, for messages.
    pub(super) fn place(&self, name: &str) -> String {
        if self.inside {
            format!("in container `{name}`")
        } else {
            "on the host".to_string()
        }
    }

    /// The shell line of one probe, as run on the host, with the tools found where it runs.
    pub(super) fn probe_line(&self, name: &str, tools: &Tools) -> Result<String, String> {
        let secs = quote(&self.probe_secs().to_string());
        let line = match &self.probe {
            Probe::Docker => {
                return Ok(format!(
                    "docker container inspect --format {} -- {}",
                    quote(HEALTH_FORMAT),
                    quote(name)
                ))
            }
            Probe::Http { url, .. } if tools.curl => format!(
                "curl -sS -o /dev/null -w {} --max-time {secs} {}",
                quote("%{http_code}"),
                quote(url)
            ),
            Probe::Http { url, .. } if tools.wget => {
                let mut line = "wget -S -O /dev/null".to_string();
                if tools.wget_timeout {
                    line.push_str(&format!(" -T {secs}"));
                }
                if tools.wget_tries {
                    line.push_str(" -t 1");
                }
                format!("{line} {}", quote(url))
            }
            Probe::Http { .. } => {
                return Err(format!("neither curl nor wget is {}", self.place(name)))
            }
            Probe::Tcp { host, port } if tools.nc => {
                let port = quote(&port.to_string());
                if tools.nc_zero {
                    format!("nc -z -w {secs} {} {port}", quote(host))
                } else {
                    // Without -z, nc connects, sends nothing, and ends when the server closes.
                    format!("nc -w {secs} {} {port} </dev/null", quote(host))
                }
            }
            Probe::Tcp { host, port } if tools.bash => {
                let limit = if tools.timeout {
                    format!("timeout {secs} ")
                } else {
                    String::new()
                };
                format!(
                    "{limit}bash -c {} bash {} {}",
                    quote(BASH_TCP),
                    quote(host),
                    quote(&port.to_string())
                )
            }
            Probe::Tcp { .. } => {
                return Err(format!(
                    "neither nc nor bash is {}, so a tcp check cannot connect; \
                     use an http or cmd check instead",
                    self.place(name)
                ))
            }
            Probe::Cmd(cmd) => cmd.clone(),
        };
        Ok(if self.inside {
            format!("docker exec -- {} sh -c {}", quote(name), quote(&line))
        } else {
            line
        })
    }

    /// The limit the connection puts on one probe: a cmd may use what is left of the wait,
    /// HTTP and TCP probes carry their own limit and get a grace on top.
    pub(super) fn probe_limit(&self, left: Duration) -> Option<Duration> {
        match self.probe {
            Probe::Docker => None,
            Probe::Cmd(_) => Some(left.max(Duration::from_secs(1))),
            _ => Some(Duration::from_secs(self.probe_secs()) + PROBE_GRACE),
        }
    }

    /// Reads one probe's result.
    pub(super) fn judge(&self, r: &CommandResult) -> Verdict {
        match &self.probe {
            Probe::Docker => match (r.ok(), r.stdout.trim()) {
                (true, "healthy") => Verdict::Healthy,
                (true, "unhealthy") => Verdict::Unhealthy,
                (true, "") => Verdict::NoHealthcheck,
                (true, status) => Verdict::NotYet(format!("Docker health status `{status}`")),
                (false, _) => Verdict::NotYet(failure(r)),
            },
            Probe::Http { url, expect } => match http_status(r) {
                Some(code) if expect.contains(&code) => Verdict::Healthy,
                Some(code) => Verdict::NotYet(format!("HTTP {code} from {url}")),
                None => Verdict::NotYet(format!("no answer from {url} ({})", failure(r))),
            },
            Probe::Tcp { .. } if r.ok() => Verdict::Healthy,
            Probe::Tcp { host, port } => {
                Verdict::NotYet(format!("no connection to {host}:{port} ({})", failure(r)))
            }
            Probe::Cmd(_) if r.ok() => Verdict::Healthy,
            Probe::Cmd(cmd) => Verdict::NotYet(format!("`{cmd}` {}", failure(r))),
        }
    }
}

/// The last line a command wrote to stderr, if any.
pub(super) fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rev().find(|l| !l.is_empty())
}

/// "exited with code N: last stderr line".
pub(super) fn failure(r: &CommandResult) -> String {
    let status = if r.code < 0 {
        "was killed by a signal".to_string()
    } else {
        format!("exited with code {}", r.code)
    };
    match last_line(&r.stderr) {
        Some(line) => format!("{status}: {line}"),
        None => status,
    }
}

/// The HTTP status a probe saw: curl's `%{http_code}` on stdout, else the last `HTTP/x.y NNN`
/// status line wget printed (it exits non-zero on 4xx and 5xx but still shows the code).
pub(super) fn http_status(r: &CommandResult) -> Option<i64> {
    let out = r.stdout.trim();
    if out.len() == 3 && out != "000" {
        if let Ok(code) = out.parse() {
            return Some(code);
        }
    }
    r.stderr
        .lines()
        .chain(r.stdout.lines())
        .rev()
        .find_map(|line| {
            let at = line.find("HTTP/")?;
            let code = line[at..].split_whitespace().nth(1)?.parse::<i64>().ok()?;
            Some(code).filter(|c| (100..=599).contains(c))
        })
}

/// Seconds for messages: as given (`60`, `0.5`).
pub(super) fn shown_secs(secs: FLOAT) -> String {
    format!("{secs}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    fn parse(pairs: &[(&str, Dynamic)]) -> Result<Check, String> {
        Check::parse(&map(pairs))
    }

    fn result(code: i64, stdout: &str, stderr: &str) -> CommandResult {
        CommandResult {
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
            ..CommandResult::default()
        }
    }

    #[test]
    fn no_check_waits_for_the_healthcheck_with_defaults() {
        let check = parse(&[]).unwrap();
        assert_eq!(check, Check::default());
        assert_eq!(check.timeout, Duration::from_secs(60));
        assert_eq!(check.interval, Duration::from_secs(1));
        assert_eq!(
            parse(&[("docker", true.into())]).unwrap().probe,
            Probe::Docker
        );
    }

    #[test]
    fn http_defaults_to_200_and_takes_one_or_many_codes() {
        let url: Dynamic = "http://127.0.0.1:8080/health".into();
        let check = parse(&[("http", url.clone())]).unwrap();
        assert_eq!(
            check.probe,
            Probe::Http {
                url: "http://127.0.0.1:8080/health".into(),
                expect: vec![200]
            }
        );
        let many: Array = vec![200.into(), 204.into()];
        let check = parse(&[("http", url.clone()), ("expect", many.into())]).unwrap();
        assert!(matches!(check.probe, Probe::Http { expect, .. } if expect == vec![200, 204]));
        for bad in [Dynamic::from(42_i64), "200".into(), Array::new().into()] {
            let e = parse(&[("http", url.clone()), ("expect", bad)]).unwrap_err();
            assert!(e.contains("`expect` must be an HTTP status"), "{e}");
        }
        let e = parse(&[("http", "127.0.0.1:8080".into())]).unwrap_err();
        assert!(e.contains("http:// or https://"), "{e}");
    }

    #[test]
    fn tcp_defaults_to_loopback() {
        let check = parse(&[("tcp", 8080_i64.into())]).unwrap();
        assert_eq!(
            check.probe,
            Probe::Tcp {
                host: "127.0.0.1".into(),
                port: 8080
            }
        );
        let check = parse(&[("tcp", 5432_i64.into()), ("host", "db.local".into())]).unwrap();
        assert!(matches!(check.probe, Probe::Tcp { host, .. } if host == "db.local"));
        for bad in [Dynamic::from(0_i64), 70000_i64.into(), "8080".into()] {
            let e = parse(&[("tcp", bad)]).unwrap_err();
            assert!(e.contains("port number"), "{e}");
        }
    }

    #[test]
    fn timing_options_take_ints_and_floats() {
        let check = parse(&[
            ("cmd", "true".into()),
            ("timeout", 3_i64.into()),
            ("interval", Dynamic::from(0.5 as FLOAT)),
            ("retries", 4_i64.into()),
        ])
        .unwrap();
        assert_eq!(check.timeout, Duration::from_secs(3));
        assert_eq!(check.interval, Duration::from_millis(500));
        assert_eq!(check.retries, Some(4));
        assert_eq!(shown_secs(check.timeout_secs), "3");
        let check = parse(&[("timeout", Dynamic::from(2.5 as FLOAT))]).unwrap();
        assert_eq!(shown_secs(check.timeout_secs), "2.5");
        assert_eq!(check.probe_secs(), 3);
        assert_eq!(Check::default().probe_secs(), MAX_PROBE_SECS);
        for (key, bad) in [
            ("timeout", Dynamic::from(0_i64)),
            ("timeout", "10".into()),
            ("timeout", Dynamic::from(1e20 as FLOAT)),
            ("timeout", Dynamic::from(FLOAT::NAN)),
            ("interval", Dynamic::from(-1_i64)),
            ("interval", Dynamic::from(1e20 as FLOAT)),
            ("interval", Dynamic::from(FLOAT::INFINITY)),
            ("retries", Dynamic::from(0_i64)),
            ("retries", Dynamic::from(1.5 as FLOAT)),
        ] {
            let e = parse(&[(key, bad)]).unwrap_err();
            assert!(e.starts_with(&format!("option `{key}` must be")), "{e}");
        }
    }

    #[test]
    fn unknown_options_and_contradictions_are_errors() {
        let e = parse(&[("url", "http://x".into())]).unwrap_err();
        assert_eq!(
            e,
            "unknown option `url` (expected one of http, expect, tcp, host, cmd, docker, inside, timeout, interval, retries, sudo)"
        );
        let e = parse(&[("tcp", 80_i64.into()), ("cmd", "true".into())]).unwrap_err();
        assert!(e.contains("give one check"), "{e}");
        let e = parse(&[("expect", 200_i64.into())]).unwrap_err();
        assert!(e.contains("`expect` goes with `http`"), "{e}");
        let e = parse(&[("host", "db".into())]).unwrap_err();
        assert!(e.contains("`host` goes with `tcp`"), "{e}");
        let e = parse(&[("inside", true.into())]).unwrap_err();
        assert!(e.contains("`inside` goes with"), "{e}");
        let e = parse(&[("docker", false.into())]).unwrap_err();
        assert!(e.contains("`docker` must be true"), "{e}");
        let e = parse(&[("cmd", "".into())]).unwrap_err();
        assert!(e.contains("non-empty string"), "{e}");
    }

    #[test]
    fn tools_are_read_from_the_detection_output() {
        let t = Tools::parse("curl\nwget\nbash\ntimeout\nwget-T\nwget-t\n");
        assert!(t.curl && t.wget && t.wget_timeout && t.wget_tries && t.bash && t.timeout);
        assert!(!t.nc && !t.nc_zero);
        assert_eq!(Tools::parse(""), Tools::default());
    }

    #[test]
    fn the_detection_script_runs_in_busybox_sh() {
        let out = std::process::Command::new("/bin/busybox")
            .args(["sh", "-c", DETECT_TOOLS])
            .output()
            .expect("busybox (busybox-static)");
        assert!(out.status.success());
        let t = Tools::parse(&String::from_utf8_lossy(&out.stdout));
        // This test's own machine has bash, whatever else it lacks.
        assert!(t.bash, "{}", String::from_utf8_lossy(&out.stdout));
    }

    #[test]
    fn http_lines_quote_the_url_and_prefer_curl() {
        let check = parse(&[("http", "http://127.0.0.1:8080/h?a=1&b='x'".into())]).unwrap();
        let curl = Tools {
            curl: true,
            wget: true,
            ..Tools::default()
        };
        assert_eq!(
            check.probe_line("app", &curl).unwrap(),
            "curl -sS -o /dev/null -w '%{http_code}' --max-time 5 'http://127.0.0.1:8080/h?a=1&b='\\''x'\\'''"
        );
        let gnu_wget = Tools {
            wget: true,
            wget_timeout: true,
            wget_tries: true,
            ..Tools::default()
        };
        let check = parse(&[
            ("http", "http://127.0.0.1:8080/health".into()),
            ("timeout", 2_i64.into()),
        ])
        .unwrap();
        assert_eq!(
            check.probe_line("app", &gnu_wget).unwrap(),
            "wget -S -O /dev/null -T 2 -t 1 http://127.0.0.1:8080/health"
        );
        let e = check.probe_line("app", &Tools::default()).unwrap_err();
        assert_eq!(e, "neither curl nor wget is on the host");
    }

    #[test]
    fn inside_lines_run_through_docker_exec_quoted_twice() {
        let check = parse(&[
            ("http", "http://127.0.0.1:8080/version".into()),
            ("inside", true.into()),
        ])
        .unwrap();
        let busybox = Tools {
            wget: true,
            nc: true,
            ..Tools::default()
        };
        assert_eq!(
            check.probe_line("my app", &busybox).unwrap(),
            "docker exec -- 'my app' sh -c 'wget -S -O /dev/null http://127.0.0.1:8080/version'"
        );
        let check = parse(&[("tcp", 8080_i64.into()), ("inside", true.into())]).unwrap();
        assert_eq!(
            check.probe_line("app", &busybox).unwrap(),
            "docker exec -- app sh -c 'nc -w 5 127.0.0.1 8080 </dev/null'"
        );
        let check = parse(&[
            ("cmd", "test -e '/run/ready'".into()),
            ("inside", true.into()),
        ])
        .unwrap();
        assert_eq!(
            check.probe_line("app", &busybox).unwrap(),
            "docker exec -- app sh -c 'test -e '\\''/run/ready'\\'''"
        );
        let e = parse(&[("tcp", 1_i64.into()), ("inside", true.into())])
            .unwrap()
            .probe_line("app", &Tools::default())
            .unwrap_err();
        assert!(
            e.starts_with("neither nc nor bash is in container `app`"),
            "{e}"
        );
    }

    #[test]
    fn tcp_lines_use_nc_z_else_bash() {
        let check = parse(&[("tcp", 5432_i64.into()), ("host", "db; rm -rf /".into())]).unwrap();
        let nc = Tools {
            nc: true,
            nc_zero: true,
            bash: true,
            ..Tools::default()
        };
        assert_eq!(
            check.probe_line("db", &nc).unwrap(),
            "nc -z -w 5 'db; rm -rf /' 5432"
        );
        let bash = Tools {
            bash: true,
            timeout: true,
            ..Tools::default()
        };
        assert_eq!(
            check.probe_line("db", &bash).unwrap(),
            "timeout 5 bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' bash 'db; rm -rf /' 5432"
        );
    }

    #[test]
    fn docker_and_cmd_lines() {
        assert_eq!(
            Check::default()
                .probe_line("it's", &Tools::default())
                .unwrap(),
            "docker container inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' -- 'it'\\''s'"
        );
        let check = parse(&[("cmd", "pg_isready -h 127.0.0.1".into())]).unwrap();
        assert_eq!(
            check.probe_line("db", &Tools::default()).unwrap(),
            "pg_isready -h 127.0.0.1"
        );
    }

    /// A one-shot HTTP server on loopback answering every request with `status`.
    fn http_server(status: &'static str) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for mut stream in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        port
    }

    /// Runs a probe line with `sh`, finding `wget` and `nc` as busybox applets.
    fn run_line(line: &str) -> CommandResult {
        let bin = tempfile::tempdir().unwrap();
        for applet in ["wget", "nc"] {
            std::os::unix::fs::symlink("/bin/busybox", bin.path().join(applet)).unwrap();
        }
        let path = format!("{}:/usr/bin:/bin", bin.path().display());
        let out = std::process::Command::new("sh")
            .args(["-c", line])
            .env("PATH", path)
            .output()
            .unwrap();
        result(
            out.status.code().map_or(-1, i64::from),
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
        )
    }

    #[test]
    fn busybox_wget_reports_the_status_even_when_it_fails() {
        let busybox = Tools {
            wget: true,
            ..Tools::default()
        };
        let port = http_server("503 Service Unavailable");
        let url = format!("http://127.0.0.1:{port}/health");
        let check = parse(&[("http", url.clone().into())]).unwrap();
        let r = run_line(&check.probe_line("app", &busybox).unwrap());
        assert!(!r.ok());
        assert_eq!(
            check.judge(&r),
            Verdict::NotYet(format!("HTTP 503 from {url}"))
        );
        let port = http_server("200 OK");
        let check = parse(&[("http", format!("http://127.0.0.1:{port}/").into())]).unwrap();
        let r = run_line(&check.probe_line("app", &busybox).unwrap());
        assert_eq!(check.judge(&r), Verdict::Healthy, "{r:?}");
    }

    #[test]
    fn tcp_probes_connect_with_busybox_nc_and_with_bash() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        // Accepted connections are closed at once, as a server does when the client sends EOF.
        std::thread::spawn(move || for _ in listener.incoming() {});
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        for tools in [
            Tools {
                nc: true,
                ..Tools::default()
            },
            Tools {
                bash: true,
                ..Tools::default()
            },
        ] {
            let check = parse(&[("tcp", i64::from(open).into())]).unwrap();
            let r = run_line(&check.probe_line("app", &tools).unwrap());
            assert_eq!(check.judge(&r), Verdict::Healthy, "{tools:?}: {r:?}");
            let check = parse(&[("tcp", i64::from(closed).into())]).unwrap();
            let r = run_line(&check.probe_line("app", &tools).unwrap());
            match check.judge(&r) {
                Verdict::NotYet(seen) => assert!(
                    seen.starts_with(&format!("no connection to 127.0.0.1:{closed} (exited"))
                        && seen.to_lowercase().contains("refused"),
                    "{seen}"
                ),
                other => panic!("{tools:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn http_status_from_curl_and_wget_output() {
        assert_eq!(http_status(&result(0, "204", "")), Some(204));
        assert_eq!(
            http_status(&result(7, "000", "curl: (7) Failed to connect")),
            None
        );
        let gnu = "--2026-01-01--  http://x/\n  HTTP/1.1 301 Moved\nLocation: /y\n  HTTP/1.1 404 Not Found\nERROR 404: Not Found.";
        assert_eq!(http_status(&result(8, "", gnu)), Some(404));
        let check = parse(&[("http", "http://127.0.0.1:1/".into())]).unwrap();
        assert_eq!(
            check.judge(&result(7, "000", "curl: (7) Failed to connect to 127.0.0.1 port 1")),
            Verdict::NotYet(
                "no answer from http://127.0.0.1:1/ (exited with code 7: curl: (7) Failed to connect to 127.0.0.1 port 1)".into()
            )
        );
    }

    #[test]
    fn docker_health_status_verdicts() {
        let check = Check::default();
        assert_eq!(check.judge(&result(0, "healthy", "")), Verdict::Healthy);
        assert_eq!(check.judge(&result(0, "unhealthy", "")), Verdict::Unhealthy);
        assert_eq!(check.judge(&result(0, "", "")), Verdict::NoHealthcheck);
        assert_eq!(
            check.judge(&result(0, "starting", "")),
            Verdict::NotYet("Docker health status `starting`".into())
        );
    }

    #[test]
    fn container_state_lines() {
        assert_eq!(
            State::parse("exited 2 137\n"),
            Some(State {
                status: "exited".into(),
                restarts: 2,
                exit_code: 137
            })
        );
        assert_eq!(State::parse("running"), None);
    }
}
