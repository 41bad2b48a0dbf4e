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
    let out = p.clone().args(["env:lab", "t"]).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains(
            "[h1] failed t: get: cannot read /nonexistent/rigs/file on the host: \
             cat: /nonexistent/rigs/file: No such file or directory\n"
        ),
        "{}",
        out.stderr
    );
    // The project (and so its folder) is still alive here: an empty listing means no file.
    assert!(p.path().join("recipes").is_dir());
    assert_eq!(local_files(&p.path().join("out")), Vec::<String>::new());
}

/// The names in the local folder `dir`, sorted; none if it does not exist.
fn local_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn put_of_a_missing_local_file_names_it() {
    let lab = SshLab::start(1);
    let remote_dir = tempfile::tempdir().unwrap();
    let dest = remote_dir.path().join("x");
    let out = lab_project(
        &lab,
        &format!("fn t() {{ put(\"nope.txt\", \"{}\"); }}", dest.display()),
    )
    .args(["env:lab", "t"])
    .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains(
            "[h1] failed t: put: cannot read nope.txt: No such file or directory (os error 2)\n"
        ),
        "{}",
        out.stderr
    );
    // Nothing reached the host: not even the temporary folder was made.
    assert!(!out.stderr.contains("$ umask"), "{}", out.stderr);
    assert_eq!(std::fs::read_dir(remote_dir.path()).unwrap().count(), 0);
}

#[test]
fn template_renders_variables_then_uploads() {
    let lab = SshLab::start(1);
    let remote_dir = tempfile::tempdir().unwrap();
    let dest = remote_dir.path().join("app.env");
    let never = remote_dir.path().join("never");
    let recipe = format!(
        "fn conf() {{ template(\"app.env.tmpl\", \"{}\", #{{ vars: #{{ port: 8080 }} }}); }}\nfn broken() {{ template(\"bad.tmpl\", \"{}\"); }}",
        dest.display(),
        never.display()
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
    assert!(!never.exists());
    assert_eq!(std::fs::read_dir(remote_dir.path()).unwrap().count(), 1);
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
    let p = Project::new()
        .recipe(
            "t.rhai",
            "fn t() { put(\"src.txt\", `out-${host.name}.txt`); }",
        )
        .inventory("i.toml", &inventory)
        .file("src.txt", "payload\n")
        .args(["--serial", "env:two", "t"])
        .timeout(30);
    let out = p.clone().run();
    out.assert_code(0);
    for h in ["a", "b"] {
        assert_eq!(
            std::fs::read_to_string(p.path().join(format!("out-{h}.txt"))).unwrap(),
            "payload\n",
            "{}",
            out.stderr
        );
    }
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

/// A lab host whose `PATH` starts with a folder holding `cat`, the script `cat_script`: the
/// command `put` receives with and `get` sends with.
fn lab_with_cat(dir: &std::path::Path, cat_script: &str) -> SshLab {
    lab_with_command(dir, "cat", cat_script)
}

/// A lab host whose `PATH` starts with a folder holding the script `script` as `name`.
fn lab_with_command(dir: &std::path::Path, name: &str, script: &str) -> SshLab {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join(name), script).unwrap();
    std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    SshLab::start_with(
        1,
        &format!(
            "SetEnv PATH={}:/usr/sbin:/usr/bin:/sbin:/bin",
            bin.display()
        ),
    )
}

/// A `cat` that damages what it copies (every `a` becomes `b`), as a bad disk or link would.
const DAMAGING_CAT: &str = "#!/bin/sh\n/bin/cat \"$@\" | /usr/bin/tr a b\n";

#[test]
fn put_refuses_a_file_that_arrives_damaged() {
    let remote_dir = tempfile::tempdir().unwrap();
    let lab = lab_with_cat(remote_dir.path(), DAMAGING_CAT);
    let dest = remote_dir.path().join("app.conf");
    std::fs::write(&dest, "old\n").unwrap();
    let p = lab_project(
        &lab,
        &format!("fn t() {{ put(\"conf\", \"{}\"); }}", dest.display()),
    )
    .file("conf", "aaa\n");
    let sent = sha256(&p.path().join("conf"));
    let damaged = {
        std::fs::write(remote_dir.path().join("bbb"), "bbb\n").unwrap();
        sha256(&remote_dir.path().join("bbb"))
    };
    let out = p.args(["env:lab", "t"]).run();
    out.assert_code(1);
    let expected = format!(
        "[h1] failed t: put: {} on the host: checksum mismatch: sent {sent}, the host has {damaged}\n",
        dest.display()
    );
    assert!(out.stderr.contains(&expected), "{expected}\n{}", out.stderr);
    // The target is the old file, and the temporary folder is gone.
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old\n");
    assert!(
        leftovers(remote_dir.path()).is_empty(),
        "{:?}",
        leftovers(remote_dir.path())
    );
}

#[test]
fn get_refuses_a_file_that_arrives_damaged() {
    let remote_dir = tempfile::tempdir().unwrap();
    let lab = lab_with_cat(remote_dir.path(), DAMAGING_CAT);
    let remote = remote_dir.path().join("data.txt");
    std::fs::write(&remote, "aaa\n").unwrap();
    let p = lab_project(
        &lab,
        &format!(
            "fn t() {{ get(\"{}\", \"out/{{host}}.txt\"); }}",
            remote.display()
        ),
    );
    std::fs::write(p.path().join("bbb"), "bbb\n").unwrap();
    let received = sha256(&p.path().join("bbb"));
    let out = p.clone().args(["env:lab", "t"]).run();
    out.assert_code(1);
    let expected = format!(
        "[h1] failed t: get: checksum mismatch for {}: received {received}, the host has {} \
         (changed during the transfer?)\n",
        remote.display(),
        sha256(&remote)
    );
    assert!(out.stderr.contains(&expected), "{expected}\n{}", out.stderr);
    // Neither the file nor its partial copy is left.
    assert_eq!(local_files(&p.path().join("out")), Vec::<String>::new());
}

/// A `cat` that, receiving an upload (no arguments), notes `STARTED` and waits for `GO` before
/// it reads anything: the test changes the local file meanwhile.
const WAITING_CAT: &str = "#!/bin/sh\nif [ $# = 0 ]; then\n    : > STARTED\n    \
     while [ ! -e GO ]; do /bin/sleep 0.05; done\nfi\nexec /bin/cat \"$@\"\n";

#[test]
fn put_fails_when_the_local_file_changes_size_while_it_is_sent() {
    let remote_dir = tempfile::tempdir().unwrap();
    let started = remote_dir.path().join("started");
    let go = remote_dir.path().join("go");
    let lab = lab_with_cat(
        remote_dir.path(),
        &WAITING_CAT
            .replace("STARTED", &started.display().to_string())
            .replace("GO", &go.display().to_string()),
    );
    let target = remote_dir.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let dest = target.join("payload.bin");
    let p = lab_project(
        &lab,
        &format!("fn t() {{ put(\"payload.bin\", \"{}\"); }}", dest.display()),
    )
    .args(["env:lab", "t"]);
    // Far more than SSH's window: rigs cannot have read it all before the host reads.
    big_file(&p.path().join("payload.bin"), 32);
    let child = p.spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let payload = std::fs::OpenOptions::new()
        .write(true)
        .open(p.path().join("payload.bin"))
        .unwrap();
    payload.set_len(1 << 20).unwrap();
    std::fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("[h1] failed t: put: the local file changed while it was sent (33554432 bytes expected, "),
        "{stderr}"
    );
    assert!(!dest.exists());
    assert!(leftovers(&target).is_empty(), "{:?}", leftovers(&target));
}

