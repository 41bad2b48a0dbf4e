//! Writes the seed corpora into `fuzz/seeds/<target>/`: small valid inputs, so the fuzzer starts
//! deep inside each format. Run from the repository root:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rigs::ship::bundle::{BundleImage, BundleWriter};
use rigs::ship::Compression;
use rigs_fuzz::{put_entry, sha256_hex, RawEntry, KEYS};

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new("fuzz/seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

fn task_call() {
    for (i, w) in [
        "deploy:1.2.3",
        r"say:a\,b,k=v",
        "status",
        r"say:a\=b",
        "deploy:tag=1.2.3,force=yes",
        "deploy:sha256:abc",
        "t:a,,b",
        r"t:a\\b,x=\,=",
        "env:staging",
        "history:deploy",
    ]
    .iter()
    .enumerate()
    {
        write("task_call", &format!("seed-{i}"), w.as_bytes());
    }
}

fn inventory() {
    let mut files: Vec<PathBuf> = vec![
        "inventory/example.toml".into(),
        "inventory/local.toml".into(),
    ];
    for entry in std::fs::read_dir("examples").unwrap() {
        let dir = entry.unwrap().path().join("inventory");
        if let Ok(read) = std::fs::read_dir(&dir) {
            files.extend(read.map(|e| e.unwrap().path()));
        }
    }
    files.sort();
    for (i, f) in files.iter().enumerate() {
        write(
            "inventory",
            &format!("seed-{i}"),
            &std::fs::read(f).unwrap(),
        );
    }
    let two = [
        "[defaults]\nuser = \"deploy\"\nport = 2200\njump = [\"bastion\", \"ops@b2:2222\"]\n",
        "[env.e]\nhosts = [\"web-1\", \"u@[::1]:22\", \"fe80::1\"]\nroles = { web = [\"web-1\"] }\nairgapped = true\n\n[hosts.web-1]\naddress = \"10.0.0.1\"\nidentity = [\"~/.ssh/k\", \"keys/k\"]\nconnection = \"local\"\n\n[hosts.bastion]\njump = \"b2\"\n[hosts.b2]\njump = \"bastion\"\n",
    ]
    .join("\0");
    write("inventory", "seed-two-files", two.as_bytes());
}

fn ssh_config() {
    let configs = [
        "web-1\nHost web-*\n  User deploy\n  IdentitiesOnly yes\n  UserKnownHostsFile ~/kh /dev/null\n  StrictHostKeyChecking accept-new\n  ProxyJump bastion,ops@b2:2222\n  ServerAliveInterval 5\n  ConnectTimeout 10\nHost *\n  Port 2200\n",
        "db\nHost db db-?\n  HostName 10.0.0.5\n  ProxyJump none\nHost bastion\n  ProxyJump bastion\nMatch host x\n  User y\n",
        "a\nHost a\n  ProxyJump b\nHost b\n  ProxyJump a\n  IdentityFile ~/.ssh/id_a ~/.ssh/id_b\n",
        "x\nHost=x\n\tHostname=\"quoted name\"\n\tPort=22\n\tCiphers +aes128-ctr\n",
    ];
    for (i, c) in configs.iter().enumerate() {
        write("ssh_config", &format!("seed-{i}"), c.as_bytes());
    }
}

fn known_hosts() {
    let [a, b, ec, rsa] = KEYS.map(|(t, k)| format!("{t} {k}"));
    let files = [
        format!("# comment\nnot a valid line\nweb-1,10.0.0.1 {a}\n[web-2]:2222 {a} comment\n"),
        format!("*.example.com,!bad.example.com {a}\n@revoked * {b}\n@cert-authority *.x {ec}\n"),
        format!("|1|BwcHBwcHBwcHBwcHBwcHBwcHBwc=|mVJVmPbMTI+1HQkZo5kFX+9cD8w= {a}\nhost {rsa}\n"),
        format!("web-1 {a}\r\nWeb-1 {b}\n\n\t  db-1\t{ec}\n[db-1]:2200 {rsa}"),
    ];
    for (i, f) in files.iter().enumerate() {
        write("known_hosts", &format!("seed-{i}"), f.as_bytes());
    }
}

fn quote() {
    let seeds: [&[u8]; 6] = [
        b"registry.example.com/app:1.2.3",
        b"it's\0$HOME\0`id`\0a;b\0x\ny\0*\0~\0\"q\"\0-n\0=ls\0%1\0^x",
        b"\0\0",
        b"KEY=value\x0050%\0-rf\0\\\0'\0''\0\\'\0",
        "d\u{e9}j\u{e0} vu\0\u{1f600}\0tab\there".as_bytes(),
        b"a\r\nb\0!x\0#c\0{a,b}\0[a]\0&\0|\0>\0<\0(\0)",
    ];
    for (i, s) in seeds.iter().enumerate() {
        write("quote", &format!("seed-{i}"), s);
    }
}

fn bundle() {
    let dir = tempfile::tempdir().unwrap();
    let images = vec![BundleImage {
        reference: "registry.example/app:1.2.3".into(),
        id: format!("sha256:{}", "ab".repeat(32)),
        repo_tags: vec!["registry.example/app:1.2.3".into()],
        diff_ids: vec![format!("sha256:{}", "01".repeat(32))],
        size: 123_456,
        created: "2026-11-30T10:00:00Z".into(),
    }];
    for (i, compression) in [
        Compression::Zstd,
        Compression::Gzip,
        Compression::None,
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("b{i}.tar"));
        let mut w = BundleWriter::create(&path, compression).unwrap();
        w.write_all(&docker_archive_new()[..700]).unwrap();
        w.mark_body_end();
        w.write_all(b"the final frame").unwrap();
        w.finish(images.clone()).unwrap();
        let mut seed = vec![0u8];
        seed.extend_from_slice(&std::fs::read(&path).unwrap());
        write("bundle", &format!("seed-file-{i}"), &seed);
    }
    // Laid out by the fuzz target itself (odd first byte).
    for i in 0..4u8 {
        let bytes: Vec<u8> = (0..600u32)
            .map(|n| (n.wrapping_mul(2_654_435_761) >> (i + 3)) as u8)
            .collect();
        let mut seed = vec![1u8];
        seed.extend_from_slice(&bytes);
        write("bundle", &format!("seed-layout-{i}"), &seed);
    }
}

fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Docker 25+ with the classic store: layers named by their diff id.
fn docker_archive_new() -> Vec<u8> {
    let layer = tar(&[("etc/hostname", b"box\n")]);
    let d = sha256_hex(&layer);
    let config = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["sha256:{d}"]}}}}"#);
    let c = sha256_hex(config.as_bytes());
    let manifest = format!(
        r#"[{{"Config":"blobs/sha256/{c}","RepoTags":["app:1"],"Layers":["blobs/sha256/{d}"]}}]"#
    );
    let mut out = tar(&[
        (&format!("blobs/sha256/{d}"), &layer),
        (&format!("blobs/sha256/{c}"), config.as_bytes()),
        ("index.json", b"{}"),
        ("manifest.json", manifest.as_bytes()),
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
    ]);
    out.extend_from_slice(&[0; 1024]);
    out
}

/// Old engines: `<v1 id>/layer.tar`, a long name, a pax header, and `<config digest>.json`.
fn docker_archive_old() -> Vec<u8> {
    let (base, top) = (tar(&[("a", b"1")]), tar(&[("b", b"2")]));
    let (d1, d2) = (sha256_hex(&base), sha256_hex(&top));
    let config =
        format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["sha256:{d1}","sha256:{d2}"]}}}}"#);
    let config_name = format!("{}.json", sha256_hex(config.as_bytes()));
    let long = format!("{}/layer.tar", "d".repeat(120));
    let manifest = format!(
        r#"[{{"Config":"{config_name}","RepoTags":["127.0.0.1:5000/app:v2"],"Layers":["aaa/layer.tar","{long}"]}}]"#
    );
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&mut b, "aaa/VERSION", b"1.0");
    add(&mut b, "aaa/layer.tar", &base);
    add(&mut b, &long, &top);
    b.append_pax_extensions([("path", &b"bbb/json"[..])])
        .unwrap();
    add(&mut b, "bbb/json", b"{}");
    add(&mut b, &config_name, config.as_bytes());
    add(&mut b, "manifest.json", manifest.as_bytes());
    add(&mut b, "repositories", b"{}");
    let mut out = b.into_inner().unwrap();
    out.extend_from_slice(&[0; 1024]);
    out
}

/// The containerd store: a gzip blob named by its compressed digest.
fn docker_archive_containerd() -> Vec<u8> {
    let mut blob = vec![0x1f, 0x8b, 8, 0];
    blob.resize(300, 7);
    let config = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:d1"]}}"#;
    let manifest = br#"[{"Config":"blobs/sha256/cfg","Layers":["blobs/sha256/blob1"]}]"#;
    let mut out = tar(&[
        ("blobs/sha256/blob1", &blob),
        ("blobs/sha256/cfg", config),
        ("index.json", b"{}"),
        ("manifest.json", manifest),
    ]);
    out.extend_from_slice(&[0; 1024]);
    out
}

fn ship_archive() {
    write("ship_archive", "seed-new", &docker_archive_new());
    write("ship_archive", "seed-old", &docker_archive_old());
    write(
        "ship_archive",
        "seed-containerd",
        &docker_archive_containerd(),
    );
    let mut odd = Vec::new();
    let mut e = RawEntry::file("x/layer.tar", b"data");
    e.kind = b'L';
    put_entry(&mut odd, &e);
    put_entry(&mut odd, &RawEntry::file("short", b"abc"));
    write("ship_archive", "seed-longname-record", &odd);
}

fn main() {
    task_call();
    inventory();
    ssh_config();
    known_hosts();
    quote();
    bundle();
    ship_archive();
    println!("seeds written to fuzz/seeds/");
}
