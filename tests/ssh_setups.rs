//! SSH as users have it: ssh_config aliases with Include, jump hosts, encrypted and RSA keys,
//! password-only hosts, and connection faults.

use std::path::Path;

use crate::harness::{BastionLab, Project, SshLab};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const HELLO: &str =
    "/// Say hello.\nfn hello() { run(\"echo hello from $(hostname) as $(whoami)\"); }\n";

#[test]
fn ssh_config_aliases_with_include_just_work() {
    let lab = SshLab::start(2);
    let p = Project::new()
        .recipe("t.rhai", HELLO)
        .inventory("i.toml", "[env.prod]\nhosts = [\"web-a\", \"web-b\"]\n");
    let ssh = p.path().join("home/.ssh");
    lab.write_known_hosts(&ssh.join("lab_known_hosts"));
    write(
        &ssh.join("config"),
        "Include conf.d/*.conf\n\nHost *\n    ConnectTimeout 5\n",
    );
    let mut conf = String::new();
    for (alias, i) in [("web-a", 0), ("web-b", 1)] {
        conf.push_str(&format!(
            "Host {alias}\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {}\n    \
             IdentitiesOnly yes\n    UserKnownHostsFile ~/.ssh/lab_known_hosts\n",
            lab.host(i).port,
            lab.user(),
            lab.client_key_path().display()
        ));
    }
    write(&ssh.join("conf.d/lab.conf"), &conf);
    let out = p.args(["env:prod", "hello"]).run();
    out.assert_code(0);
    assert!(
        out.stdout.contains("[web-a] hello from") && out.stdout.contains("[web-b] hello from"),
        "{}",
        out.stdout
    );
    lab.assert_connections(1);
}

fn bastion_config(lab: &BastionLab, p: &Project, target_jump: &str) {
    let ssh = p.path().join("home/.ssh");
    lab.write_known_hosts(&ssh.join("known_hosts"));
    let key = lab.client_key_path().display();
    write(
        &ssh.join("config"),
        &format!(
            "Host bastion\n    HostName {}\n    Port {}\n    User {user}\n    IdentityFile {key}\n\n\
             Host app-1 app-2\n    HostName 127.0.0.1\n    Port {}\n    User {user}\n    IdentityFile {key}\n{target_jump}",
            lab.bastion.addr(),
            lab.bastion.port,
            lab.target.port,
            user = lab.user(),
        ),
    );
}

