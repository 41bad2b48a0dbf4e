//! The terminal the live progress lines are drawn on: stderr, through the [`console`](super::console)
//! writer like every other line.
//!
//! indicatif would write to stderr itself, and panics when a write fails (a terminal that went
//! away). Here a repaint is gathered whole and handed to the writer on `flush`, so it goes out in
//! one write, never between the bytes of another line, and a closed stream only stops it.

use std::io;
use std::sync::{Mutex, PoisonError};

use indicatif::TermLike;

use super::StreamKind;

#[derive(Debug, Default)]
pub struct BarTerminal {
    pending: Mutex<String>,
}

impl BarTerminal {
    fn push(&self, text: &str) -> io::Result<()> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_str(text);
        Ok(())
    }

    fn cursor(&self, n: usize, direction: char) -> io::Result<()> {
        if n > 0 {
            self.push(&format!("\x1b[{n}{direction}"))?;
        }
        Ok(())
    }
}

impl TermLike for BarTerminal {
    fn width(&self) -> u16 {
        size()
            .map(|(_, columns)| columns)
            .filter(|&c| c > 0)
            .unwrap_or(80)
    }

    fn height(&self) -> u16 {
        size()
            .map(|(rows, _)| rows)
            .filter(|&r| r > 0)
            .unwrap_or(24)
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.push(s)?;
        self.push("\n")
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.push(s)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.push("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        let text =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        super::console::write(StreamKind::Stderr, text.as_bytes());
        Ok(())
    }
}

/// The rows and columns of the terminal on stderr, if it is one (either may be 0: unknown).
pub fn size() -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ only writes a winsize into the struct given.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    ok.then_some((size.ws_row, size.ws_col))
}
