//! Reading inventory TOML files into an [`Inventory`].
//!
//! Parsing goes through serde with `deny_unknown_fields`, so a misspelt key is an error with its
//! position rather than a silently ignored setting. Values whose meaning depends on other parts of
//! the inventory (a role naming a host the environment does not have) are checked after parsing,
//! with the span of the offending string kept through [`toml::Spanned`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{Connection, Environment, HostEntry, HostSpec, Inventory, Settings};
use crate::diagnostic::{display_path, Diagnostic};
use crate::error::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: RawSettings,
    #[serde(default)]
    vars: toml::Table,
    #[serde(default)]
    env: BTreeMap<Spanned<String>, RawEnv>,
    #[serde(default)]
    hosts: BTreeMap<Spanned<String>, RawHost>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    user: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    identity: Option<Spanned<OneOrMany>>,
    connection: Option<Spanned<String>>,
    jump: Option<Spanned<OneOrMany>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A role: its members, or its members and the variables they get. (Not `untagged`: that
/// buffers the value and loses the members' places in the file, which errors point at.)
enum RawRole {
    Members(Vec<Spanned<String>>),
    Table(RawRoleTable),
}

impl<'de> Deserialize<'de> for RawRole {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawRole;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of hosts, or a table { hosts = [...], vars = { ... } }")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<RawRole, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(RawRole::Members)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<RawRole, A::Error> {
                RawRoleTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawRole::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoleTable {
    hosts: Vec<Spanned<String>>,
    #[serde(default)]
    vars: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
    #[serde(default)]
    roles: BTreeMap<String, RawRole>,
    #[serde(default)]
    vars: toml::Table,
    user: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    identity: Option<Spanned<OneOrMany>>,
    connection: Option<Spanned<String>>,
    jump: Option<Spanned<OneOrMany>>,
    /// No registry is reachable: the standard recipes ship images instead of pulling.
    airgapped: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    address: Option<Spanned<String>>,
    airgapped: Option<bool>,
    #[serde(default)]
    vars: toml::Table,
    user: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    identity: Option<Spanned<OneOrMany>>,
    connection: Option<Spanned<String>>,
    jump: Option<Spanned<OneOrMany>>,
}

/// Loads `path` (a file, or a folder whose `*.toml` files are read in name order). `None` means the
/// default `inventory/` folder, which may be absent: then the inventory is empty.
pub fn load(path: Option<&Path>) -> Result<Inventory> {
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from("inventory"), false),
    };
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
            .map_err(|e| Error::io(&path, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() && required {
            return Err(Error::usage_hint(
                format!("no *.toml files in inventory folder {}", path.display()),
                "point -I at an inventory file or a folder holding one",
            ));
        }
        files
    } else if path.exists() {
        vec![path.clone()]
    } else if required {
        return Err(Error::usage_hint(
            format!("inventory {} does not exist", path.display()),
            "pass an existing file or folder to -I/--inventory",
        ));
    } else {
        Vec::new()
    };

    let mut inventory = Inventory::default();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        merge_file(&mut inventory, &file, &text)?;
    }
    Ok(inventory)
}

struct FileCtx<'a> {
    shown: String,
    text: &'a str,
    dir: PathBuf,
}

impl FileCtx<'_> {
    fn error(&self, message: impl Into<String>, span: std::ops::Range<usize>) -> Error {
        Diagnostic::new(message, &self.shown)
            .at_offset(self.text, span.start)
            .into()
    }
}

