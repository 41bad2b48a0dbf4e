//! Compose projects through the standard recipes, on the modern engine and its real Compose v2
//! plugin: a two-service project (web with a healthcheck and a published port, a worker that
//! waits for it) deployed, upgraded, gated, rolled back, split by roles, shipped to an
//! air-gapped host, kept secret and cleaned up.
//!
//! The classic engine has no Compose plugin (bookworm ships only the Python 1.x), so these run on
//! the modern one; `hosts_without_compose_v2` covers a host that lacks it.

use std::path::PathBuf;

use crate::harness::{unused_port, DockerLab, Engine, LabOptions, Project};

const COMPOSE: &str = r#"services:
  web:
    image: ${REGISTRY}/app:${TAG}
    ports:
      - "127.0.0.1:${WEB_PORT}:8080"
    env_file: web.env
    environment:
      API_KEY: ${API_KEY:-none}
    configs:
      - source: motd
        target: /www/motd.txt
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 2s
      retries: 3
    restart: unless-stopped
  worker:
    image: ${REGISTRY}/worker:1
    command: ["/bin/sh", "-c", "echo worker says hello; trap 'exit 0' TERM; while :; do sleep 1; done"]
    depends_on:
      web:
        condition: service_healthy
    restart: unless-stopped
configs:
  motd:
    file: ./config/motd.txt
"#;

/// The shop project on `lab`'s `n` hosts: the compose file, its env file and config, each host
/// publishing web on a port of its own, and `extra` inventory text after `[vars]`.
fn shop(lab: &DockerLab, n: usize, extra: &str) -> Project {
    shop_with(lab, n, extra, &|_| String::new())
}

/// `shop`, with `host_vars(i)` added to host `i`'s variables.
fn shop_with(
    lab: &DockerLab,
    n: usize,
    extra: &str,
    host_vars: &dyn Fn(usize) -> String,
) -> Project {
    lab.worker_image();
    let mut vars = format!(
        "compose = \"deploy/compose.yaml\"\ncompose_project = \"shop\"\ncompose_settle = 1\n{extra}"
    );
    for i in 0..n {
        vars.push_str(&format!(
            "\n[hosts.h{}.vars]\ncompose_env = {{ REGISTRY = \"{}\", WEB_PORT = \"{}\" }}\n{}",
            i + 1,
            lab.registry(),
            unused_port(),
            host_vars(i)
        ));
    }
    lab.compose_project(
        &[
            ("deploy/compose.yaml", COMPOSE),
            ("deploy/web.env", "GREETING=hello from web.env\n"),
            ("deploy/config/motd.txt", "welcome\n"),
        ],
        &vars,
    )
}

fn project_dir(lab: &DockerLab, i: usize, project: &str) -> PathBuf {
    lab.home(i).join(".rigs/compose").join(project)
}

/// What `current` points at on host `i`: `0003`.
fn current(lab: &DockerLab, i: usize) -> String {
    std::fs::read_link(project_dir(lab, i, "shop").join("current"))
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .unwrap_or_default()
}

/// The image ID service `service` of `project` runs on host `i`.
fn running(lab: &DockerLab, i: usize, project: &str, service: &str) -> String {
    lab.containers(i, project)
        .into_iter()
        .find(|(s, state, _)| s == service && state == "running")
        .map(|(_, _, id)| id)
        .unwrap_or_default()
}

