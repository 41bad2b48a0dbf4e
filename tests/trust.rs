//! Standard recipes you can trust blind, against real engines: variables are checked against the
//! recipes' declarations before anything connects, an undefined variable stops a task where it
//! is read, and `rollback` is a release like any other — health-gated, one version for the whole
//! environment, and loud when a release leaves the hosts on more than one.

use crate::harness::{on_engines, DockerLab, Engine, Project};

/// A health check that reaches the app inside its container; `broken` exits at once and fails it.
const CHECK: &str = "health = { http = \"http://127.0.0.1:8080/version\", inside = true, timeout = 20, interval = 0.5 }\n";

fn standard_recipes() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/docker.rhai")).unwrap()
}

on_engines!(misspelt_missing_and_mistyped_variables_stop_the_run_before_any_host_is_touched);
fn misspelt_missing_and_mistyped_variables_stop_the_run_before_any_host_is_touched(engine: Engine) {
    let lab = DockerLab::start(2, engine);
    let typo = lab.standard_project(&CHECK.replace("health", "helth"));
    let out = typo.clone().args(["env:lab", "deploy:v1"]).run();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("`helth` is not a variable these tasks read; did you mean `health`?")
            && out.stderr.contains("for deploy:v1")
            && out.stderr.contains("on h1, h2")
            && out.stderr.contains("nothing was run"),
        "{}",
        out.stderr
    );
    // The same under --dry-run: the check comes before anything else.
    let out = typo
        .clone()
        .args(["env:lab", "--dry-run", "deploy:v1"])
        .run();
    out.assert_code(2);

    let p = lab.standard_project(CHECK);
    for (set, needle) in [
        ("keep=two", "`keep` must be an int, not a string (\"two\")"),
        (
            "kep=3",
            "`kep` is not a variable these tasks read; did you mean `keep`?",
        ),
        ("airgaped=true", "did you mean `airgapped`?"),
    ] {
        let out = p.clone().args(["env:lab", "--set", set, "deploy:v1"]).run();
        out.assert_code(2);
        assert!(out.stderr.contains(needle), "--set {set}: {}", out.stderr);
    }
    for i in 0..2 {
        assert_eq!(
            lab.docker_ok(i, &["ps", "--all", "--quiet"]),
            "",
            "host {i}"
        );
        assert!(
            !lab.home(i).join(".rigs").exists(),
            "no lock or history was written on host {i}"
        );
    }

    // A value from --set takes the declared type: keep=1 is the int 1, and the run goes ahead.
    let out = p
        .clone()
        .args(["env:lab", "--set", "keep=1", "deploy:v1"])
        .timeout(180)
        .run();
    out.assert_code(0);

    // Reading a variable nobody set is an error naming it and the place, not `()` passed on.
    let out = p
        .clone()
        .recipe(
            "show.rhai",
            "fn show() {\n    run(`echo ${quote(vars.imgae)}`);\n}\n",
        )
        .args(["env:lab", "show"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("variable `imgae` is not set for this host")
            && out.stderr.contains("show.rhai:2:")
            && out.stderr.contains("did you mean `image`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn describe_lists_the_variables_a_task_reads_and_a_missing_required_one_is_named() {
    let p = Project::new().recipe("docker.rhai", &standard_recipes());
    let out = p.clone().args(["-d", "deploy"]).run();
    out.assert_code(0);
    assert!(
        out.stdout.contains("reads these variables")
            && out
                .stdout
                .lines()
                .any(|l| l.trim_start().starts_with("image ")
                    && l.contains("required unless compose"))
            && out
                .stdout
                .lines()
                .any(|l| l.trim_start().starts_with("keep ") && l.contains("= 2")),
        "{}",
        out.stdout
    );
    let out = p
        .inventory(
            "prod.toml",
            "[vars]\ncontainer = \"app\"\n[env.prod]\nhosts = [\"web-1.invalid\"]\n",
        )
        .args(["env:prod", "deploy:1.0"])
        .run();
    // Exit 2, not a connection failure: nothing was connected to.
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("`image` is required but not set (the repository, without a tag); or set `compose` instead"),
        "{}",
        out.stderr
    );
}

on_engines!(rollback_is_health_gated_picks_a_verified_version_and_keeps_one_version);
fn rollback_is_health_gated_picks_a_verified_version_and_keeps_one_version(engine: Engine) {
    let lab = DockerLab::start(3, engine);
    let checked = lab.standard_project(CHECK);
    let blind = lab.standard_project("");
    let run = |p: &Project, args: &[&str], code: i32| {
        let out = p.clone().args(args).timeout(240).run();
        out.assert_code(code);
        out
    };
    run(&checked, &["env:lab", "deploy:v1"], 0);
    // Without a health check nothing can tell that `broken` is dead: it is recorded ok, but not
    // verified healthy.
    run(&blind, &["env:lab", "deploy:broken"], 0);
    run(&checked, &["env:lab", "deploy:v2"], 0);

    // `rollback` goes to the newest version verified healthy: v1, not the unverified broken.
    let out = run(&checked, &["env:lab", "rollback"], 0);
    for i in 0..3 {
        assert_eq!(lab.app_version(i, "app"), "v1", "host {i}");
    }
    assert!(
        out.stderr
            .contains("rolling back from v2 to v1, the newest release before it verified healthy"),
        "{}",
        out.stderr
    );

    // A rollback onto a crashing version fails its health check, goes back to what ran before,
    // fails the host and stops the rolling run there.
    let out = run(
        &checked,
        &[
            "env:lab",
            "--batch",
            "1",
            "rollback:broken",
            "--output",
            "json",
        ],
        1,
    );
    let summary: serde_json::Value = crate::harness::json_events(&out.stdout)
        .into_iter()
        .find(|e| e["event"] == "summary")
        .unwrap();
    let hosts = summary["hosts"].as_array().unwrap();
    assert_eq!(hosts[0]["status"], "failed", "{summary}");
    assert_eq!(
        hosts[0]["note"], "back on v1 (broken unhealthy)",
        "{summary}"
    );
    assert!(
        hosts[0]["error"]
            .as_str()
            .unwrap()
            .contains("is not healthy; back on v1"),
        "{summary}"
    );
    for h in &hosts[1..] {
        assert_eq!(h["error"], "not started: batch 1 failed", "{summary}");
    }
    for i in 0..3 {
        assert_eq!(lab.app_version(i, "app"), "v1", "host {i}");
    }
    assert!(
        !out.stdout.contains("not on one version"),
        "nothing changed anywhere: {}",
        out.stdout
    );

    // A rolling release that reaches some hosts and not the last one says so loudly.
    let h3_fails = lab.standard_project(CHECK).inventory(
        "lab.toml",
        &checked_inventory(&lab).replacen(
            "[hosts.h3]\n",
            "[hosts.h3]\nvars = { health = { cmd = \"false\", timeout = 3, interval = 0.5 } }\n",
            1,
        ),
    );
    let out = run(&h3_fails, &["env:lab", "--batch", "2", "deploy:v2"], 1);
    assert!(
        out.stderr
            .contains("env:lab is not on one version after `deploy:v2`: v2 on h1, h2; v1 on h3"),
        "{}",
        out.stderr
    );

    // `rollback` brings the environment back to one version: h1 and h2 go back to v1, h3 is
    // already there and is only checked.
    let out = run(&checked, &["env:lab", "rollback"], 0);
    for i in 0..3 {
        assert_eq!(lab.app_version(i, "app"), "v1", "host {i}");
    }
    assert!(out.stderr.contains("already on v1"), "{}", out.stderr);
    assert!(!out.stderr.contains("not on one version"), "{}", out.stderr);
}

/// The inventory `standard_project(CHECK)` writes.
fn checked_inventory(lab: &DockerLab) -> String {
    let p = lab.standard_project(CHECK);
    std::fs::read_to_string(p.path().join("inventory/lab.toml")).unwrap()
}
