use super::super::tests::{fixture, load};
use super::super::{import, Imported, Kind};

fn kamal(text: &str, origin: &str) -> Imported {
    match import(Kind::Kamal, text, origin) {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    }
}

fn warned(i: &Imported, needle: &str) -> bool {
    i.warnings.iter().any(|w| w.contains(needle))
}

#[test]
fn fixture_gives_the_expected_file() {
    let imported = kamal(&fixture("kamal/deploy.yml"), "config/deploy.yml");
    assert_eq!(
        imported.toml,
        fixture("kamal/expected.toml"),
        "{}",
        imported.toml
    );
}

#[test]
fn fixture_maps_the_docker_recipe_variables() {
    let imported = kamal(&fixture("kamal/deploy.yml"), "config/deploy.yml");
    let inv = load(&imported.toml);
    let v = &inv.vars;
    assert_eq!(v["image"].as_str(), Some("ghcr.io/acme/blogpost"));
    assert_eq!(v["container"].as_str(), Some("blogpost"));
    assert_eq!(v["registry"].as_str(), Some("ghcr.io"));
    assert_eq!(v["registry_user"].as_str(), Some("acme-bot"));
    assert_eq!(
        v["registry_password_secret"].as_str(),
        Some("KAMAL_REGISTRY_PASSWORD")
    );
    assert_eq!(v["container_env"]["DB_HOST"].as_str(), Some("192.168.0.20"));
    assert_eq!(v["publish"][0].as_str(), Some("80:3000"));
    assert_eq!(v["health"]["http"].as_str(), Some("http://127.0.0.1:80/up"));
    assert_eq!(v["health"]["interval"].as_integer(), Some(3));
    assert_eq!(inv.defaults.user.as_deref(), Some("app"));
    assert_eq!(inv.defaults.port, Some(2222));
    assert_eq!(
        inv.defaults.jump,
        Some(vec!["root@bastion.example.com".to_string()])
    );
    let env = &inv.envs["production"];
    assert_eq!(env.hosts, ["192.168.0.11", "192.168.0.12", "192.168.0.13"]);
    assert_eq!(env.roles["web"], ["192.168.0.11", "192.168.0.12"]);
    assert_eq!(
        env.role_vars["job"]["container_env"]["QUEUES"].as_str(),
        Some("default,mailers")
    );
    assert_eq!(
        env.role_vars["job"]["container_env"]["DB_HOST"].as_str(),
        Some("192.168.0.20")
    );
    for needle in [
        "RAILS_MASTER_KEY, DATABASE_PASSWORD",
        "`servers.job.cmd`",
        "rigs has no proxy",
        "without TLS",
        "`accessories` is not imported",
        "`builder` is not imported",
        "`asset_path` is not imported",
    ] {
        assert!(
            warned(&imported, needle),
            "{needle}: {:#?}",
            imported.warnings
        );
    }
}

#[test]
fn destination_files_make_their_own_environment() {
    let i = kamal(
        "servers:\n  - 10.0.0.5\nssh:\n  user: stage\nenv:\n  FOO: bar\n",
        "config/deploy.staging.yml",
    );
    let inv = load(&i.toml);
    let env = &inv.envs["staging"];
    assert_eq!(env.hosts, ["10.0.0.5"]);
    assert_eq!(env.roles["web"], ["10.0.0.5"]);
    assert_eq!(env.settings.user.as_deref(), Some("stage"));
    assert_eq!(env.vars["container_env"]["FOO"].as_str(), Some("bar"));
    assert!(inv.vars.is_empty());
    assert!(!env.vars.contains_key("publish"), "{}", i.toml);
    assert!(!env.vars.contains_key("health"), "{}", i.toml);
    assert!(warned(&i, "replaces the one from deploy.yml"));
}

#[test]
fn image_with_a_host_and_docker_hub() {
    let i = kamal(
        "service: s\nimage: registry.example.com:5000/team/app\nregistry:\n  server: ghcr.io\n  username: u\n  password: literal\nservers: [h]\nproxy: false\n",
        "deploy.yml",
    );
    let inv = load(&i.toml);
    assert_eq!(
        inv.vars["image"].as_str(),
        Some("registry.example.com:5000/team/app")
    );
    assert!(!i.toml.contains("literal"));
    assert!(warned(&i, "`registry.password` is written in the file"));
    assert!(!inv.vars.contains_key("publish"));
    let hub = kamal(
        "service: s\nimage: acme/app\nregistry:\n  username: u\nservers: [h]\n",
        "-",
    );
    let inv = load(&hub.toml);
    assert_eq!(inv.vars["image"].as_str(), Some("acme/app"));
    assert_eq!(inv.vars["registry"].as_str(), Some("docker.io"));
    assert_eq!(inv.defaults.user.as_deref(), Some("root"));
    assert_eq!(inv.vars["publish"][0].as_str(), Some("80:80"));
}

#[test]
fn boot_limit_is_batch_and_timeout_is_health_timeout() {
    let i = kamal(
        "service: s\nimage: a/b\nservers: [h1, h2]\nboot:\n  limit: 25%\n  wait: 2\ndeploy_timeout: 90\n",
        "deploy.yml",
    );
    let inv = load(&i.toml);
    assert_eq!(inv.envs["production"].vars["batch"].as_str(), Some("25%"));
    assert_eq!(inv.vars["health"]["timeout"].as_integer(), Some(90));
    assert!(warned(&i, "`boot.wait`"));
}

#[test]
fn erb_and_tags_are_warned() {
    let i = kamal(
        "service: s\nimage: a/b\nservers:\n  - h1: [gpu]\nenv:\n  clear:\n    X: <%= ENV['X'] %>\n",
        "deploy.yml",
    );
    load(&i.toml);
    assert!(warned(&i, "ERB"));
    assert!(warned(&i, "host `h1` has tags"));
}

#[test]
fn unusable_configs_are_refused() {
    for (text, needle) in [
        ("", "empty"),
        ("service: s\nimage: a/b\n", "no hosts"),
        ("servers: [\n", "not valid YAML"),
        ("- a\n", "expected a Kamal config"),
    ] {
        match import(Kind::Kamal, text, "deploy.yml") {
            Ok(i) => panic!("{text:?} was accepted:\n{}", i.toml),
            Err(e) => assert!(
                e.starts_with("deploy.yml: ") && e.contains(needle),
                "{needle}: {e}"
            ),
        }
    }
}
