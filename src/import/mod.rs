//! `rigs inventory import ansible|kamal FILE`: turn another tool's host list into a rigs inventory.
//!
//! Teams moving to rigs already describe their hosts somewhere; retyping that is where mistakes
//! creep in. The converters here read the other tool's file and build the inventory in a small
//! model of their own ([`Output`]), which [`render`] writes as commented TOML in a fixed order:
//! the same input in another syntax (Ansible's INI, YAML and JSON forms) gives the same bytes.
//!
//! Nothing that cannot be mapped is dropped quietly: every such thing becomes one warning line
//! naming the file and the group, host or key, and what to do instead. Secrets are the
//! exception to copying: a password in the input is never written out, only named.
//!
//! Before returning, [`import`] loads its own output with the inventory loader rigs uses, so what
//! it hands back is a file rigs accepts as is.

mod ansible;
mod kamal;
mod render;

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Which tool's file is being imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An Ansible inventory: INI, YAML or `ansible-inventory --list --export` JSON.
    Ansible,
    /// A Kamal 2 `config/deploy.yml` or a destination's `config/deploy.NAME.yml`.
    Kamal,
}

/// The converted inventory and what could not be converted.
#[derive(Debug, Clone)]
pub struct Imported {
    /// A complete rigs inventory file, commented, that rigs loads as is.
    pub toml: String,
    /// Everything that could not be mapped, one line each.
    pub warnings: Vec<String>,
}

/// Converts `text` (a file's content, or stdin's) into a rigs inventory. `origin` names it in
/// messages (`"hosts.ini"`, `"-"`); for Kamal it also gives the environment's name
/// (`deploy.staging.yml` is `staging`, anything else `production`).
pub fn import(kind: Kind, text: &str, origin: &str) -> Result<Imported, String> {
    let mut warnings = Warnings::new(origin);
    let output = match kind {
        Kind::Ansible => ansible::convert(text, &mut warnings)?,
        Kind::Kamal => kamal::convert(text, &mut warnings)?,
    };
    let toml = render::render(&output);
    let mut check = crate::inventory::Inventory::default();
    crate::inventory::merge_file(&mut check, Path::new("imported.toml"), &toml).map_err(|e| {
        format!(
            "{origin}: the converted inventory does not load in rigs: {e}\nThis is a bug in \
             `rigs inventory import`; please report it with the input file."
        )
    })?;
    Ok(Imported {
        toml,
        warnings: warnings.finish(),
    })
}

/// Collects warnings. One problem found in many places (the same key on every host) is one line
/// that lists the places, so a large inventory gives a list someone can read.
struct Warnings {
    origin: String,
    /// Each message with the places it was found, in the order first found.
    lines: Vec<(String, Vec<String>)>,
    index: HashMap<String, usize>,
    /// (line, place) pairs already recorded.
    placed: HashSet<(usize, String)>,
}

/// How many places a warning lists before it counts the rest.
const PLACES_SHOWN: usize = 20;

impl Warnings {
    fn new(origin: &str) -> Warnings {
        Warnings {
            origin: origin.to_string(),
            lines: Vec::new(),
            index: HashMap::new(),
            placed: HashSet::new(),
        }
    }

    fn push(&mut self, message: impl AsRef<str>) {
        self.entry(message.as_ref());
    }

    /// `message` about `place` (`host `web1``, `group `db``).
    fn at(&mut self, place: &str, message: impl AsRef<str>) {
        let i = self.entry(message.as_ref());
        if self.placed.insert((i, place.to_string())) {
            self.lines[i].1.push(place.to_string());
        }
    }

    /// The line of `message`, added when it is new.
    fn entry(&mut self, message: &str) -> usize {
        if let Some(i) = self.index.get(message) {
            return *i;
        }
        self.index.insert(message.to_string(), self.lines.len());
        self.lines.push((message.to_string(), Vec::new()));
        self.lines.len() - 1
    }

