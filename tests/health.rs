//! `docker::wait_healthy` against real engines: probes from the host over SSH and inside
//! containers, Docker's own HEALTHCHECK, and the failures that must end the wait at once.

use std::time::{Duration, Instant};

use crate::harness::{
    on_engines, shell_quote, unused_port, DockerLab, Engine, Project, REGISTRY_PASSWORD,
    REGISTRY_USER,
};

const RECIPES: &str = r#"
/// Logs in, pulls `tag` of the app and starts it as container `name` with `opts`.
private fn start(name, tag, opts) {
    docker::login(vars.registry, vars.registry_user, secret("REGISTRY_PASSWORD"));
    docker::pull(`${vars.image}:${tag}`);
    docker::run(name, `${vars.image}:${tag}`, opts);
}

private fn report(what, r) {
    info(`${what}: healthy=${r.healthy} probes=${r.probes} seconds=${type_of(r.seconds)}`);
}

/// The app on the host's network at PORT, probed from the host; a second one, at LATE_PORT,
/// listens only after a second.
fn from_host(port, late_port) {
    start("web", "v1", #{
        network: "host",
        command: ["/bin/httpd", "-f", "-p", port, "-h", "/www"],
    });
    start("late", "v1", #{
        network: "host",
        command: ["/bin/sh", "-c", `sleep 3; exec /bin/httpd -f -p ${late_port} -h /www`],
    });
    report("late", docker::wait_healthy("late", #{
        http: `http://127.0.0.1:${late_port}/version`, interval: 0.2,
    }));
    report("http", docker::wait_healthy("web", #{
        http: `http://127.0.0.1:${port}/version`, interval: 0.2,
    }));
    report("tcp", docker::wait_healthy("web", #{ tcp: parse_int(port), interval: 0.2 }));
    report("cmd", docker::wait_healthy("web", #{
        cmd: `test "$(docker exec web cat /www/version)" = v1`,
    }));
}

