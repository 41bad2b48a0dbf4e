//! put / get / template against real sshd hosts: streamed, verified, atomic.

use std::io::Write;

use crate::harness::{ensure_test_user, Project, SshLab, TEST_PASSWORD, TEST_USER};

fn lab_project(lab: &SshLab, recipe: &str) -> Project {
    let p = Project::new()
        .recipe("files.rhai", recipe)
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("known_hosts"));
    p.args(["--known-hosts", "known_hosts"])
}

/// A file of `mb` MiB that does not compress (every block differs).
fn big_file(path: &std::path::Path, mb: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mb {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

fn sha256(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn put_and_get_200_mb_with_checksums() {
    let lab = SshLab::start(2);
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("payload.bin");
    let recipe = format!(
        r#"
fn ship() {{
    let dest = "{remote}." + host.name;
    let sent = put("payload.bin", dest, #{{ mode: "0640" }});
    info(`sent ${{sent.bytes}} ${{sent.sha256}}`);
    let back = get(dest, "back/{{host}}.bin");
    info(`got ${{back.bytes}} ${{back.sha256}} into ${{back.path}}`);
}}
"#,
        remote = remote.display()
    );
    let p = lab_project(&lab, &recipe);
    big_file(&p.path().join("payload.bin"), 200);
    let expected = sha256(&p.path().join("payload.bin"));
    let out = p.clone().args(["env:lab", "ship"]).timeout(300).run();
    out.assert_code(0);
    for h in ["h1", "h2"] {
        let placed = remote.with_extension(format!("bin.{h}"));
        assert_eq!(sha256(&placed), expected, "{h} remote copy");
        let mode = std::fs::metadata(&placed).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o640);
        assert_eq!(
            sha256(&p.path().join(format!("back/{h}.bin"))),
            expected,
            "{h} downloaded copy"
        );
        assert!(
            out.stderr
                .contains(&format!("[{h}] sent 209715200 {expected}")),
            "{}",
            out.stderr
        );
    }
    // No temporary names are left on either side.
    let leftovers: Vec<_> = std::fs::read_dir(remote_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".rigs-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(std::fs::read_dir(p.path().join("back")).unwrap().count(), 2);
}

#[test]
fn get_of_a_missing_file_fails_cleanly() {
    let lab = SshLab::start(1);
    let p = lab_project(
        &lab,
        "fn t() { get(\"/nonexistent/rigs/file\", \"out/{host}\"); }",
    );
    let dir = p.path().to_path_buf();
    let out = p.args(["env:lab", "t"]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("get: cannot read /nonexistent/rigs/file on the host"),
        "{}",
        out.stderr
    );
    let left: Vec<_> = std::fs::read_dir(dir.join("out"))
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert!(
        left.is_empty() || left == vec![0],
        "partial files left: {left:?}"
    );
}

#[test]
fn put_of_a_missing_local_file_names_it() {
    let lab = SshLab::start(1);
    let out = lab_project(&lab, "fn t() { put(\"nope.txt\", \"/tmp/x\"); }")
        .args(["env:lab", "t"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("put: cannot read nope.txt"),
        "{}",
        out.stderr
    );
}

#[test]
fn template_renders_variables_then_uploads() {
    let lab = SshLab::start(1);
    let remote_dir = tempfile::tempdir().unwrap();
    let dest = remote_dir.path().join("app.env");
    let recipe = format!(
        "fn conf() {{ template(\"app.env.tmpl\", \"{}\", #{{ vars: #{{ port: 8080 }} }}); }}\nfn broken() {{ template(\"bad.tmpl\", \"/tmp/never\"); }}",
        dest.display()
    );
    let p = lab_project(&lab, &recipe)
        .inventory(
            "vars.toml",
            "[vars]\nimage = \"registry.example.com/app\"\n",
        )
        .file(
            "app.env.tmpl",
            "IMAGE={{ vars.image }}\nHOST={{ host.name }}\nENV={{ env.name }}\nPORT={{ port }}\n",
        )
        .file("bad.tmpl", "ok\n{{ vars.missing }}\n");
    let out = p.clone().args(["env:lab", "conf"]).run();
    out.assert_code(0);
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "IMAGE=registry.example.com/app\nHOST=h1\nENV=lab\nPORT=8080\n"
    );
    let out = p.args(["env:lab", "broken"]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("line 2: `{{ vars.missing }}` is not defined"),
        "{}",
        out.stderr
    );
}

#[test]
fn put_with_sudo_writes_root_owned_files() {
    ensure_test_user();
    let lab = SshLab::start(1);
    let dest_dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dest_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dest = dest_dir.path().join("root-only.conf");
    let mut inventory = lab.inventory_toml();
    inventory = inventory.replace(
        &format!("user = \"{}\"", lab.user()),
        &format!("user = \"{TEST_USER}\""),
    );
    let p = Project::new()
        .recipe("f.rhai", &format!("fn t() {{ put(\"conf\", \"{}\", #{{ sudo: true, mode: \"0600\", owner: \"root:root\" }}); }}", dest.display()))
        .inventory("lab.toml", &inventory)
        .file("conf", "secret=1\n");
    lab.write_known_hosts(&p.path().join("known_hosts"));
    let out = p
        .env("RIGS_SUDO_PASSWORD", TEST_PASSWORD)
        .args(["--known-hosts", "known_hosts", "env:lab", "t"])
        .run();
    out.assert_code(0);
    let meta = std::fs::metadata(&dest).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "secret=1\n");
}

#[test]
fn put_on_local_hosts_with_a_small_pool_does_not_stall() {
    let mut inventory = String::from("[env.two]\nhosts = [\"a\", \"b\"]\n");
    for h in ["a", "b"] {
        inventory.push_str(&format!("[hosts.{h}]\nconnection = \"local\"\n"));
    }
    let out = Project::new()
        .recipe(
            "t.rhai",
            "fn t() { put(\"src.txt\", `out-${host.name}.txt`); }",
        )
        .inventory("i.toml", &inventory)
        .file("src.txt", "payload\n")
        .args(["--serial", "env:two", "t"])
        .timeout(30)
        .run();
    out.assert_code(0);
}
