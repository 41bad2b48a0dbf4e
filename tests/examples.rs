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
