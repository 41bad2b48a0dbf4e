//! Kamal 2's `config/deploy.yml` (and destinations' `config/deploy.NAME.yml`).
//!
//! Kamal describes one app: its image, registry, environment and the servers of each role. The
//! standard `recipes/docker.rhai` reads the same facts from inventory variables, so the app's
//! settings become those variables and `servers` an environment with one role per Kamal role.
//!
//! Kamal merges a destination file over `deploy.yml`. rigs merges `[vars]` and `[defaults]` of
//! all the files in an inventory folder, so `deploy.yml`'s app settings go to `[vars]` and its
//! `ssh` to `[defaults]`, where a destination's environment inherits them; a destination file's
//! settings go into its own environment, which overrides them.
//!
//! Kamal's proxy (TLS, host routing, requests held during a deploy) has no rigs counterpart: the
//! container's port is published directly and the proxy's health check becomes the `health`
//! check that every release waits for.

use serde_json::{Map, Value};

use super::{
    env_name, host_name_problem, sort_hosts, strings, to_toml, Env, Output, Role, Settings,
    Warnings,
};

pub(super) fn convert(text: &str, w: &mut Warnings) -> Result<Output, String> {
    let erb = text.contains("<%");
    let options = serde_saphyr::options! { with_snippet: false };
    let config = match serde_saphyr::from_str_with_options::<Value>(text, options) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) => return Err(w.error("the file is empty")),
        Ok(_) => {
            return Err(w.error("expected a Kamal config: a map with service, image, servers, ..."))
        }
        Err(e) if erb => {
            return Err(w.error(format!(
                "not valid YAML once ERB (<% %>) is left as text: {e}; rigs does not run ERB: \
                 replace the ERB with the values it produces and import again"
            )))
        }
        Err(e) => return Err(w.error(format!("not valid YAML: {e}"))),
    };
    if erb {
        w.push(
            "the file uses ERB (<%= ... %>), which Kamal evaluates and rigs copies as text: \
             replace it with the values it produces",
        );
    }
    let (env, destination) = destination(&w.origin);
    let mut k = Kamal {
        config: &config,
        w,
        vars: toml::Table::new(),
    };
    k.check_keys();

    let service = k.text("service");
    let image = k.text("image");
    if destination.is_none() {
        for (key, value) in [("service", &service), ("image", &image)] {
            if value.is_none() {
                k.w.push(format!(
                    "`{key}` is missing, which Kamal requires; the `{}` variable is not set",
                    if key == "image" { "image" } else { "container" }
                ));
            }
        }
    }
    k.registry(image.as_deref());
    if let Some(service) = &service {
        k.vars
            .insert("container".into(), toml::Value::String(service.clone()));
    }
    let clear = k.env(config.get("env"), "`env`");
    if let Some(clear) = &clear {
        k.vars
            .insert("container_env".into(), toml::Value::Table(clear.clone()));
        if destination.is_some() {
            k.w.push(format!(
                "env:{env}'s container_env replaces the one from deploy.yml as a whole (Kamal \
                 adds a destination's env to it): copy the variables it should keep"
            ));
        }
    }
    match config.get("volumes") {
        Some(volumes @ Value::Array(_)) => {
            if let Some(v) = k.value(volumes, "volumes") {
                k.vars.insert("volumes".into(), v);
            }
        }
        Some(other) => k.w.push(format!(
            "`volumes` = {other} is not a list of volumes; left out"
        )),
        None => {}
    }
    k.proxy(destination.is_some());
    k.boot();
    let settings = k.ssh(destination.is_some());
    let (hosts, roles) = k.servers(clear.as_ref(), &env);
    let Kamal { vars, w, .. } = k;

    let mut out = Output {
        header: vec![
            "rigs inventory imported from a Kamal config (`rigs inventory import kamal`).".into(),
            "The app's settings are the variables of the standard recipes/docker.rhai; each Kamal"
                .into(),
            "role is a role of the environment (`rigs env:NAME -R ROLE deploy:TAG`). What could"
                .into(),
            "not be converted was printed as warnings.".into(),
        ],
        ..Output::default()
    };
    let (env_vars, env_settings) = if destination.is_some() {
        (vars, settings)
    } else {
        let mut vars = vars;
        let mut env_vars = toml::Table::new();
        // rigs reads `batch` from the environment's own vars only.
        if let Some(batch) = vars.remove("batch") {
            env_vars.insert("batch".into(), batch);
        }
        out.vars = vars;
        out.defaults = settings;
        (env_vars, Settings::default())
    };
    if hosts.is_empty() {
        return Err(w.error(
            "`servers` lists no hosts, and a rigs environment needs at least one; add them and \
             import again",
        ));
    }
    out.envs.push(Env {
        name: env.clone(),
        comment: match &destination {
            Some(d) => format!("Kamal destination `{d}` (kamal ... -d {d})"),
            None => "Kamal's config/deploy.yml".to_string(),
        },
        hosts,
        roles,
        vars: env_vars,
        settings: env_settings,
    });
    Ok(out)
}

