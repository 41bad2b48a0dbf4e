//! Asking the person at the terminal: a password or passphrase without echo, or a yes/no.
//!
//! Prompts read from `/dev/tty`, not standard input, so they work while stdin is piped, and they
//! happen before parallel work starts, so they never fight with progress output.

use std::io::{BufRead, Write};

use crate::secret::Secret;

/// Whether a person can be asked: a controlling terminal exists.
pub fn available() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

/// The terminal, with `label` already written on it: one handle to read, one to write.
fn ask(label: &str) -> Option<(std::fs::File, std::fs::File)> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let mut out = tty.try_clone().ok()?;
    let _ = write!(out, "{label}");
    let _ = out.flush();
    Some((tty, out))
}

/// Prints `label` on the terminal and reads one line with echo off. `None` without a terminal.
pub fn hidden(label: &str) -> Option<Secret> {
    let (tty, mut out) = ask(label)?;
    let restore = EchoOff::new(&tty);
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    drop(restore);
    let _ = writeln!(out);
    read.ok()?;
    Some(Secret::new(line.trim_end_matches(['\n', '\r'])))
}

/// Asks a yes/no question on the terminal; only `y` or `yes` is yes. `None` without a terminal.
pub fn confirm(question: &str) -> Option<bool> {
    let (tty, _out) = ask(&format!("{question} [y/N] "))?;
    let mut line = String::new();
    std::io::BufReader::new(&tty).read_line(&mut line).ok()?;
    Some(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Turns terminal echo off until dropped.
struct EchoOff {
    fd: i32,
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new(tty: &std::fs::File) -> EchoOff {
        use std::os::fd::AsRawFd;
        let fd = tty.as_raw_fd();
        // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor.
        let mut term: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
            return EchoOff { fd, saved: None };
        }
        let saved = term;
        term.c_lflag &= !libc::ECHO;
        term.c_lflag |= libc::ECHONL;
        // SAFETY: as above, with a termios obtained from tcgetattr.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
        EchoOff {
            fd,
            saved: Some(saved),
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: restoring the attributes read in `new` on the same descriptor.
            unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, saved) };
        }
    }
}