fn history(lab: &DockerLab, i: usize) -> Vec<serde_json::Value> {
    std::fs::read_to_string(lab.home(i).join(".rigs/history.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn summary(stdout: &str) -> Vec<(String, String, String, String)> {
    crate::harness::run_summary(stdout)
}

#[test]
fn deploy_upgrade_status_and_hand_use() {
    let lab = DockerLab::start(3, Engine::Modern);
    let p = shop(&lab, 3, "");
    let app = lab.image();
    p.clone()
        .args(["env:lab", "deploy:v1"])
        .timeout(240)
        .run()
        .assert_code(0);
    for i in 0..3 {
        assert_eq!(
            running(&lab, i, "shop", "web"),
            lab.image_id(i, &format!("{app}:v1"))
        );
        assert!(!running(&lab, i, "shop", "worker").is_empty());
        assert_eq!(current(&lab, i), "0001");
    }

    let out = p
        .clone()
        .args(["env:lab", "deploy:v2", "--output", "json"])
        .timeout(240)
        .run();
    out.assert_code(0);
    let v2 = lab.image_id(0, &format!("{app}:v2"));
    for i in 0..3 {
        assert_eq!(running(&lab, i, "shop", "web"), v2, "host {i}");
        assert_eq!(current(&lab, i), "0002");
    }
    let last = history(&lab, 0).pop().unwrap();
    assert_eq!(last["task"], "deploy");
    assert_eq!(last["version"], "v2");
    assert_eq!(last["compose_revision"], "0002");
    assert_eq!(last["compose_images"]["web"]["id"], v2.as_str());
    assert_eq!(
        last["compose_images"]["web"]["image"],
        format!("{app}:v2").as_str()
    );
    assert!(
        last["compose_files"]["compose.yaml"]
            .as_str()
            .unwrap()
            .len()
            == 64
    );

    // What a person sees on the host: the same project, from inside `current`.
    let dir = project_dir(&lab, 0, "shop");
    let ps = lab.compose(
        0,
        dir.join("current"),
        &["ps", "--format", "{{.Service}} {{.State}}"],
    );
    let ps_text = String::from_utf8_lossy(&ps.stdout);
    assert!(
        ps.status.success(),
        "{ps_text}{}",
        String::from_utf8_lossy(&ps.stderr)
    );
    assert!(ps_text.contains("web running"), "{ps_text}");
    assert!(ps_text.contains("worker running"), "{ps_text}");
    let env = std::fs::metadata(dir.join("current/.env")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&env.permissions()) & 0o777,
        0o600
    );
    let folder = std::fs::metadata(&dir).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&folder.permissions()) & 0o777,
        0o700
    );
    assert_eq!(
        lab.docker_ok(0, &["exec", "shop-web-1", "cat", "/www/motd.txt"]),
        "welcome"
    );
    assert!(lab
        .docker_ok(0, &["exec", "shop-web-1", "env"])
        .contains("GREETING=hello from web.env"));

    let out = p.clone().args(["env:lab", "-H", "h1", "status"]).run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("web: running (healthy)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("worker: running"), "{}", out.stderr);
    assert!(out.stderr.contains("revision 0002 (v2)"), "{}", out.stderr);

    let out = p.clone().args(["env:lab", "-H", "h1", "logs:worker"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("worker says hello"), "{}", out.stdout);
    let out = p
        .clone()
        .args(["env:lab", "-H", "h1", "exec:web:cat /www/version"])
        .run();
    out.assert_code(0);
    assert!(out.stdout.contains("v2"), "{}", out.stdout);
    let out = p
        .clone()
        .args(["env:lab", "-H", "h1", "exec:nope:true"])
        .run();
    out.assert_code(1);
    assert!(out.stderr.contains("no service `nope`"), "{}", out.stderr);
}

#[test]
fn a_bad_release_on_the_canary_goes_back_there_and_stops_the_run() {
    let lab = DockerLab::start(3, Engine::Modern);
    let p = shop(&lab, 3, "compose_wait = 30\n");
    p.clone()
        .args(["env:lab", "deploy:v1"])
        .timeout(240)
        .run()
        .assert_code(0);
    let v1 = lab.image_id(0, &format!("{}:v1", lab.image()));
    let before: Vec<String> = (1..3).map(|i| running(&lab, i, "shop", "web")).collect();

    let out = p
        .clone()
        .args([
            "env:lab",
            "--canary",
            "1",
            "deploy:broken",
            "--output",
            "json",
        ])
        .timeout(240)
        .run();
    out.assert_code(1);
    let rows = summary(&out.stdout);
    assert_eq!(rows[0].1, "failed", "{rows:?}");
    assert_eq!(rows[0].2, "back on v1 (broken unhealthy)", "{rows:?}");
    assert!(
        rows[0].3.contains("broken is not healthy; back on v1"),
        "{rows:?}"
    );
    assert!(rows[0].3.contains("web"), "{rows:?}");
    assert_eq!(rows[1].3, "not started: the canary failed");
    assert_eq!(running(&lab, 0, "shop", "web"), v1);
    assert_eq!(current(&lab, 0), "0001");
    for i in 1..3 {
        assert_eq!(running(&lab, i, "shop", "web"), before[i - 1]);
    }
    let last = history(&lab, 0).pop().unwrap();
    assert_eq!(last["rolled_back"], true);
    assert_eq!(last["running"], "v1");

    // A release that passes `up --wait` and then crashes is caught by the settle watch.
    lab.crashing_image("crashy");
    let out = p
        .clone()
        .args([
            "env:lab",
            "-H",
            "h1",
            "deploy:crashy",
            "--set",
            "compose_settle=4",
        ])
        .timeout(240)
        .run();
    out.assert_code(1);
    assert!(out.stderr.contains("did not stay up"), "{}", out.stderr);
    assert!(out.stderr.contains("back on v1"), "{}", out.stderr);
    assert_eq!(running(&lab, 0, "shop", "web"), v1);
}

#[test]
fn rollback_restores_the_exact_images_without_the_registry() {
    let mut lab = DockerLab::start(2, Engine::Modern);
    let p = shop(&lab, 2, "");
    let app = lab.image();
    for tag in ["v1", "v2"] {
        p.clone()
            .args(["env:lab", &format!("deploy:{tag}")])
            .timeout(240)
            .run()
            .assert_code(0);
    }
    let v1: Vec<String> = (0..2)
        .map(|i| lab.image_id(i, &format!("{app}:v1")))
        .collect();
    // The tag moves on h1: only the pinned ID still names what ran.
    lab.docker_ok(0, &["tag", &format!("{app}:v2"), &format!("{app}:v1")]);
    lab.stop_registry();

    let out = p.clone().args(["env:lab", "rollback"]).timeout(240).run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("rolling back from v2 to v1"),
        "{}",
        out.stderr
    );
    for (i, id) in v1.iter().enumerate() {
        assert_eq!(&running(&lab, i, "shop", "web"), id, "host {i}");
        assert_eq!(current(&lab, i), "0001");
    }
    let last = history(&lab, 0).pop().unwrap();
    assert_eq!(last["task"], "rollback");
    assert_eq!(last["compose_revision"], "0001");
}