#[test]
fn proxy_jump_reaches_a_target_only_the_bastion_can_see() {
    let lab = BastionLab::start();
    let p = Project::new()
        .recipe("t.rhai", HELLO)
        .inventory("i.toml", "[env.prod]\nhosts = [\"app-1\", \"app-2\"]\n");
    bastion_config(&lab, &p, "    ProxyJump bastion\n");

    // Without the jump the target is unreachable: it listens inside the namespace only.
    let direct = p
        .clone()
        .args([
            "-H",
            &format!("{}@127.0.0.1:{}", lab.user(), lab.target.port),
            "--",
            "true",
        ])
        .run();
    direct.assert_code(1);
    assert!(
        direct.stderr.contains(&format!(
            "cannot connect to {}@[127.0.0.1]:{}: Connection refused",
            lab.user(),
            lab.target.port
        )),
        "{}",
        direct.stderr
    );

    let out = p.args(["-v", "env:prod", "hello"]).run();
    out.assert_code(0);
    assert!(
        out.stdout.contains("[app-1] hello from") && out.stdout.contains("[app-2] hello from"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("(jump host)"), "{}", out.stderr);
    // One bastion connection shared by both hosts behind it; both names are one server, so they
    // share one connection to it as well.
    assert_eq!(
        lab.bastion.accepted_connections(),
        1,
        "{}",
        lab.bastion.log()
    );
    assert_eq!(lab.target.accepted_connections(), 1, "{}", lab.target.log());
}

#[test]
fn jump_chains_and_inventory_jump_setting() {
    let lab = BastionLab::start();
    // Two hops: through the bastion, then through the bastion again (as seen from inside it).
    let inventory = "[env.prod]\nhosts = [\"app-1\"]\njump = [\"bastion\", \"bastion\"]\n";
    let p = Project::new()
        .recipe("t.rhai", HELLO)
        .inventory("i.toml", inventory);
    bastion_config(&lab, &p, "");
    let out = p.args(["env:prod", "hello"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("[app-1] hello from"), "{}", out.stdout);
    assert_eq!(
        lab.bastion.accepted_connections(),
        2,
        "{}",
        lab.bastion.log()
    );
}

/// An ssh_config with the outer `bastion`, the `inner` bastion only it can reach, and `app-1`
/// (the target) with `app_extra` lines of its own.
fn two_hop_config(lab: &BastionLab, p: &Project, inner_extra: &str, app_extra: &str) {
    let ssh = p.path().join("home/.ssh");
    lab.write_known_hosts(&ssh.join("known_hosts"));
    let inner = lab.inner.as_ref().expect("a two-hop lab");
    let entry = |name: &str, address: &str, port: u16, extra: &str| {
        format!(
            "Host {name}\n    HostName {address}\n    Port {port}\n    User {}\n    IdentityFile {}\n{extra}\n",
            lab.user(),
            lab.client_key_path().display()
        )
    };
    write(
        &ssh.join("config"),
        &(entry("bastion", lab.bastion.addr(), lab.bastion.port, "")
            + &entry("inner", "127.0.0.1", inner.port, inner_extra)
            + &entry("app-1", "127.0.0.1", lab.target.port, app_extra)),
    );
}

/// Logins each server of a two-hop lab accepted: bastion, inner bastion, target.
fn logins(lab: &BastionLab) -> [usize; 3] {
    [
        lab.bastion.accepted_connections(),
        lab.inner.as_ref().unwrap().accepted_connections(),
        lab.target.accepted_connections(),
    ]
}

#[test]
fn jump_chains_cross_different_bastions_in_order() {
    let lab = BastionLab::start_two_hops();
    let hello = |p: Project| {
        let out = p.args(["-v", "env:prod", "hello"]).run();
        out.assert_code(0);
        assert!(out.stdout.contains("[app-1] hello from"), "{}", out.stdout);
        assert_eq!(
            out.stderr.matches("(jump host)").count(),
            2,
            "{}",
            out.stderr
        );
    };
    let project = |inventory: &str| {
        Project::new()
            .recipe("t.rhai", HELLO)
            .inventory("i.toml", inventory)
    };
    let plain = "[env.prod]\nhosts = [\"app-1\"]\n";

    // ProxyJump with a comma list: bastion first, then inner, then the target. The inner
    // bastion listens where only the bastion can reach it, and every hop logs in once.
    let p = project(plain);
    two_hop_config(&lab, &p, "", "    ProxyJump bastion,inner\n");
    hello(p);
    assert_eq!(logins(&lab), [1, 1, 1], "{}", lab.bastion.log());

    // The inventory's `jump` list, replacing ssh_config's ProxyJump (here a wrong one).
    let p = project("[env.prod]\nhosts = [\"app-1\"]\njump = [\"bastion\", \"inner\"]\n");
    two_hop_config(&lab, &p, "", "    ProxyJump nowhere.invalid\n");
    hello(p);
    assert_eq!(logins(&lab), [2, 2, 2], "{}", lab.bastion.log());

    // A jump host's own jump is followed first: app-1 names only `inner`, whose own
    // ProxyJump is `bastion`.
    let p = project(plain);
    two_hop_config(&lab, &p, "    ProxyJump bastion\n", "    ProxyJump inner\n");
    hello(p);
    assert_eq!(logins(&lab), [3, 3, 3], "{}", lab.bastion.log());
}

#[test]
fn jump_hosts_nested_too_deep_stop_before_anything_runs() {
    let port = crate::harness::unused_port();
    // Each hop's own jump is followed first: `loop` jumps through itself without end.
    let inventory = format!(
        "[env.prod]\nhosts = [\"app\"]\n[hosts.app]\naddress = \"127.0.0.1\"\nport = {port}\njump = \"loop\"\n\
         [hosts.loop]\naddress = \"127.0.0.1\"\nport = {port}\njump = \"loop\"\n"
    );
    let p = Project::new()
        .recipe("t.rhai", "fn t() { local(\"touch ran\"); run(\"true\"); }")
        .inventory("i.toml", &inventory);
    let dir = p.path().to_path_buf();
    let out = p.args(["env:prod", "t"]).run();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("jump hosts nest more than 8 deep (loop)"),
        "{}",
        out.stderr
    );
    assert!(!dir.join("ran").exists(), "the task ran: {}", out.stderr);
}

#[test]
fn unknown_bastion_key_is_refused_and_named() {
    let lab = BastionLab::start();
    let p = Project::new()
        .recipe("t.rhai", HELLO)
        .inventory("i.toml", "[env.prod]\nhosts = [\"app-1\"]\n");
    bastion_config(&lab, &p, "    ProxyJump bastion\n");
    std::fs::write(p.path().join("home/.ssh/known_hosts"), "").unwrap();
    let out = p.args(["env:prod", "hello"]).run();
    out.assert_code(1);
    assert!(out.stderr.contains("jump host"), "{}", out.stderr);
    assert!(out.stderr.contains("is not known"), "{}", out.stderr);
}

fn key_project(lab: &SshLab, key: &Path) -> Project {
    let p = Project::new().recipe("t.rhai", HELLO).inventory(
        "i.toml",
        &format!(
            "[env.one]\nhosts = [\"k\"]\n[hosts.k]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nidentity = \"{}\"\n",
            lab.host(0).port,
            lab.user(),
            key.display()
        ),
    );
    lab.write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    p
}

#[test]
fn encrypted_key_with_passphrase_from_environment() {
    let lab = SshLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("locked_ed25519");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "open sesame", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    lab.authorize(&key.with_extension("pub"));

    let out = key_project(&lab, &key)
        .env("RIGS_KEY_PASSPHRASE", "open sesame")
        .args(["env:one", "hello"])
        .run();
    out.assert_code(0);

    let out = key_project(&lab, &key)
        .args(["env:one", "hello"])
        .without_terminal()
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("is encrypted: set RIGS_KEY_PASSPHRASE"),
        "{}",
        out.stderr
    );

    let out = key_project(&lab, &key)
        .env("RIGS_KEY_PASSPHRASE", "wrong")
        .args(["env:one", "hello"])
        .without_terminal()
        .run();
    out.assert_code(1);
    assert!(out.stderr.contains("cannot decrypt"), "{}", out.stderr);

    // On a terminal the passphrase is asked once, before any host starts.
    let out = key_project(&lab, &key)
        .args(["--output", "plain", "env:one", "hello"])
        .run_in_terminal("open sesame\n");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.matches("Enter passphrase for key").count(),
        1,
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("open sesame"),
        "echoed: {}",
        out.stdout
    );
}

