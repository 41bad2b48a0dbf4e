//! Turning an environment and the host flags (`-H`, `-R`, `-x`, `--limit`) into concrete hosts.
//!
//! Connection settings are layered: command line > host entry > environment > `[defaults]` >
//! built-in defaults (current user, port 22, SSH). Variables are layered: `--set` > host >
//! environment > `[vars]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::ssh_config::SshConfig;
use super::{Connection, Endpoint, Host, HostSpec, Inventory, Settings};
use crate::error::{closest, Error, Result};
use crate::glob;

/// The command line's say in host selection and connection settings.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub hosts: Vec<String>,
    pub roles: Vec<String>,
    pub exclude: Vec<String>,
    pub limit: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identities: Vec<PathBuf>,
    pub set: Vec<(String, String)>,
}

/// Hosts for the tasks that follow `env:NAME` (or for no environment when `env` is `None`).
pub fn select(
    inventory: &Inventory,
    env: Option<&str>,
    overrides: &Overrides,
    ssh_config: &SshConfig,
) -> Result<Vec<Host>> {
    let environment = match env {
        Some(name) => Some(environment(inventory, name)?),
        None => None,
    };

    let mut chosen: Vec<String> = Vec::new();
    if let Some(e) = environment {
        if overrides.roles.is_empty() {
            chosen.extend(e.hosts.iter().cloned());
        } else {
            for role in &overrides.roles {
                let members = e.roles.get(role).ok_or_else(|| Error::Unknown {
                    kind: "role",
                    name: role.clone(),
                    suggestions: closest(role, e.roles.keys().map(String::as_str)),
                    hint: if e.roles.is_empty() {
                        format!("environment `{}` defines no roles ({})", e.name, e.file)
                    } else {
                        format!(
                            "roles of environment `{}`: {}",
                            e.name,
                            e.roles.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    },
                })?;
                for m in members {
                    if !chosen.contains(m) {
                        chosen.push(m.clone());
                    }
                }
            }
        }
    } else if !overrides.roles.is_empty() {
        return Err(Error::usage_hint(
            "-R/--roles needs an environment to take roles from",
            "put env:NAME before the tasks, e.g. `rigs -R web env:production deploy:1.2.3`",
        ));
    }
    for h in &overrides.hosts {
        if !chosen.contains(h) {
            chosen.push(h.clone());
        }
    }

    for x in &overrides.exclude {
        chosen.retain(|h| h != x && spec_host(h) != *x);
    }
    if let Some(pattern) = &overrides.limit {
        chosen.retain(|h| glob::matches(pattern, h) || glob::matches(pattern, &spec_host(h)));
    }

    chosen
        .iter()
        .map(|h| resolve(inventory, environment, h, overrides, ssh_config))
        .collect()
}

/// The environment called `name`, or the error that names the ones there are.
pub fn environment<'a>(inventory: &'a Inventory, name: &str) -> Result<&'a super::Environment> {
    inventory
        .envs
        .get(name)
        .ok_or_else(|| unknown_env(inventory, name))
}

fn spec_host(s: &str) -> String {
    HostSpec::parse(s)
        .map(|s| s.host)
        .unwrap_or_else(|_| s.to_string())
}

fn unknown_env(inventory: &Inventory, name: &str) -> Error {
    let hint = if inventory.envs.is_empty() {
        if inventory.files.is_empty() {
            "no inventory was found: create inventory/*.toml or pass -I FILE".to_string()
        } else {
            format!(
                "the inventory ({}) defines no [env.NAME] tables",
                inventory.files.join(", ")
            )
        }
    } else {
        format!(
            "environments: {}",
            inventory.env_names().collect::<Vec<_>>().join(", ")
        )
    };
    Error::Unknown {
        kind: "environment",
        name: name.to_string(),
        suggestions: closest(name, inventory.env_names()),
        hint,
    }
}