#[test]
fn roles_run_their_services() {
    let lab = DockerLab::start(3, Engine::Modern);
    let roles = "[env.lab.roles]\nweb = { hosts = [\"h1\", \"h2\"], vars = { compose_services = [\"web\"] } }\n\
                 jobs = { hosts = [\"h3\"], vars = { compose_services = [\"worker\"] } }\n";
    let p = shop(&lab, 3, roles);
    p.clone()
        .args(["env:lab", "deploy:v1"])
        .timeout(240)
        .run()
        .assert_code(0);
    for i in 0..2 {
        let services: Vec<String> = lab.containers(i, "shop").into_iter().map(|c| c.0).collect();
        assert_eq!(services, ["web"], "host {i}");
    }
    let services: Vec<String> = lab.containers(2, "shop").into_iter().map(|c| c.0).collect();
    assert_eq!(services, ["worker"]);

    // h3 moves to the web role: its worker goes.
    let moved = "[env.lab.roles]\nweb = { hosts = [\"h1\", \"h2\", \"h3\"], vars = { compose_services = [\"web\"] } }\n";
    shop(&lab, 3, moved)
        .args(["env:lab", "-R", "web", "deploy:v2"])
        .timeout(240)
        .run()
        .assert_code(0);
    let services: Vec<String> = lab.containers(2, "shop").into_iter().map(|c| c.0).collect();
    assert_eq!(services, ["web"]);
}

#[test]
fn an_airgapped_host_gets_every_image_in_one_stream() {
    let lab = DockerLab::start_with(
        2,
        &LabOptions {
            offline: vec![1],
            ..LabOptions::on(Engine::Modern)
        },
    );
    let p = shop_with(&lab, 2, "", &|i| {
        if i == 1 {
            "airgapped = true\n".into()
        } else {
            String::new()
        }
    });
    let app = lab.image();
    let out = p.clone().args(["env:lab", "deploy:v1"]).timeout(240).run();
    out.assert_code(0);
    // One stream for both images (the worker is the base with a command of its own): the
    // base layer they share travels once.
    assert!(
        out.stderr.contains("[h2] loaded 2 images: ")
            && out.stderr.contains("(2 of 2 layers sent as"),
        "{}",
        out.stderr
    );
    lab.assert_image_as_on_controller(1, &format!("{app}:v1"));
    lab.assert_image_as_on_controller(1, &format!("{}/worker:1", lab.registry()));
    assert_eq!(
        running(&lab, 1, "shop", "web"),
        lab.image_id(1, &format!("{app}:v1"))
    );

    // The upgrade sends v2's own layer only; the worker is not sent again.
    let out = p
        .clone()
        .args(["env:lab", "-H", "h2", "ship:v2"])
        .timeout(240)
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("already on the host") && out.stderr.contains("1 of 2 layers sent as"),
        "{}",
        out.stderr
    );
    assert_eq!(
        running(&lab, 1, "shop", "web"),
        lab.image_id(1, &format!("{app}:v2"))
    );
    lab.assert_offline(1);
}