    fn finish(self) -> Vec<String> {
        let origin = self.origin;
        self.lines
            .into_iter()
            .map(|(message, places)| {
                if places.is_empty() {
                    return format!("{origin}: {message}");
                }
                let mut shown = places[..places.len().min(PLACES_SHOWN)].join(", ");
                if places.len() > PLACES_SHOWN {
                    shown.push_str(&format!(" and {} more", places.len() - PLACES_SHOWN));
                }
                format!("{origin}: {shown}: {message}")
            })
            .collect()
    }

    /// An error message about the input, in the same form as the warnings.
    fn error(&self, message: impl AsRef<str>) -> String {
        format!("{}: {}", self.origin, message.as_ref())
    }
}

/// Connection settings, as the inventory writes them.
#[derive(Debug, Clone, Default, PartialEq)]
struct Settings {
    user: Option<String>,
    port: Option<i64>,
    identity: Option<String>,
    connection: Option<String>,
    jump: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
struct Role {
    name: String,
    hosts: Vec<String>,
    vars: toml::Table,
}

#[derive(Debug, Clone, Default)]
struct Env {
    name: String,
    /// One comment line written above the table: where it came from.
    comment: String,
    hosts: Vec<String>,
    roles: Vec<Role>,
    vars: toml::Table,
    settings: Settings,
}

#[derive(Debug, Clone, Default)]
struct HostEntry {
    name: String,
    /// One comment line written above the table, or nothing.
    comment: String,
    address: Option<String>,
    settings: Settings,
    vars: toml::Table,
}

/// The inventory being built, in the order it is written.
#[derive(Debug, Clone, Default)]
struct Output {
    header: Vec<String>,
    defaults: Settings,
    vars: toml::Table,
    envs: Vec<Env>,
    hosts: Vec<HostEntry>,
}

/// Orders host names as people count: `web2` before `web10`.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                let db = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
                let (na, nb) = (
                    a[..da].trim_start_matches('0'),
                    b[..db].trim_start_matches('0'),
                );
                let order = na
                    .len()
                    .cmp(&nb.len())
                    .then_with(|| na.cmp(nb))
                    .then_with(|| da.cmp(&db));
                if order != std::cmp::Ordering::Equal {
                    return order;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                a = &a[x.len_utf8()..];
                b = &b[y.len_utf8()..];
            }
        }
    }
}

fn sort_hosts(hosts: &mut Vec<String>) {
    hosts.sort_by(|a, b| natural_cmp(a, b));
    hosts.dedup();
}

/// Why a host name cannot be written in `hosts = [...]`, if it cannot.
fn host_name_problem(name: &str) -> Option<String> {
    match crate::inventory::HostSpec::parse(name) {
        Err(e) => Some(e),
        Ok(spec) if spec.user.is_some() || spec.port.is_some() || spec.host != name => Some(
            format!("`{name}` would be read as a user, host and port, not as one host name"),
        ),
        Ok(_) => None,
    }
}

/// A name rigs accepts for an environment or role: letters, digits, `_` and `-`, not starting
/// with a digit or `-`.
fn env_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// Converts a YAML/JSON value to TOML. `None` for a null, which TOML cannot hold; nulls inside
/// lists and maps are left out and reported through `dropped`.
fn to_toml(value: &serde_json::Value, dropped: &mut Vec<String>, at: &str) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => {
            dropped.push(at.to_string());
            return None;
        }
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(f)) if n.is_f64() => toml::Value::Float(f),
            _ => toml::Value::String(n.to_string()),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => toml::Value::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| to_toml(v, dropped, &format!("{at}[{i}]")))
                .collect(),
        ),
        J::Object(map) => {
            let mut table = toml::Table::new();
            for (k, v) in map {
                if let Some(v) = to_toml(v, dropped, &format!("{at}.{k}")) {
                    table.insert(k.clone(), v);
                }
            }
            toml::Value::Table(table)
        }
    })
}

/// Every string inside `value`, for the checks on templating and encrypted values.
fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
