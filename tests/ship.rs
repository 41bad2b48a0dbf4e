//! Air-gapped delivery against real engines: images streamed from the controller's engine into
//! `docker load` on hosts, one of which has no network at all.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{on_engines, DockerLab, Engine, LabOptions, Project};

const SHIP_RECIPES: &str = r#"
/// Ship IMAGE:TAG with options, without starting anything.
fn ship_only(tag, compress) {
    let r = docker::ship(`${vars.image}:${tag}`, #{ compress: compress });
    info(`shipped ${r.bytes} bytes`);
}

/// Ship any reference.
fn ship_ref(reference) {
    docker::ship(reference);
}

/// Ship any reference so that an interrupted ship can continue.
fn ship_resumable(reference) {
    docker::ship(reference, #{ resume: true, compress: false });
}

/// Load a bundle file.
fn load_bundle(file) {
    let r = docker::ship_bundle(file);
    info(`bundle: ${r.bytes} bytes`);
}
"#;

/// The lab's inventory with the app's variables; `extra_vars` go into `[vars]`.
fn inventory(lab: &DockerLab, extra_vars: &str) -> String {
    let mut text = lab.inventory_toml();
    text.push_str(&format!(
        "\n[vars]\nimage = \"{}\"\ncontainer = \"app\"\nnetwork = \"none\"\n{extra_vars}",
        lab.image()
    ));
    text
}

/// A project with the standard recipes, reading images from the lab's controller engine.
fn project(lab: &DockerLab, inventory: &str) -> Project {
    let recipes = concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/docker.rhai");
    let p = Project::new()
        .recipe("docker.rhai", &std::fs::read_to_string(recipes).unwrap())
        .recipe("ship.rhai", SHIP_RECIPES)
        .inventory("lab.toml", inventory)
        .env("DOCKER_HOST", &lab.controller_docker_host())
        .env("PATH", &lab.controller_path());
    lab.ssh
        .write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    p
}

/// Per host, from the JSON summary: (status, bytes sent, error).
fn summary(stdout: &str) -> Vec<(String, String, u64, String)> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.contains("\"event\":\"summary\""))
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_string(),
                h["status"].as_str().unwrap().to_string(),
                h["bytes_sent"].as_u64().unwrap(),
                h["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

on_engines!(
    fleets ship_to_an_offline_host_and_two_more_at_once_then_only_the_new_layer,
);
fn ship_to_an_offline_host_and_two_more_at_once_then_only_the_new_layer(
    controller: Engine,
    hosts: Engine,
) {
    let lab = DockerLab::start_with(
        3,
        &LabOptions {
            offline: vec![0],
            ..LabOptions::fleet(controller, hosts)
        },
    );
    lab.assert_offline(0);
    let p = project(&lab, &inventory(&lab, ""));
    let (v1, v2) = (format!("{}:v1", lab.image()), format!("{}:v2", lab.image()));

    let out = p
        .clone()
        .args(["env:lab", "ship:v1", "--output", "json"])
        .timeout(180)
        .run();
    out.assert_code(0);
    let first = summary(&out.stdout);
    for (i, (host, status, _, _)) in first.iter().enumerate() {
        assert_eq!(status, "ok", "{host}: {}", out.stdout);
        assert_eq!(lab.app_version(i, "app"), "v1");
        lab.assert_image_as_on_controller(i, &v1);
    }
    // One stream for all: every host received exactly the same bytes.
    let full = first[0].2;
    assert!(full > 500_000, "{first:?}");
    assert!(first.iter().all(|h| h.2 == full), "{first:?}");

    let out = p
        .clone()
        .args(["env:lab", "ship:v2", "--output", "json"])
        .timeout(180)
        .run();
    out.assert_code(0);
    for (i, (host, status, sent, _)) in summary(&out.stdout).into_iter().enumerate() {
        assert_eq!(status, "ok", "{host}");
        assert!(
            sent * 20 < full,
            "{host}: {sent} bytes for the new layer, {full} for the whole image: {}",
            out.stdout
                .lines()
                .filter(|l| l.contains("layer") || l.contains("warn"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(lab.app_version(i, "app"), "v2");
        lab.assert_image_as_on_controller(i, &v2);
    }
    assert!(
        out.stdout.contains("1 of 2 layers sent"),
        "the delta is reported: {}",
        out.stdout
    );

    // Nothing new to send: the hosts already hold v2.
    let out = p
        .clone()
        .args(["env:lab", &format!("ship_ref:{v2}")])
        .timeout(120)
        .run();
    out.assert_code(0);
    assert!(out.stderr.contains("already on the host"), "{}", out.stderr);
}

on_engines!(airgapped_hosts_get_the_image_shipped_by_the_standard_deploy);
fn airgapped_hosts_get_the_image_shipped_by_the_standard_deploy(engine: Engine) {
    let lab = DockerLab::start_with(
        2,
        &LabOptions {
            offline: vec![1],
            ..LabOptions::on(engine)
        },
    );
    let registry = format!(
        "registry = \"{}\"\nregistry_user = \"{}\"\n",
        lab.registry(),
        crate::harness::REGISTRY_USER
    );
    let text =
        inventory(&lab, &registry).replacen("[hosts.h2]\n", "[hosts.h2]\nairgapped = true\n", 1);
    let p = project(&lab, &text).env("REGISTRY_PASSWORD", crate::harness::REGISTRY_PASSWORD);
    let out = p.args(["env:lab", "deploy:v1"]).timeout(180).run();
    out.assert_code(0);
    assert_eq!(lab.app_version(0, "app"), "v1");
    assert_eq!(lab.app_version(1, "app"), "v1");
    assert!(
        out.stderr.contains("[h2] $ docker load"),
        "the air-gapped host loads: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("[h1] $ docker pull"),
        "the online host pulls: {}",
        out.stderr
    );
}

on_engines!(a_stream_corrupted_on_the_way_loads_nothing_on_that_host_only);
fn a_stream_corrupted_on_the_way_loads_nothing_on_that_host_only(engine: Engine) {
    let lab = DockerLab::start(3, engine);
    let p = project(&lab, &inventory(&lab, "")).env("RIGS_TEST_CORRUPT_SHIP", "h2");
    let v1 = format!("{}:v1", lab.image());
    // Uncompressed, so that only rigs' own check can notice the flipped byte.
    let out = p.args(["env:lab", "ship_only:v1,none"]).timeout(180).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("the stream arrived corrupted")
            && out.stderr.contains("nothing was loaded"),
        "{}",
        out.stderr
    );
    assert_eq!(
        lab.image_id(1, &v1),
        "",
        "nothing loaded on the corrupted host"
    );
    assert_eq!(
        lab.docker_ok(1, &["image", "ls", "--all", "--quiet"]),
        "",
        "not even a layer"
    );
    for i in [0, 2] {
        assert_eq!(lab.image_id(i, &v1), lab.controller_image_id(&v1));
    }
}

/// rigs running in JSON mode, its stdout collected as it comes.
struct Watched {
    child: std::process::Child,
    seen: Arc<Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Watched {
    fn start(p: &Project, args: &[&str]) -> Watched {
        let mut child = p.clone().args(args.to_vec()).spawn();
        let seen = Arc::new(Mutex::new(String::new()));
        let reader = {
            let seen = seen.clone();
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let mut s = seen.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            })
        };
        Watched {
            child,
            seen,
            reader,
        }
    }

    /// Returns once a progress event shows bytes already sent to `host`.
    fn wait_for_bytes(&self, host: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let marker = format!("\"host\":\"{host}\"");
        loop {
            let moving = self.seen.lock().unwrap().lines().any(|l| {
                l.contains("\"event\":\"progress\"")
                    && l.contains(&marker)
                    && !l.contains("\"bytes\":0,")
            });
            if moving {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no progress: {}",
                self.seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn interrupt(&self) {
        let status = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        self.reader.join().unwrap();
        let out = self.seen.lock().unwrap().clone();
        (status.code(), out)
    }
}

on_engines!(an_interrupted_ship_resumes_where_it_stopped);
fn an_interrupted_ship_resumes_where_it_stopped(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let big = lab.big_image("big", 60);
    let p = project(&lab, &inventory(&lab, ""));
    let args = [
        "env:lab",
        &format!("ship_resumable:{big}"),
        "--output",
        "json",
    ];
    let parts = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(lab.home(0).join(".cache/rigs/ship"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let earlier = parts();
    let run = Watched::start(&p, &args);
    // Interrupt once the host has kept a few megabytes, well before the end.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !parts().iter().any(|p| {
        !earlier.contains(p) && std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) > 5_000_000
    }) {
        assert!(Instant::now() < deadline, "the host kept nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    run.interrupt();
    let (code, first) = run.finish();
    assert_eq!(code, Some(130), "{first}");
    assert_eq!(lab.image_id(0, &big), "");
    let kept = summary(&first)[0].2;
    let before: Vec<_> = parts()
        .into_iter()
        .filter(|p| !earlier.contains(p))
        .collect();
    assert_eq!(
        before.len(),
        1,
        "the host kept what it received: {before:?}"
    );

    let out = p.clone().args(args).timeout(180).run();
    out.assert_code(0);
    assert!(out.stdout.contains("resuming after the"), "{}", out.stdout);
    // What the interrupted load left in the engine is fit to carry on from.
    assert!(!out.stdout.contains("once more"), "{}", out.stdout);
    let sent = summary(&out.stdout)[0].2;
    // A whole send is more than the 60 MiB of random data; this one skips what the host kept.
    assert!(
        kept > 0 && sent + 1_000_000 < 60 * 1024 * 1024,
        "{sent} bytes sent after {kept} were sent before the interruption"
    );
    assert_eq!(lab.image_id(0, &big), lab.controller_image_id(&big));
    let after = parts();
    assert!(
        before.iter().all(|p| !after.contains(p)),
        "the part file is gone once loaded: {after:?}\n{}",
        out.stdout
    );
}

/// Feeds host 0's engine the start of `reference`'s biggest blob, as the controller saves it,
/// followed by bytes that are not part of it (what rigs used to append to a rejected stream),
/// then the end of input: a `docker load` cut short mid-blob that fails.
fn load_a_spoilt_blob(lab: &DockerLab, reference: &str) {
    use std::io::Write;
    let saved = lab.controller_docker(&["save", reference]);
    assert!(saved.status.success(), "docker save {reference}");
    let archive = saved.stdout;
    let (start, data, size) = tar::Archive::new(&archive[..])
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .map(|e| (e.raw_header_position(), e.raw_file_position(), e.size()))
        .max_by_key(|&(_, _, size)| size)
        .unwrap();
    let mut spoilt = archive[start as usize..(data + size / 2) as usize].to_vec();
    spoilt.extend_from_slice(b"rigs-ship: rejected stream\n");
    let mut load = lab
        .docker_command(0)
        .arg("load")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    load.stdin.take().unwrap().write_all(&spoilt).unwrap();
    let out = load.wait_with_output().unwrap();
    assert!(!out.status.success(), "a cut short archive loaded");
}

on_engines!(a_load_spoilt_by_an_earlier_cut_short_one_is_loaded_once_more);
fn a_load_spoilt_by_an_earlier_cut_short_one_is_loaded_once_more(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let big = lab.big_image("big", 20);
    // containerd keeps the partial blob and carries on from it the next time: that blob gets
    // another digest and the load fails with `content digest … not found`, using it up.
    load_a_spoilt_blob(&lab, &big);
    let p = project(&lab, &inventory(&lab, ""));
    let out = p
        .clone()
        .args([
            "env:lab",
            &format!("ship_resumable:{big}"),
            "--output",
            "json",
        ])
        .timeout(180)
        .run();
    out.assert_code(0);
    assert_eq!(lab.image_id(0, &big), lab.controller_image_id(&big));
    let again = "loading it once more from what the host holds";
    let sent = summary(&out.stdout)[0].2;
    if engine == Engine::Modern {
        assert!(out.stdout.contains(again), "{}", out.stdout);
    } else {
        assert!(!out.stdout.contains(again), "{}", out.stdout);
    }
    // Once over the wire: the second load replays what the host kept.
    assert!(
        sent > 20 * 1024 * 1024 && sent < 30 * 1024 * 1024,
        "{sent} bytes sent"
    );
    let parts = std::fs::read_dir(lab.home(0).join(".cache/rigs/ship"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(parts, 0, "the part file is gone once loaded");
}

on_engines!(a_host_that_dies_mid_ship_fails_alone);
fn a_host_that_dies_mid_ship_fails_alone(engine: Engine) {
    let mut lab = DockerLab::start(3, engine);
    let big = lab.big_image("big", 80);
    let p = project(&lab, &inventory(&lab, ""));
    let run = Watched::start(
        &p,
        &["env:lab", &format!("ship_ref:{big}"), "--output", "json"],
    );
    run.wait_for_bytes("h2");
    lab.ssh.crash(1);
    let (code, stdout) = run.finish();
    assert_eq!(code, Some(1), "{stdout}");
    let rows = summary(&stdout);
    assert_eq!(rows[1].1, "failed", "{rows:?}");
    assert_eq!(rows[0].1, "ok", "{rows:?}");
    assert_eq!(rows[2].1, "ok", "{rows:?}");
    assert_eq!(lab.image_id(1, &big), "");
    for i in [0, 2] {
        assert_eq!(lab.image_id(i, &big), lab.controller_image_id(&big));
    }
}

fn flip_byte(path: &std::path::Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x40]).unwrap();
}

on_engines!(fleets bundles_round_trip_and_damaged_ones_load_nothing);
/// Bundles made on either engine verify and load on both.
fn bundles_round_trip_and_damaged_ones_load_nothing(controller: Engine, hosts: Engine) {
    let lab = DockerLab::start_with(
        2,
        &LabOptions {
            offline: vec![1],
            ..LabOptions::fleet(controller, hosts)
        },
    );
    let p = project(&lab, &inventory(&lab, ""));
    let (v1, v2) = (format!("{}:v1", lab.image()), format!("{}:v2", lab.image()));

    let out = p
        .clone()
        .args(["bundle", "create", "app.rigs", &v1, &v2])
        .timeout(120)
        .run();
    out.assert_code(0);
    assert!(out.stdout.contains("created app.rigs"), "{}", out.stdout);
    let bundle = p.path().join("app.rigs");
    let out = p.clone().args(["bundle", "verify", "app.rigs"]).run();
    out.assert_code(0);
    assert!(
        out.stdout.contains(&v1) && out.stdout.contains(&v2) && out.stdout.contains("gzip"),
        "{}",
        out.stdout
    );

    // Damaged copies: refused before any host is touched.
    let size = std::fs::metadata(&bundle).unwrap().len();
    let flipped = p.path().join("flipped.rigs");
    std::fs::copy(&bundle, &flipped).unwrap();
    flip_byte(&flipped, 5000);
    let truncated = p.path().join("truncated.rigs");
    let bytes = std::fs::read(&bundle).unwrap();
    std::fs::write(&truncated, &bytes[..(size as usize) / 2]).unwrap();
    for (name, why) in [
        ("flipped.rigs", "sha256 mismatch"),
        ("truncated.rigs", "truncated"),
    ] {
        let out = p.clone().args(["bundle", "verify", name]).run();
        out.assert_code(2);
        assert!(out.stderr.contains(why), "{name}: {}", out.stderr);
        let out = p
            .clone()
            .args(["-H", "h2", "bundle", "load", name])
            .timeout(60)
            .run();
        out.assert_code(2);
        assert!(out.stderr.contains(why), "{name}: {}", out.stderr);
        assert!(
            !out.stderr.contains("[h2]"),
            "h2 was not touched: {}",
            out.stderr
        );
    }
    assert_eq!(lab.docker_ok(1, &["image", "ls", "--all", "--quiet"]), "");

    // The offline host loads the good one, with every image id as on the controller.
    let out = p
        .clone()
        .args(["-H", "h2", "bundle", "load", "app.rigs", "--output", "json"])
        .timeout(120)
        .run();
    out.assert_code(0);
    for r in [&v1, &v2] {
        lab.assert_image_as_on_controller(1, r);
    }
    assert!(summary(&out.stdout)[0].2 > 500_000);
    assert_eq!(lab.image_id(0, &v1), "", "only h2 was selected");

    // From a recipe, on every host: h2 holds the images already and gets nothing.
    let out = p
        .clone()
        .args(["env:lab", "load_bundle:app.rigs"])
        .timeout(120)
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("[h2] app.rigs: the host already holds"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("[h2] bundle: 0 bytes"),
        "{}",
        out.stderr
    );
    lab.assert_image_as_on_controller(0, &v2);

    // Extraction gives files that plain tools check.
    let out = p
        .clone()
        .args(["bundle", "extract", "app.rigs", "out"])
        .run();
    out.assert_code(0);
    let check = std::process::Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(p.path().join("out"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
}

#[test]
fn a_bundle_that_tries_to_escape_its_folder_is_refused() {
    let p = Project::new();
    let made = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import tarfile, io, sys\n\
             t = tarfile.open(sys.argv[1], 'w')\n\
             for name in ['image.tar.gz', '../evil', 'manifest.json']:\n\
             \x20   i = tarfile.TarInfo(name); data = b'x' * 10; i.size = len(data)\n\
             \x20   t.addfile(i, io.BytesIO(data))\n\
             t.close()\n",
        )
        .arg(p.path().join("evil.rigs"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    for args in [
        vec!["bundle", "verify", "evil.rigs"],
        vec!["bundle", "extract", "evil.rigs", "out/inner"],
        vec!["bundle", "load", "evil.rigs"],
    ] {
        let out = p.clone().args(args.clone()).run();
        out.assert_code(2);
        assert!(out.stderr.contains("evil"), "{args:?}: {}", out.stderr);
    }
    assert!(!p.path().join("out/evil").exists());
    assert!(!p.path().join("evil").exists());
}

#[test]
fn ship_errors_and_dry_runs_touch_nothing() {
    let p = Project::new()
        .recipe(
            "docker.rhai",
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/recipes/docker.rhai"))
                .unwrap(),
        )
        .inventory(
            "hosts.toml",
            "[vars]\nimage = \"127.0.0.1:5999/app\"\n\n[env.airgap]\nhosts = [\"web-1.invalid\", \"web-2.invalid\"]\nairgapped = true\n",
        );
    let out = p
        .clone()
        .args(["env:airgap", "--dry-run", "deploy:1.2.3"])
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "[web-1.invalid] would run: docker load  # 127.0.0.1:5999/app:1.2.3 streamed"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("docker pull"), "{}", out.stderr);

    let out = p
        .clone()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["bundle", "create", "x.rigs", "nosuch:image"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("`nosuch:image` is not an image on the controller"),
        "{}",
        out.stderr
    );
    assert!(!p.path().join("x.rigs").exists() && !p.path().join("x.rigs.part").exists());

    // Absurd options are task failures that say what is allowed, never a panic.
    let p = p.recipe(
        "bad.rhai",
        "fn stall(secs) { docker::ship(\"127.0.0.1:5999/app:1\", #{ stall_timeout: parse_float(secs) }); }\n",
    );
    for secs in ["1e20", "0", "-3", "31536001"] {
        let out = p
            .clone()
            .args(["env:airgap", "--dry-run", &format!("stall:{secs}")])
            .run();
        out.assert_code(1);
        assert!(
            out.stderr.contains(
                "option `stall_timeout` must be a number of seconds above 0 and at most 31536000"
            ) && !out.stderr.contains("panicked"),
            "{secs}: {}",
            out.stderr
        );
    }
}

on_engines!(fleets compressed_layers_pass_through_and_the_default_codec_reaches_the_host);
fn compressed_layers_pass_through_and_the_default_codec_reaches_the_host(
    controller: Engine,
    hosts: Engine,
) {
    let lab = DockerLab::start_with(2, &LabOptions::fleet(controller, hosts));
    let p = project(&lab, &inventory(&lab, ""));
    let saved = |reference: &str| -> u64 {
        let out = lab
            .controller_docker_command()
            .args(["save", reference])
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout.len() as u64
    };
    let loaded = |stdout: &str| -> Vec<String> {
        stdout
            .lines()
            .filter(|l| l.contains("\"event\":\"message\"") && l.contains(": loaded "))
            .map(str::to_string)
            .collect()
    };
    let codec = if hosts == Engine::Modern {
        "zstd"
    } else {
        "gzip"
    };
    // Runs `task`, which ships `reference` to both hosts; its output and the bytes each host got.
    let ship = |task: &str, reference: &str| -> (String, Vec<(String, u64)>) {
        let out = p
            .clone()
            .args(["env:lab", task, "--output", "json"])
            .timeout(180)
            .run();
        out.assert_code(0);
        let mut sent = Vec::new();
        for (i, (host, status, bytes, _)) in summary(&out.stdout).into_iter().enumerate() {
            assert_eq!(status, "ok", "{host}");
            lab.assert_image_as_on_controller(i, reference);
            sent.push((host, bytes));
        }
        (out.stdout, sent)
    };

    // The app image: the base's files compress well, unless the controller's store holds its
    // layers as gzip blobs already, which then travel as they are.
    let v1 = format!("{}:v1", lab.image());
    let (stdout, sent) = ship("ship:v1", &v1);
    let archive = saved(&v1);
    for (host, sent) in sent {
        if controller == Engine::Classic {
            assert!(
                sent * 10 < archive * 7,
                "{host}: {sent} bytes sent for a {archive}-byte archive: it travelled compressed"
            );
        } else {
            assert!(
                sent <= archive + archive / 100,
                "{host}: {sent} > {archive}"
            );
        }
    }
    let messages = loaded(&stdout);
    assert_eq!(messages.len(), 2, "{stdout}");
    for m in &messages {
        assert!(
            m.contains(&format!(" {codec}")),
            "the host's engine got {codec}: {m}"
        );
        if controller == Engine::Modern {
            assert!(m.contains("already compressed"), "{m}");
        }
    }

    // Incompressible data, and on the containerd store a layer that is gzip already: stored,
    // never grown, and never compressed a second time.
    let big = lab.big_image("big", 24);
    let (stdout, sent) = ship(&format!("ship_ref:{big}"), &big);
    let archive = saved(&big);
    for (host, sent) in sent {
        assert!(
            sent <= archive + archive / 200,
            "{host}: {sent} bytes sent for a {archive}-byte archive"
        );
    }
    let why = match controller {
        Engine::Modern => "already compressed",
        Engine::Classic => "incompressible",
    };
    for m in loaded(&stdout) {
        assert!(m.contains("% stored (") && m.contains(why), "{m}");
    }
}
