//! Output that holds up under load and against hostile hosts: every line reaches the file whole
//! even when stdout and stderr share it, host output cannot forge lines or repaint the terminal,
//! an endless line cannot exhaust the controller's memory, and a closed pipe ends printing
//! without a panic.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Project, SshLab};

/// sshd processes behind the fleet; each of the `HOSTS` names uses one, with a key file of its
/// own so that every host has a connection of its own, as on a real fleet.
const SERVERS: usize = 10;
const HOSTS: usize = 100;
const COMMANDS: usize = 10;

const CHATTER: &str = r#"
/// Ten commands, each printing a line on stdout and one on stderr.
fn chatter() {
    for i in 0..10 {
        run(`echo out-${i}; echo err-${i} >&2`);
    }
}
"#;

/// `n` sshd hosts whose sessions have an empty home folder of their own: no shell startup
/// file of the machine's own user slows the commands down or adds to their output.
fn lab_with_home(n: usize) -> (SshLab, tempfile::TempDir) {
    let home = tempfile::Builder::new()
        .prefix("rigs-home-")
        .tempdir()
        .unwrap();
    let lab = SshLab::start_with(n, &format!("SetEnv HOME={}", home.path().display()));
    (lab, home)
}

/// `HOSTS` hosts `n1`..`n100` in environment `fleet`.
fn fleet() -> ((SshLab, tempfile::TempDir), Project) {
    let (lab, home) = lab_with_home(SERVERS);
    let p = Project::new().recipe("chatter.rhai", CHATTER);
    let names: Vec<String> = (1..=HOSTS).map(|i| format!("\"n{i}\"")).collect();
    let mut inventory = format!(
        "[defaults]\nuser = \"{}\"\n\n[env.fleet]\nhosts = [{}]\n",
        lab.user(),
        names.join(", ")
    );
    std::fs::create_dir_all(p.path().join("keys")).unwrap();
    for i in 1..=HOSTS {
        let key = p.path().join(format!("keys/n{i}"));
        std::fs::copy(lab.client_key_path(), &key).unwrap();
        let server = lab.host(i % SERVERS);
        inventory.push_str(&format!(
            "\n[hosts.n{i}]\naddress = \"{}\"\nport = {}\nidentity = \"{}\"\n",
            server.addr(),
            server.port,
            key.display()
        ));
    }
    let p = p.inventory("fleet.toml", &inventory);
    lab.write_known_hosts(&p.path().join("known_hosts"));
    ((lab, home), p.args(["--known-hosts", "known_hosts"]))
}

/// Runs rigs with stdout and stderr both writing into `log`, through one open file as `2>&1`
/// does, and returns the exit code.
fn run_into_one_file(p: &Project, log: &Path) -> i32 {
    let file = std::fs::File::create(log).unwrap();
    let mut child = p
        .command()
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("start rigs");
    wait(&mut child, Duration::from_secs(300))
}

fn wait(child: &mut Child, limit: Duration) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rigs ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `n` in `prefix-n` when `n` is a command number.
fn numbered(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix)
        .and_then(|i| i.parse::<usize>().ok())
        .is_some_and(|i| i < COMMANDS)
}

