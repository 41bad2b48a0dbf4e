//! Running a revision, and looking at what runs: `up` with its health gate, `ps`, `logs`, `exec`.
//!
//! `docker compose up --wait` is the services' own health gate: it fails when a container exits
//! or a healthcheck turns unhealthy. It has one blind spot that matters for a release: a service
//! *without* a healthcheck counts as ready the moment it starts, so one that crashes two seconds
//! later, and restarts forever under `restart: unless-stopped`, passes. `up` therefore watches
//! every container for `settle` seconds after `--wait` and fails on an exit or a restart, and
//! every failure carries the failing service's last log lines, which is what tells why.

use rhai::{Array, Dynamic, Map};

use super::compose::Revision;
use super::docker_call::{last_line, DockerCall, Shown};
use super::spec::Options;
use super::toolkit::Fallible;
use crate::quote::quote;

/// How many log lines a failed service's error shows.
const LOG_LINES: u32 = 15;

pub fn up(d: &DockerCall, o: &Options, rev: &Revision) -> Fallible<Map> {
    let dry = d.dry_run()?;
    if rev.images.is_empty() && !dry {
        return Err(d.fail(format!(
            "revision {} of {} is not pinned: compose::pin it first",
            rev.revision, rev.project
        )));
    }
    let timeout = o.seconds("timeout").unwrap_or(120.0).ceil().max(1.0) as u64;
    let settle = o.seconds("settle").unwrap_or(5.0);
    let mut args = rev.flags();
    args.extend(
        [
            "up",
            "--detach",
            "--wait",
            "--wait-timeout",
            &timeout.to_string(),
            "--pull",
            "never",
            "--no-build",
            "--remove-orphans",
        ]
        .map(String::from),
    );
    if rev.partial() {
        args.push("--no-deps".into());
        args.extend(rev.own_services().iter().cloned());
    }
    let r = d.run(&args, None, Shown::Change, true)?;
    if !r.ok() {
        let reason = last_line(&r.stderr);
        let details = if dry {
            String::new()
        } else {
            diagnose(d, rev)?
        };
        return Err(d.failure(format!(
            "revision {} ({}) did not come up: {reason}{details}",
            rev.revision,
            shown_version(rev)
        )));
    }
    let others = rev.other_services();
    if rev.partial() && !others.is_empty() {
        let mut rm = rev.flags();
        rm.extend(["rm", "--stop", "--force"].map(String::from));
        rm.extend(others);
        d.run(&rm, None, Shown::Change, false)?;
    }
    if dry {
        return Ok(Map::new());
    }
    let containers = own_containers(d, rev)?;
    for s in rev.own_services() {
        if !containers.iter().any(|c| field(c, "Service") == *s) {
            return Err(d.failure(format!("service {s} has no container after `up`")));
        }
    }
    if settle > 0.0 {
        watch(d, rev, &containers, settle)?;
    }
    Ok(containers
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("container".into(), field(c, "Name").into());
            m.insert("id".into(), field(c, "ID").into());
            m.insert("state".into(), field(c, "State").into());
            m.insert("health".into(), field(c, "Health").into());
            (field(c, "Service").into(), m.into())
        })
        .collect())
}

fn shown_version(rev: &Revision) -> &str {
    if rev.version.is_empty() {
        "no version"
    } else {
        &rev.version
    }
}

fn field(m: &Map, key: &str) -> String {
    m.get(key).map(|v| v.to_string()).unwrap_or_default()
}

/// The containers of the services this host runs.
fn own_containers(d: &DockerCall, rev: &Revision) -> Fallible<Vec<Map>> {
    Ok(containers(d, rev)?
        .into_iter()
        .filter(|c| rev.own_services().contains(&field(c, "Service")))
        .collect())
}

fn containers(d: &DockerCall, rev: &Revision) -> Fallible<Vec<Map>> {
    let mut args = rev.flags();
    args.extend(["ps", "--all", "--format", "json"].map(String::from));
    let r = d.run(&args, None, Shown::Query, false)?;
    let parsed = crate::compose::ps::parse(&r.stdout)
        .map_err(|m| d.fail(format!("unexpected output from docker compose ps: {m}")))?;
    Ok(parsed
        .into_iter()
        .filter_map(|v| super::value::from_json(v).try_cast::<Map>())
        .collect())
}

/// Why a release did not come up: each service that is not running, or unhealthy, with its
/// last log lines.
fn diagnose(d: &DockerCall, rev: &Revision) -> Fallible<String> {
    let mut out = String::new();
    for c in own_containers(d, rev)? {
        let (state, health) = (field(&c, "State"), field(&c, "Health"));
        if state == "running" && health != "unhealthy" {
            continue;
        }
        let service = field(&c, "Service");
        out.push_str(&format!(
            "\n{service}: {}",
            if health == "unhealthy" {
                "unhealthy".to_string()
            } else {
                field(&c, "Status")
            }
        ));
        out.push_str(&log_tail(d, rev, &service)?);
    }
    Ok(out)
}