#[test]
fn a_secret_in_the_env_file_reaches_the_container_and_nothing_else() {
    let lab = DockerLab::start(1, Engine::Modern);
    let value = r#"s3cr3t "q" $HOME \ end\"#;
    let log = lab.home(0).join("ps.log");
    crate::docker::watch_process_list(&lab, 0, &log);
    let p = shop(&lab, 1, "compose_secrets = [\"API_KEY\"]\n").env("API_KEY", value);
    let out = p
        .clone()
        .args(["env:lab", "-v", "deploy:v1", "--output", "json"])
        .timeout(240)
        .run();
    out.assert_code(0);
    let out2 = p
        .clone()
        .args(["env:lab", "-v", "deploy:v2"])
        .timeout(240)
        .run();
    out2.assert_code(0);
    let env = lab.docker_ok(0, &["exec", "shop-web-1", "env"]);
    assert!(env.contains(&format!("API_KEY={value}")), "{env}");
    let places = [
        ("stdout", out.stdout + &out2.stdout),
        ("stderr", out.stderr + &out2.stderr),
        (
            "host history",
            std::fs::read_to_string(lab.home(0).join(".rigs/history.jsonl")).unwrap(),
        ),
        (
            "local history",
            std::fs::read_to_string(p.path().join(".rigs/history.jsonl")).unwrap_or_default(),
        ),
        ("process list", std::fs::read_to_string(&log).unwrap()),
    ];
    for (place, text) in places {
        assert!(
            !text.contains("s3cr3t"),
            "the secret is in the {place}:\n{text}"
        );
    }
}

