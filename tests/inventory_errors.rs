//! Inventory files: every mistake is reported with file, line, column and what to do.

use crate::harness::Project;

fn run_with(inventory: &str) -> crate::harness::RunOutput {
    Project::new()
        .recipe("t.rhai", "fn t() {}")
        .inventory("bad.toml", inventory)
        .args(["env:x", "t"])
        .run()
}

#[test]
fn toml_syntax_error_points_at_the_line() {
    let out = run_with("[env.x]\nhosts = [\"a\",\n");
    out.assert_code(2);
    assert!(out.stderr.contains("inventory/bad.toml:"), "{}", out.stderr);
    assert!(out.stderr.contains("invalid inventory"), "{}", out.stderr);
}

#[test]
fn unknown_key_names_the_key_and_line() {
    let out = run_with("[env.x]\nhosts = [\"a\"]\nhostz = [\"b\"]\n");
    out.assert_code(2);
    assert!(
        out.stderr.contains("unknown field `hostz`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("inventory/bad.toml:3:1"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("3 | hostz"), "{}", out.stderr);
}

#[test]
fn wrong_type_is_reported() {
    let out = run_with("[env.x]\nhosts = \"a\"\n");
    out.assert_code(2);
    assert!(
        out.stderr.contains("inventory/bad.toml:2:"),
        "{}",
        out.stderr
    );
}

#[test]
fn role_naming_a_foreign_host() {
    let out = run_with("[env.x]\nhosts = [\"a\"]\nroles = { web = [\"a\", \"zz\"] }\n");
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("role `web` of environment `x` names `zz`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("inventory/bad.toml:3:"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_port_and_host_strings() {
    let out = run_with("[env.x]\nhosts = [\"a:99999\"]\n");
    out.assert_code(2);
    assert!(out.stderr.contains("invalid port"), "{}", out.stderr);
    assert!(out.stderr.contains(":2:"), "{}", out.stderr);

    let out = run_with("[env.x]\nhosts = [\"a\"]\n[hosts.a]\nport = 0\n");
    out.assert_code(2);
    assert!(
        out.stderr.contains("port 0 is out of range"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("inventory/bad.toml:4:"),
        "{}",
        out.stderr
    );
}

#[test]
fn duplicate_environment_across_files() {
    let out = Project::new()
        .recipe("t.rhai", "fn t() {}")
        .inventory("a.toml", "[env.x]\nhosts = [\"a\"]\n")
        .inventory("b.toml", "\n[env.x]\nhosts = [\"b\"]\n")
        .args(["env:x", "t"])
        .run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("environment `x` is defined twice"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("inventory/b.toml:2:"), "{}", out.stderr);
}

#[test]
fn missing_inventory_file_is_a_usage_error() {
    let out = Project::new()
        .recipe("t.rhai", "fn t() {}")
        .args(["-I", "nope.toml", "env:x", "t"])
        .run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("nope.toml does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn list_hosts_shows_envs_and_roles() {
    let out = Project::new()
        .inventory(
            "i.toml",
            "[env.prod]\nhosts = [\"a\", \"b\"]\nroles = { web = [\"a\"] }\n",
        )
        .args(["--list-hosts"])
        .run();
    out.assert_code(0);
    assert!(out.stdout.contains("env:prod"), "{}", out.stdout);
    assert!(out.stdout.contains("a  [web]"), "{}", out.stdout);
}

#[test]
fn duplicate_host_names_the_other_file() {
    let out = Project::new()
        .recipe("t.rhai", "fn t() {}")
        .inventory("a.toml", "[hosts.web]\naddress = \"10.0.0.1\"\n")
        .inventory(
            "b.toml",
            "[env.x]\nhosts = [\"web\"]\n[hosts.web]\naddress = \"10.0.0.2\"\n",
        )
        .args(["env:x", "t"])
        .run();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("host `web` is defined twice (also in inventory/a.toml)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("inventory/b.toml:3:"), "{}", out.stderr);
}
