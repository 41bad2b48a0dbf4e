//! The texts `rigs init` writes. They are examples a person reads before anything else of rigs,
//! so every non-obvious line carries a comment, and the values that come from the command line
//! (`--image`, `--hosts`) are written as TOML strings by the `toml` crate, never pasted raw.

/// The standard recipes this rigs was built with.
const DOCKER_RHAI: &str = include_str!("../../recipes/docker.rhai");

/// `recipes/docker.rhai`: a copy of the standard recipes, under a header that says which rigs
/// wrote it and how to bring it up to date, since a copy does not follow rigs' updates.
pub fn docker_rhai() -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!(
        "// Written by `rigs init` (rigs {version}): a copy of the standard recipes, yours to change.
//
// A copy does not follow rigs' updates. To bring it up to the rigs you run now:
//     rigs init --force /tmp/rigs-init && cp /tmp/rigs-init/recipes/docker.rhai recipes/
// (`rigs init --force` in this folder rewrites it too, with every other file init writes), or
// link it to the file of a rigs checkout, which never goes stale:
//     ln -sf /path/to/rigs/recipes/docker.rhai recipes/docker.rhai
// Your own tasks belong in recipes/tasks.rhai, which neither way touches.
//
{DOCKER_RHAI}"
    )
}

/// `recipes/tasks.rhai`: where the project's own tasks go, with one to start from.
pub const TASKS_RHAI: &str = r#"// Your own tasks, next to the standard ones in recipes/docker.rhai. Every top-level function
// whose name does not start with `_` is a task; the first line of its /// comment is what
// `rigs --list` shows. `rigs -d ::` lists the built-in functions (run, sudo, put, docker::...).

/// Show how long each host has been up, and its load.
///
/// rigs env:staging uptime
fn uptime() {
    run("uptime");
}
"#;

/// `.gitignore` in a folder that has none.
pub const GITIGNORE: &str = "# rigs' record of the runs made from this folder (`rigs env:NAME history` reads the hosts' own).
.rigs/
";

/// The line `.gitignore` must hold, and what is appended to an existing one that lacks it.
pub const GITIGNORE_LINE: &str = ".rigs/";
pub const GITIGNORE_APPENDED: &str =
    "\n# rigs' record of the runs made from this folder.\n.rigs/\n";

