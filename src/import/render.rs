//! Writes an [`Output`] as TOML: sections in a fixed order, one key per line, values inline, so
//! the file reads like a hand-written inventory and the same model always gives the same bytes.

use super::{Env, HostEntry, Output, Settings};

pub(super) fn render(out: &Output) -> String {
    let mut s = String::new();
    for line in &out.header {
        s.push_str(&comment(line));
    }
    if settings_lines(&out.defaults).next().is_some() {
        s.push_str("\n[defaults]\n");
        settings(&mut s, &out.defaults);
    }
    if !out.vars.is_empty() {
        s.push_str("\n[vars]\n");
        table_lines(&mut s, &out.vars);
    }
    for env in &out.envs {
        environment(&mut s, env);
    }
    for host in &out.hosts {
        host_entry(&mut s, host);
    }
    s
}

fn comment(line: &str) -> String {
    if line.is_empty() {
        "#\n".to_string()
    } else {
        format!("# {line}\n")
    }
}

fn environment(s: &mut String, env: &Env) {
    s.push('\n');
    if !env.comment.is_empty() {
        s.push_str(&comment(&env.comment));
    }
    s.push_str(&format!("[env.{}]\n", key(&env.name)));
    s.push_str(&format!("hosts = {}\n", strings(&env.hosts)));
    settings(s, &env.settings);
    if !env.roles.is_empty() {
        s.push_str(&format!("\n[env.{}.roles]\n", key(&env.name)));
        for role in &env.roles {
            if role.vars.is_empty() {
                s.push_str(&format!("{} = {}\n", key(&role.name), strings(&role.hosts)));
            } else {
                s.push_str(&format!(
                    "{} = {{ hosts = {}, vars = {} }}\n",
                    key(&role.name),
                    strings(&role.hosts),
                    toml::Value::Table(role.vars.clone())
                ));
            }
        }
    }
    if !env.vars.is_empty() {
        s.push_str(&format!("\n[env.{}.vars]\n", key(&env.name)));
        table_lines(s, &env.vars);
    }
}

fn host_entry(s: &mut String, host: &HostEntry) {
    s.push('\n');
    if !host.comment.is_empty() {
        s.push_str(&comment(&host.comment));
    }
    s.push_str(&format!("[hosts.{}]\n", key(&host.name)));
    if let Some(address) = &host.address {
        s.push_str(&format!("address = {}\n", string(address)));
    }
    settings(s, &host.settings);
    if !host.vars.is_empty() {
        s.push_str(&format!(
            "vars = {}\n",
            toml::Value::Table(host.vars.clone())
        ));
    }
}

fn settings(s: &mut String, settings: &Settings) {
    for line in settings_lines(settings) {
        s.push_str(&line);
    }
}

fn settings_lines(settings: &Settings) -> impl Iterator<Item = String> + '_ {
    let user = settings
        .user
        .iter()
        .map(|u| format!("user = {}\n", string(u)));
    let port = settings.port.iter().map(|p| format!("port = {p}\n"));
    let identity = settings
        .identity
        .iter()
        .map(|i| format!("identity = {}\n", string(i)));
    let connection = settings
        .connection
        .iter()
        .map(|c| format!("connection = {}\n", string(c)));
    let jump = settings.jump.iter().map(|j| match j.as_slice() {
        [one] => format!("jump = {}\n", string(one)),
        many => format!("jump = {}\n", strings(many)),
    });
    user.chain(port)
        .chain(identity)
        .chain(connection)
        .chain(jump)
}

fn table_lines(s: &mut String, table: &toml::Table) {
    for (k, v) in table {
        s.push_str(&format!("{} = {}\n", key(k), v));
    }
}

fn string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| string(i)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Whether `name` can be written as a TOML key without quotes.
pub(super) fn bare_key(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn key(name: &str) -> String {
    if bare_key(name) {
        name.to_string()
    } else {
        string(name)
    }
}
