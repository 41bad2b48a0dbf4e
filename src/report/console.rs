//! The one way out to stdout and stderr: everything rigs prints goes through here, whole.
//!
//! Hosts run in parallel, and stdout and stderr often end in the same file (`2>&1` in a CI log).
//! `writeln!` on std's handles makes one `write(2)` for the text and another for the newline,
//! and the two handles have locks of their own, so a line of one stream could land inside a
//! line of the other (`[a] $ echo ok[b] ok`). Here the caller hands over the whole text, newline
//! included, and it is written with one `write_all` under a lock that both streams share. A line
//! goes out in one `write(2)` (`write_all` only loops when the kernel takes part of it, as a pipe
//! may for more than `PIPE_BUF` bytes), and nothing else this process prints can come between
//! its bytes.
//!
//! A stream whose reader is gone (`rigs ... | head -1`) is not an error: printing on it stops,
//! quietly, and the run goes on to its end (cleanup, locks, history) and its usual exit code.

use std::io::{ErrorKind, Write};
use std::sync::{Mutex, PoisonError};

use super::StreamKind;

/// Held while writing to either stream; says which streams were found closed (stdout, stderr).
static CLOSED: Mutex<[bool; 2]> = Mutex::new([false; 2]);

/// Writes `text` and a newline to `stream`, in one write.
pub fn line(stream: StreamKind, text: &str) {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    write(stream, &bytes);
}

/// Writes `bytes` to `stream` as they are, in one write: whole lines (several at once, such as a
/// listing), or a terminal repaint.
pub fn write(stream: StreamKind, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // A panic elsewhere while printing leaves nothing half-done that matters here.
    let mut closed = CLOSED.lock().unwrap_or_else(PoisonError::into_inner);
    let gone = match stream {
        StreamKind::Stdout => &mut closed[0],
        StreamKind::Stderr => &mut closed[1],
    };
    if *gone {
        return;
    }
    let result = match stream {
        StreamKind::Stdout => {
            let mut out = std::io::stdout().lock();
            // stdout keeps a tail without a newline in its buffer: flush it out with the rest.
            out.write_all(bytes).and_then(|()| out.flush())
        }
        StreamKind::Stderr => std::io::stderr().lock().write_all(bytes),
    };
    if let Err(e) = result {
        // Other failures (a full disk) may pass; a reader that left does not come back.
        *gone = e.kind() == ErrorKind::BrokenPipe;
    }
}
