//! Ansible inventories: INI, YAML, and the JSON of `ansible-inventory --list --export`.
//!
//! The three forms are first read into one group tree ([`Tree`]), so the mapping to rigs is
//! written once and the forms cannot drift apart. Ansible's groups nest and overlap freely; rigs
//! has environments with roles. Every group (but `all` and `ungrouped`) becomes an environment
//! holding all its descendants' hosts, and its child groups become that environment's roles, so
//! `env:production -R web` selects what `production:&web` did.
//!
//! INI values: Ansible reads values on host lines as Python literals and `:vars` values as plain
//! strings, then converts them where they are used. rigs recipes see typed values, so both are
//! read the same simple way here: a decimal integer is an integer, `true`/`false` (any case of
//! the first letter) a boolean, anything else a string (so `1.10` stays a version, not a float).
//!
//! Ansible applies a child group's connection settings to its hosts wherever they are used; rigs
//! roles have only variables, so such settings are written on the hosts themselves.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{
    env_name, host_name_problem, sort_hosts, strings, to_toml, Env, HostEntry, Output, Role,
    Settings, Warnings,
};

#[derive(Debug, Default)]
struct Group {
    hosts: BTreeSet<String>,
    children: BTreeSet<String>,
    vars: Map<String, Value>,
}

/// The inventory as Ansible sees it, whatever the form it was written in.
#[derive(Debug, Default)]
struct Tree {
    groups: BTreeMap<String, Group>,
    /// Every host with its own variables.
    hosts: BTreeMap<String, Map<String, Value>>,
}

impl Tree {
    fn group(&mut self, name: &str) -> &mut Group {
        self.groups.entry(name.to_string()).or_default()
    }

    fn add_host(&mut self, group: &str, name: &str, vars: Map<String, Value>) {
        self.group(group).hosts.insert(name.to_string());
        let entry = self.hosts.entry(name.to_string()).or_default();
        for (k, v) in vars {
            entry.insert(k, v);
        }
    }
}

pub(super) fn convert(text: &str, w: &mut Warnings) -> Result<Output, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with("#!") {
        return Err(w.error(
            "this is a dynamic inventory script, which only Ansible can run; run \
             `ansible-inventory -i SCRIPT --list --export > inventory.json` and import that file",
        ));
    }
    if trimmed.starts_with("$ANSIBLE_VAULT") {
        return Err(w.error(
            "the whole file is encrypted with ansible-vault; decrypt it (`ansible-vault view \
             FILE > plain.yml`) and import the plain copy",
        ));
    }
    let tree = if trimmed.starts_with('{') {
        let value: Value =
            serde_json::from_str(text).map_err(|e| w.error(format!("not valid JSON: {e}")))?;
        structured(&value, w)?
    } else if looks_like_ini(text) {
        ini(text, w)?
    } else {
        let options = serde_saphyr::options! { with_snippet: false };
        match serde_saphyr::from_str_with_options::<Value>(text, options) {
            Ok(value @ Value::Object(_)) => structured(&value, w)?,
            Ok(Value::Null) => return Err(w.error("the inventory is empty")),
            Ok(Value::String(_)) => ini(text, w)?,
            Ok(_) => {
                return Err(w.error(
                    "expected an Ansible inventory: INI sections, or YAML or JSON with a map of \
                     groups (`all:`) at the top",
                ))
            }
            Err(e) if looks_like_yaml(text) => return Err(w.error(format!("not valid YAML: {e}"))),
            Err(_) => ini(text, w)?,
        }
    };
    let out = build(tree, w);
    if out.envs.is_empty() && out.hosts.is_empty() {
        w.push("found no hosts: the inventory is empty");
    }
    Ok(out)
}

fn meaningful_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
}

/// INI when the first line that says anything is a `[section]`, or a host line with `key=value`.
fn looks_like_ini(text: &str) -> bool {
    match meaningful_lines(text).next() {
        Some(first) => {
            (first.starts_with('[') && !first.contains(','))
                || (first.contains('=') && !first.contains(": "))
        }
        None => false,
    }
}