fn resolve(
    inventory: &Inventory,
    environment: Option<&super::Environment>,
    written: &str,
    overrides: &Overrides,
    ssh_config: &SshConfig,
) -> Result<Host> {
    let (endpoint, jump_specs, layered) =
        endpoint(inventory, environment, written, overrides, ssh_config)?;
    let mut jumps = Vec::new();
    resolve_jumps(inventory, &jump_specs, overrides, ssh_config, &mut jumps, 0)?;
    let entry = entry_for(inventory, written);

    let mut vars = inventory.vars.clone();
    if let Some(env) = environment {
        vars.extend(env.vars.clone());
        vars.extend(role_vars(env, written)?);
    }
    let host_vars = entry.map(|e| e.vars.clone()).unwrap_or_default();
    vars.extend(host_vars.clone());
    for (k, v) in &overrides.set {
        vars.insert(k.clone(), toml::Value::String(v.clone()));
    }

    let roles = environment
        .map(|env| {
            env.roles
                .iter()
                .filter(|(_, members)| members.iter().any(|m| m == written))
                .map(|(r, _)| r.clone())
                .collect()
        })
        .unwrap_or_default();

    Ok(Host {
        name: written.to_string(),
        endpoint,
        jumps,
        connection: layered.connection.unwrap_or(Connection::Ssh),
        vars,
        host_vars,
        roles,
        env: environment.map(|e| e.name.clone()),
    })
}

/// The variables `written` gets from its roles in `env`. Two roles that give it different
/// values of one variable are an input error: which should win is for the user to say.
fn role_vars(env: &super::Environment, written: &str) -> Result<toml::Table> {
    let mut out = toml::Table::new();
    let mut from: BTreeMap<String, &str> = BTreeMap::new();
    for (role, vars) in &env.role_vars {
        if !env
            .roles
            .get(role)
            .is_some_and(|m| m.iter().any(|h| h == written))
        {
            continue;
        }
        for (k, v) in vars {
            if let (Some(old), Some(first)) = (out.get(k), from.get(k)) {
                if old != v {
                    return Err(Error::usage(format!(
                        "host `{written}` is in roles `{first}` and `{role}` of environment `{}`, which give `{k}` different values; set it for the host instead ([hosts.{written}] vars)",
                        env.name
                    )));
                }
            }
            out.insert(k.clone(), v.clone());
            from.insert(k.clone(), role);
        }
    }
    Ok(out)
}

fn entry_for<'a>(inventory: &'a Inventory, written: &str) -> Option<&'a super::HostEntry> {
    inventory.hosts.get(written).or_else(|| {
        HostSpec::parse(written)
            .ok()
            .and_then(|spec| inventory.hosts.get(&spec.host))
    })
}

/// Connection settings for one name: command line > inventory (host > env > defaults) >
/// ssh_config > built-in defaults. Returns the endpoint, its jump hosts as written, and the
/// layered inventory settings.
fn endpoint(
    inventory: &Inventory,
    environment: Option<&super::Environment>,
    written: &str,
    overrides: &Overrides,
    ssh_config: &SshConfig,
) -> Result<(Endpoint, Vec<String>, Settings)> {
    let spec = HostSpec::parse(written).map_err(|m| Error::usage(format!("host {m}")))?;
    let entry = entry_for(inventory, written);
    let alias = entry.map_or(spec.host.as_str(), |e| e.name.as_str());
    let config = ssh_config.query(alias);

    let cli = Settings {
        user: overrides.user.clone().or(spec.user.clone()),
        port: spec.port.or(overrides.port),
        ..Settings::default()
    };
    let mut layered = cli;
    if let Some(e) = entry {
        layered = layered.or(&e.settings);
    }
    if let Some(env) = environment {
        layered = layered.or(&env.settings);
    }
    layered = layered.or(&inventory.defaults);

    let mut identities = overrides.identities.clone();
    identities.extend(layered.identities.iter().cloned());
    identities.extend(config.identities.iter().cloned());

    let address = entry
        .and_then(|e| e.address.clone())
        .or(config.host_name.clone())
        .unwrap_or_else(|| spec.host.clone());
    let jumps = layered
        .jump
        .clone()
        .unwrap_or_else(|| config.proxy_jump.clone());
    let endpoint = Endpoint {
        address,
        port: layered.port.or(config.port).unwrap_or(22),
        user: layered
            .user
            .clone()
            .or(config.user.clone())
            .unwrap_or_else(current_user),
        identities,
        identities_only: config.identities_only.unwrap_or(false),
        known_hosts: config.known_hosts.clone(),
        accept_new: config.accept_new,
        connect_timeout: config.connect_timeout,
        keepalive: config.server_alive_interval,
    };
    Ok((endpoint, jumps, layered))
}

