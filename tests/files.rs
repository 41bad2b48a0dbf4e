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

/// A project whose hosts log in as the unprivileged test user, with `RIGS_SUDO_PASSWORD` set.
fn sudo_project(lab: &SshLab, recipe: &str) -> Project {
    ensure_test_user();
    let inventory = lab.inventory_toml().replace(
        &format!("user = \"{}\"", lab.user()),
        &format!("user = \"{TEST_USER}\""),
    );
    let p = Project::new()
        .recipe("f.rhai", recipe)
        .inventory("lab.toml", &inventory);
    lab.write_known_hosts(&p.path().join("known_hosts"));
    p.env("RIGS_SUDO_PASSWORD", TEST_PASSWORD)
        .args(["--known-hosts", "known_hosts"])
}

/// Names in `dir` that an upload leaves behind.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".rigs-"))
        .collect()
}

#[test]
fn uploads_onto_symlinks_take_the_mode_of_the_file_they_point_at() {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    let lab = SshLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let set_mode = |name: &str, mode: u32| {
        std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    std::fs::write(d.join("real.conf"), "old\n").unwrap();
    set_mode("real.conf", 0o640);
    symlink(d.join("real.conf"), d.join("app.conf")).unwrap();
    symlink(d.join("missing"), d.join("new.conf")).unwrap();
    std::fs::write(d.join("tool"), "old\n").unwrap();
    set_mode("tool", 0o4755);
    std::fs::create_dir(d.join("conf.d")).unwrap();
    symlink(d.join("conf.d"), d.join("dirlink")).unwrap();
    let recipe = format!(
        r#"
fn t() {{
    put("conf", "{d}/app.conf", #{{ sudo: true }});
    template("conf.tmpl", "{d}/new.conf", #{{ sudo: true }});
    put("conf", "{d}/tool", #{{ sudo: true }});
    put("conf", "{d}/dirlink", #{{ sudo: true }});
}}
fn folder() {{ put("conf", "{d}/conf.d", #{{ sudo: true }}); }}
"#,
        d = d.display()
    );
    let p = sudo_project(&lab, &recipe)
        .file("conf", "secret=1\n")
        .file("conf.tmpl", "host={{ host.name }}\n");
    p.clone().args(["env:lab", "t"]).run().assert_code(0);
    // (path, mode, content): each symlink was replaced by a root-owned regular file.
    for (name, mode, content) in [
        ("app.conf", 0o640, "secret=1\n"),
        ("new.conf", 0o644, "host=h1\n"),
        ("tool", 0o755, "secret=1\n"),
        ("dirlink", 0o644, "secret=1\n"),
    ] {
        let meta = std::fs::symlink_metadata(d.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name}: {meta:?}");
        assert_eq!(
            (meta.uid(), meta.mode() & 0o7777),
            (0, mode),
            "{name}: owner and mode"
        );
        assert_eq!(std::fs::read_to_string(d.join(name)).unwrap(), content);
    }
    // What the links pointed at is untouched.
    assert_eq!(
        std::fs::read_to_string(d.join("real.conf")).unwrap(),
        "old\n"
    );
    assert!(!d.join("missing").exists());
    assert_eq!(std::fs::read_dir(d.join("conf.d")).unwrap().count(), 0);

    let out = p.args(["env:lab", "folder"]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains(&format!("{}/conf.d is a folder", d.display())),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_dir(d.join("conf.d")).unwrap().count(), 0);
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));
}

/// Stands in for `sha256sum` on the host. Once it has hashed, it plays an unprivileged user who
/// may write into the target's folder: it swaps a symlink to `VICTIM` in for the file it hashed,
/// and for the folder that file is in, noting in `MARK` each swap that worked.
const SWAPPING_SHA256SUM: &str = r#"#!/bin/sh
out=$(/usr/bin/sha256sum "$@") || exit 1
case "$1" in /*) f=$1 ;; *) f=$(pwd)/$1 ;; esac
d=${f%/*}
if /usr/sbin/runuser -u nobody -- sh -c 'mv "$1" "$1.moved" && ln -s "$2" "$1"' - "$f" VICTIM 2>/dev/null; then
    echo "swapped the file $f" >> MARK
fi
if /usr/sbin/runuser -u nobody -- sh -c 'mv "$1" "$1.moved" && mkdir "$1" && ln -s "$2" "$1/$3"' - "$d" VICTIM "${f##*/}" 2>/dev/null; then
    echo "swapped the folder $d" >> MARK
fi
printf '%s\n' "$out"
"#;

#[test]
fn mode_and_owner_never_reach_a_file_swapped_in_during_a_put() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    std::fs::set_permissions(b, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A folder everybody may write into, without the sticky bit.
    let shared = b.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let victim = b.join("victim");
    std::fs::write(&victim, "keep\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mark = b.join("mark");
    std::fs::create_dir(b.join("bin")).unwrap();
    let wrapper = b.join("bin/sha256sum");
    std::fs::write(
        &wrapper,
        SWAPPING_SHA256SUM
            .replace("VICTIM", &victim.display().to_string())
            .replace("MARK", &mark.display().to_string()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lab = SshLab::start_with(
        1,
        &format!(
            "SetEnv PATH={}:/usr/sbin:/usr/bin:/sbin:/bin",
            b.join("bin").display()
        ),
    );
    let dest = shared.join("app.conf");
    let recipe = format!(
        "fn t() {{ put(\"conf\", \"{}\", #{{ mode: \"0666\", owner: \"nobody\" }}); }}",
        dest.display()
    );
    let out = lab_project(&lab, &recipe)
        .file("conf", "secret=1\n")
        .args(["env:lab", "t"])
        .run();
    let swaps = std::fs::read_to_string(&mark).unwrap_or_default();
    assert!(!swaps.is_empty(), "the swap never happened: {}", out.stderr);
    let meta = std::fs::metadata(&victim).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o7777),
        (0, 0o600),
        "the victim's owner and mode changed ({swaps})"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
    out.assert_code(0);
    let meta = std::fs::symlink_metadata(&dest).unwrap();
    assert!(meta.file_type().is_file(), "{meta:?}");
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (65534, 0o666));
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "secret=1\n");
}