fn looks_like_yaml(text: &str) -> bool {
    meaningful_lines(text).next().is_some_and(|first| {
        first.starts_with("---") || first.ends_with(':') || first.contains(": ")
    })
}

// ---------------------------------------------------------------------------------------------
// INI

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

fn ini(text: &str, w: &mut Warnings) -> Result<Tree, String> {
    let mut tree = Tree::default();
    let mut section = Section::Hosts("ungrouped".to_string());
    for (index, raw) in text.lines().enumerate() {
        let n = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = ini_header(line).ok_or_else(|| {
                w.error(format!(
                    "line {n}: `{line}` is not a section header Ansible reads; expected [GROUP], \
                     [GROUP:vars] or [GROUP:children]"
                ))
            })?;
            let (Section::Hosts(g) | Section::Vars(g) | Section::Children(g)) = &section;
            tree.group(g);
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                let words = shell_words(line).map_err(|e| w.error(format!("line {n}: {e}")))?;
                let Some((pattern, rest)) = words.split_first() else {
                    continue;
                };
                let mut vars = Map::new();
                for word in rest {
                    let (k, v) = word.split_once('=').ok_or_else(|| {
                        w.error(format!(
                            "line {n}: `{word}` after host `{pattern}` is not KEY=VALUE; \
                             write host variables as NAME=VALUE"
                        ))
                    })?;
                    vars.insert(k.to_string(), ini_value(v));
                }
                for name in host_names(pattern, &format!("line {n}"), w) {
                    host_with_port(&mut tree, group, &name, vars.clone());
                }
            }
            Section::Vars(group) => {
                let (k, v) = line.split_once('=').ok_or_else(|| {
                    w.error(format!(
                        "line {n}: `{line}` in [{group}:vars] is not KEY=VALUE"
                    ))
                })?;
                let v = v.trim();
                let v = unquote(v).unwrap_or(v);
                tree.group(group)
                    .vars
                    .insert(k.trim().to_string(), ini_value(v));
            }
            Section::Children(group) => {
                let child = line.split_whitespace().next().unwrap_or(line);
                tree.group(child);
                tree.group(group).children.insert(child.to_string());
            }
        }
    }
    Ok(tree)
}