#[test]
fn get_with_sudo_reads_files_only_root_may_read() {
    use std::os::unix::fs::PermissionsExt;
    let remote_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(remote_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = remote_dir.path().join("root-only.conf");
    std::fs::write(&secret, "token=1\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let lab = SshLab::start(1);
    let p = sudo_project(
        &lab,
        &format!(
            "fn plain() {{ get(\"{s}\", \"out/plain.conf\"); }}\n\
             fn root() {{ let r = get(\"{s}\", \"out/{{host}}.conf\", #{{ sudo: true }}); info(`got ${{r.bytes}} bytes`); }}\n",
            s = secret.display()
        ),
    );
    let out = p.clone().args(["env:lab", "plain"]).run();
    out.assert_code(1);
    let refused = format!(
        "[h1] failed plain: get: cannot read {s} on the host: cat: {s}: Permission denied\n",
        s = secret.display()
    );
    assert!(out.stderr.contains(&refused), "{refused}\n{}", out.stderr);
    assert_eq!(local_files(&p.path().join("out")), Vec::<String>::new());

    let out = p.clone().args(["env:lab", "root"]).run();
    out.assert_code(0);
    for line in [
        format!("[h1] $ sudo cat {}\n", secret.display()),
        format!("[h1] $ sudo sha256sum {}\n", secret.display()),
        "[h1] got 8 bytes\n".to_string(),
    ] {
        assert!(out.stderr.contains(&line), "{line}\n{}", out.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(p.path().join("out/h1.conf")).unwrap(),
        "token=1\n"
    );
    assert_eq!(local_files(&p.path().join("out")), ["h1.conf"]);
}

/// A `sha256sum` that cuts the SSH connection it runs on (it kills its nearest `sshd`
/// ancestor, the connection's own process) instead of hashing.
const CONNECTION_CUTTING_SHA256SUM: &str = r#"#!/bin/sh
p=$PPID
while [ "$p" -gt 1 ]; do
    case "$(/bin/cat /proc/$p/comm)" in sshd*) kill -9 "$p"; exit 1 ;; esac
    p=$(/usr/bin/awk '{print $4}' /proc/$p/stat)
done
exit 1
"#;

#[test]
fn get_removes_the_partial_file_when_the_connection_drops_before_the_check() {
    let remote_dir = tempfile::tempdir().unwrap();
    let lab = lab_with_command(remote_dir.path(), "sha256sum", CONNECTION_CUTTING_SHA256SUM);
    let remote = remote_dir.path().join("data.txt");
    std::fs::write(&remote, "data\n").unwrap();
    let p = lab_project(
        &lab,
        &format!(
            "fn t() {{ get(\"{}\", \"out/{{host}}.txt\"); }}",
            remote.display()
        ),
    );
    let out = p.clone().args(["env:lab", "t"]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains(&format!("[h1] $ sha256sum {}\n", remote.display())),
        "{}",
        out.stderr
    );
    let lost = format!(
        "[h1] failed t: connection lost during `sha256sum {}`\n",
        remote.display()
    );
    assert!(out.stderr.contains(&lost), "{lost}\n{}", out.stderr);
    // The host's sshd is still there: only the connection was cut.
    assert!(lab.host(0).log().contains("Accepted publickey"));
    assert_eq!(local_files(&p.path().join("out")), Vec::<String>::new());
}