/// `inventory/hosts.toml` for `image` and the staging `hosts` (never empty).
pub fn inventory(image: &str, hosts: &[String]) -> String {
    let mut t = String::new();
    t.push_str(
        "# The hosts rigs deploys to, how to reach them, and what runs there. Written by `rigs init`;
# rigs reads every *.toml file of this folder, and `rigs --list-hosts` shows what it understood.
# The rigs book's chapter \"The inventory\" explains every key.

# How to log in, for every host ([env.NAME] and [hosts.NAME] tables may say otherwise).
[defaults]
user = \"deploy\"
# identity = \"~/.ssh/deploy_ed25519\"   # a key to offer, besides the ssh-agent's and ~/.ssh/id_*

# What recipes/docker.rhai deploys. `rigs -d deploy` lists every variable it reads; rigs checks
# them against what the recipes declare before it connects to anything.
[vars]
",
    );
    t.push_str(&format!(
        "# The repository, without a tag: deploy:1.2.3 deploys {image}:1.2.3.\nimage = {}\n",
        quoted(image)
    ));
    match registry_host(image) {
        Some(host) => t.push_str(&format!(
            "# Deploy logs in here as registry_user before it pulls. The password is a secret and
# never belongs in this file: rigs reads REGISTRY_PASSWORD from the environment
# (export REGISTRY_PASSWORD=...) or from a file of KEY=VALUE lines given with --secrets FILE
# (keep that file out of git). Every output masks it.
registry = {}
registry_user = \"deploy\"
",
            quoted(host)
        )),
        None => t.push_str(
            "# The image is on Docker Hub. For a private one, deploy logs in there as registry_user
# before it pulls, with the password from REGISTRY_PASSWORD in the environment or in a
# --secrets FILE (never in this file):
# registry = \"docker.io\"
# registry_user = \"deploy\"
",
        ),
    }
    t.push_str(
        "# Ports, as for docker run --publish HOST:CONTAINER.
publish = [\"80:8080\"]
# The container's environment (it never appears on a command line):
# container_env = { LOG_LEVEL = \"info\" }
# What every release waits for before it counts; an unhealthy release goes back to the version
# that ran before, on its own. Probed from each host:
# health = { http = \"http://127.0.0.1:80/health\", expect = 200, timeout = 60 }

# rigs env:staging deploy:1.2.3
[env.staging]
",
    );
    let list: Vec<String> = hosts.iter().map(|h| quoted(h)).collect();
    t.push_str(&format!("hosts = [{}]\n", list.join(", ")));
    t.push_str(
        "
# rigs env:production deploy:1.2.3 rolls one host at a time (batch); -R web picks a role.
[env.production]
hosts = [\"prod-web-1\", \"prod-web-2\", \"prod-jobs-1\"]
vars = { batch = 1 }

[env.production.roles]
web = [\"prod-web-1\", \"prod-web-2\"]
# The same image, working off jobs instead of serving: no ports, its own environment.
jobs = { hosts = [\"prod-jobs-1\"], vars = { publish = [], container_env = { APP_ROLE = \"jobs\" } } }

# Where each host is. Without an address rigs connects to the name itself (as ~/.ssh/config
# resolves it, when it has a Host entry for the name).
",
    );
    for host in hosts {
        t.push_str(&format!(
            "[hosts.{}]\n# address = {}   # the IP address or DNS name to connect to\n\n",
            key(host),
            quoted(host)
        ));
    }
    t.push_str(
        "# A host that cannot reach the registry: deploy ships the image from this machine's Docker
# engine over SSH instead of pulling it (the rigs book's chapter \"Air-gapped delivery\").
# [hosts.edge-1]
# address = \"10.0.9.5\"
# vars = { airgapped = true }
",
    );
    t
}

/// `.github/workflows/deploy.yml`: deploy main to staging from GitHub Actions.
pub fn workflow() -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!(
        r#"# Deploys every push to main to staging with rigs. Written by `rigs init` (rigs {version}) as a
# starting point: read it, then commit it.
#
# It deploys the image tagged with the commit, IMAGE:<commit sha> (image in the inventory), so
# build and push that tag first: in a job before this one, or in your image pipeline.
#
# It needs three secrets (Settings > Secrets and variables > Actions):
#   DEPLOY_SSH_KEY      a private key that logs in to the staging hosts as the inventory's user;
#                       make one for CI alone: ssh-keygen -t ed25519 -N '' -f deploy-ci
#   DEPLOY_KNOWN_HOSTS  the staging hosts' keys as known_hosts lines (`ssh-keyscan HOST...`,
#                       checked against the fingerprints on the servers): rigs refuses a host
#                       whose key it does not know
#   REGISTRY_PASSWORD   the password of registry_user (the inventory's [vars])
name: deploy

on:
  push:
    branches: [main]

# One deploy at a time; a newer push waits for the running one instead of cutting it off.
concurrency:
  group: deploy-staging
  cancel-in-progress: false

jobs:
  staging:
    runs-on: ubuntu-latest
    environment: staging
    steps:
      - uses: actions/checkout@v4

      - name: Install rigs
        # From source; point it at your rigs repository, or download a released binary instead.
        run: cargo install --locked --git https://example.com/rigs.git rigs

      - name: SSH key and known hosts
        env:
          SSH_KEY: ${{{{ secrets.DEPLOY_SSH_KEY }}}}
          KNOWN_HOSTS: ${{{{ secrets.DEPLOY_KNOWN_HOSTS }}}}
        run: |
          install -m 700 -d ~/.ssh
          install -m 600 /dev/null ~/.ssh/id_ed25519
          printf '%s\n' "$SSH_KEY" > ~/.ssh/id_ed25519
          printf '%s\n' "$KNOWN_HOSTS" > ~/.ssh/known_hosts

      - name: Check the hosts
        run: rigs env:staging check

      - name: Deploy
        env:
          REGISTRY_PASSWORD: ${{{{ secrets.REGISTRY_PASSWORD }}}}
        run: rigs env:staging deploy:${{{{ github.sha }}}}
"#
    )
}

/// The registry host of an image reference: its first part when that names a host (a dot, a
/// port or `localhost`), as Docker decides; `None` for Docker Hub (`app`, `team/app`).
pub fn registry_host(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// A TOML key: bare when it can be, quoted otherwise (`"stg-1.example.com"`).
fn key(text: &str) -> String {
    let bare = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        text.to_string()
    } else {
        quoted(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_host_follows_docker() {
        assert_eq!(
            registry_host("registry.example.com/shop"),
            Some("registry.example.com")
        );
        assert_eq!(registry_host("localhost:5000/a/b"), Some("localhost:5000"));
        assert_eq!(registry_host("localhost/app"), Some("localhost"));
        assert_eq!(registry_host("team/app"), None);
        assert_eq!(registry_host("app"), None);
    }

    #[test]
    fn inventory_is_valid_toml_with_the_given_values() {
        let hosts = ["web-1".to_string(), "stg-2.example.com".to_string()];
        let text = inventory("registry.example.com/shop", &hosts);
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(
            table["vars"]["image"].as_str(),
            Some("registry.example.com/shop")
        );
        assert_eq!(
            table["vars"]["registry"].as_str(),
            Some("registry.example.com")
        );
        let staging = table["env"]["staging"]["hosts"].as_array().unwrap();
        assert_eq!(staging.len(), 2);
        assert!(table["hosts"].get("stg-2.example.com").is_some(), "{text}");
        let hub = inventory("team/app", &hosts)
            .parse::<toml::Table>()
            .unwrap();
        assert!(hub["vars"].get("registry").is_none());
    }

    #[test]
    fn docker_rhai_does_not_start_like_the_standard_file() {
        let first = DOCKER_RHAI.lines().next().unwrap();
        assert_ne!(docker_rhai().lines().next().unwrap(), first);
        assert!(docker_rhai().ends_with(DOCKER_RHAI));
    }
}
