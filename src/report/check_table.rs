//! `rigs env:NAME check`: one row per host, then what to do about each problem.
//!
//! The answers come from [`run::check`](crate::run::check); how they read is the report's. A
//! host that could not be reached has no answers, only the reason, which is the first thing to
//! fix on it.

use serde::Serialize;

use super::{escape, first_useful_line, HostSummary};

/// One host's answers to `check`, and what they mean.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Readiness {
    pub host: String,
    pub ready: bool,
    pub user: String,
    pub sudo: String,
    pub docker: String,
    pub store: String,
    pub compose: String,
    pub disk_free: String,
    pub registry: String,
    pub clock: String,
    pub lock: String,
    /// Each problem: what is wrong and what to do.
    pub problems: Vec<String>,
}

/// Every host of the run: its answers, or for a host that gave none (unreachable, a host key
/// refused, interrupted) a row saying why.
pub fn rows(answers: &[Readiness], hosts: &[HostSummary]) -> Vec<Readiness> {
    hosts
        .iter()
        .map(|h| {
            answers
                .iter()
                .find(|a| a.host == h.host)
                .cloned()
                .unwrap_or_else(|| Readiness {
                    host: h.host.clone(),
                    ready: false,
                    problems: vec![first_useful_line(
                        h.outcome.error().unwrap_or("not checked"),
                    )],
                    ..Readiness::default()
                })
        })
        .collect()
}

/// The table, then one line per problem.
pub fn table(rows: &[Readiness]) -> String {
    let headers = [
        "HOST", "READY", "USER", "SUDO", "DOCKER", "STORE", "COMPOSE", "FREE", "REGISTRY", "CLOCK",
        "LOCK",
    ];
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            escape(s).into_owned()
        }
    };
    let cells: Vec<[String; 11]> = rows
        .iter()
        .map(|r| {
            [
                escape(&r.host).into_owned(),
                if r.ready { "yes" } else { "no" }.to_string(),
                dash(&r.user),
                dash(&r.sudo),
                dash(&r.docker),
                dash(&r.store),
                dash(&r.compose),
                dash(&r.disk_free),
                dash(&r.registry),
                dash(&r.clock),
                dash(&r.lock),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut out = String::new();
        for (c, w) in row.iter().zip(widths) {
            out.push_str(&format!("{c:<w$}  "));
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&headers.map(String::from));
    for row in &cells {
        out.push_str(&line(row));
    }
    let problems: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.problems
                .iter()
                .map(move |p| format!("{}: {}", escape(&r.host), escape(p)))
        })
        .collect();
    if !problems.is_empty() {
        out.push_str("\nTo do before a deploy:\n");
        for p in problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_hosts_get_a_row_and_problems_a_list() {
        let ready = Readiness {
            host: "web-1".into(),
            ready: true,
            user: "deploy".into(),
            docker: "26.1.5".into(),
            store: "containerd".into(),
            lock: "free".into(),
            ..Readiness::default()
        };
        let gone = HostSummary {
            host: "web-2".into(),
            outcome: super::super::HostOutcome::Failed {
                message: "cannot connect to 10.0.0.2:22: connection refused".into(),
                fault: None,
            },
            duration: std::time::Duration::ZERO,
            tasks: Vec::new(),
            bytes_sent: 0,
            note: None,
            version: None,
        };
        let ok = HostSummary {
            host: "web-1".into(),
            outcome: super::super::HostOutcome::Ok,
            ..gone.clone()
        };
        let all = rows(&[ready], &[ok, gone]);
        let text = table(&all);
        assert!(text.starts_with("HOST   READY  USER    SUDO"), "{text}");
        assert!(text.contains("web-1  yes    deploy"), "{text}");
        assert!(text.contains("web-2  no     -"), "{text}");
        assert!(text.contains("To do before a deploy:\n  web-2: cannot connect to 10.0.0.2:22: connection refused\n"), "{text}");
    }
}
