//! The standard Docker recipes over SSH against real engines and a real registry.

use crate::harness::{
    on_engines, shell_quote, DockerLab, Engine, LabOptions, Project, RunOutput, REGISTRY_PASSWORD,
    REGISTRY_USER,
};

/// A project with the repository's standard recipes and an inventory for the lab.
fn project(lab: &DockerLab, extra_vars: &str) -> Project {
    lab.standard_project(extra_vars)
}

/// Runs task `deploy:{tag}` on the lab, with the arguments `also` after it, and checks that it
/// succeeds.
#[track_caller]
fn deploy(p: &Project, tag: &str, also: &[&str]) -> RunOutput {
    let out = p
        .clone()
        .args(["env:lab", &format!("deploy:{tag}")])
        .args(also)
        .timeout(180)
        .run();
    out.assert_code(0);
    out
}

on_engines!(deploy_upgrade_prune_and_rollback_without_the_registry);
fn deploy_upgrade_prune_and_rollback_without_the_registry(engine: Engine) {
    let mut lab = DockerLab::start(2, engine);
    // Two versions newer than v1 and v2, for `keep` to have something to prune.
    lab.push_version("v3");
    lab.push_version("v4");
    let p = project(
        &lab,
        "keep = 2\nhealth = \"wget -qO- http://127.0.0.1:8080/version\"\n",
    );
    let deploy = |tag: &str, also: &[&str]| {
        let out = deploy(&p, tag, also);
        for i in 0..2 {
            assert_eq!(lab.app_version(i, "app"), tag, "host {i}");
            assert_eq!(lab.dangling(i), "", "dangling images on host {i}");
        }
        out
    };

    let out = deploy("v1", &[]);
    assert!(
        out.stderr.contains("running ") && out.stderr.contains("sha256:"),
        "{}",
        out.stderr
    );
    let out = deploy("v2", &["status"]);
    for i in 0..2 {
        assert_eq!(lab.app_tags(i), vec!["previous", "v1", "v2"]);
    }
    assert!(out.stderr.contains("app: running since"), "{}", out.stderr);
    let health = lab.docker_ok(
        0,
        &[
            "inspect",
            "--format",
            "{{json .Config.Healthcheck.Test}}",
            "app",
        ],
    );
    assert!(
        health.contains("wget -qO- http://127.0.0.1:8080/version"),
        "{health}"
    );

    // keep = 2: the running image and :previous are the two kept; the others go, tag and image.
    let id = |tag: &str| lab.image_id(0, &format!("{}:{tag}", lab.image()));
    let v1 = id("v1");
    deploy("v3", &[]);
    for i in 0..2 {
        assert_eq!(lab.app_tags(i), vec!["previous", "v2", "v3"], "host {i}");
        assert_eq!(lab.image_id(i, &v1), "", "v1's image is still on host {i}");
    }
    let v2 = id("v2");
    deploy("v4", &[]);
    for i in 0..2 {
        assert_eq!(lab.app_tags(i), vec!["previous", "v3", "v4"], "host {i}");
        assert_eq!(lab.image_id(i, &v2), "", "v2's image is still on host {i}");
    }
    // Back to the oldest version: the running and :previous images are still the two kept,
    // even though v3 is newer than the one running.
    let v3 = id("v3");
    deploy("v1", &[]);
    for i in 0..2 {
        assert_eq!(lab.app_tags(i), vec!["previous", "v1", "v4"], "host {i}");
        assert_eq!(lab.image_id(i, &v3), "", "v3's image is still on host {i}");
    }

    // The lab's own image name goes with its registry.
    let image = lab.image();
    let tags = |lab: &DockerLab, i: usize| {
        let out = lab.docker_ok(i, &["images", "--format", "{{.Tag}}", &image]);
        let mut tags: Vec<String> = out.lines().map(str::to_string).collect();
        tags.sort();
        tags
    };
    lab.stop_registry();
    let out = p.clone().args(["env:lab", "rollback"]).timeout(180).run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("rolling back from v1 to v4"),
        "{}",
        out.stderr
    );
    for i in 0..2 {
        assert_eq!(lab.app_version(i, "app"), "v4", "host {i} after rollback");
    }
    let out = p
        .clone()
        .args(["env:lab", "rollback:v1"])
        .timeout(180)
        .run();
    out.assert_code(0);
    for i in 0..2 {
        assert_eq!(
            lab.app_version(i, "app"),
            "v1",
            "host {i} after rollback:v1"
        );
        assert_eq!(tags(&lab, i), vec!["previous", "v1", "v4"], "host {i}");
    }

    // Without any history, each host goes back to the image its last release replaced.
    for i in 0..2 {
        std::fs::remove_file(lab.home(i).join(".rigs/history.jsonl")).unwrap();
    }
    let out = p.args(["env:lab", "rollback"]).timeout(180).run();
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "no earlier release in the history of these hosts; going back to IMAGE:previous"
        ),
        "{}",
        out.stderr
    );
    for i in 0..2 {
        assert_eq!(
            lab.app_version(i, "app"),
            "v4",
            "host {i} after rollback to :previous"
        );
    }
}