/// Parses one file's text and adds it to `inventory`: what [`load`] does for each file. `file` is
/// where the text came from, for messages and for relative identity paths.
pub fn merge_file(inventory: &mut Inventory, file: &Path, text: &str) -> Result<()> {
    let ctx = FileCtx {
        shown: display_path(file),
        text,
        dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_string();
        let mut d = Diagnostic::new(format!("invalid inventory: {message}"), &ctx.shown);
        if let Some(span) = e.span() {
            d = d.at_offset(text, span.start);
        }
        if message.contains("unknown field") {
            d = d.note(
                "[defaults] takes user, port, identity, connection, jump; [env.NAME] takes hosts, \
                 roles, vars, airgapped and the same settings; [hosts.NAME] takes address, vars, \
                 airgapped and the same settings",
            );
        }
        Error::from(d)
    })?;
    inventory.files.push(ctx.shown.clone());

    let defaults = settings(&ctx, raw.defaults)?;
    inventory.defaults = defaults.or(&inventory.defaults);
    inventory.vars.extend(raw.vars);

    for (name, env) in raw.env {
        let span = name.span();
        let name = name.into_inner();
        if let Some(previous) = inventory.envs.get(&name) {
            return Err(ctx.error(
                format!(
                    "environment `{name}` is defined twice (also in {})",
                    previous.file
                ),
                span,
            ));
        }
        if !crate::task_call::is_identifier(&name.replace('-', "_")) {
            return Err(ctx.error(format!("`{name}` is not a valid environment name"), span));
        }
        if env.hosts.is_empty() {
            return Err(
                Diagnostic::new(format!("environment `{name}` has no hosts"), &ctx.shown)
                    .at_offset(text, span.start)
                    .note("add hosts = [\"web-1\", \"deploy@web-2:2222\"]")
                    .into(),
            );
        }
        let mut hosts = Vec::with_capacity(env.hosts.len());
        for h in &env.hosts {
            HostSpec::parse(h.get_ref())
                .map_err(|m| ctx.error(format!("env.{name}.hosts: {m}"), h.span()))?;
            if hosts.contains(h.get_ref()) {
                return Err(ctx.error(
                    format!("env.{name}.hosts lists `{}` twice", h.get_ref()),
                    h.span(),
                ));
            }
            hosts.push(h.get_ref().clone());
        }
        let mut roles = BTreeMap::new();
        let mut role_vars = BTreeMap::new();
        for (role, raw) in env.roles {
            let members = match raw {
                RawRole::Members(m) => m,
                RawRole::Table(t) => {
                    role_vars.insert(role.clone(), t.vars);
                    t.hosts
                }
            };
            let mut names = Vec::with_capacity(members.len());
            for m in members {
                if !hosts.contains(m.get_ref()) {
                    return Err(Diagnostic::new(
                        format!("role `{role}` of environment `{name}` names `{}`, which is not one of its hosts", m.get_ref()),
                        &ctx.shown,
                    )
                    .at_offset(text, m.span().start)
                    .note(format!("env.{name}.hosts = {hosts:?}"))
                    .into());
                }
                names.push(m.into_inner());
            }
            roles.insert(role, names);
        }
        let settings = settings(
            &ctx,
            RawSettings {
                user: env.user,
                port: env.port,
                identity: env.identity,
                connection: env.connection,
                jump: env.jump,
            },
        )?;
        inventory.envs.insert(
            name.clone(),
            Environment {
                name,
                hosts,
                roles,
                role_vars,
                vars: with_airgapped(env.vars, env.airgapped),
                settings,
                file: ctx.shown.clone(),
            },
        );
    }

    for (name, host) in raw.hosts {
        let span = name.span();
        let name = name.into_inner();
        if let Some(previous) = inventory.hosts.get(&name) {
            return Err(ctx.error(
                format!("host `{name}` is defined twice (also in {})", previous.file),
                span,
            ));
        }
        HostSpec::parse(&name)
            .map_err(|m| ctx.error(format!("hosts.{name}: {m}"), span.clone()))?;
        let address = match host.address {
            Some(a) => {
                let spec = HostSpec::parse(a.get_ref())
                    .map_err(|m| ctx.error(format!("hosts.{name}.address: {m}"), a.span()))?;
                if spec.user.is_some() || spec.port.is_some() {
                    return Err(Diagnostic::new(
                        format!("hosts.{name}.address must be a bare host name or IP address"),
                        &ctx.shown,
                    )
                    .at_offset(text, a.span().start)
                    .note("set `user` and `port` as their own keys")
                    .into());
                }
                Some(spec.host)
            }
            None => None,
        };
        let settings = settings(
            &ctx,
            RawSettings {
                user: host.user,
                port: host.port,
                identity: host.identity,
                connection: host.connection,
                jump: host.jump,
            },
        )?;
        inventory.hosts.insert(
            name.clone(),
            HostEntry {
                name,
                file: ctx.shown.clone(),
                address,
                settings,
                vars: with_airgapped(host.vars, host.airgapped),
            },
        );
    }
    Ok(())
}

/// `airgapped = true` is shorthand for the variable of that name, which recipes read.
fn with_airgapped(mut vars: toml::Table, airgapped: Option<bool>) -> toml::Table {
    if let Some(a) = airgapped {
        vars.entry("airgapped").or_insert(toml::Value::Boolean(a));
    }
    vars
}

