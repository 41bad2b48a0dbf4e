//! The Docker lab itself, for the image-shipping tests that build on it: an offline host really
//! cannot reach the registry while an online one can, and the test images share their base
//! layer, so a host holding one version already has all but the top layer of the next. Each
//! engine kind runs its own image store and is driven by its own client, on the hosts' sessions
//! too; images pushed by either kind of controller pull on either kind of host. Compose v2 is
//! there exactly where a compose test expects it: on modern hosts unless the lab leaves it out,
//! never on classic ones.

use std::time::{Duration, Instant};

use crate::harness::{on_engines, process_running, DockerLab, Engine, LabOptions};

on_engines!(fleets lab_offline_host_and_shared_base_layers);
fn lab_offline_host_and_shared_base_layers(controller: Engine, hosts: Engine) {
    let started = Instant::now();
    let lab = DockerLab::start_with(
        2,
        &LabOptions {
            offline: vec![1],
            ..LabOptions::fleet(controller, hosts)
        },
    );
    eprintln!("a 2-host lab started in {:.1?}", started.elapsed());
    let v1 = format!("{}:v1", lab.image());
    let v2 = format!("{}:v2", lab.image());

    lab.assert_offline(1);
    // A modern controller pushes OCI manifests, a classic one Docker's.
    let manifest = lab
        .controller_docker_command()
        .args(["manifest", "inspect", "--insecure", &v1])
        .env("DOCKER_CLI_EXPERIMENTAL", "enabled")
        .output()
        .unwrap();
    let manifest = String::from_utf8_lossy(&manifest.stdout);
    let media_type = match controller {
        Engine::Classic => "application/vnd.docker.distribution.manifest.v2+json",
        Engine::Modern => "application/vnd.oci.image.manifest.v1+json",
    };
    assert!(manifest.contains(media_type), "{manifest}");
    assert!(lab.app_tags(0).is_empty() && lab.app_tags(1).is_empty());
    assert!(lab.docker_login(0).status.success());
    lab.docker_ok(0, &["pull", &v1]);
    lab.assert_image_as_on_controller(0, &v1);
    assert_eq!(lab.image_id(1, &v1), "");
    let version = lab.docker_ok(
        0,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &v1,
            "cat",
            "/www/version",
        ],
    );
    assert_eq!(version, "v1", "the pulled image runs");

    // The hosts' sessions find the client of their own engine first.
    let out = lab
        .standard_project("")
        .recipe(
            "versions.rhai",
            "/// The docker client's and engine's versions.\nfn versions() { run(\"docker version --format '{{.Client.Version}}/{{.Server.Version}}'\"); }\n",
        )
        .args(["env:lab", "versions"])
        .timeout(60)
        .run();
    out.assert_code(0);
    let release = match hosts {
        Engine::Classic => "20.10.",
        Engine::Modern => "26.",
    };
    for h in ["h1", "h2"] {
        let versions = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("[{h}] ")))
            .unwrap_or_else(|| panic!("no versions from {h}: {}", out.stdout));
        assert!(
            versions.split('/').all(|v| v.starts_with(release)),
            "{h}: client/server {versions}"
        );
    }

    let (one, two) = (lab.diff_ids(None, &v1), lab.diff_ids(None, &v2));
    assert_eq!((one.len(), two.len()), (2, 2), "{one:?} {two:?}");
    assert_eq!(one[0], two[0], "v1 and v2 share the base layer");
    assert_ne!(one[1], two[1]);
    assert_eq!(lab.diff_ids(Some(0), &v1), one);

    let big = lab.big_image("big", 5);
    let layers = lab.diff_ids(None, &big);
    assert_eq!(layers.len(), 2, "{layers:?}");
    assert_eq!(layers[0], one[0]);
    let size: u64 = lab
        .controller_docker_ok(&["image", "inspect", "--format", "{{.Size}}", &big])
        .parse()
        .unwrap();
    assert!(size > 5 * 1024 * 1024, "{size} bytes");

    let sockets = [lab.docker_host(1), lab.controller_docker_host()];
    let stopping = Instant::now();
    drop(lab);
    eprintln!("and stopped in {:.1?}", stopping.elapsed());
    for socket in sockets {
        let socket = socket.trim_start_matches("unix://");
        assert!(!process_running(socket), "dockerd for {socket} still runs");
        // Its containerd and shims name the engine's folder too.
        let folder = socket.trim_end_matches("docker.sock");
        assert!(!process_running(folder), "a process in {folder} still runs");
    }
}

/// A recipe printing what the hosts' `docker compose version` says, and its exit status.
const COMPOSE_VERSION: &str = "/// The hosts' Compose version.\nfn compose_version() { run(\"docker compose version 2>&1; echo rc=$?\"); }\n";

/// What host `h` printed, its lines joined, from a run of `compose_version`.
fn host_lines(stdout: &str, h: &str) -> String {
    let prefix = format!("[{h}] ");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn lab_compose_on_modern_hosts() {
    let lab = DockerLab::start(1, Engine::Modern);
    let worker = lab.worker_image();
    let crashing = lab.crashing_image("crash");
    let yaml = format!("services:\n  worker:\n    image: {worker}\n");
    let p = lab.compose_project(&[("deploy/compose.yaml", &yaml)], "");
    let out = p
        .clone()
        .recipe("version.rhai", COMPOSE_VERSION)
        .args(["env:lab", "compose_version"])
        .timeout(60)
        .run();
    out.assert_code(0);
    let said = host_lines(&out.stdout, "h1");
    assert!(
        said.contains("Docker Compose version 2.26") && said.ends_with("rc=0"),
        "{said}"
    );

    let deploy = p.path().join("deploy");
    let version = lab.compose(0, &deploy, &["version", "--short"]);
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("2.26"),
        "{version:?}"
    );
    let controller = std::process::Command::new(Engine::Modern.docker())
        .env_clear()
        .env("HOME", p.path().join("home"))
        .args(["compose", "version", "--short"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&controller.stdout).starts_with("2.26"),
        "the project's home has no Compose plugin: {controller:?}"
    );

    assert!(lab.docker_login(0).status.success());
    let up = lab.compose(0, &deploy, &["-p", "smoke", "up", "-d", "--wait"]);
    assert!(up.status.success(), "{up:?}");
    assert_eq!(
        lab.containers(0, "smoke"),
        vec![(
            "worker".to_string(),
            "running".to_string(),
            lab.image_id(0, &worker)
        )]
    );
    assert!(lab.containers(0, "other").is_empty());

    assert_eq!(
        lab.docker_ok(
            0,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                &crashing,
                "cat",
                "/www/version"
            ]
        ),
        "crash"
    );
    let started = Instant::now();
    let crashed = lab.docker(0, &["run", "--rm", "--network", "none", &crashing]);
    assert_eq!(crashed.status.code(), Some(1), "{crashed:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// No Compose v2 on classic hosts, nor on modern ones of a lab that leaves it out.
#[test]
fn lab_hosts_without_compose() {
    for options in [
        LabOptions::on(Engine::Classic),
        LabOptions {
            compose: false,
            ..LabOptions::on(Engine::Modern)
        },
    ] {
        let lab = DockerLab::start_with(1, &options);
        let out = lab
            .compose_project(&[], "")
            .recipe("version.rhai", COMPOSE_VERSION)
            .args(["env:lab", "compose_version"])
            .timeout(60)
            .run();
        out.assert_code(0);
        let said = host_lines(&out.stdout, "h1");
        assert!(
            said.contains("'compose' is not a docker command") && !said.ends_with("rc=0"),
            "{options:?}: {said}"
        );
    }
}
