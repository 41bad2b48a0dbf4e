//! Asking the person at the terminal: a password or passphrase without echo, or a yes/no.
//!
//! Prompts read from `/dev/tty`, not standard input, so they work while stdin is piped, and they
//! happen before parallel work starts, so they never fight with progress output.

use std::cell::UnsafeCell;
use std::io::{BufRead, Write};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicI32, Ordering};

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
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    // Echo goes off before the prompt shows: what is typed as soon as it appears stays hidden.
    let restore = EchoOff::new(&tty);
    let mut out = tty.try_clone().ok()?;
    let _ = write!(out, "{label}");
    let _ = out.flush();
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

/// Turns terminal echo off until dropped, and back on if a signal ends rigs first.
///
/// Ctrl-C at a prompt kills rigs by the default action of SIGINT (the prompts come before the
/// scheduler's own Ctrl-C handling exists), which runs no destructor: without a handler the shell
/// would get its terminal back with echo off. So while echo is off, SIGINT, SIGTERM, SIGHUP and
/// SIGQUIT run [`restore_and_die`] first.
struct EchoOff {
    fd: i32,
    saved: Option<libc::termios>,
    /// The actions the signals had before, put back on drop.
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

/// The signals that end rigs while a prompt waits.
const FATAL: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The descriptor whose settings [`restore_and_die`] puts back, or -1 when echo is not off.
static ARMED: AtomicI32 = AtomicI32::new(-1);
/// The settings to put back; written only while [`ARMED`] is -1.
static SAVED: SavedTermios = SavedTermios(UnsafeCell::new(MaybeUninit::uninit()));

struct SavedTermios(UnsafeCell<MaybeUninit<libc::termios>>);

// SAFETY: written only while no handler can read it (`ARMED` is -1), read only by the handler.
unsafe impl Sync for SavedTermios {}

/// The signal handler: terminal settings back, a newline after the prompt, then the signal's
/// default action, so rigs ends as it would have (and the shell sees 128 + the signal).
extern "C" fn restore_and_die(signal: libc::c_int) {
    let fd = ARMED.swap(-1, Ordering::SeqCst);
    // SAFETY: only async-signal-safe calls; `SAVED` was written before `ARMED` was set to `fd`.
    unsafe {
        if fd >= 0 {
            libc::tcsetattr(fd, libc::TCSANOW, (*SAVED.0.get()).as_ptr());
            libc::write(fd, b"\n".as_ptr().cast(), 1);
        }
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

impl EchoOff {
    fn new(tty: &std::fs::File) -> EchoOff {
        use std::os::fd::AsRawFd;
        let fd = tty.as_raw_fd();
        // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor.
        let mut term: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
            return EchoOff {
                fd,
                saved: None,
                previous: Vec::new(),
            };
        }
        let saved = term;
        // SAFETY: no handler is armed (prompts do not nest), so nothing reads `SAVED` now.
        unsafe { (*SAVED.0.get()).write(saved) };
        ARMED.store(fd, Ordering::SeqCst);
        let previous = FATAL
            .iter()
            .filter_map(|&signal| catch(signal).map(|old| (signal, old)))
            .collect();
        term.c_lflag &= !libc::ECHO;
        term.c_lflag |= libc::ECHONL;
        // SAFETY: as above, with a termios obtained from tcgetattr.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
        EchoOff {
            fd,
            saved: Some(saved),
            previous,
        }
    }
}

/// Runs [`restore_and_die`] on `signal`, unless the signal is ignored (`nohup`), which it stays.
/// Returns the action to put back.
fn catch(signal: libc::c_int) -> Option<libc::sigaction> {
    // SAFETY: sigaction structs are plain data, filled by the kernel or by us before use.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut old) != 0
            || old.sa_sigaction == libc::SIG_IGN
        {
            return None;
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = restore_and_die as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        (libc::sigaction(signal, &action, std::ptr::null_mut()) == 0).then_some(old)
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: restoring the attributes read in `new` on the same descriptor.
            unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, saved) };
        }
        ARMED.store(-1, Ordering::SeqCst);
        for (signal, old) in &self.previous {
            // SAFETY: putting back the action `catch` read for this signal.
            unsafe { libc::sigaction(*signal, old, std::ptr::null_mut()) };
        }
    }
}