fn settings(ctx: &FileCtx, raw: RawSettings) -> Result<Settings> {
    let port = match raw.port {
        Some(p) => match u16::try_from(*p.get_ref()) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(ctx.error(
                    format!("port {} is out of range (1-65535)", p.get_ref()),
                    p.span(),
                ))
            }
        },
        None => None,
    };
    let connection = match raw.connection {
        Some(c) => Some(Connection::parse(c.get_ref()).ok_or_else(|| {
            ctx.error(
                format!(
                    "unknown connection `{}` (expected \"ssh\" or \"local\")",
                    c.get_ref()
                ),
                c.span(),
            )
        })?),
        None => None,
    };
    let user = match raw.user {
        Some(u) if u.get_ref().is_empty() || u.get_ref().contains(char::is_whitespace) => {
            return Err(ctx.error(format!("invalid user name `{}`", u.get_ref()), u.span()))
        }
        u => u.map(Spanned::into_inner),
    };
    let identities = match raw.identity.map(Spanned::into_inner) {
        None => Vec::new(),
        Some(OneOrMany::One(p)) => vec![resolve_path(&ctx.dir, &p)],
        Some(OneOrMany::Many(ps)) => ps.iter().map(|p| resolve_path(&ctx.dir, p)).collect(),
    };
    let jump = match raw.jump {
        None => None,
        Some(j) => {
            let span = j.span();
            let hops = match j.into_inner() {
                OneOrMany::One(h) => vec![h],
                OneOrMany::Many(hs) => hs,
            };
            for h in &hops {
                HostSpec::parse(h).map_err(|m| ctx.error(format!("jump: {m}"), span.clone()))?;
            }
            Some(hops)
        }
    };
    Ok(Settings {
        user,
        port,
        identities,
        connection,
        jump,
    })
}

/// `~/` is the home folder; other relative paths are relative to the inventory file.
fn resolve_path(dir: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = dirs::home_dir() {
            return home.join(rest);
        }
    }
    let path = PathBuf::from(p);
    if path.is_absolute() {
        path
    } else {
        dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Inventory> {
        let mut inv = Inventory::default();
        merge_file(&mut inv, Path::new("inv.toml"), text)?;
        Ok(inv)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn full_example() {
        let inv = parse(
            r#"
[defaults]
user = "deploy"
[vars]
image = "registry.example.com/app"
[env.staging]
hosts = ["stg-1", "ops@stg-2:2222"]
vars = { node_env = "staging" }
[env.production]
hosts = ["web-1", "web-2"]
roles = { web = ["web-1"], worker = ["web-2"] }
[hosts.web-1]
address = "10.0.0.11"
port = 2200
identity = "keys/id"
"#,
        )
        .unwrap();
        assert_eq!(inv.defaults.user.as_deref(), Some("deploy"));
        assert_eq!(inv.envs["staging"].hosts, vec!["stg-1", "ops@stg-2:2222"]);
        assert_eq!(inv.envs["production"].roles["web"], vec!["web-1"]);
        assert_eq!(inv.hosts["web-1"].address.as_deref(), Some("10.0.0.11"));
        assert_eq!(
            inv.hosts["web-1"].settings.identities,
            vec![PathBuf::from("keys/id")]
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let e = err("[env.x]\nhosts = [\"a\"\n");
        assert!(e.contains("inv.toml:"), "{e}");
    }

    #[test]
    fn unknown_key_is_pointed_at() {
        let e = err("[env.staging]\nhosts = [\"a\"]\nhostz = 1\n");
        assert!(e.contains("unknown field `hostz`"), "{e}");
        assert!(e.contains("inv.toml:3:1"), "{e}");
    }

    #[test]
    fn role_must_name_env_host() {
        let e = err("[env.p]\nhosts = [\"a\"]\nroles = { web = [\"b\"] }\n");
        assert!(e.contains("names `b`"), "{e}");
        assert!(e.contains("inv.toml:3:"), "{e}");
    }

    #[test]
    fn bad_values() {
        assert!(err("[defaults]\nport = 70000\n").contains("out of range"));
        assert!(err("[defaults]\nconnection = \"telnet\"\n").contains("unknown connection"));
        assert!(err("[env.e]\nhosts = []\n").contains("has no hosts"));
        assert!(err("[env.e]\nhosts = [\"a:x\"]\n").contains("invalid port"));
        assert!(err("[hosts.a]\naddress = \"u@h\"\n").contains("bare host"));
    }
}
