//! The standard Docker recipes over SSH against real engines and a real registry.

use crate::harness::{on_engines, DockerLab, Engine, Project, REGISTRY_PASSWORD, REGISTRY_USER};

/// A project with the repository's standard recipes and an inventory for the lab.
fn project(lab: &DockerLab, extra_vars: &str) -> Project {
    lab.standard_project(extra_vars)
}

on_engines!(deploy_upgrade_prune_and_rollback_without_the_registry);
fn deploy_upgrade_prune_and_rollback_without_the_registry(engine: Engine) {
    let mut lab = DockerLab::start(3, engine);
    let p = project(
        &lab,
        "keep = 2\nhealth = \"wget -qO- http://127.0.0.1:8080/version\"\n",
    );

    let out = p.clone().args(["env:lab", "deploy:v1"]).timeout(180).run();
    out.assert_code(0);
    for i in 0..3 {
        assert_eq!(lab.app_version(i, "app"), "v1");
    }
    assert!(
        out.stderr.contains("running ") && out.stderr.contains("sha256:"),
        "{}",
        out.stderr
    );

    let out = p
        .clone()
        .args(["env:lab", "deploy:v2", "status"])
        .timeout(180)
        .run();
    out.assert_code(0);
    for i in 0..3 {
        assert_eq!(lab.app_version(i, "app"), "v2");
        assert_eq!(lab.dangling(i), "", "dangling images on host {i}");
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

    // A third version: v1 is now neither running nor previous, and keep = 2 removes it.
    let out = p.clone().args(["env:lab", "deploy:v1"]).timeout(180).run();
    out.assert_code(0);
    let out = p.clone().args(["env:lab", "deploy:v2"]).timeout(180).run();
    out.assert_code(0);
    for i in 0..3 {
        assert_eq!(lab.dangling(i), "", "dangling images on host {i}");
    }

    lab.stop_registry();
    let out = p.clone().args(["env:lab", "rollback"]).timeout(180).run();
    out.assert_code(0);
    for i in 0..3 {
        assert_eq!(lab.app_version(i, "app"), "v1", "host {i} after rollback");
    }
    let out = p.args(["env:lab", "rollback:v2"]).timeout(180).run();
    out.assert_code(0);
    for i in 0..3 {
        assert_eq!(
            lab.app_version(i, "app"),
            "v2",
            "host {i} after rollback:v2"
        );
    }
}

on_engines!(registry_password_never_shows_and_env_values_arrive_intact);
fn registry_password_never_shows_and_env_values_arrive_intact(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let nasty = r#"container_env = { GREETING = "it's a \"test\"; $(echo pwned) `id` & done", SPACES = "a  b   c" }"#;
    let p = project(&lab, &format!("{nasty}\n"));
    let out = p
        .clone()
        .args(["--output", "json", "env:lab", "deploy:v1"])
        .timeout(180)
        .run();
    out.assert_code(0);
    assert!(!out.stdout.contains(REGISTRY_PASSWORD) && !out.stderr.contains(REGISTRY_PASSWORD));
    assert!(out.stdout.contains("--password-stdin"), "{}", out.stdout);
    let env = lab.docker_ok(0, &["exec", "app", "env"]);
    assert!(
        env.contains("GREETING=it's a \"test\"; $(echo pwned) `id` & done"),
        "{env}"
    );
    assert!(env.contains("SPACES=a  b   c"), "{env}");

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
    assert!(!out.stderr.contains(REGISTRY_PASSWORD));

    let out = p.args(["env:lab", "promote:nope"]).timeout(120).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("app:nope is not in the registry"),
        "{}",
        out.stderr
    );
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

    let p = project(&lab, "");
    let recipe = format!(
        "fn copy() {{ let r = registry::copy_tag(\"{}\", \"app\", \"multi\", \"multi-copy\", #{{ user: \"{REGISTRY_USER}\", password: secret(\"REGISTRY_PASSWORD\") }}); info(`${{r.media_type}} ${{r.digest}}`); }}",
        lab.registry()
    );
    let out = p
        .recipe("copy.rhai", &recipe)
        .args(["-H", "h1", "copy"])
        .run();
    out.assert_code(0);
    // Over a modern controller's OCI manifests, `docker manifest create` makes an OCI index.
    let list_type = match engine {
        Engine::Classic => "application/vnd.docker.distribution.manifest.list.v2+json",
        Engine::Modern => "application/vnd.oci.image.index.v1+json",
    };
    assert!(
        out.stderr.contains(&format!("{list_type} sha256:")),
        "{}",
        out.stderr
    );
    let original = manifest(&["inspect", "--insecure", &list]);
    let copy = manifest(&["inspect", "--insecure", &format!("{image}:multi-copy")]);
    assert_eq!(original, copy);
}

on_engines!(deploy_by_digest_and_serially_with_a_failure_budget);
fn deploy_by_digest_and_serially_with_a_failure_budget(engine: Engine) {
    let lab = DockerLab::start(2, engine);
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

    let p = project(&lab, "");
    let out = p
        .clone()
        .args([
            "--serial",
            "--max-fail",
            "1",
            "env:lab",
            &format!("deploy:{digest}"),
        ])
        .timeout(180)
        .run();
    out.assert_code(0);
    for i in 0..2 {
        assert_eq!(lab.app_version(i, "app"), "v1");
    }
    assert!(out.stderr.contains(&digest), "{}", out.stderr);
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
        let out = p
            .clone()
            .args(["env:lab", &format!("deploy:{tag}")])
            .timeout(180)
            .run();
        out.assert_code(0);
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
        let out = p
            .clone()
            .args(["env:lab", &format!("deploy:{tag}")])
            .timeout(180)
            .run();
        out.assert_code(0);
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

    let out = p.args(["env:lab", "cleanup"]).timeout(120).run();
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
