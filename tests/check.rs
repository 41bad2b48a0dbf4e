//! `rigs env:NAME check` on real hosts: one ready, one whose docker engine does not answer, one
//! that cannot be reached; one table, what to do about each, exit 1 until every host is ready.

use crate::harness::{on_engines, ClosedPort, DockerLab, Engine, Project};

/// The lab's standard project with one more host in `env:lab`, on a port nothing listens on.
fn with_unreachable_host(lab: &DockerLab, closed: &ClosedPort) -> Project {
    let p = lab.standard_project("");
    let inventory = std::fs::read_to_string(p.path().join("inventory/lab.toml")).unwrap();
    let inventory = inventory.replacen(
        "hosts = [\"h1\", \"h2\"]",
        "hosts = [\"h1\", \"h2\", \"h9\"]",
        1,
    ) + &format!(
        "\n[hosts.h9]\naddress = \"127.0.0.1\"\nport = {}\n",
        closed.port()
    );
    p.inventory("lab.toml", &inventory)
}

on_engines!(check_tells_per_host_whether_a_deploy_would_work);
fn check_tells_per_host_whether_a_deploy_would_work(engine: Engine) {
    let lab = DockerLab::start(2, engine);
    let closed = ClosedPort::new();
    // h2's docker cannot reach its engine, as when dockerd is stopped.
    let docker = lab.host_bin(1).join("docker");
    let real = std::fs::read_link(&docker).unwrap();
    std::fs::remove_file(&docker).unwrap();
    std::fs::write(
        &docker,
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&docker, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let p = with_unreachable_host(&lab, &closed);

    let out = p.clone().args(["env:lab", "check"]).timeout(60).run();
    out.assert_code(1);
    let table = &out.stdout;
    assert!(table.starts_with("HOST  READY  USER"), "{table}");
    let row = |host: &str| {
        table
            .lines()
            .find(|l| l.starts_with(host))
            .unwrap_or_else(|| panic!("no row for {host}:\n{table}"))
            .to_string()
    };
    let h1 = row("h1");
    // The engine's version and image store, and its Compose plugin when it has one.
    let (version, store, compose) = match engine {
        Engine::Modern => ("26.1.5", "containerd", "2.26.1"),
        Engine::Classic => ("20.10", "overlay", " - "),
    };
    for cell in ["yes", "rigs-test", version, store, compose, "ok", "free"] {
        assert!(h1.contains(cell), "no `{cell}` in {h1}");
    }
    assert!(h1.contains(&format!("{} ok", lab.registry())), "{h1}");
    assert!(row("h2").contains(" no "), "{table}");
    assert!(row("h9").contains(" no "), "{table}");
    assert!(table.contains("To do before a deploy:"), "{table}");
    assert!(
        table.contains("h2: the docker engine is not running")
            && table.contains("systemctl start docker"),
        "{table}"
    );
    assert!(table.contains("h9: "), "{table}");

    let out = p
        .clone()
        .args(["env:lab", "check", "--output", "json"])
        .timeout(60)
        .run();
    out.assert_code(1);
    let rows: Vec<serde_json::Value> = crate::harness::json_events(&out.stdout)
        .into_iter()
        .filter(|e| e["event"] == "check")
        .collect();
    assert_eq!(rows.len(), 3, "{}", out.stdout);
    assert_eq!(rows[0]["host"], "h1");
    assert_eq!(rows[0]["ready"], true);
    assert_eq!(
        rows[0]["store"] == "containerd",
        engine == Engine::Modern,
        "{}",
        rows[0]
    );
    assert_eq!(rows[1]["ready"], false);
    assert!(
        rows[2]["problems"][0]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{}",
        rows[2]
    );

    // Fixed, and without the host that is gone, the environment is ready.
    std::fs::remove_file(&docker).unwrap();
    std::os::unix::fs::symlink(real, &docker).unwrap();
    let out = p.args(["env:lab", "-x", "h9", "check"]).timeout(60).run();
    out.assert_code(0);
    assert!(!out.stdout.contains("To do"), "{}", out.stdout);
}