#[test]
fn rsa_keys_sign_with_sha2() {
    let lab = SshLab::start_with(
        1,
        "PubkeyAcceptedAlgorithms rsa-sha2-512,rsa-sha2-256,ssh-ed25519",
    );
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_rsa");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    lab.authorize(&key.with_extension("pub"));
    let out = key_project(&lab, &key).args(["env:one", "hello"]).run();
    out.assert_code(0);
    assert!(
        lab.host(0).log().contains("RSA SHA256:"),
        "{}",
        lab.host(0).log()
    );
}

#[test]
fn connect_timeout_on_a_server_that_never_answers() {
    // A socket that is listening but never accepted: TCP completes, no SSH banner ever comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let out = Project::new()
        .args([
            "--connect-timeout",
            "1",
            "-H",
            &format!("127.0.0.1:{port}"),
            "--",
            "true",
        ])
        .run();
    out.assert_code(1);
    assert!(out.stderr.contains("no answer within 1s"), "{}", out.stderr);
    drop(silent);
}

/// Runs task `slow` of `recipe` on two lab hosts, applies `fault` to h1 once both have started,
/// and checks that h1 fails with a lost connection while h2 finishes. Returns rigs' stderr and
/// how long rigs ran after the fault.
fn lose_h1_mid_command(
    recipe: &str,
    ssh_config: &str,
    fault: impl FnOnce(&mut SshLab),
) -> (String, std::time::Duration) {
    let mut lab = SshLab::start(2);
    let p = lab.project_with_recipe(recipe);
    write(&p.path().join("home/.ssh/config"), ssh_config);
    let p = p.args(["--output", "plain", "env:lab", "slow"]);
    let child = p.spawn_until("started", 2);
    fault(&mut lab);
    let faulted = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let after = faulted.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("[h1] failed slow: connection lost during"),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("h2 ") && l.contains(" ok ")),
        "{stderr}"
    );
    (stderr, after)
}

#[test]
fn a_host_that_dies_mid_command_fails_alone() {
    let (stderr, _) = lose_h1_mid_command(
        "fn slow() { run(\"echo started; sleep 20\"); }",
        "",
        |lab| lab.crash(0),
    );
    assert!(
        stderr.contains("connection lost during `echo started; sleep 20`"),
        "{stderr}"
    );
}

