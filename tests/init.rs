//! `rigs init` gives a project that works at once, and `rigs inventory import` reads, writes and
//! refuses as its help says.

use crate::harness::{Project, RunOutput};

fn read(p: &Project, rel: &str) -> String {
    std::fs::read_to_string(p.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn rigs(p: &Project, args: &[&str]) -> RunOutput {
    p.clone()
        .env("REGISTRY_PASSWORD", "not-used")
        .args(args)
        .run()
}

#[test]
fn a_new_project_lists_the_standard_tasks_and_dry_runs_a_deploy() {
    let p = Project::new();
    let out = rigs(&p, &["init"]);
    out.assert_code(0);
    for rel in [
        "recipes/docker.rhai",
        "recipes/tasks.rhai",
        "inventory/hosts.toml",
        ".gitignore",
        ".github/workflows/deploy.yml",
    ] {
        assert!(
            out.stdout.contains(&format!("wrote {rel}")),
            "{}",
            out.stdout
        );
    }
    assert!(
        out.stdout
            .contains("rigs env:staging --dry-run deploy:1.0.0"),
        "{}",
        out.stdout
    );

    let list = rigs(&p, &["--list"]);
    list.assert_code(0);
    for task in [
        "deploy:TAG",
        "rollback",
        "status",
        "cleanup",
        "logs",
        "uptime",
    ] {
        assert!(list.stdout.contains(task), "{task}: {}", list.stdout);
    }

    let dry = rigs(&p, &["env:staging", "--dry-run", "deploy:1.0.0"]);
    dry.assert_code(0);
    assert!(
        dry.stderr
            .contains("[stg-1] would run: docker pull -- registry.example.com/app:1.0.0"),
        "{}",
        dry.stderr
    );
    // Before the registry password is at hand, the dry run still runs, and says it is missing.
    let without = p
        .clone()
        .env_remove("REGISTRY_PASSWORD")
        .args(["env:staging", "--dry-run", "deploy:1.0.0"])
        .run();
    without.assert_code(0);
    assert!(
        without
            .stderr
            .contains("secret `REGISTRY_PASSWORD` is not set: a real run fails here"),
        "{}",
        without.stderr
    );
    let production = rigs(&p, &["env:production", "--dry-run", "deploy:1.0.0"]);
    production.assert_code(0);
    assert!(
        production
            .stderr
            .contains("batch 3/3 of deploy:1.0.0: prod-jobs-1"),
        "{}",
        production.stderr
    );
    assert!(read(&p, ".gitignore").lines().any(|l| l == ".rigs/"));
    assert!(read(&p, "recipes/docker.rhai").starts_with(&format!(
        "// Written by `rigs init` (rigs {})",
        env!("CARGO_PKG_VERSION")
    )));
}

#[test]
fn image_and_hosts_reach_the_files_and_the_deploy() {
    let p = Project::new();
    rigs(
        &p,
        &[
            "init",
            "--image",
            "registry.example.com/shop",
            "--hosts",
            "web-1,web-2",
        ],
    )
    .assert_code(0);
    let inventory = read(&p, "inventory/hosts.toml");
    assert!(
        inventory.contains("image = \"registry.example.com/shop\""),
        "{inventory}"
    );
    assert!(
        inventory.contains("registry = \"registry.example.com\""),
        "{inventory}"
    );
    assert!(
        inventory.contains("hosts = [\"web-1\", \"web-2\"]"),
        "{inventory}"
    );
    assert!(
        inventory.contains("[hosts.web-2]\n# address = \"web-2\""),
        "{inventory}"
    );
    let dry = rigs(&p, &["env:staging", "--dry-run", "deploy:1.0.0"]);
    dry.assert_code(0);
    for host in ["web-1", "web-2"] {
        let line = format!(
            "[{host}] would run: docker run --detach --name shop --publish 80:8080 --restart \
             unless-stopped -- registry.example.com/shop:1.0.0"
        );
        assert!(dry.stderr.contains(&line), "{line}\n{}", dry.stderr);
    }
}

#[test]
fn a_second_init_writes_nothing_and_force_names_what_it_replaced() {
    let p = Project::new();
    rigs(&p, &["init"]).assert_code(0);
    std::fs::write(p.path().join("recipes/tasks.rhai"), "// mine\n").unwrap();

    let again = rigs(&p, &["init"]);
    again.assert_code(0);
    assert!(
        again.stdout.contains("nothing was written"),
        "{}",
        again.stdout
    );
    assert!(
        again
            .stdout
            .contains("skipped recipes/tasks.rhai            (it exists; --force replaces it)"),
        "{}",
        again.stdout
    );
    assert_eq!(read(&p, "recipes/tasks.rhai"), "// mine\n");

    let forced = rigs(&p, &["init", "--force"]);
    forced.assert_code(0);
    for rel in [
        "recipes/docker.rhai",
        "recipes/tasks.rhai",
        "inventory/hosts.toml",
    ] {
        assert!(
            forced.stdout.contains(&format!("replaced {rel}")),
            "{}",
            forced.stdout
        );
    }
    assert!(read(&p, "recipes/tasks.rhai").contains("fn uptime()"));
    assert_eq!(read(&p, ".gitignore").matches(".rigs/").count(), 1);
}

#[test]
fn init_writes_into_a_new_folder_and_refuses_bad_input() {
    let p = Project::new();
    let out = rigs(&p, &["init", "ops/app"]);
    out.assert_code(0);
    assert!(out.stdout.contains("cd ops/app"), "{}", out.stdout);
    assert!(p.path().join("ops/app/inventory/hosts.toml").is_file());

    for (args, expect) in [
        (
            &["init", "--imgae", "x"][..],
            "unexpected argument '--imgae'",
        ),
        (&["init", "--hosts", "web-1,,web-2"], "empty host name"),
        (&["init", "--hosts", "deploy@web-1"], "bare host name"),
        (&["init", "--image", "Shop:1"], "not an image repository"),
        (&["init", "a", "b"], "takes one folder"),
    ] {
        let out = rigs(&p, args);
        out.assert_code(2);
        assert!(out.stderr.contains(expect), "{args:?}: {}", out.stderr);
    }
    assert!(!p.path().join("a").exists(), "nothing written on an error");
}

/// The example shows what `rigs init --image registry.example.com/shop --hosts web-1,web-2`
/// writes, byte for byte, except the standard recipes, which it links like every example.
#[test]
fn the_getting_started_example_is_what_init_writes() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/getting-started");
    let p = Project::new();
    rigs(
        &p,
        &[
            "init",
            "fresh",
            "--image",
            "registry.example.com/shop",
            "--hosts",
            "web-1,web-2",
        ],
    )
    .assert_code(0);
    for rel in [
        "recipes/tasks.rhai",
        "inventory/hosts.toml",
        ".gitignore",
        ".github/workflows/deploy.yml",
    ] {
        assert_eq!(
            std::fs::read_to_string(example.join(rel)).unwrap(),
            read(&p, &format!("fresh/{rel}")),
            "examples/getting-started/{rel} differs from what rigs init writes: regenerate it"
        );
    }
    let linked = std::fs::canonicalize(example.join("recipes/docker.rhai")).unwrap();
    let standard = std::fs::canonicalize(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/docker.rhai"),
    )
    .unwrap();
    assert_eq!(linked, standard);
}

#[test]
fn inventory_import_refuses_what_it_cannot_read_or_must_not_replace() {
    let p = Project::new().file("hosts.ini", "[web]\nweb-1\n");
    let out = rigs(&p, &["inventory", "import", "chef", "hosts.ini"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("`ansible`") && out.stderr.contains("`kamal`"),
        "{}",
        out.stderr
    );
    let out = rigs(&p, &["inventory", "import", "ansible", "missing.ini"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("cannot read missing.ini"),
        "{}",
        out.stderr
    );

    let p = p.file("inventory/hosts.toml", "# mine\n");
    let out = rigs(
        &p,
        &[
            "inventory",
            "import",
            "ansible",
            "hosts.ini",
            "-o",
            "inventory/hosts.toml",
        ],
    );
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("inventory/hosts.toml exists; nothing was written"),
        "{}",
        out.stderr
    );
    assert_eq!(read(&p, "inventory/hosts.toml"), "# mine\n");
}

#[test]
fn inventory_import_prints_or_writes_the_inventory_and_warns_on_stderr() {
    let ini = "[web]\nweb-1 ansible_host=10.0.0.1\nweb-2 ansible_password=hunter2\n";
    let p = Project::new().file("hosts.ini", ini);
    let out = rigs(&p, &["inventory", "import", "ansible", "hosts.ini"]);
    out.assert_code(0);
    assert!(out.stdout.contains("[env.web]"), "{}", out.stdout);
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
    assert!(
        out.stderr.starts_with("warning: hosts.ini: host `web-2`"),
        "{}",
        out.stderr
    );

    let out = p
        .clone()
        .stdin(ini)
        .args([
            "inventory",
            "import",
            "ansible",
            "-",
            "-o",
            "inventory/web.toml",
        ])
        .run();
    out.assert_code(0);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("wrote inventory/web.toml from <stdin>"),
        "{}",
        out.stderr
    );
    let list = rigs(&p, &["--list-hosts"]);
    list.assert_code(0);
    assert!(list.stdout.contains("env:web"), "{}", list.stdout);

    std::fs::write(p.path().join("inventory/web.toml"), "# edited\n").unwrap();
    let out = rigs(
        &p,
        &[
            "inventory",
            "import",
            "ansible",
            "hosts.ini",
            "-o",
            "inventory/web.toml",
            "--force",
        ],
    );
    out.assert_code(0);
    assert!(
        out.stderr.contains("replaced inventory/web.toml"),
        "{}",
        out.stderr
    );
    assert!(read(&p, "inventory/web.toml").contains("[env.web]"));

    let out = p
        .clone()
        .stdin("service: [")
        .args(["inventory", "import", "kamal", "-"])
        .run();
    out.assert_code(2);
    assert!(out.stderr.starts_with("error: <stdin>:"), "{}", out.stderr);
}
