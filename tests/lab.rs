//! The Docker lab itself, for the image-shipping tests that build on it: an offline host really
//! cannot reach the registry while an online one can, and the test images share their base
//! layer, so a host holding one version already has all but the top layer of the next. Each
//! engine kind runs its own image store and is driven by its own client, on the hosts' sessions
//! too; images pushed by either kind of controller pull on either kind of host.

use std::time::Instant;

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
