//! In-band signals on a remote command's stderr, and their removal from what the user sees.
//!
//! rigs wraps each remote command so the shell reports its PID (to stop it later), sudo shows a
//! known prompt (to answer it with the password, and only then), and the command announces that
//! sudo let it through (to start feeding its stdin). Each signal starts with the ASCII record
//! separator `\x1e`, which ordinary output does not contain, and is cut out of the stream.
//!
//! A signal counts only where rigs' own wrapper can have sent it: the PID line once, first;
//! sudo's prompt and the all-clear only for a command run through rigs' sudo, and only until
//! the all-clear. After that, stderr is the command's own (`docker logs` may print anything),
//! so the same bytes are output like any other, and never get the password.

/// The byte every marker starts with: the ASCII record separator.
pub const SEPARATOR: u8 = 0x1e;
pub const PID_LINE: &str = "\x1erigs-pid ";
pub const SUDO_PROMPT: &str = "\x1erigs-sudo-prompt\x1e";
pub const SUDO_OK_LINE: &str = "\x1erigs-sudo-ok\n";

/// The start of every remote command's shell line: the shell reports its PID ([`PID_LINE`]).
pub fn pid_report() -> String {
    format!("printf '{}%s\\n' \"$$\" >&2; ", printf_text(PID_LINE))
}

/// The start of the shell line sudo runs: the command announces that sudo let it through
/// ([`SUDO_OK_LINE`]).
pub fn sudo_ok_report() -> String {
    format!("printf '{}' >&2; ", printf_text(SUDO_OK_LINE))
}

/// `marker` as text inside a single-quoted `printf` format: the separator as an octal escape
/// and the newline as `\n`, so that the command line itself carries no control character.
fn printf_text(marker: &str) -> String {
    marker
        .replace(char::from(SEPARATOR), &format!("\\{SEPARATOR:03o}"))
        .replace('\n', "\\n")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Pid(u32),
    SudoPrompt,
    SudoOk,
}

/// Splits stderr chunks into user output and [`Signal`]s.
#[derive(Default)]
pub struct StderrFilter {
    pending: Vec<u8>,
    /// The command runs through rigs' sudo wrapper: sudo's markers may come.
    sudo: bool,
    /// The PID line was seen; another one comes from the command.
    pid_seen: bool,
    /// sudo let the command through; every byte after is the command's.
    sudo_done: bool,
}

/// A partial marker longer than this is not a marker.
const MAX_MARKER: usize = 64;

impl StderrFilter {
    /// A filter for a command that runs through rigs' sudo wrapper (`sudo`) or not.
    pub fn new(sudo: bool) -> StderrFilter {
        StderrFilter {
            sudo,
            ..StderrFilter::default()
        }
    }

    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut emit: impl FnMut(&[u8]),
        mut signal: impl FnMut(Signal),
    ) {
        self.pending.extend_from_slice(chunk);
        loop {
            let Some(start) = self.pending.iter().position(|b| *b == SEPARATOR) else {
                if !self.pending.is_empty() {
                    emit(&std::mem::take(&mut self.pending));
                }
                return;
            };
            if start > 0 {
                let before: Vec<u8> = self.pending.drain(..start).collect();
                emit(&before);
            }
            let sudo = self.sudo && !self.sudo_done;
            match parse(&self.pending, !self.pid_seen, sudo) {
                Parsed::Signal(s, len) => {
                    self.pending.drain(..len);
                    match s {
                        Signal::Pid(_) => self.pid_seen = true,
                        Signal::SudoOk => self.sudo_done = true,
                        Signal::SudoPrompt => {}
                    }
                    signal(s);
                }
                Parsed::Incomplete if self.pending.len() < MAX_MARKER => return,
                _ => {
                    // Not ours: pass the separator byte through and look further.
                    let first: Vec<u8> = self.pending.drain(..1).collect();
                    emit(&first);
                }
            }
        }
    }

    /// Emits whatever is held back (the stream ended).
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&std::mem::take(&mut self.pending));
        }
    }
}

enum Parsed {
    Signal(Signal, usize),
    Incomplete,
    Foreign,
}