/// The JSON events of a run, in order.
fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Makes every `docker` that host `i`'s sessions run first append `== docker ARGS` and the
/// command lines of the processes of its SSH session (rigs' `sh -c` and the docker command) to
/// `log`, then run the real one: a look at the host's process list while each one runs.
pub(crate) fn watch_process_list(lab: &DockerLab, i: usize, log: &std::path::Path) {
    let docker = lab.host_bin(i).join("docker");
    let real = std::fs::read_link(&docker).unwrap();
    std::fs::remove_file(&docker).unwrap();
    std::fs::write(
        &docker,
        format!(
            "#!/bin/sh\n{{ echo \"== docker $*\"; ps -ww -s $(ps -o sid= -p $$) -o args= </dev/null; }} >> {}\nexec {} \"$@\"\n",
            shell_quote(&log.display().to_string()),
            shell_quote(&real.display().to_string())
        ),
    )
    .unwrap();
    std::fs::set_permissions(&docker, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

on_engines!(registry_password_and_env_values_reach_no_command_line);
fn registry_password_and_env_values_reach_no_command_line(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let nasty = r#"container_env = { GREETING = "it's a \"test\"; $(echo pwned) `id` & done", SPACES = "a  b   c" }"#;
    // What would give each away on a command line, quoted or not; `****` is the password masked.
    let telltales = ["Reg1stry-s3cret", "****", "echo pwned", "a  b   c"];
    let log = lab.home(0).join("ps.log");
    watch_process_list(&lab, 0, &log);
    let p = project(&lab, &format!("{nasty}\n"));

    let out = p
        .clone()
        .args(["--output", "json", "env:lab", "deploy:v1"])
        .timeout(180)
        .run();
    out.assert_code(0);
    let commands: Vec<String> = events(&out.stdout)
        .iter()
        .filter(|e| e["event"] == "command")
        .map(|e| e["command"].as_str().unwrap().to_string())
        .collect();
    let login = commands
        .iter()
        .find(|c| c.starts_with("docker login "))
        .unwrap_or_else(|| panic!("no login: {commands:?}"));
    assert!(login.contains(" --password-stdin "), "{login}");
    let run = commands
        .iter()
        .find(|c| c.starts_with("docker run "))
        .unwrap_or_else(|| panic!("no docker run: {commands:?}"));
    assert!(run.contains(" --env-file /dev/stdin "), "{run}");
    for command in &commands {
        for t in telltales {
            assert!(!command.contains(t), "`{t}` in the command `{command}`");
        }
    }
    for t in ["Reg1stry-s3cret", "****"] {
        assert!(
            !out.stdout.contains(t) && !out.stderr.contains(t),
            "`{t}` in the output:\n{}{}",
            out.stdout,
            out.stderr
        );
    }
    let summary = events(&out.stdout)
        .into_iter()
        .find(|e| e["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary: {}", out.stdout));
    assert_eq!(summary["hosts"][0]["status"], "ok", "{summary}");

    let env = lab.docker_ok(0, &["exec", "app", "env"]);
    assert!(
        env.contains("GREETING=it's a \"test\"; $(echo pwned) `id` & done"),
        "{env}"
    );
    assert!(env.contains("SPACES=a  b   c"), "{env}");

    // Plain output, with its summary table, shows the commands with nothing masked in them.
    let out = p
        .clone()
        .args(["--output", "plain", "env:lab", "deploy:v2"])
        .timeout(180)
        .run();
    out.assert_code(0);
    for line in [
        format!(
            "[h1] $ docker login --username {REGISTRY_USER} --password-stdin -- {}\n",
            lab.registry()
        ),
        format!(
            "[h1] $ docker run --detach --name app --network none --restart unless-stopped --env-file /dev/stdin -- {}:v2\n",
            lab.image()
        ),
    ] {
        assert!(out.stderr.contains(&line), "{}", out.stderr);
    }
    assert!(out.stderr.contains("\n1 host: 1 ok"), "{}", out.stderr);
    for t in telltales {
        assert!(
            !out.stdout.contains(t) && !out.stderr.contains(t),
            "`{t}` in the plain output:\n{}{}",
            out.stdout,
            out.stderr
        );
    }

    // The host's process list while the logins and runs of both deploys ran.
    let seen = std::fs::read_to_string(&log).unwrap();
    for (what, count) in [
        (
            format!("== docker login --username {REGISTRY_USER} --password-stdin"),
            2,
        ),
        ("== docker run ".to_string(), 2),
    ] {
        assert_eq!(seen.matches(&what).count(), count, "{what}: {seen}");
    }
    assert!(
        seen.lines().any(|l| !l.starts_with("==")
            && l.contains("docker run ")
            && l.contains("--env-file /dev/stdin")),
        "the process list shows the running docker: {seen}"
    );
    for t in telltales {
        assert!(
            !seen.contains(t),
            "`{t}` on the host's process list:\n{seen}"
        );
    }

    let out = p
        .args(["env:lab", "exec:echo hi from $(hostname)"])
        .timeout(60)
        .run();
    out.assert_code(0);
    assert!(out.stdout.contains("[h1] hi from"), "{}", out.stdout);
}

on_engines!(docker_errors_fail_the_host_with_dockers_message);
fn docker_errors_fail_the_host_with_dockers_message(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let out = project(&lab, "")
        .args(["env:lab", "deploy:no-such-tag"])
        .timeout(120)
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("docker::replace: `docker pull"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Error response from daemon"),
        "docker's own message: {}",
        out.stderr
    );
}

#[test]
fn dry_run_deploy_shows_every_docker_command_and_touches_nothing() {
    let recipes = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/docker.rhai");
    let out = Project::new()
        .recipe("docker.rhai", &std::fs::read_to_string(recipes).unwrap())
        .inventory(
            "i.toml",
            "[vars]\nimage = \"registry.example.com/app\"\npublish = [\"80:8080\"]\n[env.prod]\nhosts = [\"web-1.invalid\"]\n",
        )
        .args(["--dry-run", "--output", "plain", "env:prod", "deploy:1.2.3"])
        .run();
    out.assert_code(0);
    for line in [
        "[web-1.invalid] would run: docker pull -- registry.example.com/app:1.2.3",
        "[web-1.invalid] would run: docker run --detach --name app --publish 80:8080 --restart unless-stopped -- registry.example.com/app:1.2.3",
    ] {
        assert!(out.stderr.contains(line), "{line}\n{}", out.stderr);
    }
}

/// `text` with every duration such as `0.02s` written as `T`.
fn untimed(text: &str) -> String {
    let timed = |w: &str| {
        w.strip_suffix('s').is_some_and(|n| {
            n.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty() && [a, b].iter().all(|p| p.bytes().all(|c| c.is_ascii_digit()))
            })
        })
    };
    text.split('\n')
        .map(|line| {
            line.split(' ')
                .map(|word| {
                    let inner = word.trim_start_matches('(').trim_end_matches(')');
                    if timed(inner) {
                        word.replace(inner, "T")
                    } else {
                        word.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn dry_run_status_and_cleanup_inspect_nothing_and_touch_nothing() {
    let recipes = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/docker.rhai");
    let p = Project::new()
        .recipe("docker.rhai", &std::fs::read_to_string(recipes).unwrap())
        .inventory(
            "i.toml",
            "[vars]\nimage = \"registry.example.com/app\"\n[env.prod]\nhosts = [\"web-1.invalid\"]\n",
        );
    let out = p
        .clone()
        .args(["-v", "--dry-run", "--output", "plain", "env:prod", "status"])
        .run();
    out.assert_code(0);
    assert_eq!(
        untimed(&out.stderr),
        "dry run: printing what would run; nothing is executed
[web-1.invalid] task status
[web-1.invalid] would run: docker container inspect --format '{{.Id}}' -- app
[web-1.invalid] would run: docker inspect --format '{{json .}}' -- app
[web-1.invalid] ok status (T)

HOST           STATUS           TIME
web-1.invalid  ok              T
1 host: 1 ok
"
    );
    let out = p
        .args([
            "-v",
            "--dry-run",
            "--output",
            "plain",
            "env:prod",
            "cleanup",
        ])
        .run();
    out.assert_code(0);
    assert_eq!(
        untimed(&out.stderr),
        "dry run: printing what would run; nothing is executed
[web-1.invalid] task cleanup
[web-1.invalid] would run: docker container inspect --format '{{.Id}}' -- app
[web-1.invalid] would run: docker inspect --format '{{json .}}' -- app
[web-1.invalid] would run: docker images --no-trunc --format '{{.ID}} {{.Tag}} {{.CreatedAt}}' -- registry.example.com/app
[web-1.invalid] would run: docker ps --all --quiet --no-trunc
[web-1.invalid] would run: docker images --filter dangling=true --quiet --no-trunc
[web-1.invalid] removed 0 image(s)
[web-1.invalid] ok cleanup (T)

HOST           STATUS           TIME
web-1.invalid  ok              T
1 host: 1 ok
"
    );
}

#[test]
fn docker_functions_take_sudo_and_return_unit_for_nothing_there() {
    let out = Project::new()
        .recipe(
            "d.rhai",
            "fn t() {\n    docker::pull(\"app:1\", #{ sudo: true });\n    info(`id ${type_of(docker::image_id(\"app:1\"))}`);\n    info(`done ${docker::rmi(\"app:0\", #{ allow_fail: true, sudo: true })}`);\n}\n",
        )
        .inventory("i.toml", "[env.prod]\nhosts = [\"web-1.invalid\"]\n")
        .args(["--dry-run", "--output", "plain", "env:prod", "t"])
        .run();
    out.assert_code(0);
    for line in [
        "[web-1.invalid] would run: sudo docker pull -- app:1\n",
        "[web-1.invalid] id ()\n",
        "[web-1.invalid] would run: sudo docker rmi -- app:0\n",
        "[web-1.invalid] done true\n",
    ] {
        assert!(out.stderr.contains(line), "{line}\n{}", out.stderr);
    }
}

on_engines!(promote_copies_the_manifest_then_deploys_the_environment_tag);
fn promote_copies_the_manifest_then_deploys_the_environment_tag(engine: Engine) {
    let lab = DockerLab::start(2, engine);
    let p = project(&lab, "");
    let uploads = lab.blob_uploads();
    assert!(uploads > 0, "the access log shows the test images' uploads");
    let out = p.clone().args(["env:lab", "promote:v2"]).timeout(180).run();
    out.assert_code(0);
    assert_eq!(lab.blob_uploads(), uploads, "promotion uploaded a layer");
    for i in 0..2 {
        assert_eq!(lab.app_version(i, "app"), "v2");
    }
    // The registry holds one manifest under both tags.
    assert!(lab.docker_login(0).status.success());
    let digest = |tag: &str| {
        lab.docker_ok(0, &["pull", &format!("{}:{tag}", lab.image())]);
        lab.docker_ok(
            0,
            &[
                "image",
                "inspect",
                "--format",
                "{{index .RepoDigests 0}}",
                &format!("{}:{tag}", lab.image()),
            ],
        )
    };
    assert_eq!(digest("lab"), digest("v2"));
    assert_eq!(
        out.stderr.matches("(manifest copy)").count(),
        1,
        "copied once: {}",
        out.stderr
    );
    // The password goes to the registry in a header: a leak would show masked.
    assert!(!out.stderr.contains("****"), "{}", out.stderr);

    let out = p.args(["env:lab", "promote:nope"]).timeout(120).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("app:nope is not in the registry"),
        "{}",
        out.stderr
    );
}

/// Runs the standard promote of `app:{tag}` on the lab's one host, checking that it succeeds
/// and reports `app:lab` as now `digest`.
#[track_caller]
fn promote_on_h1(lab: &DockerLab, tag: &str, digest: &str) -> RunOutput {
    let out = project(lab, "")
        .args(["env:lab", &format!("promote:{tag}")])
        .timeout(180)
        .run();
    out.assert_code(0);
    assert!(
        out.stderr
            .contains(&format!("[h1] {}:lab is now {digest}\n", lab.image())),
        "{}",
        out.stderr
    );
    out
}

on_engines!(promote_copies_a_manifest_list_unchanged);
fn promote_copies_a_manifest_list_unchanged(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    assert!(lab.docker_login(0).status.success());
    let image = lab.image();
    let list = format!("{image}:multi");
    let manifest = |args: &[&str]| {
        let out = lab
            .docker_command(0)
            .arg("manifest")
            .args(args)
            .env("DOCKER_CLI_EXPERIMENTAL", "enabled")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker manifest {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    manifest(&[
        "create",
        "--insecure",
        &list,
        &format!("{image}:v1"),
        &format!("{image}:v2"),
    ]);
    manifest(&["annotate", "--arch", "arm64", &list, &format!("{image}:v2")]);
    manifest(&["push", "--insecure", &list]);

    let digest = lab.registry_digest("multi");

    // The standard promote: the list itself becomes app:lab, and the host runs its amd64 image.
    let out = promote_on_h1(&lab, "multi", &digest);
    assert_eq!(
        lab.registry_digest("lab"),
        digest,
        "the list was copied unchanged"
    );
    assert_eq!(
        manifest(&["inspect", "--insecure", &list]),
        manifest(&["inspect", "--insecure", &format!("{image}:lab")])
    );
    // Over a modern controller's OCI manifests, `docker manifest create` makes an OCI index.
    let list_type = match engine {
        Engine::Classic => "application/vnd.docker.distribution.manifest.list.v2+json",
        Engine::Modern => "application/vnd.oci.image.index.v1+json",
    };
    assert!(
        manifest(&["inspect", "--insecure", &format!("{image}:lab")])
            .contains(&format!("\"mediaType\": \"{list_type}\"")),
        "a list, not one platform's manifest"
    );
    assert_eq!(lab.app_version(0, "app"), "v1");
    assert!(!out.stderr.contains("****"), "{}", out.stderr);
}

on_engines!(promote_through_a_registry_that_hands_out_bearer_tokens);
fn promote_through_a_registry_that_hands_out_bearer_tokens(engine: Engine) {
    let mut lab = DockerLab::start(1, engine);
    let v2 = lab.registry_digest("v2");
    lab.use_token_auth();
    assert_eq!(
        lab.basic_auth_status(),
        "401",
        "the registry takes tokens only, not the login itself"
    );
    let image = lab.image();
    let out = promote_on_h1(&lab, "v2", &v2);
    assert_eq!(lab.app_version(0, "app"), "v2");
    let pulled = lab.docker_ok(
        0,
        &[
            "image",
            "inspect",
            "--format",
            "{{range .RepoDigests}}{{println .}}{{end}}",
            &format!("{image}:lab"),
        ],
    );
    assert!(pulled.contains(&format!("{image}@{v2}")), "{pulled}");
    // rigs fetched its own tokens for the copy (pull to read, push to write); the host's engine
    // one to log in and one to pull (through containerd on the modern engine).
    let issued = lab.tokens_issued();
    // The registry's challenge lists a scope's actions in no fixed order.
    let actions = |scope: &str| {
        let (resource, list) = scope.rsplit_once(':').unwrap_or((scope, ""));
        let mut list: Vec<&str> = list.split(',').collect();
        list.sort_unstable();
        format!("{resource}:{}", list.join(","))
    };
    let by = |agent: &str, scope: &str| {
        issued
            .iter()
            .any(|(a, s)| a.starts_with(agent) && actions(s) == actions(scope))
    };
    assert!(by("ureq", "repository:app:pull"), "{issued:?}");
    assert!(by("ureq", "repository:app:pull,push"), "{issued:?}");
    assert!(by("docker", ""), "{issued:?}");
    let puller = match engine {
        Engine::Classic => "docker",
        Engine::Modern => "containerd",
    };
    assert!(by(puller, "repository:app:pull"), "{issued:?}");
    assert!(!out.stderr.contains("****"), "{}", out.stderr);
}

on_engines!(deploy_by_digest_and_serially_with_a_failure_budget);
fn deploy_by_digest_and_serially_with_a_failure_budget(engine: Engine) {
    // h2 cannot reach the registry: its deploy fails.
    let lab = DockerLab::start_with(
        3,
        &LabOptions {
            offline: vec![1],
            ..LabOptions::on(engine)
        },
    );
    assert!(lab.docker_login(0).status.success());
    lab.docker_ok(0, &["pull", &format!("{}:v1", lab.image())]);
    let pinned = lab.docker_ok(
        0,
        &[
            "image",
            "inspect",
            "--format",
            "{{index .RepoDigests 0}}",
            &format!("{}:v1", lab.image()),
        ],
    );
    let digest = pinned.split('@').nth(1).unwrap().to_string();
    lab.docker_ok(0, &["rmi", &format!("{}:v1", lab.image())]);

    let out = project(&lab, "")
        .args([
            "--output",
            "json",
            "--serial",
            "--max-fail",
            "1",
            "env:lab",
            &format!("deploy:{digest}"),
        ])
        .timeout(180)
        .run();
    out.assert_code(1);
    let all = events(&out.stdout);
    let at = |event: &str, host: &str| {
        all.iter()
            .position(|e| e["event"] == event && e["host"] == host)
    };
    // One host at a time, in order; the failure uses up the budget, so h3 never starts.
    assert!(
        at("task_end", "h1").unwrap() < at("task_start", "h2").unwrap(),
        "{}",
        out.stdout
    );
    assert_eq!(at("task_start", "h3"), None, "{}", out.stdout);
    let summary = all
        .iter()
        .rfind(|e| e["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary: {}", out.stdout));
    // (host, status, note, error)
    let rows = crate::harness::summary_hosts(summary);
    assert_eq!(rows[0].0, "h1");
    assert_eq!(rows[0].1, "ok", "{rows:?}");
    assert_eq!(rows[1].1, "failed", "{rows:?}");
    assert!(rows[1].3.contains("connection refused"), "{rows:?}");
    assert_eq!(
        (rows[2].1.as_str(), rows[2].3.as_str()),
        ("skipped", "not started: 1 host(s) failed (--max-fail)"),
        "{rows:?}"
    );
    assert_eq!(lab.app_version(0, "app"), "v1");
    assert!(out.stdout.contains(&digest), "{}", out.stdout);
    for i in 1..3 {
        assert_eq!(
            lab.docker_ok(i, &["ps", "--all", "--quiet"]),
            "",
            "no container on h{}",
            i + 1
        );
    }
}

on_engines!(seed_004_fabric_style_recipe_runs_as_the_example_describes);
fn seed_004_fabric_style_recipe_runs_as_the_example_describes(engine: Engine) {
    let lab = DockerLab::start(2, engine);
    let recipe = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/seed-004-fabric-deploy/recipes/deploy.rhai"
    );
    let mut inventory = lab.inventory_toml();
    inventory.push_str(&format!(
        "\n[vars]\nimage = \"{}\"\ncontainer = \"blogpost-app\"\nregistry = \"{}\"\nregistry_user = \"{REGISTRY_USER}\"\npublish = []\nrestart = \"always\"\nkeep = 2\n",
        lab.image(),
        lab.registry()
    ));
    let p = Project::new()
        .recipe("deploy.rhai", &std::fs::read_to_string(recipe).unwrap())
        .inventory("lab.toml", &inventory)
        .env("REGISTRY_PASSWORD", REGISTRY_PASSWORD);
    lab.ssh
        .write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    for tag in ["v1", "v2"] {
        deploy(&p, tag, &[]);
        for i in 0..2 {
            assert_eq!(lab.app_version(i, "blogpost-app"), tag);
        }
    }
    let out = p.args(["env:lab", "list_containers"]).run();
    out.assert_code(0);
    assert!(
        out.stdout.contains("[h1] ") && out.stdout.contains("blogpost-app"),
        "{}",
        out.stdout
    );
}

on_engines!(cleanup_removes_only_this_apps_leftovers);
fn cleanup_removes_only_this_apps_leftovers(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    assert!(lab.docker_login(0).status.success());
    let image = lab.image();
    let p = project(&lab, "");
    let id = |reference: &str| lab.image_id(0, reference);
    // This app's images as its releases saw them: v1 ran, then v2 replaced it.
    for tag in ["v1", "v2"] {
        deploy(&p, tag, &[]);
    }
    let released = id(&format!("{image}:v1"));
    // By hand, v1's image loses its tags: a leftover of this app.
    lab.docker_ok(0, &["rmi", &format!("{image}:previous")]);
    lab.docker_ok(0, &["tag", &format!("{image}:v2"), &format!("{image}:v1")]);
    // A leftover of this app that no rigs run ever saw: pulled by hand, then its tag moved.
    lab.docker_ok(0, &["pull", &format!("{image}:broken")]);
    let unseen = id(&format!("{image}:broken"));
    lab.docker_ok(
        0,
        &["tag", &format!("{image}:v2"), &format!("{image}:broken")],
    );
    // Another app's untagged image, pulled from the same registry: it must survive.
    let base = lab.base_image();
    lab.docker_ok(0, &["pull", &base]);
    let other = id(&base);
    lab.docker_ok(0, &["tag", &format!("{image}:v2"), &base]);
    let mut leftovers = vec![released.clone(), unseen.clone(), other.clone()];
    leftovers.sort();
    assert_eq!(dangling(&lab), leftovers);

    let out = p.clone().args(["env:lab", "cleanup"]).timeout(120).run();
    out.assert_code(0);
    // The classic image store keeps the `app@sha256:` digest of an untagged pulled image; the
    // containerd image store keeps nothing naming its repository, so only the history tells.
    let mut left = vec![other];
    if engine == Engine::Modern {
        left.push(unseen);
    }
    left.sort();
    assert_eq!(dangling(&lab), left, "{}", out.stderr);
    assert_eq!(id(&released), "", "this app's leftover is gone");
    assert_eq!(lab.app_tags(0), vec!["broken", "v1", "v2"]);
    assert_eq!(lab.app_version(0, "app"), "v2");

    // Once the app's container has stopped, cleanup removes it, and only it.
    lab.docker_ok(0, &["stop", "app"]);
    let containers = |lab: &DockerLab| {
        lab.docker_ok(
            0,
            &[
                "ps",
                "--all",
                "--filter",
                "name=^app$",
                "--format",
                "{{.Names}} {{.State}}",
            ],
        )
    };
    assert_eq!(containers(&lab), "app exited");
    let out = p.args(["env:lab", "cleanup"]).timeout(120).run();
    out.assert_code(0);
    assert_eq!(containers(&lab), "", "{}", out.stderr);
    assert!(
        out.stderr.contains("[h1] removed 0 image(s)"),
        "{}",
        out.stderr
    );
    assert_eq!(lab.app_tags(0), vec!["broken", "v1", "v2"]);
}

/// The full IDs of the untagged images on host 0, sorted.
fn dangling(lab: &DockerLab) -> Vec<String> {
    let out = lab.docker_ok(
        0,
        &[
            "images",
            "--filter",
            "dangling=true",
            "--quiet",
            "--no-trunc",
        ],
    );
    let mut ids: Vec<String> = out.lines().map(str::to_string).collect();
    ids.sort();
    ids
}