/// The last lines of `service`'s log, indented, for an error.
fn log_tail(d: &DockerCall, rev: &Revision, service: &str) -> Fallible<String> {
    let mut args = rev.flags();
    args.extend(
        [
            "logs",
            "--no-color",
            "--no-log-prefix",
            "--tail",
            &LOG_LINES.to_string(),
            service,
        ]
        .map(String::from),
    );
    let r = d.run(&args, None, Shown::Query, true)?;
    let text = without_csi(&format!("{}{}", r.stdout, r.stderr));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Ok("; its log is empty".into());
    }
    Ok(format!(
        "; its last log lines:\n{}",
        lines
            .iter()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

/// `text` without terminal control sequences (`ESC [ ... letter`): `docker compose logs`
/// clears each line before writing it even into a pipe, and an error message has no use for it.
fn without_csi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for f in chars.by_ref() {
                if ('@'..='~').contains(&f) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One container as `docker inspect` saw it at one moment.
#[derive(Debug, PartialEq)]
struct Seen {
    id: String,
    status: String,
    restarts: u64,
    started: String,
    exit: String,
}

fn parse_seen(text: &str) -> Vec<Seen> {
    text.lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            Some(Seen {
                id: p.next()?.to_string(),
                status: p.next()?.to_string(),
                restarts: p.next()?.parse().ok()?,
                started: p.next()?.to_string(),
                exit: p.next()?.to_string(),
            })
        })
        .collect()
}

/// Fails when a container stops or restarts within `settle` seconds after `up --wait`.
fn watch(d: &DockerCall, rev: &Revision, containers: &[Map], settle: f64) -> Fallible<()> {
    let ids: Vec<String> = containers.iter().map(|c| field(c, "ID")).collect();
    let inspect = format!(
        "docker inspect --format '{{{{.Id}}}} {{{{.State.Status}}}} {{{{.RestartCount}}}} {{{{.State.StartedAt}}}} {{{{.State.ExitCode}}}}' -- {}",
        ids.iter().map(|i| quote(i)).collect::<Vec<_>>().join(" ")
    );
    let line = format!("{inspect} && echo --- && sleep {settle} && {inspect}");
    let display = format!(
        "sleep {settle}  # then check that no container of {} stopped or restarted",
        rev.project
    );
    let r = d.script(&line, None, Some(display), Shown::Query, true)?;
    if !r.ok() {
        return Err(d.script_failed("watching the new containers", &r));
    }
    let (before, after) = r.stdout.split_once("---").unwrap_or((&r.stdout, ""));
    let (before, after) = (parse_seen(before), parse_seen(after));
    let mut problems = String::new();
    for c in containers {
        let id = field(c, "ID");
        let service = field(c, "Service");
        let first = before
            .iter()
            .find(|s| s.id.starts_with(&id) || id.starts_with(&s.id));
        let last = after
            .iter()
            .find(|s| s.id.starts_with(&id) || id.starts_with(&s.id));
        let verdict = match (first, last) {
            (_, None) => Some("is gone".to_string()),
            (_, Some(l)) if l.status != "running" => Some(format!(
                "{} (exit code {}) within {settle} s",
                l.status, l.exit
            )),
            (Some(f), Some(l)) if l.restarts > f.restarts || l.started != f.started => {
                Some(format!("restarted within {settle} s (a crash loop)"))
            }
            (Some(f), _) if f.restarts > 0 => {
                Some(format!("restarted {} times while coming up", f.restarts))
            }
            _ => None,
        };
        if let Some(v) = verdict {
            problems.push_str(&format!("\n{service}: {v}"));
            problems.push_str(&log_tail(d, rev, &service)?);
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(d.failure(format!(
        "revision {} ({}) came up but did not stay up:{problems}",
        rev.revision,
        shown_version(rev)
    )))
}

pub fn ps(d: &DockerCall, rev: &Revision) -> Fallible<Array> {
    if d.dry_run()? {
        let _ = containers(d, rev)?;
        return Ok(Array::new());
    }
    Ok(containers(d, rev)?
        .into_iter()
        .map(|mut c| {
            let pin = rev.images.get(&field(&c, "Service")).cloned();
            let (image, id) = pin.map(|p| (p.image, p.id)).unwrap_or_default();
            c.insert("image".into(), image.into());
            c.insert("image_id".into(), id.into());
            Dynamic::from(c)
        })
        .collect())
}

pub fn logs(d: &DockerCall, o: &Options, rev: &Revision) -> Fallible<String> {
    let mut args = rev.flags();
    args.extend(["logs".into(), "--no-color".into()]);
    if let Some(tail) = o.text("tail") {
        args.extend(["--tail".into(), tail]);
    }
    if let Some(since) = o.text("since") {
        args.extend(["--since".into(), since]);
    }
    match o.texts("services") {
        Some(services) => {
            for s in &services {
                known(d, rev, s)?;
            }
            args.extend(services);
        }
        None if rev.partial() => args.extend(rev.own_services().iter().cloned()),
        None => {}
    }
    let r = d.run(&args, None, Shown::Loud, false)?;
    Ok(r.stdout)
}

fn known(d: &DockerCall, rev: &Revision, service: &str) -> Fallible<()> {
    if rev.all_services.iter().any(|s| s == service) {
        return Ok(());
    }
    Err(d.fail(format!(
        "{} has no service `{service}` (it has {})",
        rev.project,
        rev.all_services.join(", ")
    )))
}

pub fn exec(d: &DockerCall, rev: &Revision, service: &str, command: &str) -> Fallible<String> {
    known(d, rev, service)?;
    let mut args = rev.flags();
    args.extend(["exec", "-T", service, "sh", "-c", command].map(String::from));
    let r = d.run(&args, None, Shown::Loud, false)?;
    Ok(r.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_lose_terminal_sequences() {
        assert_eq!(
            without_csi("\u{1b}[2Kstarting\n\u{1b}[1;31mred\u{1b}[0m"),
            "starting\nred"
        );
        assert_eq!(without_csi("plain"), "plain");
    }

    #[test]
    fn inspect_lines_parse() {
        let seen = parse_seen(
            "abc running 0 2026-12-03T10:00:00.1Z 0\ndef restarting 3 2026-12-03T10:00:04Z 1\n",
        );
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].restarts, 3);
        assert_eq!(seen[1].status, "restarting");
        assert!(parse_seen("garbage\n").is_empty());
    }
}