fn ini_header(line: &str) -> Option<Section> {
    let (inner, rest) = line.strip_prefix('[')?.split_once(']')?;
    let rest = rest.trim();
    if !(rest.is_empty() || rest.starts_with('#') || rest.starts_with(';')) {
        return None;
    }
    let (name, kind) = match inner.split_once(':') {
        Some((name, kind)) => (name.trim(), kind.trim()),
        None => (inner.trim(), "hosts"),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let name = name.to_string();
    match kind {
        "hosts" => Some(Section::Hosts(name)),
        "vars" => Some(Section::Vars(name)),
        "children" => Some(Section::Children(name)),
        _ => None,
    }
}

fn unquote(v: &str) -> Option<&str> {
    let quote = v.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    v.strip_prefix(quote)?.strip_suffix(quote)
}

/// See the module docs: integers and booleans are typed, everything else is a string.
fn ini_value(v: &str) -> Value {
    match v {
        "true" | "True" => return Value::Bool(true),
        "false" | "False" => return Value::Bool(false),
        _ => {}
    }
    let digits = v.strip_prefix('-').unwrap_or(v);
    let canonical = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match v.parse::<i64>() {
        Ok(i) if canonical => Value::from(i),
        _ => Value::String(v.to_string()),
    }
}

/// Splits a host line the way a POSIX shell would: quotes group, `\` escapes, `#` starting a
/// word starts a comment.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(e) => word.push(e),
                            None => return Err(format!("unclosed {c} quote in `{line}`")),
                        },
                        Some(other) => word.push(other),
                        None => return Err(format!("unclosed {c} quote in `{line}`")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    word.push(e);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Adds `name`, which may end in `:PORT` as Ansible allows, to `group`.
fn host_with_port(tree: &mut Tree, group: &str, name: &str, mut vars: Map<String, Value>) {
    let (name, port) = match name.rsplit_once(':') {
        Some((host, port))
            if !host.contains(':')
                && !port.is_empty()
                && port.chars().all(|c| c.is_ascii_digit()) =>
        {
            (host, port.parse::<i64>().ok())
        }
        _ => (name, None),
    };
    if let Some(port) = port {
        vars.entry("ansible_port").or_insert(Value::from(port));
    }
    tree.add_host(group, name, vars);
}

/// Expands Ansible's host ranges (`web[01:10:2].example.com`, `db-[a:f]`), left to right.
fn host_names(pattern: &str, at: &str, w: &mut Warnings) -> Vec<String> {
    match expand(pattern) {
        Ok(names) => names,
        Err(why) => {
            w.push(format!(
                "{at}: host pattern `{pattern}` cannot be expanded ({why}); it is left out: list \
                 its hosts one by one"
            ));
            Vec::new()
        }
    }
}

const MAX_EXPANSION: usize = 100_000;

/// More ranges than this in one pattern is not a host list anyone writes by hand.
const MAX_RANGES: usize = 8;

fn expand(pattern: &str) -> Result<Vec<String>, String> {
    if pattern.matches('[').count() > MAX_RANGES {
        return Err(format!("more than {MAX_RANGES} ranges"));
    }
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or("`[` without `]`")?;
    let (head, range, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = range.split(':').collect();
    let (begin, end, step) = match parts.as_slice() {
        [b, e] => (*b, *e, 1usize),
        [b, e, s] => (
            *b,
            *e,
            s.parse::<usize>()
                .ok()
                .filter(|s| *s > 0)
                .ok_or("the step is not a positive number")?,
        ),
        _ => return Err("a range is [START:END] or [START:END:STEP]".into()),
    };
    let items: Vec<String> = if let (Ok(b), Ok(e)) = (begin.parse::<u64>(), end.parse::<u64>()) {
        if b > e {
            return Err("the range starts after it ends".into());
        }
        if (e - b) as usize / step > MAX_EXPANSION {
            return Err("the range is too large".into());
        }
        let width = if begin.len() > 1 && begin.starts_with('0') {
            begin.len()
        } else {
            0
        };
        (b..=e)
            .step_by(step)
            .map(|i| format!("{i:0width$}"))
            .collect()
    } else {
        let single = |s: &str| {
            let mut cs = s.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
                _ => None,
            }
        };
        let (Some(b), Some(e)) = (single(begin), single(end)) else {
            return Err("the bounds are neither numbers nor single letters".into());
        };
        if b > e {
            return Err("the range starts after it ends".into());
        }
        (b..=e).step_by(step).map(String::from).collect()
    };
    let rest = expand(tail)?;
    let mut out = Vec::with_capacity(items.len() * rest.len());
    for item in &items {
        for r in &rest {
            out.push(format!("{head}{item}{r}"));
            if out.len() > MAX_EXPANSION {
                return Err("the pattern expands to too many hosts".into());
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// YAML and JSON

/// Reads the YAML form (`all: { hosts: {...}, children: {...}, vars: {...} }`) and the JSON of
/// `ansible-inventory --list` (`{"_meta": {"hostvars": ...}, "GROUP": {"hosts": [...], ...}}`):
/// both are groups whose `hosts` and `children` are maps (YAML) or lists of names (JSON).
fn structured(value: &Value, w: &mut Warnings) -> Result<Tree, String> {
    let Value::Object(top) = value else {
        return Err(w.error("expected a map of groups at the top"));
    };
    if top.contains_key("plugin") {
        return Err(w.error(
            "this is an inventory plugin's configuration, which only Ansible can run; run \
             `ansible-inventory -i FILE --list --export > inventory.json` and import that file",
        ));
    }
    let mut tree = Tree::default();
    for (name, body) in top {
        if name == "_meta" {
            let hostvars = body.get("hostvars").and_then(Value::as_object);
            for (host, vars) in hostvars.into_iter().flatten() {
                let vars = vars.as_object().cloned().unwrap_or_default();
                let entry = tree.hosts.entry(host.clone()).or_default();
                entry.extend(vars);
            }
            continue;
        }
        group_body(&mut tree, name, body, w)?;
    }
    Ok(tree)
}

fn group_body(tree: &mut Tree, name: &str, body: &Value, w: &mut Warnings) -> Result<(), String> {
    tree.group(name);
    let body = match body {
        Value::Null => return Ok(()),
        Value::Array(hosts) => {
            for h in hosts.iter().filter_map(Value::as_str) {
                host_with_port(tree, name, h, Map::new());
            }
            return Ok(());
        }
        Value::Object(body) => body,
        _ => {
            return Err(w.error(format!(
                "group `{name}` must be a map with hosts, children and vars"
            )))
        }
    };
    for (key, value) in body {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("hosts", Value::Object(hosts)) => {
                for (pattern, vars) in hosts {
                    let vars = match vars {
                        Value::Object(v) => v.clone(),
                        Value::Null => Map::new(),
                        _ => {
                            return Err(w.error(format!(
                                "host `{pattern}` of group `{name}` must be a map of variables"
                            )))
                        }
                    };
                    for host in host_names(pattern, &format!("group `{name}`"), w) {
                        host_with_port(tree, name, &host, vars.clone());
                    }
                }
            }
            ("hosts", Value::Array(hosts)) => {
                for h in hosts {
                    let Some(h) = h.as_str() else {
                        return Err(w.error(format!("group `{name}`: hosts must be names")));
                    };
                    host_with_port(tree, name, h, Map::new());
                }
            }
            ("children", Value::Object(children)) => {
                for (child, child_body) in children {
                    tree.group(name).children.insert(child.clone());
                    group_body(tree, child, child_body, w)?;
                }
            }
            ("children", Value::Array(children)) => {
                for child in children.iter().filter_map(Value::as_str) {
                    tree.group(child);
                    tree.group(name).children.insert(child.to_string());
                }
            }
            ("vars", Value::Object(vars)) => {
                let group = tree.group(name);
                for (k, v) in vars {
                    group.vars.insert(k.clone(), v.clone());
                }
            }
            ("hosts" | "children" | "vars", _) => {
                return Err(w.error(format!(
                    "group `{name}`: `{key}` must be a map (or, in JSON, a list of names)"
                )))
            }
            _ => w.push(format!(
                "group `{name}`: key `{key}` is not one Ansible reads (hosts, children, vars); \
                 left out"
            )),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The mapping to rigs

/// What one group's or host's variables give: settings, an address, and the other variables.
#[derive(Default)]
struct Mapped {
    address: Option<String>,
    settings: Settings,
    vars: toml::Table,
}

const PASSWORDS: &[&str] = &[
    "ansible_password",
    "ansible_ssh_pass",
    "ansible_ssh_password",
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_sudo_pass",
    "ansible_sudo_password",
];

fn map_vars(vars: &Map<String, Value>, at: &str, is_host: bool, w: &mut Warnings) -> Mapped {
    let mut m = Mapped::default();
    for (key, value) in vars {
        let text = match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        let encrypted = is_vaulted(value);
        if PASSWORDS.contains(&key.as_str()) {
            let how = if key.contains("become") || key.contains("sudo") {
                "pass --ask-sudo-pass (or set RIGS_SUDO_PASSWORD) when running"
            } else {
                "pass --ask-pass (or set RIGS_PASSWORD), or better use an SSH key"
            };
            w.at(
                at,
                format!(
                    "`{key}` is a password and is not copied; {how}, or keep it in rigs' \
                 secrets and read it with secret(\"NAME\") in a recipe"
                ),
            );
            continue;
        }
        if encrypted {
            w.at(
                at,
                format!(
                    "`{key}` is encrypted with ansible-vault and is not copied; keep the \
                 value in rigs' secrets and read it with secret(\"{}\") in a recipe",
                    key.to_uppercase()
                ),
            );
            continue;
        }
        let mut setting = |what: &str, ok: bool| {
            if !ok {
                w.at(
                    at,
                    format!("`{key}` = {value} is not a valid {what}; left out"),
                );
            }
        };
        match key.as_str() {
            "ansible_host" | "ansible_ssh_host" if is_host => match text {
                Some(t) if host_name_problem(&t).is_none() => m.address = Some(t),
                _ => setting("host address (a bare name or IP address)", false),
            },
            "ansible_host" | "ansible_ssh_host" => w.at(
                at,
                format!("`{key}` is left out: only a host has an address; set it on each host"),
            ),
            "ansible_port" | "ansible_ssh_port" => {
                match text
                    .and_then(|t| t.parse::<i64>().ok())
                    .filter(|p| (1..=65535).contains(p))
                {
                    Some(p) => m.settings.port = Some(p),
                    None => setting("port", false),
                }
            }
            "ansible_user" | "ansible_ssh_user" => match text {
                Some(u) if !u.is_empty() && !u.contains(char::is_whitespace) => {
                    m.settings.user = Some(u)
                }
                _ => setting("user name", false),
            },
            "ansible_ssh_private_key_file" | "ansible_private_key_file" => match text {
                Some(path) if !path.is_empty() => m.settings.identity = Some(path),
                _ => setting("key file", false),
            },
            "ansible_connection" => match text.as_deref() {
                Some("local") => m.settings.connection = Some("local".into()),
                Some("ssh" | "smart" | "paramiko") => m.settings.connection = Some("ssh".into()),
                _ => w.at(
                    at,
                    format!(
                        "`ansible_connection` = {value} has no rigs equivalent (rigs connects \
                     over SSH or runs locally); left out"
                    ),
                ),
            },
            "ansible_ssh_common_args" | "ansible_ssh_extra_args" => {
                match text.as_deref().map(jump_from_args) {
                    Some(Some(hops)) => m.settings.jump = Some(hops),
                    _ => w.at(
                        at,
                        format!(
                            "`{key}` = {value} is not a plain ProxyJump; left out: set `jump` \
                         or put the options in ~/.ssh/config, which rigs reads"
                        ),
                    ),
                }
            }
            "ansible_become" | "ansible_sudo" => {
                let on = truthy(value);
                m.vars.insert("sudo".into(), toml::Value::Boolean(on));
                if on {
                    w.at(
                        at,
                        format!(
                            "`{key}` became the variable `sudo = true`; rigs has no inventory \
                         setting for sudo: a recipe asks for it per command (`sudo: true`, which \
                         it may take from vars.sudo), an ad-hoc command takes --sudo, and \
                         --ask-sudo-pass asks for the password"
                        ),
                    );
                }
            }
            "ansible_become_user" | "ansible_sudo_user" => {
                if let Some(u) = text {
                    m.vars.insert("sudo_user".into(), toml::Value::String(u));
                }
                w.at(
                    at,
                    format!(
                        "`{key}` became the variable `sudo_user`; rigs runs sudo as root unless \
                     a recipe passes another user, so recipes must read vars.sudo_user themselves"
                    ),
                );
            }
            "ansible_become_method" => {
                if text.as_deref() != Some("sudo") {
                    w.at(
                        at,
                        format!(
                            "`ansible_become_method` = {value} is left out: rigs only uses sudo"
                        ),
                    );
                }
            }
            k if k.starts_with("ansible_") => w.at(
                at,
                format!("`{k}` is an Ansible setting with no rigs equivalent; left out"),
            ),
            _ => {
                if let Some(v) = plain_var(key, value, at, w) {
                    m.vars.insert(key.clone(), v);
                }
            }
        }
    }
    m
}

/// A variable copied as it is, with warnings for what TOML or rigs reads differently.
fn plain_var(key: &str, value: &Value, at: &str, w: &mut Warnings) -> Option<toml::Value> {
    if !super::render::bare_key(key) {
        w.at(
            at,
            format!(
                "variable `{key}` is not a plain name; it is written quoted, and recipes read \
             it as vars[\"{key}\"]"
            ),
        );
    }
    let mut texts = Vec::new();
    strings(value, &mut texts);
    if texts.iter().any(|t| t.contains("{{") || t.contains("{%")) {
        w.at(
            at,
            format!(
                "variable `{key}` uses Jinja templating, which rigs does not evaluate; it is \
             copied as text: compute the value in a recipe instead"
            ),
        );
    }
    let mut dropped = Vec::new();
    let converted = to_toml(value, &mut dropped, key);
    for d in dropped {
        w.at(
            at,
            format!("`{d}` is null, which TOML cannot hold; left out"),
        );
    }
    converted
}

/// Ansible's truthiness for flags written as text.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() == Some(1),
        Value::String(s) => matches!(
            s.to_ascii_lowercase().as_str(),
            "yes" | "y" | "true" | "t" | "on" | "1"
        ),
        _ => false,
    }
}

fn is_vaulted(value: &Value) -> bool {
    match value {
        Value::String(s) => s.trim_start().starts_with("$ANSIBLE_VAULT"),
        Value::Object(map) => map.contains_key("__ansible_vault") || map.values().any(is_vaulted),
        Value::Array(items) => items.iter().any(is_vaulted),
        _ => false,
    }
}

/// The jump hosts in `-J a,b`, `-o ProxyJump=a`, or `-o ProxyCommand="ssh -W %h:%p a"`, when
/// that is all the arguments say.
fn jump_from_args(args: &str) -> Option<Vec<String>> {
    let words = shell_words(args).ok()?;
    let hops = match words.as_slice() {
        [j, hops] if j == "-J" => hops.clone(),
        [o, opt] if o == "-o" => proxy_option(opt)?,
        [opt] => proxy_option(opt.strip_prefix("-o")?)?,
        _ => return None,
    };
    let hops: Vec<String> = hops.split(',').map(|h| h.trim().to_string()).collect();
    hops.iter()
        .all(|h| crate::inventory::HostSpec::parse(h).is_ok())
        .then_some(hops)
}

fn proxy_option(opt: &str) -> Option<String> {
    let (name, value) = opt.split_once(['=', ' '])?;
    let value = value.trim();
    if name.eq_ignore_ascii_case("ProxyJump") {
        return Some(value.to_string());
    }
    if !name.eq_ignore_ascii_case("ProxyCommand") {
        return None;
    }
    let words = shell_words(value).ok()?;
    let words: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|w| *w != "-q")
        .collect();
    match words.as_slice() {
        ["ssh", "-W", "%h:%p", dest] => Some(dest.to_string()),
        ["ssh", dest, "-W", "%h:%p"] => Some(dest.to_string()),
        ["ssh", "-p", port, dest, "-W", "%h:%p"] | ["ssh", "-W", "%h:%p", "-p", port, dest] => {
            Some(format!("{dest}:{port}"))
        }
        _ => None,
    }
}

fn descendants(tree: &Tree, group: &str) -> BTreeSet<String> {
    let mut hosts = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut todo = vec![group];
    while let Some(name) = todo.pop() {
        if !seen.insert(name) {
            continue;
        }
        if let Some(g) = tree.groups.get(name) {
            hosts.extend(g.hosts.iter().cloned());
            todo.extend(g.children.iter().map(String::as_str));
        }
    }
    hosts
}

fn build(mut tree: Tree, w: &mut Warnings) -> Output {
    let mut out = Output {
        header: vec![
            "rigs inventory imported from an Ansible inventory (`rigs inventory import ansible`)."
                .into(),
            "Every Ansible group is an environment (`rigs env:GROUP ...`) holding the hosts of the"
                .into(),
            "group and of its child groups; each child group is also a role of it".into(),
            "(`rigs env:GROUP -R CHILD ...`). Group variables are the environment's or role's vars,"
                .into(),
            "host variables the host's. What could not be converted was printed as warnings.".into(),
        ],
        ..Output::default()
    };

    let invalid: Vec<(String, String)> = tree
        .hosts
        .keys()
        .filter_map(|h| host_name_problem(h).map(|why| (h.clone(), why)))
        .collect();
    for (host, why) in invalid {
        w.push(format!(
            "host `{host}` is left out: {why}; rename it and set ansible_host"
        ));
        tree.hosts.remove(&host);
        for g in tree.groups.values_mut() {
            g.hosts.remove(&host);
        }
    }

    if let Some(all) = tree.groups.get("all") {
        let m = map_vars(&all.vars, "group `all`", false, w);
        out.defaults = m.settings;
        out.vars = m.vars;
    }
    if let Some(g) = tree.groups.get("ungrouped") {
        if !g.vars.is_empty() {
            w.push("group `ungrouped` has variables, which no environment holds; left out");
        }
    }

    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut pushed: BTreeMap<String, (Settings, BTreeMap<&'static str, String>)> = BTreeMap::new();
    let mut grouped: BTreeSet<String> = BTreeSet::new();
    let parents: BTreeSet<&str> = tree
        .groups
        .iter()
        .filter(|(name, _)| *name != "all")
        .flat_map(|(_, g)| g.children.iter().map(String::as_str))
        .collect();
    for (name, group) in &tree.groups {
        if name == "all" || name == "ungrouped" {
            continue;
        }
        let at = format!("group `{name}`");
        let mut hosts: Vec<String> = descendants(&tree, name).into_iter().collect();
        if hosts.is_empty() {
            w.push(format!(
                "{at} has no hosts, so it is not an environment{}",
                if group.vars.is_empty() {
                    ""
                } else {
                    "; its variables are left out"
                }
            ));
            continue;
        }
        sort_hosts(&mut hosts);
        grouped.extend(hosts.iter().cloned());
        let env = env_name(name);
        if env != *name {
            w.push(format!(
                "{at} is the environment `{env}`: rigs names may hold letters, digits, `_` and `-`"
            ));
        }
        if let Some(other) = names.insert(env.clone(), name.clone()) {
            w.push(format!(
                "groups `{other}` and `{name}` both become the environment `{env}`; only \
                 `{other}` is kept: rename one of them"
            ));
            names.insert(env, other);
            continue;
        }
        let m = map_vars(&group.vars, &at, false, w);
        if parents.contains(name.as_str()) {
            push_settings(&m.settings, name, &hosts, &mut pushed, w);
        }
        let mut roles = Vec::new();
        for child in &group.children {
            let Some(child_group) = tree.groups.get(child) else {
                continue;
            };
            let mut members: Vec<String> = descendants(&tree, child).into_iter().collect();
            if members.is_empty() {
                continue;
            }
            sort_hosts(&mut members);
            let role = env_name(child);
            if roles.iter().any(|r: &Role| r.name == role) {
                w.push(format!(
                    "{at}: child groups with names that both become the role `{role}`; only the \
                     first is a role: rename one of them"
                ));
                continue;
            }
            let vars = map_vars(&child_group.vars, &format!("group `{child}`"), false, w).vars;
            roles.push(Role {
                name: role,
                hosts: members,
                vars,
            });
        }
        role_clashes(&env, &roles, w);
        let children: Vec<&str> = group.children.iter().map(String::as_str).collect();
        out.envs.push(Env {
            comment: if children.is_empty() {
                format!("Ansible group `{name}`")
            } else {
                format!("Ansible group `{name}` (children: {})", children.join(", "))
            },
            name: env,
            hosts,
            roles,
            vars: m.vars,
            settings: m.settings,
        });
    }

    let mut host_names: Vec<&String> = tree.hosts.keys().collect();
    host_names.sort_by(|a, b| super::natural_cmp(a, b));
    for name in host_names {
        let at = format!("host `{name}`");
        let m = map_vars(&tree.hosts[name], &at, true, w);
        let mut settings = m.settings;
        if let Some((from_groups, _)) = pushed.get(name) {
            settings = Settings {
                user: settings.user.or_else(|| from_groups.user.clone()),
                port: settings.port.or(from_groups.port),
                identity: settings.identity.or_else(|| from_groups.identity.clone()),
                connection: settings
                    .connection
                    .or_else(|| from_groups.connection.clone()),
                jump: settings.jump.or_else(|| from_groups.jump.clone()),
            };
        }
        let in_env = grouped.contains(name);
        if !in_env {
            w.at(
                &at,
                "in no group but `all`/`ungrouped`, so no environment holds it; it is only a \
                 [hosts] entry (reach it with -H NAME)",
            );
        }
        if in_env && m.address.is_none() && settings == Settings::default() && m.vars.is_empty() {
            continue;
        }
        out.hosts.push(HostEntry {
            comment: if in_env {
                String::new()
            } else {
                "In no Ansible group: no environment holds it; `rigs -H NAME` reaches it.".into()
            },
            name: name.clone(),
            address: m.address,
            settings,
            vars: m.vars,
        });
    }
    out
}

/// Records the connection settings of group `group` for each of its hosts, the first group (by
/// name) winning where two disagree.
fn push_settings(
    settings: &Settings,
    group: &str,
    hosts: &[String],
    pushed: &mut BTreeMap<String, (Settings, BTreeMap<&'static str, String>)>,
    w: &mut Warnings,
) {
    let fields: [(&'static str, Option<String>); 5] = [
        ("user", settings.user.clone()),
        ("port", settings.port.map(|p| p.to_string())),
        ("identity", settings.identity.clone()),
        ("connection", settings.connection.clone()),
        ("jump", settings.jump.as_ref().map(|j| j.join(","))),
    ];
    for host in hosts {
        let (target, from) = pushed.entry(host.clone()).or_default();
        for (field, value) in &fields {
            let Some(value) = value else { continue };
            if let Some(first) = from.get(field) {
                let current = match *field {
                    "user" => target.user.clone(),
                    "port" => target.port.map(|p| p.to_string()),
                    "identity" => target.identity.clone(),
                    "connection" => target.connection.clone(),
                    _ => target.jump.as_ref().map(|j| j.join(",")),
                };
                if current.as_deref() != Some(value.as_str()) {
                    w.push(format!(
                        "host `{host}`: groups `{first}` and `{group}` set different `{field}`s; \
                         `{first}`'s is kept on the host: check it"
                    ));
                }
                continue;
            }
            from.insert(field, group.to_string());
            match *field {
                "user" => target.user = settings.user.clone(),
                "port" => target.port = settings.port,
                "identity" => target.identity = settings.identity.clone(),
                "connection" => target.connection = settings.connection.clone(),
                _ => target.jump = settings.jump.clone(),
            }
        }
    }
}

/// rigs refuses a host whose roles give one variable different values; say so now.
fn role_clashes(env: &str, roles: &[Role], w: &mut Warnings) {
    for (i, a) in roles.iter().enumerate() {
        for b in &roles[i + 1..] {
            let differ: Vec<&String> = a
                .vars
                .iter()
                .filter(|(k, v)| b.vars.get(*k).is_some_and(|other| other != *v))
                .map(|(k, _)| k)
                .collect();
            if differ.is_empty() {
                continue;
            }
            let theirs: BTreeSet<&String> = b.hosts.iter().collect();
            for host in a.hosts.iter().filter(|h| theirs.contains(h)) {
                for k in &differ {
                    w.at(
                        &format!("host `{host}`"),
                        format!(
                            "in roles `{}` and `{}` of env:{env}, which give `{k}` different \
                             values; rigs refuses that: give `{k}` one value in both groups, or \
                             move it from the groups to the hosts' vars",
                            a.name, b.name
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "ansible_tests.rs"]
mod tests;