/// Checks that every line of a plain (or pretty, off a terminal) log is one whole line rigs
/// writes, and that every host's every line is there.
fn assert_whole_lines(log: &str) {
    let (mut echoes, mut outs, mut errs) = (0, 0, 0);
    for line in log.lines() {
        let torn = || format!("torn line: {line:?}");
        let Some(rest) = line.strip_prefix("[n") else {
            // The summary: a blank line, the header, a row per host, the count.
            let cells: Vec<&str> = line.split_whitespace().collect();
            let row = matches!(cells.as_slice(), [host, "ok", time]
                if host.strip_prefix('n').is_some_and(|n| n.parse::<usize>().is_ok())
                    && time.ends_with('s'));
            assert!(
                line.is_empty()
                    || cells == ["HOST", "STATUS", "TIME"]
                    || row
                    || line == format!("{HOSTS} hosts: {HOSTS} ok"),
                "{}",
                torn()
            );
            continue;
        };
        let (number, rest) = rest
            .split_once("] ")
            .unwrap_or_else(|| panic!("{}", torn()));
        assert!(
            number
                .parse::<usize>()
                .is_ok_and(|n| (1..=HOSTS).contains(&n)),
            "{}",
            torn()
        );
        assert!(!rest.contains("[n"), "{}", torn());
        if let Some(command) = rest.strip_prefix("$ echo out-") {
            let (i, tail) = command
                .split_once(';')
                .unwrap_or_else(|| panic!("{}", torn()));
            assert_eq!(tail, format!(" echo err-{i} >&2"), "{}", torn());
            assert!(i.parse::<usize>().is_ok_and(|i| i < COMMANDS), "{}", torn());
            echoes += 1;
        } else if numbered(rest, "out-") {
            outs += 1;
        } else if numbered(rest, "err-") {
            errs += 1;
        } else {
            // -v: the task starts and ends, the connections, the history line.
            assert!(
                rest == "task chatter"
                    || (rest.starts_with("ok chatter (") && rest.ends_with("s)"))
                    || rest.starts_with("connected to ")
                    || rest == "$ (append to \"$HOME/.rigs/history.jsonl\")",
                "{}",
                torn()
            );
        }
    }
    let all = HOSTS * COMMANDS;
    assert_eq!((echoes, outs, errs), (all, all, all), "lines are missing");
}

#[test]
fn lines_stay_whole_when_stdout_and_stderr_share_a_file() {
    let (_lab, p) = fleet();
    // Pretty output off a terminal has no live lines: what plain writes, less `task` and `ok`.
    for mode in ["plain", "pretty"] {
        let log = p.path().join(format!("{mode}.log"));
        let run = p
            .clone()
            .args(["--output", mode, "-v", "env:fleet", "chatter"]);
        assert_eq!(run_into_one_file(&run, &log), 0, "{mode}");
        assert_whole_lines(&std::fs::read_to_string(&log).unwrap());
    }
    let log = p.path().join("json.log");
    let run = p.clone().args(["--output", "json", "env:fleet", "chatter"]);
    assert_eq!(run_into_one_file(&run, &log), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let outputs = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("torn ({e}): {l:?}")))
        .filter(|e| e["event"] == "output")
        .count();
    assert_eq!(outputs, 2 * HOSTS * COMMANDS);
}

const FORGER: &str = r#"
/// Prints a line that passes for another host's and clears the screen, then tabs, DEL and a
/// C1 control (CSI) on stderr.
fn forge() {
    run("printf '\\r[h9] ok\\033[2J\\n'; printf 'a\\tb\\177\\302\\233[1m\\n' >&2");
}
"#;

fn forger(lab: &SshLab) -> Project {
    let p = Project::new()
        .recipe("forge.rhai", FORGER)
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("known_hosts"));
    p.args(["--known-hosts", "known_hosts"])
}

