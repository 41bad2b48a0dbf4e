//! In-band signals on a remote command's stderr, and their removal from what the user sees.
//!
//! rigs wraps each remote command so the shell reports its PID (to stop it later), sudo shows a
//! known prompt (to answer it with the password, and only then), and the command announces that
//! sudo let it through (to start feeding its stdin). Each signal starts with the ASCII record
//! separator `\x1e`, which ordinary output does not contain, and is cut out of the stream.

pub const PID_LINE: &str = "\x1erigs-pid ";
pub const SUDO_PROMPT: &str = "\x1erigs-sudo-prompt\x1e";
pub const SUDO_OK_LINE: &str = "\x1erigs-sudo-ok\n";

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
}

/// A partial marker longer than this is not a marker.
const MAX_MARKER: usize = 64;

impl StderrFilter {
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut emit: impl FnMut(&[u8]),
        mut signal: impl FnMut(Signal),
    ) {
        self.pending.extend_from_slice(chunk);
        loop {
            let Some(start) = self.pending.iter().position(|b| *b == 0x1e) else {
                if !self.pending.is_empty() {
                    emit(&std::mem::take(&mut self.pending));
                }
                return;
            };
            if start > 0 {
                let before: Vec<u8> = self.pending.drain(..start).collect();
                emit(&before);
            }
            match parse(&self.pending) {
                Parsed::Signal(s, len) => {
                    self.pending.drain(..len);
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

fn parse(buf: &[u8]) -> Parsed {
    for marker in [SUDO_PROMPT, SUDO_OK_LINE] {
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
        let mut f = StderrFilter::default();
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
    fn foreign_separators_pass_through() {
        assert_eq!(run(&[b"a\x1eb\n"]), ("a\x1eb\n".into(), vec![]));
    }
}
