//! Bundles that carry a Docker Compose project: the project's files and every service's image,
//! resolved by the controller's own Docker Compose with the `--set` variables.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{DockerLab, Engine, Project};

const COMPOSE: &str = r#"x-common: &common
  restart: unless-stopped
services:
  web:
    <<: *common
    image: ${REGISTRY}/app:${TAG}
    env_file: web.env
  worker:
    <<: *common
    image: ${REGISTRY}/app:v2
    configs: [conf]
configs:
  conf:
    file: ./conf/app.conf
"#;

/// An override file in a folder of its own: its paths still resolve against the first file's.
const PROD: &str = "services:\n  web:\n    image: ${REGISTRY}/app:v2\n    env_file: prod/web.env\n";

/// A project that runs rigs as on a controller with the modern engine's client and its Compose
/// plugin in the project's home.
fn project(lab: &DockerLab) -> Project {
    let p = Project::new()
        .env("DOCKER_HOST", &lab.controller_docker_host())
        .env("PATH", &lab.controller_path())
        .file("deploy/compose.yaml", COMPOSE)
        .file("deploy/web.env", "GREETING=hello \"world\"\n")
        .file("deploy/conf/app.conf", "listen 8080\n")
        .file("deploy/prod/web.env", "MODE=prod\n")
        .file("deploy/prod/compose.prod.yaml", PROD)
        .inventory("lab.toml", &lab.inventory_toml());
    lab.ssh
        .write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    let plugins = p.path().join("home/.docker/cli-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let link = plugins.join("docker-compose");
    if std::fs::symlink_metadata(&link).is_err() {
        let plugin = Engine::Modern.compose_plugin().unwrap();
        std::os::unix::fs::symlink(plugin, link).unwrap();
    }
    p
}

#[test]
fn a_compose_bundle_carries_the_project_and_its_images() {
    let lab = DockerLab::start(1, Engine::Modern);
    let p = project(&lab);
    let registry = lab.registry();
    let (v1, v2) = (format!("{}:v1", lab.image()), format!("{}:v2", lab.image()));

    let out = p
        .clone()
        .args([
            "bundle",
            "create",
            "shop.rigs",
            "--compose",
            "deploy/compose.yaml",
        ])
        .args(["--set", "TAG=v1", "--set", &format!("REGISTRY={registry}")])
        .timeout(120)
        .run();
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("compose project: compose.yaml (3 files, services web, worker)"),
        "{}",
        out.stdout
    );

    let out = p.clone().args(["bundle", "verify", "shop.rigs"]).run();
    out.assert_code(0);
    for expected in [
        "bundle format 2".to_string(),
        format!("  {v1}  "),
        format!("  {v2}  "),
        "  compose project: compose.yaml (3 files)".into(),
        "    variables REGISTRY, TAG".into(),
        format!("    service web  {v1}\n"),
        format!("    service worker  {v2}\n"),
    ] {
        assert!(out.stdout.contains(&expected), "{expected}: {}", out.stdout);
    }

    let out = p
        .clone()
        .args(["bundle", "extract", "shop.rigs", "out"])
        .run();
    out.assert_code(0);
    let dir = p.path().join("out");
    assert_eq!(
        std::fs::read_to_string(dir.join("compose/compose.yaml")).unwrap(),
        COMPOSE
    );
    let env = dir.join("compose/web.env");
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        "GREETING=hello \"world\"\n"
    );
    let mode = std::fs::metadata(&env).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "an env_file may hold secrets");
    assert_eq!(
        std::fs::read_to_string(dir.join("compose/conf/app.conf")).unwrap(),
        "listen 8080\n"
    );
    let check = std::process::Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["compose"]["variables"]["TAG"], "v1");
    assert_eq!(manifest["compose"]["compose_files"][0], "compose.yaml");

    // A variable the compose file needs but --set does not give is named, not left blank; the
    // caller's own environment does not count.
    let out = p
        .clone()
        .env("TAG", "v1")
        .args([
            "bundle",
            "create",
            "x.rigs",
            "--compose",
            "deploy/compose.yaml",
        ])
        .args(["--set", &format!("REGISTRY={registry}")])
        .timeout(60)
        .run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("${TAG}") && out.stderr.contains("--set TAG=VALUE"),
        "{}",
        out.stderr
    );
    assert!(!p.path().join("x.rigs").exists());

    // The images go to a host as from any bundle.
    let out = p
        .clone()
        .args(["-H", "h1", "bundle", "load", "shop.rigs"])
        .timeout(120)
        .run();
    out.assert_code(0);
    lab.assert_image_as_on_controller(0, &v1);
    lab.assert_image_as_on_controller(0, &v2);

    // An override file changes a service's image and adds its files; an IMAGE given as well
    // joins the services' images.
    let base = lab.base_image();
    let out = p
        .clone()
        .args(["bundle", "create", "prod.rigs", &base])
        .args(["--compose", "deploy/compose.yaml"])
        .args(["--compose", "deploy/prod/compose.prod.yaml"])
        .args(["--set", "TAG=v1", "--set", &format!("REGISTRY={registry}")])
        .timeout(120)
        .run();
    out.assert_code(0);
    let out = p.clone().args(["bundle", "verify", "prod.rigs"]).run();
    out.assert_code(0);
    for expected in [
        "  compose project: compose.yaml, prod/compose.prod.yaml (5 files)".to_string(),
        format!("    service web  {v2}\n"),
        format!("  {base}  "),
    ] {
        assert!(out.stdout.contains(&expected), "{expected}: {}", out.stdout);
    }
    assert!(!out.stdout.contains(&v1), "{}", out.stdout);
}

#[test]
fn compose_projects_that_cannot_be_bundled_are_refused() {
    let p = Project::new()
        .file(
            "deploy/compose.yaml",
            "services:\n  app:\n    build: .\n  db:\n    image: postgres:16\n",
        )
        .file(
            "other/compose.yaml",
            "services:\n  app:\n    image: app:1\n    env_file: ../secret.env\n",
        )
        .file("secret.env", "TOKEN=x\n");
    let out = p
        .clone()
        .args([
            "bundle",
            "create",
            "x.rigs",
            "--compose",
            "deploy/compose.yaml",
        ])
        .run();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("service `app` has `build:` but no `image:`")
            && out.stderr.contains("build and push the image first"),
        "{}",
        out.stderr
    );
    let out = p
        .clone()
        .args([
            "bundle",
            "create",
            "x.rigs",
            "--compose",
            "other/compose.yaml",
        ])
        .run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("services.app.env_file") && out.stderr.contains("outside"),
        "{}",
        out.stderr
    );
    assert!(!p.path().join("x.rigs").exists());

    // A good project on a controller whose docker has no Compose v2 plugin (the harness' HOME
    // has none): what to install.
    let p = p.file("good/compose.yaml", "services:\n  app:\n    image: app:1\n");
    let out = p
        .clone()
        .args([
            "bundle",
            "create",
            "x.rigs",
            "--compose",
            "good/compose.yaml",
        ])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("asks this machine's Docker Compose")
            && (out.stderr.contains("docker-compose-plugin")
                || out.stderr.contains("docker is not installed")),
        "{}",
        out.stderr
    );
}