/// The marker at the start of `buf`, among those still expected: the PID line (`pid`) and
/// sudo's (`sudo`).
fn parse(buf: &[u8], pid: bool, sudo: bool) -> Parsed {
    let sudo_markers: &[&str] = if sudo {
        &[SUDO_PROMPT, SUDO_OK_LINE]
    } else {
        &[]
    };
    for &marker in sudo_markers {
        let m = marker.as_bytes();
        if buf.starts_with(m) {
            let s = if marker == SUDO_PROMPT {
                Signal::SudoPrompt
            } else {
                Signal::SudoOk
            };
            return Parsed::Signal(s, m.len());
        }
        if m.starts_with(buf) {
            return Parsed::Incomplete;
        }
    }
    if !pid {
        return Parsed::Foreign;
    }
    let pid = PID_LINE.as_bytes();
    if buf.starts_with(pid) {
        return match buf[pid.len()..].iter().position(|b| *b == b'\n') {
            Some(end) => {
                let digits = String::from_utf8_lossy(&buf[pid.len()..pid.len() + end]).to_string();
                match digits.trim().parse() {
                    Ok(n) => Parsed::Signal(Signal::Pid(n), pid.len() + end + 1),
                    Err(_) => Parsed::Foreign,
                }
            }
            None => Parsed::Incomplete,
        };
    }
    if pid.starts_with(buf) {
        return Parsed::Incomplete;
    }
    Parsed::Foreign
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (String, Vec<Signal>) {
        run_as(true, chunks)
    }

    fn run_as(sudo: bool, chunks: &[&[u8]]) -> (String, Vec<Signal>) {
        let mut f = StderrFilter::new(sudo);
        let mut out = Vec::new();
        let mut signals = Vec::new();
        for c in chunks {
            f.feed(c, |b| out.extend_from_slice(b), |s| signals.push(s));
        }
        f.flush(|b| out.extend_from_slice(b));
        (String::from_utf8(out).unwrap(), signals)
    }

    #[test]
    fn pid_line_is_stripped_even_when_split() {
        assert_eq!(
            run(&[b"\x1erigs-pid 42\nerr\n"]),
            ("err\n".into(), vec![Signal::Pid(42)])
        );
        assert_eq!(
            run(&[b"\x1erigs-p", b"id 7", b"\nx"]),
            ("x".into(), vec![Signal::Pid(7)])
        );
        assert_eq!(
            run(&[b"noise\n\x1erigs-pid 9\n"]),
            ("noise\n".into(), vec![Signal::Pid(9)])
        );
        assert_eq!(run(&[b"no marker"]), ("no marker".into(), vec![]));
    }

    #[test]
    fn sudo_prompt_and_ok() {
        let (out, signals) = run(&[
            b"\x1erigs-pid 5\nlecture\n\x1erigs-sudo-",
            b"prompt\x1e",
            b"\x1erigs-sudo-ok\nreal err\n",
        ]);
        assert_eq!(out, "lecture\nreal err\n");
        assert_eq!(
            signals,
            vec![Signal::Pid(5), Signal::SudoPrompt, Signal::SudoOk]
        );
    }

    #[test]
    fn markers_after_sudo_let_the_command_through_are_its_output() {
        // `docker logs` under NOPASSWD sudo: no prompt, then the command prints the marker.
        let (out, signals) = run(&[
            b"\x1erigs-pid 5\n\x1erigs-sudo-ok\n",
            b"\x1erigs-sudo-prompt\x1e\x1erigs-sudo-ok\n\x1erigs-pid 6\n",
        ]);
        assert_eq!(signals, vec![Signal::Pid(5), Signal::SudoOk]);
        assert_eq!(
            out,
            "\x1erigs-sudo-prompt\x1e\x1erigs-sudo-ok\n\x1erigs-pid 6\n"
        );
        // The same in one chunk with the all-clear.
        let (_, signals) = run(&[b"\x1erigs-pid 5\n\x1erigs-sudo-ok\n\x1erigs-sudo-prompt\x1e"]);
        assert_eq!(signals, vec![Signal::Pid(5), Signal::SudoOk]);
    }

    #[test]
    fn commands_without_sudo_send_no_sudo_signals_and_one_pid() {
        // A second PID line is the command's: honouring it would stop another process.
        let (out, signals) = run_as(
            false,
            &[b"\x1erigs-pid 5\n\x1erigs-sudo-prompt\x1e\x1erigs-sudo-ok\n\x1erigs-pid 1\n"],
        );
        assert_eq!(signals, vec![Signal::Pid(5)]);
        assert_eq!(
            out,
            "\x1erigs-sudo-prompt\x1e\x1erigs-sudo-ok\n\x1erigs-pid 1\n"
        );
    }

    #[test]
    fn shell_lines_print_the_markers_the_filter_reads() {
        assert_eq!(pid_report(), "printf '\\036rigs-pid %s\\n' \"$$\" >&2; ");
        assert_eq!(sudo_ok_report(), "printf '\\036rigs-sudo-ok\\n' >&2; ");
        for marker in [PID_LINE, SUDO_PROMPT, SUDO_OK_LINE] {
            assert_eq!(marker.as_bytes()[0], SEPARATOR, "{marker:?}");
        }
    }

    #[test]
    fn foreign_separators_pass_through() {
        assert_eq!(run(&[b"a\x1eb\n"]), ("a\x1eb\n".into(), vec![]));
    }
}
