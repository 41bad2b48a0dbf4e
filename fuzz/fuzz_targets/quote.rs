//! `quote` and `join`: the words a remote shell reads back from `join(words)` are the words.
//!
//! The input is split at NUL bytes into words (a shell word cannot hold NUL: argv strings end at
//! the first one) and made UTF-8 (`quote` takes `&str`). Two checks:
//!
//! 1. In process, a strict reader of POSIX quoting reads the line back: single-quoted text,
//!    backslash escapes, and unquoted only the characters that are plain in every shell a host
//!    may log in with (no `$`, glob, `~`, and no word starting with `=` or `%`, which zsh and old
//!    fish expand).
//! 2. Real shells read it back: `dash`, `bash` and busybox `ash` run as long-lived processes fed
//!    `printf '%s\0' <line>` on stdin, and must print exactly the words, each ended by NUL. A
//!    quoting that leaves a quote open makes the shell wait for more input, which libFuzzer
//!    reports as a timeout.
#![no_main]

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use rigs::quote::{join, quote};

const PLAIN: &[u8] = b"-_./=:,+@%";

/// Reads `line` as a POSIX shell reads a list of words, refusing anything that a shell could
/// expand or treat as syntax.
fn read_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut word = String::new();
        let mut start = true;
        loop {
            match chars.peek() {
                None | Some(' ') => break,
                Some('\'') => {
                    chars.next();
                    loop {
                        match chars.next() {
                            Some('\'') => break,
                            Some(c) => word.push(c),
                            None => return Err(format!("unterminated ' in {line:?}")),
                        }
                    }
                }
                Some('\\') => {
                    chars.next();
                    match chars.next() {
                        Some('\n') | None => return Err(format!("bad \\ in {line:?}")),
                        Some(c) => word.push(c),
                    }
                }
                Some(&c) => {
                    let plain = c.is_ascii_alphanumeric() || PLAIN.contains(&(c as u8));
                    if !c.is_ascii() || !plain || (start && (c == '=' || c == '%')) {
                        return Err(format!("unquoted {c:?} in {line:?}"));
                    }
                    word.push(c);
                    chars.next();
                }
            }
            start = false;
        }
        words.push(word);
        match chars.next() {
            None => return Ok(words),
            Some(_) => {
                if matches!(chars.peek(), None | Some(' ')) {
                    return Err(format!("empty separator in {line:?}"));
                }
            }
        }
    }
}

struct Shell {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl Shell {
    fn start(name: &'static str, argv: &[&str]) -> Option<Shell> {
        let dir = std::env::temp_dir();
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .current_dir(dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let stdout = child.stdout.take()?;
        Some(Shell {
            name,
            child,
            stdin,
            stdout,
        })
    }

    /// Runs `printf '%s\0' LINE` and compares what it prints with `expected`.
    fn check(&mut self, line: &str, expected: &[u8]) {
        const END: &[u8] = b"\x01end\x02\n";
        let script = format!("printf '%s\\0' {line}\nprintf '\\001end\\002\\n'\n");
        self.stdin
            .write_all(script.as_bytes())
            .unwrap_or_else(|e| panic!("{}: writing the script: {e}", self.name));
        let mut want = expected.to_vec();
        want.extend_from_slice(END);
        let mut got = Vec::with_capacity(want.len());
        let mut buf = [0u8; 4096];
        while got.len() < want.len() {
            let n = match self.stdout.read(&mut buf) {
                // libFuzzer's SIGALRM (for -timeout) interrupts reads.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("{}: reading its output: {e}", self.name),
                Ok(n) => n,
            };
            if n == 0 {
                let status = self.child.try_wait();
                panic!(
                    "{} ended ({status:?}) after printing {got:?} for {line:?}; expected {want:?}",
                    self.name
                );
            }
            got.extend_from_slice(&buf[..n]);
            if !want.starts_with(&got[..got.len().min(want.len())]) || got.len() > want.len() {
                panic!(
                    "{} reads {line:?} as {:?}; expected {:?}",
                    self.name,
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
            }
        }
    }
}

fn shells() -> &'static Mutex<Vec<Shell>> {
    static SHELLS: OnceLock<Mutex<Vec<Shell>>> = OnceLock::new();
    SHELLS.get_or_init(|| {
        let shells: Vec<Shell> = [
            ("dash", &["dash", "-s"][..]),
            ("bash", &["bash", "--norc", "--noprofile", "-s"][..]),
            ("busybox ash", &["busybox", "sh", "-s"][..]),
        ]
        .iter()
        .filter_map(|(name, argv)| Shell::start(name, argv))
        .collect();
        assert!(!shells.is_empty(), "no shell to check quoting with");
        Mutex::new(shells)
    })
}

fuzz_target!(|data: &[u8]| {
    let words: Vec<String> = data
        .split(|b| *b == 0)
        .take(64)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    for w in &words {
        let q = quote(w);
        assert_eq!(read_words(&q), Ok(vec![w.clone()]), "quote({w:?}) = {q:?}");
    }
    let line = join(words.iter().map(String::as_str));
    assert_eq!(read_words(&line).as_ref(), Ok(&words), "join = {line:?}");

    let mut expected = Vec::new();
    for w in &words {
        expected.extend_from_slice(w.as_bytes());
        expected.push(0);
    }
    for shell in shells().lock().unwrap().iter_mut() {
        shell.check(&line, &expected);
    }
});
