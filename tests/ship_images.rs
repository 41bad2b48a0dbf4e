//! `docker::ship` of several images: one `docker save` stream for all the images a host lacks,
//! as an air-gapped Compose deploy needs them, against real engines in every controller/host
//! pairing.

use crate::harness::{on_engines, shell_quote, DockerLab, Engine, LabOptions, Project};

const RECIPES: &str = r#"
/// Ship the space-separated references in one stream.
fn ship_list(refs) {
    let r = docker::ship(refs.split(" "));
    let ids = [];
    for i in r.images { ids.push(`${i.image}=${i.id}`); }
    info(`stream bytes=${r.bytes} layers=${r.layers_sent}/${r.layers_total} images=${ids}`);
}

/// Ship each of the space-separated references alone, whole.
fn ship_each_whole(refs) {
    let sizes = [];
    for reference in refs.split(" ") {
        sizes.push(docker::ship(reference, #{ delta: false }).bytes);
    }
    info(`each bytes=${sizes}`);
}

/// Ship no image at all.
fn ship_none() {
    let r = docker::ship([]);
    info(`none bytes=${r.bytes} images=${r.images.len()}`);
}

/// Ship several references resumably, which is refused.
fn ship_resumable(refs) {
    docker::ship(refs.split(" "), #{ resume: true });
}
"#;

/// A project with the lab's hosts, reading images from the lab's controller engine, whose
/// `docker` logs every `docker save` to `saves.log` in the project's folder.
fn project(lab: &DockerLab) -> Project {
    let mut inventory = lab.inventory_toml();
    inventory.push_str(&format!("\n[vars]\nimage = \"{}\"\n", lab.image()));
    let p = Project::new()
        .recipe("ship.rhai", RECIPES)
        .inventory("lab.toml", &inventory);
    lab.ssh
        .write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    let bin = p.path().join("wrapper");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("docker");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = save ]; then echo \"$*\" >>{}; fi\nexec {} \"$@\"\n",
            shell_quote(&p.path().join("saves.log").display().to_string()),
            shell_quote(&lab.controller_engine().docker().display().to_string())
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), lab.controller_path());
    p.env("DOCKER_HOST", &lab.controller_docker_host())
        .env("PATH", &path)
}

