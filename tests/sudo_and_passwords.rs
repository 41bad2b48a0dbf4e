//! Password logins and sudo with a password, against the real `rigs-test` account.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{
    ensure_test_user, shell_quote, Project, RunOutput, SshLab, TEST_PASSWORD, TEST_USER,
};

fn project(lab: &SshLab, recipe: &str) -> Project {
    let mut inventory = format!("[defaults]\nuser = \"{TEST_USER}\"\n[env.lab]\nhosts = [");
    let names: Vec<String> = lab
        .hosts()
        .iter()
        .map(|h| format!("\"{}\"", h.name))
        .collect();
    inventory.push_str(&names.join(", "));
    inventory.push_str("]\n");
    for h in lab.hosts() {
        inventory.push_str(&format!(
            "[hosts.{}]\naddress = \"127.0.0.1\"\nport = {}\nidentity = \"{}\"\n",
            h.name,
            h.port,
            lab.client_key_path().display()
        ));
    }
    let p = Project::new()
        .recipe("t.rhai", recipe)
        .inventory("lab.toml", &inventory);
    lab.write_known_hosts(&p.path().join("home/.ssh/known_hosts"));
    p
}

#[test]
fn password_only_host() {
    ensure_test_user();
    let lab = SshLab::start_with(1, "PasswordAuthentication yes\nPubkeyAuthentication no");
    let recipe = "fn who() { run(\"whoami\"); }";
    let out = project(&lab, recipe)
        .env("RIGS_PASSWORD", TEST_PASSWORD)
        .args(["env:lab", "who"])
        .run();
    out.assert_code(0);
    assert!(
        out.stdout.contains(&format!("[h1] {TEST_USER}")),
        "{}",
        out.stdout
    );

    let out = project(&lab, recipe)
        .env("RIGS_PASSWORD", "not-the-password")
        .args(["env:lab", "who"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("authentication failed") && out.stderr.contains(", password)"),
        "{}",
        out.stderr
    );
    // RIGS_PASSWORD is masked, so a leak would print as `****`.
    assert!(
        !out.stderr.contains("not-the-password") && !out.stderr.contains("****"),
        "{}",
        out.stderr
    );

    let out = project(&lab, recipe).args(["env:lab", "who"]).run();
    out.assert_code(1);
    assert!(out.stderr.contains("--ask-pass"), "{}", out.stderr);
}

/// The command lines of every process on this machine, where every lab host lives.
fn command_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&raw).replace('\0', " ");
            if !text.trim().is_empty() {
                lines.push(text);
            }
        }
    }
    lines
}