/// The environment's name and the Kamal destination, from the file's name: `deploy.yml` is
/// `production` (no destination), `deploy.staging.yml` is `staging`.
fn destination(origin: &str) -> (String, Option<String>) {
    let file = std::path::Path::new(origin)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or(origin);
    let stem = file
        .strip_suffix(".yml")
        .or_else(|| file.strip_suffix(".yaml"))
        .unwrap_or(file);
    match stem.strip_prefix("deploy.") {
        Some(d) if !d.is_empty() => (env_name(d), Some(d.to_string())),
        _ => ("production".to_string(), None),
    }
}

struct Kamal<'a> {
    config: &'a Map<String, Value>,
    w: &'a mut Warnings,
    vars: toml::Table,
}

const KNOWN: &[&str] = &[
    "service",
    "image",
    "servers",
    "registry",
    "env",
    "ssh",
    "proxy",
    "volumes",
    "boot",
    "deploy_timeout",
];

const NOT_MAPPED: &[(&str, &str)] = &[
    (
        "accessories",
        "run them with recipes of their own (or a Compose project)",
    ),
    (
        "builder",
        "build and push the image before deploying (rigs deploys a tag that exists)",
    ),
    ("labels", "rigs' docker recipes set no labels"),
    ("logging", "configure Docker's log driver on the hosts"),
    ("asset_path", "rigs does not bridge assets between versions"),
    ("hooks_path", "run those steps as tasks of your own recipes"),
    (
        "retain_containers",
        "the `keep` variable says how many images stay for rollbacks",
    ),
    (
        "readiness_delay",
        "the `health` check decides when a release is ready",
    ),
    (
        "drain_timeout",
        "rigs replaces the container without draining it",
    ),
    (
        "run_directory",
        "rigs keeps its state under ~/.rigs on the hosts",
    ),
    ("primary_role", "every role is deployed alike"),
    ("allow_empty_roles", "roles without hosts are left out"),
    ("require_destination", "select an environment with env:NAME"),
    ("minimum_version", "no rigs equivalent"),
    ("aliases", "define tasks in your recipes instead"),
    ("secrets_path", "rigs has its own secret store"),
    ("error_pages_path", "rigs has no proxy to serve them"),
];