/// The `docker save` command lines the controller ran so far.
fn saves(p: &Project) -> Vec<String> {
    std::fs::read_to_string(p.path().join("saves.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Per host, the text after `prefix` in its messages, from a `--output json` run.
fn said(stdout: &str, prefix: &str) -> Vec<(String, String)> {
    crate::harness::json_events(stdout)
        .into_iter()
        .filter(|e| e["event"] == "message")
        .filter_map(|e| {
            let text = e["text"].as_str()?.strip_prefix(prefix)?.to_string();
            Some((e["host"].as_str()?.to_string(), text))
        })
        .collect()
}

/// What `ship_list` reported on each host: bytes, layers sent, layers in all.
fn streams(stdout: &str) -> Vec<(String, u64, usize, usize)> {
    said(stdout, "stream bytes=")
        .into_iter()
        .map(|(host, text)| {
            let (bytes, rest) = text.split_once(" layers=").unwrap();
            let (sent, rest) = rest.split_once('/').unwrap();
            let total = rest.split(' ').next().unwrap();
            (
                host,
                bytes.parse().unwrap(),
                sent.parse().unwrap(),
                total.parse().unwrap(),
            )
        })
        .collect()
}

/// The run's messages at warn level and those about loading, for assertion messages.
fn story(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| l.contains("\"level\":\"warn\"") || l.contains("loaded") || l.contains("error"))
        .collect::<Vec<_>>()
        .join("\n")
}

on_engines!(fleets several_images_travel_in_one_stream_with_the_layer_delta);
fn several_images_travel_in_one_stream_with_the_layer_delta(controller: Engine, hosts: Engine) {
    let lab = DockerLab::start_with(
        2,
        &LabOptions {
            offline: vec![1],
            ..LabOptions::fleet(controller, hosts)
        },
    );
    lab.assert_offline(1);
    let p = project(&lab);
    let image = lab.image();
    let (v1, v2, broken) = (
        format!("{image}:v1"),
        format!("{image}:v2"),
        format!("{image}:broken"),
    );
    let base = lab.base_image();
    let extra = lab.big_image("extra", 2);

    // Three images on one base, to hosts that hold none of them: one save, one stream.
    let out = p
        .clone()
        .args([
            "env:lab",
            &format!("ship_list:{v1} {base} {extra}"),
            "--output",
            "json",
        ])
        .timeout(180)
        .run();
    out.assert_code(0);
    let mut sorted = [v1.clone(), base.clone(), extra.clone()];
    sorted.sort();
    assert_eq!(saves(&p), [format!("save {}", sorted.join(" "))]);
    for i in 0..2 {
        for r in [&v1, &base, &extra] {
            lab.assert_image_as_on_controller(i, r);
        }
    }
    let first = streams(&out.stdout);
    assert_eq!(first.len(), 2, "{}", out.stdout);
    // The base layer once, under three images: 3 different layers.
    assert!(
        first
            .iter()
            .all(|s| s.1 == first[0].1 && s.2 == 3 && s.3 == 3),
        "{first:?}"
    );
    let together = first[0].1;
    let loaded = said(&out.stdout, "loaded 3 images: ");
    assert_eq!(loaded.len(), 2, "one line per host: {}", story(&out.stdout));
    assert!(
        loaded[0].1.contains("(3 of 3 layers sent as "),
        "{loaded:?}"
    );
    let ids = said(&out.stdout, "stream bytes=");
    assert!(
        ids[0]
            .1
            .contains(&format!("{v1}={}", lab.controller_image_id(&v1))),
        "{ids:?}"
    );

    // The same images one by one, whole, to the first host once it lost them: the base travels
    // three times.
    lab.docker_ok(0, &["image", "rm", &v1, &base, &extra]);
    let out = p
        .clone()
        .args([
            "-H",
            "h1",
            &format!("ship_each_whole:{v1} {base} {extra}"),
            "--output",
            "json",
        ])
        .timeout(180)
        .run();
    out.assert_code(0);
    let each: Vec<u64> = said(&out.stdout, "each bytes=")[0]
        .1
        .trim_matches(['[', ']'])
        .split(", ")
        .map(|b| b.parse().unwrap())
        .collect();
    let (alone, base_alone) = (each.iter().sum::<u64>(), each[1]);
    eprintln!("together {together} bytes; one by one {each:?} = {alone} bytes");
    assert!(
        together + base_alone < alone,
        "one stream sends the base once: {together} bytes together, {each:?} one by one"
    );

    // The hosts hold v1: it is tagged, and only v2's top layer travels.
    let out = p
        .clone()
        .args([
            "env:lab",
            &format!("ship_list:{v2} {v1}"),
            "--output",
            "json",
        ])
        .timeout(180)
        .run();
    out.assert_code(0);
    for (host, bytes, sent, total) in streams(&out.stdout) {
        eprintln!("{host}: v2 beside v1 held: {bytes} bytes, {sent} of {total} layers");
        assert_eq!((sent, total), (1, 3), "{host}: {}", story(&out.stdout));
        assert!(
            bytes * 20 < together,
            "{host}: {bytes} bytes for v2's top layer, {together} for the three images: {}",
            story(&out.stdout)
        );
    }
    assert_eq!(
        said(&out.stdout, &format!("{v1}: already on the host (")).len(),
        2
    );
    assert_eq!(said(&out.stdout, "loaded 1 image: ").len(), 2);
    for i in 0..2 {
        lab.assert_image_as_on_controller(i, &v1);
        lab.assert_image_as_on_controller(i, &v2);
    }

    // Two new images sharing the base the hosts hold: both in one stream without the base
    // (on engines whose archives do not name layers by diff id, after one read to learn them).
    let big = lab.big_image("big", 4);
    let before = saves(&p).len();
    let out = p
        .clone()
        .args([
            "env:lab",
            &format!("ship_list:{big} {broken}"),
            "--output",
            "json",
        ])
        .timeout(180)
        .run();
    out.assert_code(0);
    let both = format!("save {big} {broken}");
    assert_eq!(saves(&p)[before..], [both.clone(), both]);
    for (host, bytes, sent, total) in streams(&out.stdout) {
        eprintln!(
            "{host}: big and broken on the held base: {bytes} bytes, {sent} of {total} layers"
        );
        assert_eq!((sent, total), (2, 3), "{host}: {}", story(&out.stdout));
        assert!(
            bytes > 4 << 20 && bytes < (4 << 20) + base_alone / 2,
            "{host}: {bytes} bytes for 4 MiB of new layers, the base ({base_alone} bytes) left out: {}",
            story(&out.stdout)
        );
    }
    for i in 0..2 {
        lab.assert_image_as_on_controller(i, &big);
        lab.assert_image_as_on_controller(i, &broken);
    }

    // A reference the controller lacks: the call fails naming it, and nothing is sent.
    let missing = format!("{image}:nosuch");
    let out = p
        .clone()
        .args(["env:lab", &format!("ship_list:{v1} {missing}")])
        .timeout(120)
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains(&format!(
            "docker::ship: not an image on the controller: `{missing}`"
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("docker load"), "{}", out.stderr);

    // No image: nothing to do.
    let out = p
        .clone()
        .args(["env:lab", "ship_none", "--output", "json"])
        .timeout(120)
        .run();
    out.assert_code(0);
    assert_eq!(said(&out.stdout, "none bytes=").len(), 2, "{}", out.stdout);
    assert!(
        said(&out.stdout, "none bytes=")
            .iter()
            .all(|(_, t)| t == "0 images=0"),
        "{}",
        out.stdout
    );
}

#[test]
fn several_images_in_a_dry_run_and_refused_options() {
    let p = Project::new().recipe("ship.rhai", RECIPES).inventory(
        "hosts.toml",
        "[env.airgap]\nhosts = [\"web-1.invalid\", \"web-2.invalid\"]\n",
    );
    let out = p
        .clone()
        .args(["env:airgap", "--dry-run", "ship_list:app:1 worker:2 db:3"])
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains(
            "[web-1.invalid] would run: docker load  # 3 images from the controller's docker save, verified: app:1, worker:2, db:3"
        ),
        "{}",
        out.stderr
    );
    let out = p
        .clone()
        .args(["env:airgap", "--dry-run", "ship_none"])
        .run();
    out.assert_code(0);
    assert!(
        out.stderr.contains("[web-1.invalid] none bytes=0 images=0"),
        "{}",
        out.stderr
    );
    let out = p
        .clone()
        .args(["env:airgap", "--dry-run", "ship_resumable:app:1 worker:2"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("docker::ship: `resume: true` works for one image at a time"),
        "{}",
        out.stderr
    );
    let p = p.recipe("bad.rhai", "fn odd() { docker::ship([\"app:1\", 2]); }\n");
    let out = p.clone().args(["env:airgap", "--dry-run", "odd"]).run();
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("docker::ship: element 2 of the array is i64, not an image reference"),
        "{}",
        out.stderr
    );
}

on_engines!(fleets a_shared_base_held_under_another_image_is_left_out_and_a_refused_delta_sends_all);
fn a_shared_base_held_under_another_image_is_left_out_and_a_refused_delta_sends_all(
    controller: Engine,
    hosts: Engine,
) {
    let lab = DockerLab::start_with(1, &LabOptions::fleet(controller, hosts));
    let p = project(&lab);
    let image = lab.image();
    let (v1, v2, broken) = (
        format!("{image}:v1"),
        format!("{image}:v2"),
        format!("{image}:broken"),
    );
    let base = lab.base_image();

    // An array of one is a single image's ship, in the shape of several.
    let out = p
        .clone()
        .args(["env:lab", &format!("ship_list:{v1}"), "--output", "json"])
        .timeout(120)
        .run();
    out.assert_code(0);
    let one = streams(&out.stdout);
    assert_eq!((one[0].2, one[0].3), (2, 2), "{one:?}");
    assert_eq!(said(&out.stdout, &format!("{v1}: loaded ")).len(), 1);
    lab.assert_image_as_on_controller(0, &v1);

    // The host holds the base layer under v1 but not the base image: the base image's own
    // archive entry for it, and v2's, are left out (before Docker 25 one links to the other).
    assert_eq!(lab.image_id(0, &base), "");
    if controller == Engine::Classic {
        let saved = lab
            .controller_docker_command()
            .args(["save", &base, &v2])
            .output()
            .unwrap();
        assert!(saved.status.success());
        let file = p.path().join("saved.tar");
        std::fs::write(&file, &saved.stdout).unwrap();
        let listed = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&file)
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with('l') && l.ends_with("/layer.tar")),
            "the shared layer is linked: {listed}"
        );
    }
    let out = p
        .clone()
        .args([
            "env:lab",
            &format!("ship_list:{base} {v2}"),
            "--output",
            "json",
        ])
        .timeout(120)
        .run();
    out.assert_code(0);
    let both = streams(&out.stdout);
    assert_eq!((both[0].2, both[0].3), (1, 2), "{}", story(&out.stdout));
    assert!(both[0].1 * 20 < one[0].1, "{both:?} against {one:?}");
    lab.assert_image_as_on_controller(0, &base);
    lab.assert_image_as_on_controller(0, &v2);

    // Between rigs' question and the load, the host's engine loses every image with the base
    // layer: it refuses the delta, and both images follow whole.
    let big = lab.big_image("big", 1);
    let real = lab.engine().docker();
    let wrapper = lab.host_bin(0).join("docker");
    let _ = std::fs::remove_file(&wrapper);
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nreal={}\nif [ \"$1\" = load ] && mkdir \"$HOME/lost-base\" 2>/dev/null; then \"$real\" image rm {} {} {} >&2 || exit 1; fi\nexec \"$real\" \"$@\"\n",
            shell_quote(&real.display().to_string()),
            shell_quote(&v1),
            shell_quote(&v2),
            shell_quote(&base)
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = p
        .clone()
        .args([
            "env:lab",
            &format!("ship_list:{big} {broken}"),
            "--output",
            "json",
        ])
        .timeout(180)
        .run();
    out.assert_code(0);
    assert!(lab.home(0).join("lost-base").exists());
    assert_eq!(lab.image_id(0, &v1), "");
    let warned = said(&out.stdout, &format!("{big}, {broken}: "));
    assert!(
        warned.iter().any(
            |(_, t)| t.starts_with("the host's engine refused the layer delta (")
                && t.ends_with("); sending the whole images")
        ),
        "{}",
        story(&out.stdout)
    );
    let all = streams(&out.stdout);
    assert_eq!((all[0].2, all[0].3), (3, 3), "{}", story(&out.stdout));
    lab.assert_image_as_on_controller(0, &big);
    lab.assert_image_as_on_controller(0, &broken);
}