#[test]
fn cleanup_removes_old_revisions_and_images_and_spares_another_project() {
    let lab = DockerLab::start(1, Engine::Modern);
    let app = lab.image();
    lab.push_version("v3");
    let p = shop(&lab, 1, "");
    let other = shop(&lab, 1, "").args(["--set", "compose_project=other"]);
    other
        .clone()
        .args(["env:lab", "deploy:v1"])
        .timeout(240)
        .run()
        .assert_code(0);
    for tag in ["v3", "v2"] {
        p.clone()
            .args(["env:lab", &format!("deploy:{tag}")])
            .timeout(240)
            .run()
            .assert_code(0);
    }
    assert!(!lab.image_id(0, &format!("{app}:v3")).is_empty());
    let out = p
        .clone()
        .args(["env:lab", "-v", "--set", "keep=1", "cleanup"])
        .timeout(120)
        .run();
    out.assert_code(0);
    assert!(
        lab.image_id(0, &format!("{app}:v3")).is_empty(),
        "{}",
        out.stderr
    );
    assert!(!lab.image_id(0, &format!("{app}:v1")).is_empty());
    assert!(!lab.image_id(0, &format!("{app}:v2")).is_empty());
    let revisions: Vec<String> = std::fs::read_dir(project_dir(&lab, 0, "shop").join("revisions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(revisions, ["0002"]);
    assert!(!running(&lab, 0, "other", "web").is_empty());
    assert!(project_dir(&lab, 0, "other")
        .join("revisions/0001")
        .exists());
}

#[test]
fn hosts_without_compose_v2_say_what_to_install() {
    let lab = DockerLab::start_with(
        1,
        &LabOptions {
            compose: false,
            ..LabOptions::on(Engine::Modern)
        },
    );
    let p = shop(&lab, 1, "");
    let out = p.clone().args(["env:lab", "deploy:v1"]).timeout(120).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("no Compose v2 plugin"),
        "{}",
        out.stderr
    );
    assert!(!project_dir(&lab, 0, "shop").exists());

    let fake = lab.host_bin(0).join("docker-compose");
    std::fs::write(&fake, "#!/bin/sh\n# The Python docker-compose 1.x, as far as rigs asks it.\nif [ \"$2\" = --short ]; then echo 1.29.2; else echo 'docker-compose version 1.29.2, build 5becea4c'; fi\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = p.clone().args(["env:lab", "deploy:v1"]).timeout(120).run();
    out.assert_code(1);
    assert!(out.stderr.contains("1.x"), "{}", out.stderr);
    assert!(!project_dir(&lab, 0, "shop").exists());
}

#[test]
fn a_dry_run_shows_every_step_and_touches_nothing() {
    let lab = DockerLab::start(1, Engine::Modern);
    let p = shop(&lab, 1, "");
    let out = p
        .clone()
        .args(["env:lab", "--dry-run", "deploy:v1"])
        .timeout(120)
        .run();
    out.assert_code(0);
    for step in [
        "mkdir '.rigs/compose/shop/revisions/<next>'",
        "compose.yaml",
        "web.env",
        "motd.txt",
        "variables, values not shown",
        "pull --quiet",
        "up --detach --wait",
        "--pull never",
        "ln -sfn",
    ] {
        assert!(out.stderr.contains(step), "no `{step}` in:\n{}", out.stderr);
    }
    assert!(!project_dir(&lab, 0, "shop").exists());
    assert!(lab.containers(0, "shop").is_empty());
}

#[test]
fn a_bundle_load_then_deploy_needs_no_network() {
    let mut lab = DockerLab::start_with(
        1,
        &LabOptions {
            offline: vec![0],
            ..LabOptions::on(Engine::Modern)
        },
    );
    let p = shop_with(&lab, 1, "", &|_| "airgapped = true\n".into());
    let out = p
        .clone()
        .args([
            "bundle",
            "create",
            "shop.rigs",
            "--compose",
            "deploy/compose.yaml",
        ])
        .args([
            "--set",
            "TAG=v1",
            "--set",
            &format!("REGISTRY={}", lab.registry()),
        ])
        .args(["--set", "WEB_PORT=8080"])
        .timeout(120)
        .run();
    out.assert_code(0);
    p.clone()
        .args(["env:lab", "bundle", "load", "shop.rigs"])
        .timeout(120)
        .run()
        .assert_code(0);
    let v1 = format!("{}:v1", lab.image());
    lab.stop_registry();
    let out = p
        .clone()
        .args(["env:lab", "deploy:v1", "--output", "json"])
        .timeout(240)
        .run();
    out.assert_code(0);
    let commands: Vec<String> = crate::harness::json_events(&out.stdout)
        .iter()
        .filter(|e| e["event"] == "command")
        .map(|e| e["command"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("docker load") || c.contains(" pull")),
        "{commands:?}"
    );
    assert_eq!(running(&lab, 0, "shop", "web"), lab.image_id(0, &v1));
    lab.assert_offline(0);
}

#[test]
fn a_project_rigs_cannot_release_safely_fails_with_what_to_do() {
    let lab = DockerLab::start(1, Engine::Modern);
    let deploy = |p: Project| p.args(["env:lab", "deploy:v1"]).timeout(120).run();

    // A variable the compose file uses that nothing sets: Compose would only warn.
    let p = shop(&lab, 1, "").file(
        "deploy/compose.yaml",
        &COMPOSE.replace("${API_KEY:-none}", "${API_KEY}"),
    );
    let out = deploy(p);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("uses ${API_KEY} but nothing sets it: add it to compose_env"),
        "{}",
        out.stderr
    );

    // Data in the revision folder would be lost with the next release.
    let p = shop(&lab, 1, "").file(
        "deploy/compose.yaml",
        &COMPOSE.replace(
            "    restart: unless-stopped\n  worker:",
            "    restart: unless-stopped\n    volumes: [\"./data:/data\"]\n  worker:",
        ),
    );
    let out = deploy(p);
    out.assert_code(1);
    assert!(out.stderr.contains("mounts `./data`"), "{}", out.stderr);
    assert!(out.stderr.contains("use a named volume"), "{}", out.stderr);

    // A role naming a service the file does not have.
    let out = deploy(shop(&lab, 1, "compose_services = [\"wbe\"]\n"));
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("service `wbe` is not in deploy/compose.yaml (it has web, worker)"),
        "{}",
        out.stderr
    );
    assert!(lab.containers(0, "shop").is_empty());
}