impl Kamal<'_> {
    fn check_keys(&mut self) {
        for key in self.config.keys() {
            if KNOWN.contains(&key.as_str()) {
                continue;
            }
            match NOT_MAPPED.iter().find(|(k, _)| k == key) {
                Some((_, what)) => self.w.push(format!("`{key}` is not imported: {what}")),
                None => self.w.push(format!(
                    "`{key}` is not a key this importer knows; left out"
                )),
            }
        }
    }

    fn text(&mut self, key: &str) -> Option<String> {
        match self.config.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.w
                    .push(format!("`{key}` should be text, not {other}; left out"));
                None
            }
        }
    }

    fn value(&mut self, value: &Value, at: &str) -> Option<toml::Value> {
        let mut dropped = Vec::new();
        let v = to_toml(value, &mut dropped, at);
        for d in dropped {
            self.w
                .push(format!("`{d}` is null, which TOML cannot hold; left out"));
        }
        v
    }

    fn registry(&mut self, image: Option<&str>) {
        let registry = self.config.get("registry").and_then(Value::as_object);
        let server = registry
            .and_then(|r| r.get("server"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(image) = image {
            let first = image.split('/').next().unwrap_or(image);
            let has_host = image.contains('/')
                && (first.contains('.') || first.contains(':') || first == "localhost");
            let full = match &server {
                Some(s) if !has_host => format!("{}/{image}", s.trim_end_matches('/')),
                _ => image.to_string(),
            };
            self.vars.insert("image".into(), toml::Value::String(full));
        }
        let Some(registry) = registry else { return };
        let username = match registry.get("username") {
            Some(Value::String(u)) => Some(u.clone()),
            Some(Value::Array(names)) => {
                self.w.push(format!(
                    "`registry.username` comes from the secret {}; set the variable \
                     `registry_user` to the user name",
                    names_of(names)
                ));
                None
            }
            _ => None,
        };
        if server.is_some() || username.is_some() {
            let server = server.unwrap_or_else(|| "docker.io".to_string());
            self.vars
                .insert("registry".into(), toml::Value::String(server));
        }
        if let Some(u) = username {
            self.vars
                .insert("registry_user".into(), toml::Value::String(u));
        }
        match registry.get("password") {
            Some(Value::Array(names)) => {
                if let Some(first) = names.first().and_then(Value::as_str) {
                    self.vars.insert(
                        "registry_password_secret".into(),
                        toml::Value::String(first.to_string()),
                    );
                    self.w.push(format!(
                        "the registry password is read from rigs' secret `{first}` \
                         (registry_password_secret): store it there, as it is in .kamal/secrets"
                    ));
                }
                if names.len() > 1 {
                    self.w.push(format!(
                        "`registry.password` names several secrets ({}); only the first is used",
                        names_of(names)
                    ));
                }
            }
            Some(Value::String(_)) => self.w.push(
                "`registry.password` is written in the file and is not copied: store it in \
                 rigs' secrets as REGISTRY_PASSWORD (the default of registry_password_secret)",
            ),
            _ => {}
        }
        for key in registry.keys() {
            if !["server", "username", "password"].contains(&key.as_str()) {
                self.w
                    .push(format!("`registry.{key}` has no rigs equivalent; left out"));
            }
        }
    }

    /// The clear variables of an `env` section, warning about its secrets and tags.
    fn env(&mut self, env: Option<&Value>, at: &str) -> Option<toml::Table> {
        let env = match env? {
            Value::Object(env) => env,
            other => {
                self.w.push(format!(
                    "{at} = {other} is not a map of variables (or clear/secret); left out"
                ));
                return None;
            }
        };
        let structured =
            env.contains_key("clear") || env.contains_key("secret") || env.contains_key("tags");
        let clear = if structured {
            env.get("clear")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        } else {
            env.clone()
        };
        if let Some(secret) = env.get("secret").and_then(Value::as_array) {
            self.w.push(format!(
                "{at}: the secrets {} are not in container_env, which holds values only; pass \
                 them with a recipe of your own that reads secret(\"NAME\") for each",
                names_of(secret)
            ));
        }
        if env.contains_key("tags") {
            self.w.push(format!(
                "{at}: `tags` (variables per host tag) are not imported; set them in each \
                 host's vars"
            ));
        }
        for key in env.keys() {
            if structured && !["clear", "secret", "tags"].contains(&key.as_str()) {
                self.w.push(format!("{at}: `{key}` is not imported"));
            }
        }
        let mut table = toml::Table::new();
        for (k, v) in &clear {
            if let Some(v) = self.value(v, &format!("env.clear.{k}")) {
                table.insert(k.clone(), v);
            }
        }
        Some(table)
    }

    /// `publish` and `health` from the proxy. A destination file without a `proxy` section
    /// keeps deploy.yml's, so it sets neither.
    fn proxy(&mut self, destination: bool) {
        let proxy = self.config.get("proxy");
        if matches!(proxy, Some(Value::Bool(false))) || (destination && proxy.is_none()) {
            return;
        }
        if destination && proxy.is_some_and(|p| p.get("app_port").is_none()) {
            self.w.push(
                "`proxy` has no app_port, so publish and health assume port 80, where Kamal \
                 would keep deploy.yml's: check them",
            );
        }
        let proxy = proxy
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let app_port = match proxy.get("app_port") {
            Some(p) => match p.as_i64().filter(|p| (1..=65535).contains(p)) {
                Some(p) => p,
                None => {
                    self.w
                        .push(format!("`proxy.app_port` = {p} is not a port; 80 is used"));
                    80
                }
            },
            None => 80,
        };
        self.vars.insert(
            "publish".into(),
            toml::Value::Array(vec![toml::Value::String(format!("80:{app_port}"))]),
        );
        let ssl = proxy.get("ssl").is_some_and(|s| s != &Value::Bool(false));
        self.w.push(format!(
            "rigs has no proxy: the container's port {app_port} is published as the hosts' port \
             80 (publish){}{}; releases replace the container, without Kamal's gapless switch",
            if ssl {
                ", without TLS: terminate it in front of the hosts"
            } else {
                ""
            },
            match proxy.get("host").or_else(|| proxy.get("hosts")) {
                Some(h) =>
                    format!(", and every request reaches it whatever its host (proxy.host = {h})"),
                None => String::new(),
            }
        ));
        let check = proxy.get("healthcheck").and_then(Value::as_object);
        let path = check
            .and_then(|c| c.get("path"))
            .and_then(Value::as_str)
            .unwrap_or("/up");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let mut health = toml::Table::new();
        health.insert(
            "http".into(),
            toml::Value::String(format!("http://127.0.0.1:80{path}")),
        );
        health.insert("expect".into(), toml::Value::Integer(200));
        if let Some(interval) = check.and_then(|c| c.get("interval")) {
            match interval {
                Value::Number(n) if n.as_i64().is_some_and(|i| i >= 0) => {
                    health.insert(
                        "interval".into(),
                        toml::Value::Integer(n.as_i64().unwrap_or(1)),
                    );
                }
                Value::String(s) => {
                    health.insert("interval".into(), toml::Value::String(s.clone()));
                }
                _ => self.w.push(format!(
                    "`proxy.healthcheck.interval` = {interval} is left out"
                )),
            }
        }
        if let Some(t) = self.config.get("deploy_timeout").and_then(Value::as_i64) {
            health.insert("timeout".into(), toml::Value::Integer(t));
        }
        if check.is_some_and(|c| c.contains_key("timeout")) {
            self.w.push(
                "`proxy.healthcheck.timeout` (per probe) has no rigs equivalent; `health.timeout` \
                 is how long a release may take to become healthy (deploy_timeout)",
            );
        }
        self.vars
            .insert("health".into(), toml::Value::Table(health));
        for key in proxy.keys() {
            if !["app_port", "ssl", "host", "hosts", "healthcheck"].contains(&key.as_str()) {
                self.w
                    .push(format!("`proxy.{key}` has no rigs equivalent; left out"));
            }
        }
    }

    fn boot(&mut self) {
        let Some(boot) = self.config.get("boot").and_then(Value::as_object) else {
            return;
        };
        match boot.get("limit") {
            Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n > 0) => {
                self.vars.insert(
                    "batch".into(),
                    toml::Value::Integer(n.as_i64().unwrap_or(1)),
                );
            }
            Some(Value::String(s)) if s.ends_with('%') => {
                self.vars
                    .insert("batch".into(), toml::Value::String(s.clone()));
            }
            Some(other) => self.w.push(format!("`boot.limit` = {other} is left out")),
            None => {}
        }
        if boot.contains_key("wait") {
            self.w.push(
                "`boot.wait` is not imported: rigs starts the next batch once the last is healthy",
            );
        }
    }

    /// Kamal logs in as root unless `ssh.user` says otherwise, on the hosts and on the proxy;
    /// rigs would use the local user, so deploy.yml's settings say root where Kamal assumes it.
    fn ssh(&mut self, destination: bool) -> Settings {
        let mut settings = Settings::default();
        if !destination {
            settings.user = Some("root".into());
        }
        let empty = Map::new();
        let ssh = self
            .config
            .get("ssh")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for (key, value) in ssh {
            match (key.as_str(), value) {
                ("user", Value::String(u)) if !u.is_empty() && !u.contains(char::is_whitespace) => {
                    settings.user = Some(u.clone())
                }
                ("port", v) if v.as_i64().is_some_and(|p| (1..=65535).contains(&p)) => {
                    settings.port = v.as_i64()
                }
                ("proxy", Value::String(p)) if crate::inventory::HostSpec::parse(p).is_ok() => {
                    let hop = if p.contains('@') {
                        p.clone()
                    } else {
                        format!("root@{p}")
                    };
                    settings.jump = Some(vec![hop])
                }
                ("keys", Value::Array(keys)) if keys.len() == 1 && keys[0].is_string() => {
                    settings.identity = keys[0].as_str().map(str::to_string)
                }
                _ => self.w.push(format!(
                    "`ssh.{key}` = {value} has no rigs equivalent; left out (rigs reads \
                     ~/.ssh/config, where most SSH options can go)"
                )),
            }
        }
        settings
    }

    /// The environment's hosts and its roles.
    fn servers(&mut self, clear: Option<&toml::Table>, env: &str) -> (Vec<String>, Vec<Role>) {
        let mut roles: Vec<Role> = Vec::new();
        match self.config.get("servers") {
            Some(Value::Array(list)) => {
                let hosts = self.hosts(list, "servers");
                roles.push(Role {
                    name: "web".into(),
                    hosts,
                    vars: toml::Table::new(),
                });
            }
            Some(Value::Object(map)) => {
                for (role, body) in map {
                    let at = format!("servers.{role}");
                    let (hosts, vars) = match body {
                        Value::Array(list) => (self.hosts(list, &at), toml::Table::new()),
                        Value::Object(body) => {
                            let list = body
                                .get("hosts")
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default();
                            let hosts = self.hosts(&list, &at);
                            (hosts, self.role_settings(body, &at, clear))
                        }
                        _ => {
                            self.w.push(format!(
                                "`{at}` is neither a list of hosts nor a map; left out"
                            ));
                            continue;
                        }
                    };
                    let name = env_name(role);
                    if name != *role {
                        self.w
                            .push(format!("role `{role}` is the role `{name}` in rigs"));
                    }
                    roles.push(Role { name, hosts, vars });
                }
            }
            Some(other) => self
                .w
                .push(format!("`servers` = {other} is not a list or map of hosts")),
            None => self
                .w
                .push("`servers` is missing, so the environment has no hosts"),
        }
        roles.retain(|r| {
            if r.hosts.is_empty() {
                self.w.push(format!(
                    "role `{}` has no hosts; left out of env:{env}",
                    r.name
                ));
            }
            !r.hosts.is_empty()
        });
        let mut hosts: Vec<String> = roles.iter().flat_map(|r| r.hosts.iter().cloned()).collect();
        sort_hosts(&mut hosts);
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        if roles.len() > 1 {
            let shared = hosts
                .iter()
                .filter(|h| roles.iter().filter(|r| r.hosts.contains(h)).count() > 1)
                .count();
            if shared > 0 {
                self.w.push(format!(
                    "{shared} host(s) have several roles: Kamal runs one container per role there, \
                     rigs' docker recipes one per host (named by `container`)"
                ));
            }
        }
        (hosts, roles)
    }

    fn hosts(&mut self, list: &[Value], at: &str) -> Vec<String> {
        let mut out = Vec::new();
        for item in list {
            let name = match item {
                Value::String(h) => h.clone(),
                Value::Object(tagged) if tagged.len() == 1 => {
                    let (h, tags) = tagged
                        .iter()
                        .next()
                        .map(|(h, t)| (h.clone(), t.clone()))
                        .unwrap_or_default();
                    self.w.push(format!(
                        "`{at}`: host `{h}` has tags {tags}, which are not imported: set their \
                         variables in the host's vars"
                    ));
                    h
                }
                other => {
                    self.w
                        .push(format!("`{at}`: {other} is not a host; left out"));
                    continue;
                }
            };
            match host_name_problem(&name) {
                Some(why) => self.w.push(format!("`{at}`: host left out: {why}")),
                None => out.push(name),
            }
        }
        sort_hosts(&mut out);
        out
    }

    /// A role's own `env` as its vars (the whole container_env: rigs replaces it, Kamal merges).
    fn role_settings(
        &mut self,
        body: &Map<String, Value>,
        at: &str,
        clear: Option<&toml::Table>,
    ) -> toml::Table {
        let mut vars = toml::Table::new();
        for (key, value) in body {
            match key.as_str() {
                "hosts" => {}
                "env" => {
                    if let Some(own) = self.env(Some(value), &format!("`{at}.env`")) {
                        let mut merged = clear.cloned().unwrap_or_default();
                        merged.extend(own);
                        vars.insert("container_env".into(), toml::Value::Table(merged));
                    }
                }
                "cmd" => self.w.push(format!(
                    "`{at}.cmd` = {value} is not imported: rigs' docker recipes run the image's \
                     own command; give this role a recipe of its own, or an image whose default \
                     command is this"
                )),
                "proxy" => self
                    .w
                    .push(format!("`{at}.proxy` is not imported: rigs has no proxy")),
                _ => self.w.push(format!(
                    "`{at}.{key}` is not imported: rigs' docker recipes take no per-role {key}"
                )),
            }
        }
        vars
    }
}

fn names_of(values: &[Value]) -> String {
    let mut names = Vec::new();
    for v in values {
        strings(v, &mut names);
    }
    names.join(", ")
}

#[cfg(test)]
#[path = "kamal_tests.rs"]
mod tests;
