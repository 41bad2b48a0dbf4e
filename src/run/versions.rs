//! What a release left running: each host of a step may `record("running", VERSION)`, and a
//! step that leaves its hosts on more than one version — a rolling release stopped by a failed
//! batch, a rollback that could not reach every host — is told loudly at the end of the run,
//! not left for someone to discover.

/// The versions the hosts of one step run after it.
pub(super) struct StepVersions {
    pub label: String,
    pub env: Option<String>,
    pub hosts: Vec<String>,
    /// Host, version, and whether the task succeeded there, for the hosts that recorded one.
    pub running: Vec<(String, String, bool)>,
}

impl StepVersions {
    /// The warning for a step that left its hosts on more than one version, or whose release
    /// succeeded on some hosts but never reached others; `None` when it is all one version, or
    /// when nothing changed anywhere (a release that failed on its first host and went back).
    pub fn mixed(&self) -> Option<String> {
        if self.running.is_empty() {
            return None;
        }
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        // In the step's host order, whatever order the hosts finished in.
        let ordered = self
            .hosts
            .iter()
            .filter_map(|h| self.running.iter().find(|(r, _, _)| r == h));
        for (host, version, _) in ordered {
            match groups.iter_mut().find(|(v, _)| v == version) {
                Some((_, hosts)) => hosts.push(host),
                None => groups.push((version, vec![host])),
            }
        }
        let unknown: Vec<&str> = self
            .hosts
            .iter()
            .filter(|h| !self.running.iter().any(|(r, _, _)| r == *h))
            .map(String::as_str)
            .collect();
        let changed = self.running.iter().any(|(_, _, ok)| *ok);
        if groups.len() < 2 && (unknown.is_empty() || !changed) {
            return None;
        }
        let mut parts: Vec<String> = groups
            .iter()
            .map(|(v, hosts)| format!("{v} on {}", hosts.join(", ")))
            .collect();
        if !unknown.is_empty() {
            parts.push(format!("not changed by it: {}", unknown.join(", ")));
        }
        let whom = self
            .env
            .as_deref()
            .map_or("the hosts".to_string(), |e| format!("env:{e}"));
        Some(format!(
            "{whom} is not on one version after `{}`: {}",
            self.label,
            parts.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(running: &[(&str, &str, bool)]) -> StepVersions {
        StepVersions {
            label: "rollback".into(),
            env: Some("prod".into()),
            hosts: vec!["h1".into(), "h2".into(), "h3".into()],
            running: running
                .iter()
                .map(|(h, v, ok)| (h.to_string(), v.to_string(), *ok))
                .collect(),
        }
    }

    #[test]
    fn one_version_everywhere_is_quiet() {
        assert_eq!(step(&[]).mixed(), None);
        assert_eq!(
            step(&[("h1", "v1", true), ("h2", "v1", true), ("h3", "v1", true)]).mixed(),
            None
        );
        // The first batch failed and went back: nothing changed anywhere.
        assert_eq!(step(&[("h1", "v1", false)]).mixed(), None);
    }

    #[test]
    fn mixed_versions_and_hosts_left_out_are_named() {
        assert_eq!(
            step(&[("h1", "v1", false), ("h2", "v2", true), ("h3", "v1", true)])
                .mixed()
                .unwrap(),
            "env:prod is not on one version after `rollback`: v1 on h1, h3; v2 on h2"
        );
        assert_eq!(
            step(&[("h1", "v1", true)]).mixed().unwrap(),
            "env:prod is not on one version after `rollback`: v1 on h1; not changed by it: h2, h3"
        );
    }
}
