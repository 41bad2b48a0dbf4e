//! `rigs inventory import ansible|kamal FILE`: the fixtures under tests/fixtures/import convert to
//! the expected inventories, rigs loads what comes out, and warnings stay off stdout.

use crate::harness::Project;

fn fixture(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn with_fixtures() -> Project {
    let mut p = Project::new();
    for file in [
        "ansible/hosts.ini",
        "ansible/hosts.yml",
        "ansible/inventory.json",
        "kamal/deploy.yml",
    ] {
        p = p.file(file, &fixture(file));
    }
    p
}

#[test]
fn ansible_forms_all_give_the_expected_inventory() {
    let expected = fixture("ansible/expected.toml");
    let p = with_fixtures();
    for file in ["hosts.ini", "hosts.yml", "inventory.json"] {
        let out = p
            .clone()
            .args(["inventory", "import", "ansible", &format!("ansible/{file}")])
            .run();
        out.assert_code(0);
        assert_eq!(
            out.stdout, expected,
            "{file}\n--- stderr ---\n{}",
            out.stderr
        );
        for needle in [
            "ansible_become_password",
            "ansible-vault",
            "Jinja",
            "bastion.example.com",
        ] {
            assert!(
                out.stderr.contains(needle),
                "{file}: {needle}\n{}",
                out.stderr
            );
        }
        assert!(!out.stdout.contains("hunter2"));
        assert!(!out.stderr.contains("hunter2"));
    }
}

#[test]
fn imported_ansible_inventory_loads() {
    let p = with_fixtures();
    let out = p
        .clone()
        .args([
            "inventory",
            "import",
            "ansible",
            "ansible/hosts.ini",
            "-o",
            "out.toml",
        ])
        .run();
    out.assert_code(0);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("warning:"), "{}", out.stderr);
    let written = std::fs::read_to_string(p.path().join("out.toml")).unwrap();
    assert_eq!(written, fixture("ansible/expected.toml"));

    let listed = p.clone().args(["-I", "out.toml", "--list-hosts"]).run();
    listed.assert_code(0);
    for needle in [
        "env:production",
        "env:staging",
        "env:web",
        "env:db",
        "web1.example.com  [web]",
        "db1.example.com  [db]",
    ] {
        assert!(
            listed.stdout.contains(needle),
            "{needle}\n{}",
            listed.stdout
        );
    }
}

#[test]
fn kamal_config_gives_the_expected_inventory() {
    let p = with_fixtures();
    let out = p
        .clone()
        .args([
            "inventory",
            "import",
            "kamal",
            "kamal/deploy.yml",
            "-o",
            "inv/app.toml",
        ])
        .run();
    out.assert_code(0);
    let written = std::fs::read_to_string(p.path().join("inv/app.toml")).unwrap();
    assert_eq!(written, fixture("kamal/expected.toml"));
    for needle in [
        "RAILS_MASTER_KEY",
        "rigs has no proxy",
        "accessories",
        "servers.job.cmd",
    ] {
        assert!(out.stderr.contains(needle), "{needle}\n{}", out.stderr);
    }
    let listed = p.args(["-I", "inv/app.toml", "--list-hosts"]).run();
    listed.assert_code(0);
    assert!(
        listed.stdout.contains("env:production"),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains("192.168.0.13  [job]"),
        "{}",
        listed.stdout
    );
}

#[test]
fn out_file_is_not_replaced_without_force() {
    let p = with_fixtures().file("out.toml", "# mine\n");
    let args = [
        "inventory",
        "import",
        "ansible",
        "ansible/hosts.yml",
        "-o",
        "out.toml",
    ];
    let refused = p.clone().args(args).run();
    refused.assert_code(2);
    assert!(refused.stderr.contains("out.toml"), "{}", refused.stderr);
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.toml")).unwrap(),
        "# mine\n"
    );
    let forced = p.clone().args(args).args(["--force"]).run();
    forced.assert_code(0);
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.toml")).unwrap(),
        fixture("ansible/expected.toml")
    );
}

#[test]
fn broken_input_exits_2_naming_the_file() {
    let p = Project::new()
        .file("broken.yml", "all:\n  hosts: [\n")
        .file("script.py", "#!/usr/bin/env python3\nprint('{}')\n");
    let out = p
        .clone()
        .args(["inventory", "import", "ansible", "broken.yml"])
        .run();
    out.assert_code(2);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("broken.yml"), "{}", out.stderr);
    assert!(out.stderr.contains("not valid YAML"), "{}", out.stderr);
    let script = p
        .args(["inventory", "import", "ansible", "script.py"])
        .run();
    script.assert_code(2);
    assert!(script.stderr.contains("script.py"), "{}", script.stderr);
    assert!(
        script.stderr.contains("ansible-inventory"),
        "{}",
        script.stderr
    );
}
