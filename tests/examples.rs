//! The examples stay runnable: every example's recipes load, and the release and air-gapped
//! examples do what their READMEs say in a dry run.

use crate::harness::Project;

fn example(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn every_example_lists_its_tasks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let recipes = entry.path().join("recipes");
        if !recipes.is_dir() {
            continue;
        }
        let out = Project::new()
            .args(["-f", recipes.to_str().unwrap(), "--list"])
            .run();
        out.assert_code(0);
        assert!(
            out.stdout.contains("Available tasks"),
            "{}: {}",
            entry.path().display(),
            out.stdout
        );
        checked += 1;
    }
    assert!(checked >= 8, "{checked} examples with recipes");
}

fn dry_run(name: &str, args: &[&str]) -> String {
    let dir = example(name);
    let mut all = vec![
        "-f".to_string(),
        dir.join("recipes").display().to_string(),
        "-I".to_string(),
        dir.join("inventory").display().to_string(),
        "--dry-run".to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = Project::new()
        .env("REGISTRY_PASSWORD", "not-used")
        .args(all)
        .run();
    out.assert_code(0);
    out.stderr
}

#[test]
fn the_safe_releases_example_rolls_canary_first_and_swaps_colours() {
    let text = dry_run(
        "safe-releases",
        &["env:production", "--canary", "1", "deploy:2.4.0"],
    );
    assert!(
        text.contains("batch 1/3 of deploy:2.4.0: web-1\n"),
        "{text}"
    );
    assert!(
        text.contains("batch 2/3 of deploy:2.4.0: web-2, web-3\n"),
        "{text}"
    );
    assert!(text.contains("http://127.0.0.1:8081/health"), "{text}");
    let text = dry_run("safe-releases", &["env:edge", "blue_green:2.4.0"]);
    assert!(
        text.contains("--name shop-green --publish 127.0.0.1:8082:8080"),
        "{text}"
    );
    assert!(text.contains("sudo nginx -s reload"), "{text}");
}

#[test]
fn the_airgapped_example_ships_instead_of_pulling() {
    let text = dry_run("airgapped", &["env:vessel", "deliver:1.2.3"]);
    assert!(
        text.contains("[vessel-a] would run: docker load  # registry.example.com/telemetry:1.2.3"),
        "{text}"
    );
    assert!(!text.contains("docker pull"), "{text}");
}

/// A project holding copies of the repository's own `recipes/` and `inventory/`.
fn repository_copy() -> Project {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut p = Project::new();
    for folder in ["recipes", "inventory"] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            p = p.file(&format!("{folder}/{name}"), &text);
        }
    }
    p
}

#[test]
fn the_readmes_demo_runs_on_this_machine() {
    // README: `cargo run -- env:local demo` from the root of a clone.
    let out = repository_copy().args(["env:local", "demo"]).run();
    out.assert_code(0);
    let builds: Vec<&str> = out
        .stderr
        .lines()
        .filter_map(|l| l.split_once("; shared build id: build-").map(|(_, id)| id))
        .collect();
    assert_eq!(builds.len(), 2, "{}", out.stderr);
    assert_eq!(builds[0], builds[1], "one build id for both hosts");
    assert!(
        builds[0].len() == 14 && builds[0].bytes().all(|b| b.is_ascii_digit()),
        "{}",
        builds[0]
    );
    // The `once` block ran a single time.
    assert_eq!(
        out.stderr
            .matches("local$ date -u +build-%Y%m%d%H%M%S\n")
            .count(),
        1,
        "{}",
        out.stderr
    );
    for (host, colour) in [("local-1", "blue"), ("local-2", "green")] {
        for line in [
            format!("[{host}] hello from rigs! I am {host}, my colour is {colour}; shared build id: build-"),
            format!("[{host}] $ uname -sr\n"),
            format!("[{host}] $ echo $((6 * 7))\n"),
            format!("[{host}] the shell says 6 * 7 = 42\n"),
            format!("[{host}] $ ls /nonexistent-rigs-demo\n"),
            format!("[{host}] a failing command returns code 2 when allow_fail is set\n"),
        ] {
            assert!(out.stderr.contains(&line), "{line}\n{}", out.stderr);
        }
        assert!(
            out.stdout.contains(&format!("[{host}] Linux ")),
            "{}",
            out.stdout
        );
    }
    assert!(out.stderr.ends_with("\n2 hosts: 2 ok\n"), "{}", out.stderr);
}

/// The examples run the standard recipes themselves, never a copy that drifts: a copy is a file
/// that starts like `recipes/docker.rhai`; the examples link to it instead.
#[test]
fn examples_link_to_the_standard_recipes_instead_of_copying_them() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let standard = std::fs::canonicalize(root.join("recipes/docker.rhai")).unwrap();
    let first_line = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    let marker = first_line(&standard);
    let mut linked = 0;
    for entry in std::fs::read_dir(root.join("examples")).unwrap().flatten() {
        let Ok(files) = std::fs::read_dir(entry.path().join("recipes")) else {
            continue;
        };
        for file in files.flatten().map(|f| f.path()) {
            if std::fs::canonicalize(&file).unwrap() == standard {
                linked += 1;
            } else if file.is_file() {
                assert_ne!(
                    first_line(&file),
                    marker,
                    "{} copies the standard recipes",
                    file.display()
                );
            }
        }
    }
    assert!(linked >= 1, "safe-releases links to recipes/docker.rhai");
}

#[test]
fn the_compose_example_rolls_its_roles_and_keeps_the_secret_off_the_lines() {
    let dir = example("compose");
    let mut p = Project::new()
        .env("REGISTRY_PASSWORD", "not-used")
        .env("DB_PASSWORD", "example-db-secret");
    // The compose file's path is relative to the folder rigs runs in, as in the README.
    for file in ["compose.yaml", "web.env", "config/proxy.conf"] {
        let text = std::fs::read_to_string(dir.join("deploy").join(file)).unwrap();
        p = p.file(&format!("deploy/{file}"), &text);
    }
    let out = p
        .args([
            "-f",
            dir.join("recipes").to_str().unwrap(),
            "-I",
            dir.join("inventory").to_str().unwrap(),
            "--dry-run",
            "env:production",
            "deploy:2.4.0",
        ])
        .run();
    out.assert_code(0);
    let text = out.stderr;
    assert!(text.contains("batch 1/3 of deploy:2.4.0: web-1"), "{text}");
    assert!(
        text.contains("up --detach --wait --wait-timeout 120 --pull never --no-build --remove-orphans --no-deps web proxy"),
        "{text}"
    );
    assert!(text.contains("[job-1] would run: docker compose"), "{text}");
    assert!(text.contains("rm --stop --force web proxy"), "{text}");
    assert!(
        text.contains("put compose.yaml, web.env, config/proxy.conf into"),
        "{text}"
    );
    assert!(!text.contains("example-db-secret"), "{text}");
}