/// Runs `p`, whose sudo commands each touch `arrived-HOST` in `meeting` and then wait for `go`
/// there. Once all `hosts` have arrived (which they can only do together, in parallel), reads
/// every process's command line, then lets them go. Returns rigs' output and the command lines
/// of the processes that were waiting at the meeting.
fn run_meeting_under_sudo(p: &Project, meeting: &Path, hosts: usize) -> (RunOutput, Vec<String>) {
    let child = p.spawn();
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let arrived = || {
        std::fs::read_dir(meeting)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("arrived-"))
            .count()
    };
    while arrived() < hosts && !waiter.is_finished() {
        if Instant::now() > deadline {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{} of {hosts} hosts reached sudo together", arrived());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let all = command_lines();
    std::fs::write(meeting.join("go"), "").unwrap();
    let out = waiter.join().unwrap();
    let out = RunOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(arrived(), hosts, "{}{}", out.stdout, out.stderr);
    let leaked: Vec<&String> = all.iter().filter(|l| l.contains(TEST_PASSWORD)).collect();
    assert!(leaked.is_empty(), "password on a command line: {leaked:?}");
    let waiting = all
        .into_iter()
        .filter(|l| l.contains(&meeting.display().to_string()))
        .collect();
    (out, waiting)
}

#[test]
fn sudo_with_password_on_three_hosts_in_parallel_never_shows_the_password() {
    ensure_test_user();
    let lab = SshLab::start(3);
    for mode in ["json", "plain"] {
        let meeting = tempfile::tempdir().unwrap();
        let dir = shell_quote(&meeting.path().display().to_string());
        // Each host's sudo command waits (at most 60 s) for the test to let it go, which the
        // test does only once all three are inside sudo at the same time.
        let recipe = format!(
            r#"
fn root() {{
    let r = sudo(`touch {dir}/arrived-${{host.name}}; i=0; while [ ! -e {dir}/go ]; do i=$((i+1)); [ $i -gt 1200 ] && exit 9; sleep 0.05; done; id -u`, #{{ quiet: true }});
    info("uid " + r.stdout);
    let piped = sudo("cat", #{{ stdin: "data for the command" }});
    let as_nobody = sudo("id -un", #{{ user: "nobody", quiet: true }});
    info("as " + as_nobody.stdout);
}}
"#
        );
        let p = project(&lab, &recipe)
            .env("RIGS_SUDO_PASSWORD", TEST_PASSWORD)
            .args(["--output", mode, "env:lab", "root"]);
        let (out, waiting) = run_meeting_under_sudo(&p, meeting.path(), 3);
        out.assert_code(0);
        // The scan saw each host's sudo wrapper (so it would have seen a password there too).
        for h in ["h1", "h2", "h3"] {
            assert!(
                waiting
                    .iter()
                    .any(|l| l.starts_with("sudo -S -p ") && l.contains(&format!("arrived-{h}"))),
                "{h}: {waiting:#?}"
            );
        }
        // A password that reached a command line or a message would print masked: no `****`
        // anywhere, in output, command echoes, messages or the summary.
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            !all.contains(TEST_PASSWORD) && !all.contains("****"),
            "{all}"
        );
        let shown = |h: &str, text: &str| match mode {
            "json" => out.stdout.lines().any(|l| {
                let e: serde_json::Value = serde_json::from_str(l).unwrap();
                e["host"] == h && (e["text"] == text || e["line"] == text)
            }),
            _ => out
                .stdout
                .lines()
                .chain(out.stderr.lines())
                .any(|l| l == format!("[{h}] {text}")),
        };
        for h in ["h1", "h2", "h3"] {
            for text in ["uid 0", "as nobody", "data for the command"] {
                assert!(shown(h, text), "{mode} {h} {text}: {all}");
            }
        }
        if mode == "json" {
            let commands: Vec<serde_json::Value> = out
                .stdout
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|e| e["event"] == "command" && e["verbose_only"] == false)
                .collect();
            assert_eq!(commands.len(), 9, "{all}");
            for h in ["h1", "h2", "h3"] {
                for command in ["sudo cat", "sudo -u nobody id -un"] {
                    assert!(
                        commands
                            .iter()
                            .any(|e| e["host"] == h && e["command"] == command),
                        "{h} {command}: {all}"
                    );
                }
            }
        } else {
            assert!(out.stderr.contains("[h1] $ sudo touch "), "{}", out.stderr);
            assert!(
                out.stderr.contains("[h3] $ sudo -u nobody id -un"),
                "{}",
                out.stderr
            );
            assert!(
                out.stderr.contains("3 hosts: 3 ok"),
                "the summary: {}",
                out.stderr
            );
        }
    }
}

#[test]
fn wrong_or_missing_sudo_password_fails_fast() {
    ensure_test_user();
    let lab = SshLab::start(1);
    let recipe = "fn root() { sudo(\"true\"); }";
    let out = project(&lab, recipe)
        .env("RIGS_SUDO_PASSWORD", "wrong-pw")
        .args(["env:lab", "root"])
        .run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("sudo: incorrect password"),
        "{}",
        out.stderr
    );

    let out = project(&lab, recipe).args(["env:lab", "root"]).run();
    out.assert_code(1);
    assert!(
        out.stderr.contains("sudo needs a password"),
        "{}",
        out.stderr
    );
}

#[test]
fn ad_hoc_sudo() {
    ensure_test_user();
    let lab = SshLab::start(1);
    let out = project(&lab, "fn t() {}")
        .env("RIGS_SUDO_PASSWORD", TEST_PASSWORD)
        .args(["env:lab", "--sudo", "--", "whoami"])
        .run();
    out.assert_code(0);
    assert!(out.stdout.contains("[h1] root"), "{}", out.stdout);
}

#[test]
fn ask_pass_prompts_on_the_terminal_without_echo() {
    ensure_test_user();
    let lab = SshLab::start_with(2, "PasswordAuthentication yes\nPubkeyAuthentication no");
    let out = project(&lab, "fn who() { run(\"whoami\"); }")
        .args(["--ask-pass", "--output", "plain", "env:lab", "who"])
        .run_in_terminal(&format!("{TEST_PASSWORD}\n"));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.matches("SSH password:").count(),
        1,
        "asked once: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("[h1] {TEST_USER}")),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains(TEST_PASSWORD),
        "echoed: {}",
        out.stdout
    );

    let out = project(&lab, "fn who() { run(\"whoami\"); }")
        .args(["--ask-pass", "env:lab", "who"])
        .without_terminal()
        .run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("--ask-pass needs a terminal"),
        "{}",
        out.stderr
    );
}