#[test]
fn max_fail_stops_starting_hosts() {
    let mut inventory = String::from("[env.many]\nhosts = [\"a\", \"b\", \"c\", \"d\", \"e\"]\n");
    for h in ["a", "b", "c", "d", "e"] {
        inventory.push_str(&format!("[hosts.{h}]\nconnection = \"local\"\n"));
    }
    let p = Project::new()
        .recipe(
            "t.rhai",
            "fn t() { if host.name == \"a\" || host.name == \"b\" { fail(\"broken\"); } }",
        )
        .inventory("i.toml", &inventory);
    let out = p
        .clone()
        .args(["--serial", "--max-fail", "2", "env:many", "t"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("5 hosts: 0 ok, 2 failed, 3 skipped"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("not started: 2 host(s) failed (--max-fail)"),
        "{}",
        out.stderr
    );

    for skipped in ["c", "d", "e"] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&format!("{skipped} "))
                    && l.contains(" skipped ")
                    && l.ends_with("not started: 2 host(s) failed (--max-fail)")),
            "{skipped}: {}",
            out.stderr
        );
    }

    // 50% of 5 hosts is 2.5, rounded up to 3: with a, b and c failing, d and e never start.
    // Ignoring the flag would run them (2 ok); rounding down would stop after b.
    let p3 = Project::new()
        .recipe(
            "t.rhai",
            "fn t() { if host.name == \"a\" || host.name == \"b\" || host.name == \"c\" { fail(\"broken\"); } }",
        )
        .inventory("i.toml", &inventory);
    let out = p3
        .args(["--serial", "--max-fail", "50%", "env:many", "t"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("5 hosts: 0 ok, 3 failed, 2 skipped"),
        "{}",
        out.stderr
    );
    for skipped in ["d", "e"] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&format!("{skipped} "))
                    && l.contains(" skipped ")
                    && l.ends_with("not started: 3 host(s) failed (--max-fail)")),
            "{skipped}: {}",
            out.stderr
        );
    }

    let out = p.args(["--max-fail", "zero", "env:many", "t"]).run();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("--max-fail expects N or P%, got `zero`"),
        "{}",
        out.stderr
    );
}

#[test]
fn keepalives_detect_a_host_that_stops_answering() {
    // Three unanswered keepalives a second apart: lost after about 3 s. The built-in interval
    // (15 s) would take about 45 s, so the bound shows that `ServerAliveInterval` is obeyed.
    let (stderr, after) = lose_h1_mid_command(
        "fn slow() { let t = if host.name == \"h1\" { 60 } else { 2 }; run(`echo started; sleep ${t}`); }",
        "Host *\n    ServerAliveInterval 1\n",
        |lab| lab.freeze(0),
    );
    assert!(
        after < std::time::Duration::from_secs(15),
        "the frozen host was given up on only after {after:?}: {stderr}"
    );
}

#[test]
fn a_burst_of_connections_to_one_strict_server_all_get_through() {
    // A server configured to drop unauthenticated connections beyond the first one
    // (MaxStartups); rigs caps handshakes per server and retries dropped ones.
    let lab = SshLab::start_with(1, "MaxStartups 1:100:1");
    let keys = tempfile::tempdir().unwrap();
    let mut inventory = String::from("[env.burst]\nhosts = [");
    let names: Vec<String> = (0..12).map(|i| format!("\"n{i}\"")).collect();
    inventory.push_str(&names.join(", "));
    inventory.push_str("]\n");
    for i in 0..12 {
        // Separate key paths make separate connections to the one server.
        let link = keys.path().join(format!("key{i}"));
        std::os::unix::fs::symlink(lab.client_key_path(), &link).unwrap();
        inventory.push_str(&format!(
            "[hosts.n{i}]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nidentity = \"{}\"\n",
            lab.host(0).port,
            lab.user(),
            link.display()
        ));
    }
    let p = Project::new()
        .recipe("t.rhai", HELLO)
        .inventory("i.toml", &inventory);
    lab.write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    let out = p.args(["env:burst", "hello"]).run();
    out.assert_code(0);
    assert_eq!(
        lab.host(0).accepted_connections(),
        12,
        "{}",
        lab.host(0).log()
    );
}

/// A project for lab host h1 under the alias `web`, known by its key.
fn alias_project(lab: &SshLab, inventory: &str) -> Project {
    let p = Project::new()
        .recipe("t.rhai", HELLO)
        .inventory("i.toml", inventory);
    lab.write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    p
}

/// ssh_config text that sends `web` to `port` of the lab.
fn alias_config(lab: &SshLab, port: u16) -> String {
    format!(
        "Host web\n    HostName 127.0.0.1\n    Port {port}\n    User {}\n    IdentityFile {}\n",
        lab.user(),
        lab.client_key_path().display()
    )
}