/// Whether `text` holds a control character other than a newline or a tab (C1 included).
fn has_controls(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

#[test]
fn host_output_cannot_forge_lines_or_repaint_the_terminal() {
    let (lab, _home) = lab_with_home(1);
    let p = forger(&lab);

    let out = p
        .clone()
        .args(["--output", "plain", "env:lab", "forge"])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "[h1] \\r[h9] ok\\x1b[2J\n");
    assert!(
        out.stderr.contains("[h1] a\tb\\x7f\\u{9b}[1m\n"),
        "{}",
        out.stderr
    );
    assert!(!has_controls(&out.stderr), "{:?}", out.stderr);

    // JSON keeps the exact text, escaped the JSON way, with no raw control character either.
    let out = p
        .clone()
        .args(["--output", "json", "env:lab", "forge"])
        .run();
    out.assert_code(0);
    assert!(!has_controls(&out.stdout), "{:?}", out.stdout);
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "output")
        .map(|e| e["line"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(lines, ["\r[h9] ok\x1b[2J", "a\tb\x7f\u{9b}[1m"]);

    // On a terminal, above the live lines.
    let out = p.args(["env:lab", "forge"]).run_in_terminal("");
    assert!(
        out.stdout.contains("[h1] \\r[h9] ok\\x1b[2J"),
        "{:?}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("\r[h9]") && !out.stdout.contains("\x1b[2J"),
        "{:?}",
        out.stdout
    );
}

#[test]
fn bundle_verify_shows_manifest_fields_escaped() {
    let p = Project::new();
    // A well-formed bundle whose manifest carries control characters.
    let made = Command::new("python3")
        .arg("-c")
        .arg(
            r#"import hashlib, io, json, sys, tarfile
archive = b'x' * 1000
manifest = json.dumps({
    "format": 1, "rigs_version": "9\r[h9] ok", "created": "2026-12-01T08:30:00Z\x1b[2J",
    "images": [{"reference": "app:v1\x1b]0;title\x07", "id": "sha256:\x9b1m", "repo_tags": [],
                "diff_ids": [], "size": 1000}],
    "archive": {"name": "image.tar", "compression": "none", "bytes": len(archive),
                "sha256": hashlib.sha256(archive).hexdigest(), "body_bytes": len(archive)},
}).encode()
sums = "".join("%s  %s\n" % (hashlib.sha256(d).hexdigest(), n)
               for n, d in [("image.tar", archive), ("manifest.json", manifest)]).encode()
t = tarfile.open(sys.argv[1], "w", format=tarfile.USTAR_FORMAT)
for name, data in [("image.tar", archive), ("manifest.json", manifest), ("SHA256SUMS", sums)]:
    i = tarfile.TarInfo(name); i.size = len(data)
    t.addfile(i, io.BytesIO(data))
t.close()
"#,
        )
        .arg(p.path().join("odd.rigs"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let out = p.clone().args(["bundle", "verify", "odd.rigs"]).run();
    out.assert_code(0);
    assert!(!has_controls(&out.stdout), "{:?}", out.stdout);
    for shown in [
        "made by rigs 9\\r[h9] ok at 2026-12-01T08:30:00Z\\x1b[2J",
        "app:v1\\x1b]0;title\\x07  sha256:\\u{9b}1m",
    ] {
        assert!(out.stdout.contains(shown), "{shown}\n{}", out.stdout);
    }
    let out = p.args(["bundle", "extract", "odd.rigs", "out"]).run();
    out.assert_code(0);
    assert!(!has_controls(&out.stdout), "{:?}", out.stdout);
}

/// The line limit, as the book gives it.
const LINE_CAP: usize = 64 * 1024;

#[test]
fn a_long_line_is_shown_in_marked_pieces() {
    let (lab, _home) = lab_with_home(1);
    let p = Project::new()
        .recipe(
            "long.rhai",
            r#"
/// Two lines of 100000 characters, then a short one.
fn long() {
    run("for i in 1 2; do head -c 100000 /dev/zero | tr '\\0' x; echo; done; echo end");
}
"#,
        )
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("known_hosts"));
    let p = p.args(["--known-hosts", "known_hosts"]);

    let out = p
        .clone()
        .args(["--output", "plain", "env:lab", "long"])
        .run();
    out.assert_code(0);
    let piece = format!("[h1] {}…", "x".repeat(LINE_CAP));
    let rest = format!("[h1] {}", "x".repeat(100_000 - LINE_CAP));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{:?}", &out.stdout[..200]);
    assert!(
        lines[..4] == [&piece, &rest, &piece, &rest] && lines[4] == "[h1] end",
        "unexpected pieces"
    );
    let told: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("64 KiB"))
        .collect();
    assert_eq!(told.len(), 1, "told once per host: {}", out.stderr);
    assert!(told[0].starts_with("[h1] warning: "), "{}", told[0]);

    let out = p.args(["--output", "json", "env:lab", "long"]).run();
    out.assert_code(0);
    let pieces: Vec<(usize, bool)> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "output")
        .map(|e| (e["line"].as_str().unwrap().len(), e["cut"] == true))
        .collect();
    let rest = 100_000 - LINE_CAP;
    assert_eq!(
        pieces,
        [
            (LINE_CAP, true),
            (rest, false),
            (LINE_CAP, true),
            (rest, false),
            (3, false)
        ]
    );
}

/// The peak resident memory of process `pid` so far, in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn an_endless_line_keeps_the_controllers_memory_bounded() {
    const PRINTED: u64 = 400_000_000;
    let (lab, _home) = lab_with_home(1);
    let p = Project::new()
        .recipe(
            "endless.rhai",
            &format!(
                r#"
/// {PRINTED} bytes without a newline, output hidden.
fn endless() {{
    run("head -c {PRINTED} /dev/zero | tr '\\0' x", #{{quiet: true}});
}}
"#
            ),
        )
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("known_hosts"));
    let p = p.args(["--known-hosts", "known_hosts", "env:lab", "endless"]);
    let mut child = p.spawn();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = { stderr }.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let mut peak = 0;
    let code = loop {
        if let Some(rss) = peak_rss(pid) {
            peak = peak.max(rss);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        assert!(started.elapsed() < Duration::from_secs(300), "rigs hangs");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = stderr.join().unwrap();
    assert_eq!(code, 0, "{stderr}");
    // What `run` returns keeps the first 64 MiB (which the script engine copies once); the line
    // being split holds at most 64 KiB. Before the cap, rigs held the whole line, twice over.
    assert!(
        peak < 250_000_000,
        "rigs grew to {} MB for a {} MB line",
        peak / 1_000_000,
        PRINTED / 1_000_000
    );
}

const FLOOD: &str = r#"
print("recipes loaded");

/// Prints a lot on both streams.
fn flood() {
    run("seq 1 20000; seq 1 20000 >&2");
}
"#;

/// Runs rigs with its stdout (or stderr) a pipe whose reading end is already closed, and
/// returns the exit code and what the other stream said.
fn with_closed(p: &Project, closed: &str) -> (i32, String) {
    let mut child = p.spawn();
    let open = if closed == "stdout" {
        drop(child.stdout.take());
        Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>
    } else {
        drop(child.stderr.take());
        Box::new(child.stdout.take().unwrap())
    };
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = { open }.read_to_string(&mut text);
        text
    });
    let code = wait(&mut child, Duration::from_secs(120));
    (code, reader.join().unwrap())
}

#[test]
fn a_closed_stdout_or_stderr_ends_printing_quietly() {
    let (lab, _home) = lab_with_home(2);
    let p = Project::new()
        .recipe("flood.rhai", FLOOD)
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("known_hosts"));
    let p = p.args(["--known-hosts", "known_hosts"]);
    for (args, code) in [
        (vec!["env:lab", "flood"], 0),
        (vec!["env:lab", "flood", "--output", "json"], 0),
        (vec!["--list"], 0),
        (vec!["--list-hosts"], 0),
        (vec!["env:lab", "no_such_task"], 2),
    ] {
        for closed in ["stdout", "stderr"] {
            let (got, other) = with_closed(&p.clone().args(&args), closed);
            assert!(
                !other.contains("panicked"),
                "{args:?} with {closed} closed: {other}"
            );
            assert_eq!(got, code, "{args:?} with {closed} closed: {other}");
        }
    }
    // The run went on to its end: the summary reached the open stream.
    let (_, stderr) = with_closed(&p.clone().args(["env:lab", "flood"]), "stdout");
    assert!(stderr.contains("2 hosts: 2 ok"), "{stderr}");
}