/// The app without any network, probed inside its container.
fn inside() {
    start("inner", "v1", #{ network: "none" });
    report("http", docker::wait_healthy("inner", #{
        http: "http://127.0.0.1:8080/version", expect: 200, inside: true, interval: 0.2,
    }));
    report("tcp", docker::wait_healthy("inner", #{ tcp: 8080, inside: true, interval: 0.2 }));
    report("cmd", docker::wait_healthy("inner", #{ cmd: "cat /www/version", inside: true }));
}

/// An HTTP check on a path the app does not serve.
fn wrong_path() {
    start("inner", "v1", #{ network: "none" });
    docker::wait_healthy("inner", #{
        http: "http://127.0.0.1:8080/nope", inside: true, timeout: 3, interval: 0.5,
    });
}

/// A command on the host that never succeeds, three times.
fn failing_cmd() {
    docker::wait_healthy("inner", #{
        cmd: "echo not ready >&2; exit 3", retries: 3, interval: 0.2,
    });
}

/// A container that does not exist.
fn ghost() {
    docker::wait_healthy("ghost", #{ cmd: "true" });
}

/// The app with a Docker HEALTHCHECK, waited for by its status.
fn healthcheck() {
    start("app", "v1", #{
        network: "none",
        health_cmd: "wget -qO- http://127.0.0.1:8080/version",
        health_interval: "1s",
    });
    report("default", docker::wait_healthy("app"));
    report("docker", docker::wait_healthy("app", #{ docker: true, timeout: 30 }));
}

/// Waiting for the HEALTHCHECK of a container that has none.
fn no_healthcheck() {
    start("plain", "v1", #{ network: "none" });
    docker::wait_healthy("plain", #{ timeout: 30 });
}

/// The image that prints "starting" and exits 1.
fn broken() {
    start("app", "broken", #{ network: "none" });
    docker::wait_healthy("app", #{
        http: "http://127.0.0.1:8080/version", inside: true, timeout: 60,
    });
}

/// The same image under a restart policy: it keeps coming back, and keeps failing.
fn crash_loop() {
    start("looping", "broken", #{ network: "none", restart: "always" });
    docker::wait_healthy("looping", #{ cmd: "exit 1", timeout: 60 });
}

/// The app under a HEALTHCHECK that has not run yet; the host's docker kills it when the wait
/// first asks for its health (see `a_container_that_stops_between_two_looks_is_reported_stopped`).
fn killed_while_waiting() {
    start("app", "v1", #{
        network: "none",
        health_cmd: "wget -qO- http://127.0.0.1:8080/version",
        health_interval: "30s",
    });
    docker::wait_healthy("app", #{ timeout: 30 });
}

/// A wait that can only end by Ctrl-C.
fn forever() {
    start("app", "v1", #{ network: "none" });
    run("echo waiting now");
    docker::wait_healthy("app", #{ cmd: "echo probe >> ~/probes; exit 1", timeout: 60, interval: 0.2 });
}
"#;

/// A project with the health recipes and an inventory for the lab.
fn project(lab: &DockerLab) -> Project {
    let mut inventory = lab.inventory_toml();
    inventory.push_str(&format!(
        "\n[vars]\nimage = \"{}\"\nregistry = \"{}\"\nregistry_user = \"{REGISTRY_USER}\"\n",
        lab.image(),
        lab.registry()
    ));
    let p = Project::new()
        .recipe("health.rhai", RECIPES)
        .inventory("lab.toml", &inventory)
        .env("REGISTRY_PASSWORD", REGISTRY_PASSWORD);
    lab.ssh
        .write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    p
}

/// N from "... (N probes ..." or "... (N probe, ..." in `text`.
fn probes_in(text: &str, after: &str) -> usize {
    let rest = &text[text
        .find(after)
        .unwrap_or_else(|| panic!("`{after}` not in {text}"))
        + after.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no probe count after `{after}` in {text}"))
}

on_engines!(http_tcp_and_cmd_probes_from_the_host_pass_once_the_app_answers);
fn http_tcp_and_cmd_probes_from_the_host_pass_once_the_app_answers(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let port = unused_port();
    let late_port = std::iter::repeat_with(unused_port)
        .find(|p| *p != port)
        .unwrap();
    let out = project(&lab)
        .args(["-v", "env:lab", &format!("from_host:{port},{late_port}")])
        .run();
    out.assert_code(0);
    // Refused connections while it sleeps, then its answer. (It sleeps 3 s so that a slow
    // container start under a loaded machine still leaves time for refused probes.)
    assert!(
        probes_in(&out.stderr, "late: healthy=true probes=") >= 2,
        "{}",
        out.stderr
    );
    for what in ["http", "tcp", "cmd"] {
        let line = format!("{what}: healthy=true probes=");
        assert!(out.stderr.contains(&line), "{line}\n{}", out.stderr);
    }
    assert!(out.stderr.contains("seconds=f64"), "{}", out.stderr);
    // A passed check is a detail for -v.
    assert!(
        out.stderr.contains("[h1] web: healthy after "),
        "{}",
        out.stderr
    );
}

on_engines!(probes_inside_a_container_without_network);
fn probes_inside_a_container_without_network(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let out = project(&lab).args(["env:lab", "inside"]).run();
    out.assert_code(0);
    for what in ["http", "tcp", "cmd"] {
        let line = format!("{what}: healthy=true probes=");
        assert!(out.stderr.contains(&line), "{line}\n{}", out.stderr);
    }
    // Probes are quiet: the app's own answer never reaches the output.
    assert!(
        !out.stdout.lines().any(|l| l.trim() == "[h1] v1"),
        "{}",
        out.stdout
    );
}

on_engines!(failing_probes_time_out_naming_what_they_saw);
fn failing_probes_time_out_naming_what_they_saw(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let p = project(&lab);

    let out = p.clone().args(["env:lab", "wrong_path"]).run();
    out.assert_code(1);
    let timed_out = "docker::wait_healthy: `inner` was not healthy after 3 s (";
    assert!(
        out.stderr
            .contains("probes); last probe: HTTP 404 from http://127.0.0.1:8080/nope"),
        "{}",
        out.stderr
    );
    // 3 s at one probe per 0.5 s, plus the probe at the deadline.
    let probes = probes_in(&out.stderr, timed_out);
    assert!((4..=8).contains(&probes), "{probes} probes: {}", out.stderr);

    let out = p.clone().args(["env:lab", "failing_cmd"]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("`inner` was not healthy after 3 probes ("),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("last probe: `echo not ready >&2; exit 3` exited with code 3: not ready"),
        "{}",
        out.stderr
    );

    let out = p.args(["env:lab", "ghost"]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("docker::wait_healthy: there is no container `ghost` on this host"),
        "{}",
        out.stderr
    );
}

on_engines!(docker_healthcheck_status_is_waited_for);
fn docker_healthcheck_status_is_waited_for(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let p = project(&lab);
    let out = p.clone().args(["env:lab", "healthcheck"]).run();
    out.assert_code(0);
    for what in ["default", "docker"] {
        let line = format!("{what}: healthy=true probes=");
        assert!(out.stderr.contains(&line), "{line}\n{}", out.stderr);
    }
    // The first health check runs a second after the start: at least one probe saw "starting".
    assert!(
        probes_in(&out.stderr, "default: healthy=true probes=") >= 2,
        "{}",
        out.stderr
    );

    let out = p.args(["env:lab", "no_healthcheck"]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("container `plain` has no HEALTHCHECK to wait for"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("health_cmd"), "{}", out.stderr);
}

on_engines!(a_crashing_container_fails_the_wait_at_once_with_its_log);
fn a_crashing_container_fails_the_wait_at_once_with_its_log(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let p = project(&lab);
    // The wait allows 60 s; rigs gets 30 to be done.
    let out = p.clone().args(["env:lab", "broken"]).timeout(30).run();
    out.assert_code(1);
    let exited = "docker::wait_healthy: container `app` exited with code 1 while waiting for it to become healthy (";
    assert!(out.stderr.contains(exited), "{}", out.stderr);
    assert!(
        probes_in(&out.stderr, exited) <= 2,
        "it waited: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("; its last log line: starting"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("was not healthy after"),
        "{}",
        out.stderr
    );

    let out = p.args(["env:lab", "crash_loop"]).timeout(30).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("container `looping` ")
            && out.stderr.contains("restart")
            && out
                .stderr
                .contains("while waiting for it to become healthy"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("starting"), "{}", out.stderr);
}

on_engines!(a_container_that_stops_between_two_looks_is_reported_stopped);
fn a_container_that_stops_between_two_looks_is_reported_stopped(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    // The host's docker kills the container, and waits until it has stopped, before it answers
    // the first question about its health: the wait saw it running a moment before.
    let docker = lab.host_bin(0).join("docker");
    let real = shell_quote(&std::fs::read_link(&docker).unwrap().display().to_string());
    std::fs::remove_file(&docker).unwrap();
    std::fs::write(
        &docker,
        format!(
            "#!/bin/sh\ncase \"$*\" in *'.State.Health.Status'*)\n  {real} kill app >/dev/null\n  \
             while [ \"$({real} container inspect --format '{{{{.State.Running}}}}' app)\" = true ]; do sleep 0.05; done\n\
             esac\nexec {real} \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&docker, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = project(&lab)
        .args(["env:lab", "killed_while_waiting"])
        .timeout(60)
        .run();
    out.assert_code(1);
    // Docker calls a container that stopped `unhealthy`; its HEALTHCHECK never failed.
    assert!(
        out.stderr.contains(
            "docker::wait_healthy: container `app` exited with code 137 while waiting for it to become healthy (1 probe, "
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("is unhealthy"), "{}", out.stderr);
}

on_engines!(ctrl_c_ends_the_wait);
fn ctrl_c_ends_the_wait(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let p = project(&lab).args(["env:lab", "forever"]);
    let mut child = p.spawn_until("waiting now", 1);
    // A few probes in: each one leaves a line in the host's ~/probes.
    let probes = lab.home(0).join("probes");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&probes)
        .unwrap_or_default()
        .lines()
        .count()
        < 3
    {
        assert!(
            child.try_wait().unwrap().is_none() && Instant::now() < deadline,
            "the wait did not probe three times"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupted_at = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            interrupted_at.elapsed() < Duration::from_secs(10),
            "rigs did not stop waiting after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!stderr.contains("was not healthy"), "{stderr}");
}

#[test]
fn options_are_checked_and_dry_runs_show_one_probe() {
    let recipes = r#"
/// Unknown option.
fn unknown() { docker::wait_healthy("app", #{ url: "http://127.0.0.1/" }); }
/// Wrong type.
fn wrong_type() { docker::wait_healthy("app", #{ cmd: "true", timeout: "10" }); }
/// Dry run.
fn dry() {
    let r = docker::wait_healthy("app", #{ http: "http://127.0.0.1:8080/health?x=1&y=2" });
    info(`dry: healthy=${r.healthy}`);
}
"#;
    let p = Project::new()
        .recipe("health.rhai", recipes)
        .inventory("i.toml", "[env.prod]\nhosts = [\"web-1.invalid\"]\n");

    let out = p.clone().args(["--dry-run", "env:prod", "unknown"]).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains(
            "docker::wait_healthy: unknown option `url` (expected one of http, expect, tcp, host, cmd, docker, inside, timeout, interval, retries, sudo)"
        ),
        "{}",
        out.stderr
    );
    let out = p
        .clone()
        .args(["--dry-run", "env:prod", "wrong_type"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("docker::wait_healthy: option `timeout` must be a number of seconds"),
        "{}",
        out.stderr
    );

    let started = Instant::now();
    let out = p
        .args(["--dry-run", "--output", "plain", "env:prod", "dry"])
        .run();
    out.assert_code(0);
    let probe = "[web-1.invalid] would run: curl -sS -o /dev/null -w '%{http_code}' --max-time 5 'http://127.0.0.1:8080/health?x=1&y=2'";
    assert_eq!(out.stderr.matches(probe).count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("dry: healthy=true"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
}