#[test]
fn ssh_config_file_given_with_f_replaces_the_users_own() {
    let lab = SshLab::start(1);
    let inventory = "[env.prod]\nhosts = [\"web\"]\n";
    let dead = crate::harness::unused_port();
    // ~/.ssh/config sends `web` to a port where nothing listens; the -F file to the lab.
    let p = alias_project(&lab, inventory)
        .file("home/.ssh/config", &alias_config(&lab, dead))
        .file("lab.conf", &alias_config(&lab, lab.host(0).port));

    let out = p.clone().args(["env:prod", "hello"]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains(&format!("[127.0.0.1]:{dead}: Connection refused")),
        "~/.ssh/config is read by default: {}",
        out.stderr
    );

    let out = p
        .clone()
        .args(["-F", "lab.conf", "env:prod", "hello"])
        .run();
    out.assert_code(0);
    assert!(out.stdout.contains("[web] hello from"), "{}", out.stdout);

    let out = p
        .clone()
        .args(["--ssh-config", "missing.conf", "env:prod", "hello"])
        .run();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("error: cannot read ssh config missing.conf: No such file or directory"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("hello from"), "{}", out.stdout);
    lab.assert_connections(1);
}

#[test]
fn ssh_config_dev_null_reads_no_config() {
    let lab = SshLab::start(1);
    // The inventory reaches the lab by itself; ~/.ssh/config would send it through a jump host
    // that does not exist.
    let inventory = format!(
        "[env.prod]\nhosts = [\"web\"]\n[hosts.web]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nidentity = \"{}\"\n",
        lab.host(0).port,
        lab.user(),
        lab.client_key_path().display()
    );
    let p = alias_project(&lab, &inventory).file(
        "home/.ssh/config",
        "Host web\n    ProxyJump jump@nowhere.invalid\n",
    );
    let out = p.clone().args(["env:prod", "hello"]).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("nowhere.invalid"),
        "~/.ssh/config is read by default: {}",
        out.stderr
    );
    let out = p.args(["-F", "/dev/null", "env:prod", "hello"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("[web] hello from"), "{}", out.stdout);
}

#[test]
fn port_flag_overrides_the_inventory_and_a_host_string_port_wins_over_it() {
    let lab = SshLab::start(1);
    let dead = crate::harness::unused_port();
    let port = lab.host(0).port.to_string();
    let inventory = format!(
        "[defaults]\nport = {dead}\nuser = \"{}\"\nidentity = \"{}\"\n[env.prod]\nhosts = [\"web\"]\n\
         [hosts.web]\naddress = \"127.0.0.1\"\n",
        lab.user(),
        lab.client_key_path().display()
    );
    let p = alias_project(&lab, &inventory);
    let out = p.clone().args(["env:prod", "hello"]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains(&format!("[127.0.0.1]:{dead}: Connection refused")),
        "{}",
        out.stderr
    );
    let out = p.clone().args(["--port", &port, "env:prod", "hello"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("[web] hello from"), "{}", out.stdout);

    let out = p
        .args([
            "--port",
            &dead.to_string(),
            "-H",
            &format!("127.0.0.1:{port}"),
            "hello",
        ])
        .run();
    out.assert_code(0);
    assert!(
        out.stdout
            .contains(&format!("[127.0.0.1:{port}] hello from")),
        "{}",
        out.stdout
    );
    lab.assert_connections(2);
}

#[test]
fn keyboard_interactive_login_answers_the_servers_prompts() {
    crate::harness::ensure_test_user();
    // Only keyboard-interactive is offered, answered through PAM: no password method at all.
    let lab = SshLab::start_with(
        1,
        "AuthenticationMethods keyboard-interactive\nKbdInteractiveAuthentication yes\n\
         UsePAM yes\nPasswordAuthentication no\nPubkeyAuthentication no",
    );
    let inventory = format!(
        "[env.prod]\nhosts = [\"web\"]\n[hosts.web]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\n",
        lab.host(0).port,
        crate::harness::TEST_USER
    );
    let p = alias_project(&lab, &inventory).recipe("t.rhai", "fn who() { run(\"whoami\"); }");
    let out = p
        .clone()
        .env("RIGS_PASSWORD", crate::harness::TEST_PASSWORD)
        .args(["-v", "--output", "plain", "env:prod", "who"])
        .run();
    out.assert_code(0);
    assert!(
        out.stdout
            .contains(&format!("[web] {}", crate::harness::TEST_USER)),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("(keyboard-interactive password)"),
        "{}",
        out.stderr
    );
    assert!(
        lab.host(0)
            .log()
            .contains("Accepted keyboard-interactive/pam"),
        "{}",
        lab.host(0).log()
    );

    let out = p
        .env("RIGS_PASSWORD", "not-the-password")
        .args(["env:prod", "who"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("authentication failed for"),
        "{}",
        out.stderr
    );
}
