//! Air-gapped delivery against real engines: images streamed from the controller's engine into
//! `docker load` on hosts, one of which has no network at all.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{on_engines, shell_quote, DockerLab, Engine, LabOptions, Project};

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

/// Ship any reference, dropping a host that takes nothing for 3 s.
fn ship_impatient(reference) {
    docker::ship(reference, #{ stall_timeout: 3 });
}

/// Load a bundle file, dropping a host that takes nothing for 3 s.
fn load_bundle_impatient(file) {
    docker::ship_bundle(file, #{ stall_timeout: 3 });
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

/// Puts a `docker` script in `bin` in place of whatever is there: it runs the shell lines
/// `body`, in which `$real` names the engine's own client `real`, then execs that client with the
/// same arguments, so that the process is the real client from then on.
fn docker_wrapper(bin: &std::path::Path, real: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin).unwrap();
    let path = bin.join("docker");
    let _ = std::fs::remove_file(&path);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nreal={}\n{body}\nexec \"$real\" \"$@\"\n",
            shell_quote(&real.display().to_string())
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A project like [`project`] whose `docker` on the controller is a [`docker_wrapper`] running
/// `body` first. The wrapper finds the project's folder in `$PROJECT`.
fn wrapped_project(lab: &DockerLab, inventory: &str, body: &str) -> Project {
    let p = project(lab, inventory);
    let bin = p.path().join("wrapper");
    docker_wrapper(&bin, &lab.controller_engine().docker(), body);
    let path = format!("{}:{}", bin.display(), lab.controller_path());
    let dir = p.path().display().to_string();
    p.env("PATH", &path).env("PROJECT", &dir)
}

/// Logs every `docker save` the controller runs to `$PROJECT/saves.log`.
const LOG_SAVES: &str = r#"if [ "$1" = save ]; then echo "$*" >>"$PROJECT/saves.log"; fi"#;

/// The `docker save` command lines the controller ran so far.
fn saves(p: &Project) -> Vec<String> {
    std::fs::read_to_string(p.path().join("saves.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The PID of the `docker load` that host `i`'s receiving command runs, once it runs.
fn receiving_load(lab: &DockerLab, i: usize) -> u32 {
    loading_into(&lab.docker_host(i))
}

/// The PID of a `docker load` into the engine at `docker_host`, once one runs.
fn loading_into(docker_host: &str) -> u32 {
    let engine = format!("DOCKER_HOST={docker_host}\0");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            if cmdline == b"docker\0load\0" && String::from_utf8_lossy(&environ).contains(&engine) {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no docker load into {docker_host}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A process the test stopped (SIGSTOP), killed when the test ends however it ends: once its
/// session is gone it belongs to no host any more, and the lab would not stop it.
struct Stopped(u32);

impl Stopped {
    fn stop(pid: u32) -> Stopped {
        assert!(signal(pid, "-STOP"), "process {pid} is gone");
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // Only while it is still that process: a PID that ended may name another one since.
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if cmdline == b"docker\0load\0" {
            let _ = signal(self.0, "-KILL");
        }
    }
}

fn signal(pid: u32, signal: &str) -> bool {
    std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap()
        .success()
}

/// What JSON output tells of each host's transfer, in order: bytes sent so far (progress
/// events), or `None` where the host reports the image loaded.
fn transfer_events(stdout: &str) -> Vec<(String, Option<u64>)> {
    stdout
        .lines()
        .filter(|l| {
            l.contains("\"event\":\"progress\"")
                || (l.contains("\"event\":\"message\"") && l.contains(": loaded "))
        })
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["host"].as_str().unwrap().to_string(), v["bytes"].as_u64())
        })
        .collect()
}

/// Asserts that the hosts were sent their streams at the same time: every host had begun to
/// receive before any host had received all of its stream (all its bytes reported, or the image
/// loaded). Sent one after the other, the second would begin only after the first had it all.
#[track_caller]
fn assert_sends_overlap(stdout: &str) {
    let events = transfer_events(stdout);
    let rows = summary(stdout);
    let began = |host: &str| {
        events
            .iter()
            .position(|(h, b)| h == host && b.is_some_and(|b| b > 0))
            .unwrap_or_else(|| panic!("no bytes reported for {host}: {events:?}"))
    };
    let received = |host: &str, total: u64| {
        events
            .iter()
            .position(|(h, b)| h == host && b.is_none_or(|b| b >= total))
            .unwrap_or_else(|| panic!("{host} never had it all: {events:?}"))
    };
    let last_to_begin = rows.iter().map(|r| began(&r.0)).max().unwrap();
    let first_to_have_all = rows.iter().map(|r| received(&r.0, r.2)).min().unwrap();
    assert!(
        last_to_begin < first_to_have_all,
        "a host began to receive only after another had received it all: {events:?}"
    );
}

/// Per host, from the JSON summary: (status, bytes sent, error).
fn summary(stdout: &str) -> Vec<(String, String, u64, String)> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.contains("\"event\":\"summary\""))
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    crate::harness::summary_hosts(&v)
        .into_iter()
        .zip(v["hosts"].as_array().unwrap())
        .map(|((host, status, _note, error), h)| {
            (host, status, h["bytes_sent"].as_u64().unwrap(), error)
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
    let p = wrapped_project(&lab, &inventory(&lab, ""), LOG_SAVES);
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
    // One stream for all: one `docker save` for the three hosts, and every host received
    // exactly the same bytes.
    assert_eq!(saves(&p), [format!("save {v1}")]);
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
    // Neither engine's archive names layers by diff id (Docker 20.10; the containerd store names
    // them by blob): the first delta of an image reads it once to learn the names, then streams.
    assert_eq!(saves(&p)[1..], [format!("save {v2}"), format!("save {v2}")]);

    // Nothing new to send: the hosts already hold v2.
    let out = p
        .clone()
        .args(["env:lab", &format!("ship_ref:{v2}")])
        .timeout(120)
        .run();
    out.assert_code(0);
    assert!(out.stderr.contains("already on the host"), "{}", out.stderr);
    assert_eq!(saves(&p).len(), 3, "no docker save for nothing to send");

    // A stream long enough to watch: every host receives while the others do.
    let big = lab.big_image("big", 48);
    let out = p
        .clone()
        .args(["env:lab", &format!("ship_ref:{big}"), "--output", "json"])
        .timeout(180)
        .run();
    out.assert_code(0);
    // On the base the hosts hold: names learnt, then one stream, as for v2.
    assert_eq!(
        saves(&p)[3..],
        [format!("save {big}"), format!("save {big}")]
    );
    let rows = summary(&out.stdout);
    assert!(
        rows.iter().all(|h| h.1 == "ok" && h.2 == rows[0].2),
        "{rows:?}"
    );
    assert_sends_overlap(&out.stdout);
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

    /// [`Watched::finish`], failing the test (rigs killed) when rigs runs longer than `limit`.
    fn finish_within(mut self, limit: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + limit;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let seen = self.finish().1;
                panic!("rigs still ran after {limit:?}: {seen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.finish()
    }

    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        self.reader.join().unwrap();
        let out = self.seen.lock().unwrap().clone();
        (status.code(), out)
    }
}

/// The arguments that ship `reference` with `ship_resumable`, in JSON mode.
fn resumable_ship_args(reference: &str) -> [String; 4] {
    [
        "env:lab".to_string(),
        format!("ship_resumable:{reference}"),
        "--output".to_string(),
        "json".to_string(),
    ]
}

/// The part files in which host 0 keeps what it received of interrupted resumable ships.
fn kept_parts(lab: &DockerLab) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(lab.home(0).join(".cache/rigs/ship"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Runs rigs with `args` and interrupts it once host 0 has kept a few megabytes in a part file
/// not among `earlier`, well before the end. Returns rigs' stdout, having checked it exited 130.
fn interrupt_once_kept(
    lab: &DockerLab,
    p: &Project,
    args: &[String],
    earlier: &[std::path::PathBuf],
) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = Watched::start(p, &args);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !kept_parts(lab).iter().any(|p| {
        !earlier.contains(p) && std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) > 5_000_000
    }) {
        assert!(Instant::now() < deadline, "the host kept nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    run.interrupt();
    let (code, first) = run.finish();
    assert_eq!(code, Some(130), "{first}");
    first
}

on_engines!(an_interrupted_ship_resumes_where_it_stopped);
fn an_interrupted_ship_resumes_where_it_stopped(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let big = lab.big_image("big", 60);
    let p = project(&lab, &inventory(&lab, ""));
    let args = resumable_ship_args(&big);
    let parts = || kept_parts(&lab);
    let earlier = parts();
    let first = interrupt_once_kept(&lab, &p, &args, &earlier);
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
    // The connection error, for the load that was running.
    assert!(
        rows[1].3.contains(&format!(
            "connection lost during `docker load  # {big} from the controller: 2 of 2 layers"
        )),
        "{rows:?}"
    );
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

    // With no host selected, the bundle goes into the engine of the machine rigs runs on: here
    // the controller's (DOCKER_HOST), once it has lost both images.
    let ids = [lab.controller_image_id(&v1), lab.controller_image_id(&v2)];
    lab.controller_docker_ok(&["image", "rm", &v1, &v2]);
    assert_eq!(lab.controller_image_id(&v1), "");
    let out = p
        .clone()
        .args(["bundle", "load", "app.rigs"])
        .timeout(120)
        .run();
    out.assert_code(0);
    assert!(
        out.stderr
            .contains(&format!("app.rigs: loaded {v1}, {v2} (")),
        "{}",
        out.stderr
    );
    assert_eq!(
        [lab.controller_image_id(&v1), lab.controller_image_id(&v2)],
        ids
    );
}

/// A tar of regular files with exactly these names, written into the header as they are (the
/// `tar` crate's own path setters refuse `..`).
fn raw_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_796_113_800);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The three entries of a correct bundle of an uncompressed archive: the archive, a manifest
/// that describes it, and the checksums of both.
fn bundle_entries() -> Vec<(&'static str, Vec<u8>)> {
    let archive = raw_tar(&[("manifest.json", b"[]")]);
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "format": 1,
        "rigs_version": "0.1.0",
        "created": "2026-12-01T08:30:00Z",
        "images": [{
            "reference": "registry.example/app:1",
            "id": format!("sha256:{}", "ab".repeat(32)),
            "repo_tags": ["registry.example/app:1"],
            "diff_ids": [format!("sha256:{}", "cd".repeat(32))],
            "size": 1234,
        }],
        "archive": {
            "name": "image.tar",
            "compression": "none",
            "bytes": archive.len(),
            "sha256": sha256_hex(&archive),
            "body_bytes": archive.len() - 1024,
        },
    }))
    .unwrap();
    let sums = format!(
        "{}  image.tar\n{}  manifest.json\n",
        sha256_hex(&archive),
        sha256_hex(&manifest)
    );
    vec![
        ("image.tar", archive),
        ("manifest.json", manifest),
        ("SHA256SUMS", sums.into_bytes()),
    ]
}

#[test]
fn a_bundle_that_tries_to_escape_its_folder_is_refused() {
    // No engine is reached: a refused bundle touches none, and this one could only be the
    // machine's own.
    let p = Project::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let mut entries = bundle_entries();
    let good: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (*n, &d[..])).collect();
    std::fs::write(p.path().join("good.rigs"), raw_tar(&good)).unwrap();
    // The same bundle with one more entry, after the others, that would land beside the folder.
    entries.push(("../evil", b"escaped\n".to_vec()));
    let evil: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (*n, &d[..])).collect();
    std::fs::write(p.path().join("evil.rigs"), raw_tar(&evil)).unwrap();

    // Without that entry it is a bundle like any other.
    let out = p.clone().args(["bundle", "verify", "good.rigs"]).run();
    out.assert_code(0);
    assert!(
        out.stdout.contains("registry.example/app:1"),
        "{}",
        out.stdout
    );
    let out = p
        .clone()
        .args(["bundle", "extract", "good.rigs", "good/inner"])
        .run();
    out.assert_code(0);
    assert_eq!(
        std::fs::read(p.path().join("good/inner/SHA256SUMS")).unwrap(),
        entries[2].1
    );

    let why =
        "evil.rigs is not a usable image bundle: entry \"../evil\" is not a plain file name; \
               a bundle holds only files at its top level, nothing that could land outside the \
               directory it is extracted to";
    for args in [
        vec!["bundle", "verify", "evil.rigs"],
        vec!["bundle", "extract", "evil.rigs", "out/inner"],
        vec!["bundle", "load", "evil.rigs"],
    ] {
        let out = p.clone().args(args.clone()).run();
        out.assert_code(2);
        assert!(out.stderr.contains(why), "{args:?}: {}", out.stderr);
    }
    assert!(!p.path().join("out/evil").exists());
    assert!(!p.path().join("out/inner").exists());
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

on_engines!(bundles_made_with_zstd_or_no_compression);
/// `--compress` picks the inner archive's format; both load where the engine can read them.
fn bundles_made_with_zstd_or_no_compression(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let p = project(&lab, &inventory(&lab, ""));
    let v1 = format!("{}:v1", lab.image());
    for (codec, file, inner) in [
        ("zstd", "z.rigs", "image.tar.zst"),
        ("none", "n.rigs", "image.tar"),
    ] {
        let out = p
            .clone()
            .args(["bundle", "create", file, &v1, "--compress", codec])
            .timeout(120)
            .run();
        out.assert_code(0);
        let out = p.clone().args(["bundle", "verify", file]).run();
        out.assert_code(0);
        assert!(out.stdout.contains(codec), "{}", out.stdout);
        let dir = format!("{codec}-out");
        p.clone()
            .args(["bundle", "extract", file, &dir])
            .run()
            .assert_code(0);
        let mut names: Vec<String> = std::fs::read_dir(p.path().join(&dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut expected = ["SHA256SUMS", "manifest.json", inner];
        expected.sort();
        assert_eq!(names, expected);
        let archive = std::fs::read(p.path().join(&dir).join(inner)).unwrap();
        // The archive is what its name says, and within it is `docker save`'s.
        let tar = match codec {
            "zstd" => {
                assert_eq!(archive[..4], [0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
                zstd::decode_all(&archive[..]).unwrap()
            }
            _ => archive,
        };
        assert_eq!(&tar[257..262], b"ustar", "a tar archive");
        let entries: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(entries.iter().any(|e| e == "manifest.json"), "{entries:?}");
    }

    let out = p
        .clone()
        .args(["-H", "h1", "bundle", "load", "n.rigs"])
        .timeout(120)
        .run();
    out.assert_code(0);
    lab.assert_image_as_on_controller(0, &v1);
    lab.docker_ok(0, &["image", "rm", &v1]);
    assert_eq!(lab.image_id(0, &v1), "");

    let out = p
        .clone()
        .args(["-H", "h1", "bundle", "load", "z.rigs"])
        .timeout(120)
        .run();
    match engine {
        Engine::Modern => {
            out.assert_code(0);
            lab.assert_image_as_on_controller(0, &v1);
        }
        // Docker 20.10 cannot read zstd: refused with what to do instead, before any byte.
        Engine::Classic => {
            out.assert_code(1);
            assert!(
                out.stderr.contains(
                    "z.rigs is zstd-compressed, but this host's docker engine (20.10."
                ) && out.stderr.contains(
                    ") loads only gzip: make the bundle with `rigs --compress gzip bundle create ...`"
                ),
                "{}",
                out.stderr
            );
            assert_eq!(lab.image_id(0, &v1), "");
        }
    }
}

on_engines!(a_host_that_takes_nothing_is_dropped_and_the_others_carry_on);
fn a_host_that_takes_nothing_is_dropped_and_the_others_carry_on(engine: Engine) {
    let lab = DockerLab::start(2, engine);
    let big = lab.big_image("big", 80);
    let p = project(&lab, &inventory(&lab, ""));
    let run = Watched::start(
        &p,
        &[
            "env:lab",
            &format!("ship_impatient:{big}"),
            "--output",
            "json",
        ],
    );
    // h1's `docker load` stops reading what it is sent: the stream backs up into its queue,
    // and the host's command would never end (rigs used to wait for it for ever).
    let _stopped = Stopped::stop(receiving_load(&lab, 0));
    let (code, stdout) = run.finish_within(Duration::from_secs(120));
    assert_eq!(code, Some(1), "{stdout}");
    let rows = summary(&stdout);
    assert_eq!(rows[0].1, "failed", "{rows:?}");
    assert!(
        rows[0].3.contains(&format!(
            "{big}: the host took no data for 3 s while others waited; nothing was loaded"
        )),
        "{rows:?}"
    );
    assert_eq!(rows[1].1, "ok", "{rows:?}");
    lab.assert_image_as_on_controller(1, &big);
    assert_eq!(lab.image_id(0, &big), "");
}

on_engines!(a_local_host_that_takes_nothing_is_dropped_from_a_bundle_load);
/// The same for a host with `connection = "local"`, whose load runs on the controller.
fn a_local_host_that_takes_nothing_is_dropped_from_a_bundle_load(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let big = lab.big_image("big", 80);
    let text = inventory(&lab, "").replacen("hosts = [\"h1\"", "hosts = [\"here\", \"h1\"", 1)
        + "\n[hosts.here]\nconnection = \"local\"\n";
    let p = project(&lab, &text);
    p.clone()
        .args(["bundle", "create", "big.rigs", &big, "--compress", "none"])
        .timeout(120)
        .run()
        .assert_code(0);
    // The local host is the controller: it must lack the image for the bundle to be sent.
    let id = lab.controller_image_id(&big);
    lab.controller_docker_ok(&["image", "rm", &big]);
    let run = Watched::start(
        &p,
        &[
            "env:lab",
            "load_bundle_impatient:big.rigs",
            "--output",
            "json",
        ],
    );
    let _stopped = Stopped::stop(loading_into(&lab.controller_docker_host()));
    let (code, stdout) = run.finish_within(Duration::from_secs(120));
    assert_eq!(code, Some(1), "{stdout}");
    let rows = summary(&stdout);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("here", "failed"),
        "{rows:?}"
    );
    assert!(
        rows[0].3.contains(
            "big.rigs: the host took no data for 3 s while others waited; nothing was loaded"
        ),
        "{rows:?}"
    );
    assert_eq!(rows[1].1, "ok", "{rows:?}");
    assert_eq!(lab.image_id(0, &big), id);
    assert_eq!(lab.controller_image_id(&big), "", "nothing loaded here");
}

on_engines!(a_delta_the_host_refuses_is_followed_by_the_whole_image);
fn a_delta_the_host_refuses_is_followed_by_the_whole_image(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let p = project(&lab, &inventory(&lab, ""));
    let (v1, v2) = (format!("{}:v1", lab.image()), format!("{}:v2", lab.image()));
    p.clone()
        .args(["env:lab", &format!("ship_ref:{v1}")])
        .timeout(120)
        .run()
        .assert_code(0);
    lab.assert_image_as_on_controller(0, &v1);
    // Between rigs' question (the host holds v1, so v2 needs only its top layer) and the load,
    // the host's engine loses v1, and with it the base layer the delta leaves out.
    docker_wrapper(
        &lab.host_bin(0),
        &engine.docker(),
        &format!(
            "if [ \"$1\" = load ] && mkdir \"$HOME/lost-v1\" 2>/dev/null; then \"$real\" image rm {} >&2 || exit 1; fi",
            shell_quote(&v1)
        ),
    );
    let out = p
        .clone()
        .args(["env:lab", &format!("ship_ref:{v2}"), "--output", "json"])
        .timeout(180)
        .run();
    out.assert_code(0);
    assert!(lab.home(0).join("lost-v1").exists());
    assert_eq!(lab.image_id(0, &v1), "");
    lab.assert_image_as_on_controller(0, &v2);
    let warned = out
        .stdout
        .lines()
        .find(|l| l.contains("\"level\":\"warn\""))
        .unwrap_or_else(|| panic!("no warning: {}", out.stdout));
    assert!(
        warned.contains(&format!(
            "{v2}: the host's engine refused the layer delta ("
        )) && warned.contains("); sending the whole image"),
        "{warned}"
    );
    assert!(
        out.stdout.contains("2 of 2 layers sent"),
        "the whole image went: {}",
        out.stdout
    );
}

on_engines!(a_kept_part_that_does_not_match_is_deleted_and_the_image_sent_whole);
fn a_kept_part_that_does_not_match_is_deleted_and_the_image_sent_whole(engine: Engine) {
    let lab = DockerLab::start(1, engine);
    let big = lab.big_image("big", 60);
    let p = project(&lab, &inventory(&lab, ""));
    let args = resumable_ship_args(&big);
    let parts = || kept_parts(&lab);
    interrupt_once_kept(&lab, &p, &args, &[]);
    let kept = parts();
    assert_eq!(kept.len(), 1, "{kept:?}");
    // The host's disk spoils one byte of what it kept.
    let len = std::fs::metadata(&kept[0]).unwrap().len();
    flip_byte(&kept[0], len / 2);

    let out = p.clone().args(args).timeout(180).run();
    out.assert_code(0);
    assert!(out.stdout.contains("resuming after the"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "{big}: what the host kept did not match; sending it all again"
        )),
        "{}",
        out.stdout
    );
    lab.assert_image_as_on_controller(0, &big);
    // The rest after the part, then the whole image once more.
    let sent = summary(&out.stdout)[0].2;
    assert!(sent > 60 * 1024 * 1024, "{sent} bytes sent");
    assert_eq!(
        parts(),
        Vec::<std::path::PathBuf>::new(),
        "the part is gone"
    );
}

on_engines!(a_failing_docker_save_fails_every_host_and_loads_nothing);
fn a_failing_docker_save_fails_every_host_and_loads_nothing(engine: Engine) {
    let lab = DockerLab::start(2, engine);
    let big = lab.big_image("big", 80);
    let p = wrapped_project(
        &lab,
        &inventory(&lab, ""),
        r#"if [ "$1" = save ]; then echo $$ >"$PROJECT/save.pid"; fi"#,
    );
    let run = Watched::start(
        &p,
        &["env:lab", &format!("ship_ref:{big}"), "--output", "json"],
    );
    // Both hosts' `docker load`s stop reading, so that the save cannot finish; once both
    // have received bytes of it, the save dies.
    let loads = [
        Stopped::stop(receiving_load(&lab, 0)),
        Stopped::stop(receiving_load(&lab, 1)),
    ];
    run.wait_for_bytes("h1");
    run.wait_for_bytes("h2");
    let save: u32 = std::fs::read_to_string(p.path().join("save.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(signal(save, "-KILL"), "docker save had ended already");
    for load in &loads {
        assert!(signal(load.0, "-CONT"));
    }
    let (code, stdout) = run.finish_within(Duration::from_secs(120));
    assert_eq!(code, Some(1), "{stdout}");
    for (host, status, sent, error) in summary(&stdout) {
        assert_eq!(status, "failed", "{host}: {stdout}");
        assert!(sent > 0, "{host}");
        assert!(
            error.contains(&format!(
                "{big}: docker save {big} failed on the controller: signal: 9 (SIGKILL), \
                 with no message; nothing was loaded"
            )),
            "{host}: {error}"
        );
    }
    for i in [0, 1] {
        assert_eq!(lab.image_id(i, &big), "");
        assert_eq!(lab.docker_ok(i, &["image", "ls", "--all", "--quiet"]), "");
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