fn hop_alias(inventory: &Inventory, written: &str) -> String {
    match entry_for(inventory, written) {
        Some(e) => e.name.clone(),
        None => HostSpec::parse(written)
            .map(|s| s.host)
            .unwrap_or_else(|_| written.to_string()),
    }
}

/// Expands jump host names into endpoints; a jump host's own jumps come first, as with
/// OpenSSH's ProxyJump.
fn resolve_jumps(
    inventory: &Inventory,
    specs: &[String],
    overrides: &Overrides,
    ssh_config: &SshConfig,
    out: &mut Vec<Endpoint>,
    depth: usize,
) -> Result<()> {
    if depth > 8 {
        return Err(Error::usage_hint(
            format!("jump hosts nest more than 8 deep ({})", specs.join(", ")),
            "check `jump` in the inventory and ProxyJump in ssh_config for a loop",
        ));
    }
    let jump_overrides = Overrides {
        user: None,
        port: None,
        ..overrides.clone()
    };
    for (i, hop) in specs.iter().enumerate() {
        // A jump host is not a member of the environment: its settings come from its own
        // [hosts.NAME] entry, [defaults] and ssh_config, and only its own jumps apply to it.
        let (endpoint, _, _) = endpoint(inventory, None, hop, &jump_overrides, ssh_config)?;
        let own_jumps = entry_for(inventory, hop)
            .and_then(|e| e.settings.jump.clone())
            .unwrap_or_else(|| ssh_config.query(&hop_alias(inventory, hop)).proxy_jump);
        if i == 0 && !own_jumps.is_empty() {
            resolve_jumps(inventory, &own_jumps, overrides, ssh_config, out, depth + 1)?;
        }
        out.push(endpoint);
    }
    Ok(())
}

fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::load;

    fn inventory() -> Inventory {
        let mut inv = Inventory::default();
        load::merge_file(
            &mut inv,
            std::path::Path::new("i.toml"),
            r#"
[defaults]
user = "deploy"
[vars]
a = "global"
b = "global"
c = "global"
[env.prod]
hosts = ["web-1", "web-2", "ops@db:2200"]
roles = { web = ["web-1", "web-2"], db = ["ops@db:2200"] }
vars = { b = "env", c = "env" }
user = "produser"
[hosts.web-1]
address = "10.0.0.1"
port = 2222
vars = { c = "host" }
"#,
        )
        .unwrap();
        inv
    }

    fn names(hosts: &[Host]) -> Vec<&str> {
        hosts.iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn env_hosts_and_layering() {
        let inv = inventory();
        let o = Overrides {
            set: vec![("a".into(), "set".into())],
            ..Default::default()
        };
        let hosts = select(&inv, Some("prod"), &o, &SshConfig::default()).unwrap();
        assert_eq!(names(&hosts), ["web-1", "web-2", "ops@db:2200"]);
        let w1 = &hosts[0];
        assert_eq!(
            (
                w1.endpoint.address.as_str(),
                w1.endpoint.port,
                w1.endpoint.user.as_str()
            ),
            ("10.0.0.1", 2222, "produser")
        );
        assert_eq!(w1.vars["a"].as_str(), Some("set"));
        assert_eq!(w1.vars["b"].as_str(), Some("env"));
        assert_eq!(w1.vars["c"].as_str(), Some("host"));
        assert_eq!(w1.roles, ["web"]);
        let db = &hosts[2];
        assert_eq!(
            (
                db.endpoint.address.as_str(),
                db.endpoint.port,
                db.endpoint.user.as_str()
            ),
            ("db", 2200, "ops")
        );
    }

    #[test]
    fn role_vars_sit_between_env_and_host() {
        let mut inv = Inventory::default();
        let text = r#"
[env.p]
hosts = ["a", "b", "c"]
vars = { s = "env", t = "env" }
[env.p.roles]
web = { hosts = ["a", "b"], vars = { s = "web", t = "web" } }
jobs = { hosts = ["c"], vars = { s = "jobs" } }
plain = ["a"]
[hosts.b]
vars = { t = "host" }
"#;
        load::merge_file(&mut inv, std::path::Path::new("i.toml"), text).unwrap();
        let hosts = select(
            &inv,
            Some("p"),
            &Overrides::default(),
            &SshConfig::default(),
        )
        .unwrap();
        let got: Vec<(&str, &str)> = hosts
            .iter()
            .map(|h| (h.vars["s"].as_str().unwrap(), h.vars["t"].as_str().unwrap()))
            .collect();
        assert_eq!(got, [("web", "web"), ("web", "host"), ("jobs", "env")]);
        assert_eq!(hosts[0].roles, ["plain", "web"]);

        let mut inv = Inventory::default();
        let clash = "[env.p]\nhosts = [\"a\"]\n[env.p.roles]\nx = { hosts = [\"a\"], vars = { s = 1 } }\ny = { hosts = [\"a\"], vars = { s = 2 } }\n";
        load::merge_file(&mut inv, std::path::Path::new("i.toml"), clash).unwrap();
        let e = select(
            &inv,
            Some("p"),
            &Overrides::default(),
            &SshConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("roles `x` and `y`"), "{e}");
    }

    #[test]
    fn roles_excludes_limit_and_cli_user() {
        let inv = inventory();
        let o = Overrides {
            roles: vec!["web".into()],
            exclude: vec!["web-2".into()],
            user: Some("me".into()),
            ..Default::default()
        };
        let hosts = select(&inv, Some("prod"), &o, &SshConfig::default()).unwrap();
        assert_eq!(names(&hosts), ["web-1"]);
        assert_eq!(hosts[0].endpoint.user, "me");
        let o = Overrides {
            limit: Some("web-*".into()),
            ..Default::default()
        };
        assert_eq!(
            names(&select(&inv, Some("prod"), &o, &SshConfig::default()).unwrap()),
            ["web-1", "web-2"]
        );
    }

    #[test]
    fn unknown_env_and_role_suggest() {
        let inv = inventory();
        let e = select(
            &inv,
            Some("prd"),
            &Overrides::default(),
            &SshConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unknown environment `prd`") && e.contains("`prod`"),
            "{e}"
        );
        let o = Overrides {
            roles: vec!["wbe".into()],
            ..Default::default()
        };
        let e = select(&inv, Some("prod"), &o, &SshConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown role") && e.contains("`web`"), "{e}");
    }

    #[test]
    fn hosts_flag_without_env() {
        let inv = inventory();
        let o = Overrides {
            hosts: vec!["web-1".into(), "x@other:23".into()],
            ..Default::default()
        };
        let hosts = select(&inv, None, &o, &SshConfig::default()).unwrap();
        assert_eq!(hosts[0].endpoint.address, "10.0.0.1");
        assert_eq!(hosts[0].endpoint.user, "deploy");
        assert_eq!(
            (hosts[1].endpoint.user.as_str(), hosts[1].endpoint.port),
            ("x", 23)
        );
    }
}