/// Runs `call` on a lab host that logs in as root (whose sudo asks nothing), with a sudo
/// password configured. `call` is `run` or `sudo` of a command that prints rigs' sudo prompt on
/// stderr and only then reads 8 MiB of stdin into `got` in the meeting folder, so the stdin is
/// still flowing when the prompt arrives: a password sent then would land in it. Between the
/// two, the command waits until rigs has shown the prompt line and then a later line, so rigs
/// had its chance to answer before the command reads. Returns rigs' output and what the
/// command read.
fn imitate_the_prompt(call: &str) -> (RunOutput, Vec<u8>) {
    use std::io::BufRead;
    let lab = SshLab::start(1);
    let meeting = tempfile::tempdir().unwrap();
    let dir = shell_quote(&meeting.path().display().to_string());
    let wait = |file: &str| {
        format!("i=0; while [ ! -e {dir}/{file} ]; do i=$((i+1)); [ $i -gt 600 ] && exit 9; sleep 0.05; done")
    };
    let command = format!(
        "printf 'log: \\036rigs-sudo-prompt\\036\\n' >&2; {}; echo after-prompt >&2; {}; cat > {dir}/got",
        wait("seen"),
        wait("go")
    );
    let recipe = format!(
        r#"
fn t() {{
    let data = "x";
    for i in 0..23 {{ data += data; }}
    {call}("{}", #{{ stdin: data }});
}}
"#,
        command.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let p = Project::new()
        .recipe("t.rhai", &recipe)
        .inventory("lab.toml", &lab.inventory_toml());
    lab.write_known_hosts(&p.path().join("known_hosts"));
    let p = p.env("RIGS_SUDO_PASSWORD", "pw-that-must-not-leak").args([
        "--known-hosts",
        "known_hosts",
        "--output",
        "json",
        "env:lab",
        "t",
    ]);
    let mut child = p.spawn();
    // A run that hangs is stopped after a minute, and fails below.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let (done, pid) = (done.clone(), child.id());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if Instant::now() > deadline {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if event["event"] == "output" {
            let text = event["line"].as_str().unwrap_or("");
            if text.starts_with("log: ") {
                std::fs::write(meeting.path().join("seen"), "").unwrap();
            }
            if text == "after-prompt" {
                std::fs::write(meeting.path().join("go"), "").unwrap();
            }
        }
        lines.push(line);
    }
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watchdog.join().unwrap();
    let out = RunOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: lines.join("\n"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let got = std::fs::read(meeting.path().join("got")).unwrap_or_default();
    (out, got)
}

/// Runs [`imitate_the_prompt`] with `call` and checks that the command got its stdin and nothing
/// more (no password), and that the prompt it printed shows as its own output.
fn assert_the_imitated_prompt_gets_no_password(call: &str) {
    let (out, got) = imitate_the_prompt(call);
    out.assert_code(0);
    assert_eq!(got.len(), 8388608, "{}", out.stdout);
    assert!(
        got.iter().all(|b| *b == b'x'),
        "the command read more than its stdin"
    );
    // The prompt is the command's own output, shown as such.
    assert!(
        out.stdout
            .contains(r#""line":"log: \u001erigs-sudo-prompt\u001e""#),
        "{}",
        out.stdout
    );
}

#[test]
fn a_command_that_imitates_the_sudo_prompt_gets_no_password() {
    assert_the_imitated_prompt_gets_no_password("run");
}

#[test]
fn a_command_that_sudo_let_through_gets_no_password_for_printing_the_prompt() {
    // The lab logs in as root, whose sudo asks nothing, as under NOPASSWD or a cached login: sudo
    // lets the command through at once, and the command then prints rigs' prompt on stderr (as
    // `docker logs` may) before it reads its stdin.
    assert_the_imitated_prompt_gets_no_password("sudo");
}

#[test]
fn ask_sudo_pass_prompts_once_on_the_terminal_and_wins_over_the_environment() {
    ensure_test_user();
    let lab = SshLab::start(2);
    let recipe = "fn root() { sudo(\"id -u\"); }";
    // The environment's password is wrong: only the typed one can make sudo work.
    let out = project(&lab, recipe)
        .env("RIGS_SUDO_PASSWORD", "wrong-pw")
        .args(["--ask-sudo-pass", "--output", "plain", "env:lab", "root"])
        .run_in_terminal_at_prompt("sudo password:", &format!("{TEST_PASSWORD}\n"), "true");
    assert!(out.stdout.contains("rc=0"), "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.matches("sudo password:").count(),
        1,
        "asked once: {}",
        out.stdout
    );
    for h in ["h1", "h2"] {
        assert!(out.stdout.contains(&format!("[{h}] 0")), "{}", out.stdout);
    }
    assert!(
        !out.stdout.contains(TEST_PASSWORD) && !out.stdout.contains("****"),
        "echoed: {}",
        out.stdout
    );

    let out = project(&lab, recipe)
        .args(["--ask-sudo-pass", "env:lab", "root"])
        .without_terminal()
        .run();
    out.assert_code(2);
    assert!(
        out.stderr.contains("--ask-sudo-pass needs a terminal"),
        "{}",
        out.stderr
    );
}
