//! Turning a command's byte chunks into whole lines for display, and into text for the script.
//!
//! Memory stays bounded whatever a host prints: a line longer than [`LINE_CAP`] bytes is passed
//! on in pieces of that size (the last piece of a line is the only one not marked `cut`), and
//! the text kept for the script stops at [`KEEP`].

use crate::report::LINE_CAP;

/// Bytes kept for a command's result; output beyond this is still shown but not returned.
const KEEP: usize = 64 * 1024 * 1024;

#[derive(Default)]
pub struct LineSplitter {
    /// The line so far: at most [`LINE_CAP`] bytes and a `\r`.
    partial: Vec<u8>,
    kept: Vec<u8>,
    truncated: bool,
}

impl LineSplitter {
    /// Adds a chunk and calls `emit` for each line it completes (without the newline), with
    /// `false`, and for each [`LINE_CAP`] piece of a longer line but its last, with `true`.
    pub fn push(&mut self, chunk: &[u8], mut emit: impl FnMut(&str, bool)) {
        if self.kept.len() < KEEP {
            let room = KEEP - self.kept.len();
            self.kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.truncated |= chunk.len() > room;
        } else {
            self.truncated = true;
        }
        let mut rest = chunk;
        while !rest.is_empty() {
            // `partial` holds up to one byte more than the cap: a `\r` before the newline.
            let room = LINE_CAP + 1 - self.partial.len();
            let window = &rest[..rest.len().min(room + 1)];
            if let Some(i) = window.iter().position(|b| *b == b'\n') {
                self.partial.extend_from_slice(&rest[..i]);
                rest = &rest[i + 1..];
                self.end_line(&mut emit);
            } else if rest.len() <= room {
                self.partial.extend_from_slice(rest);
                return;
            } else {
                self.partial.extend_from_slice(&rest[..room]);
                rest = &rest[room..];
                self.cut(&mut emit);
            }
        }
    }

    /// Emits `partial` as a line: in two pieces when it is longer than the cap.
    fn end_line(&mut self, emit: &mut impl FnMut(&str, bool)) {
        let line = self.partial.strip_suffix(b"\r").unwrap_or(&self.partial);
        if line.len() > LINE_CAP {
            self.cut(emit);
        }
        emit(&display(&self.partial), false);
        self.partial.clear();
    }

    /// Emits the first [`LINE_CAP`] bytes of `partial` (which holds more) as a piece, ending it
    /// on a character boundary: the bytes of a character it would split start the next piece.
    fn cut(&mut self, emit: &mut impl FnMut(&str, bool)) {
        let mut end = LINE_CAP;
        while end > LINE_CAP - 3 && self.partial[end] & 0xc0 == 0x80 {
            end -= 1;
        }
        emit(&String::from_utf8_lossy(&self.partial[..end]), true);
        self.partial.drain(..end);
    }

    /// Emits a last line without a newline, if any, and returns everything kept.
    pub fn finish(mut self, mut emit: impl FnMut(&str, bool)) -> (String, bool) {
        if !self.partial.is_empty() {
            self.end_line(&mut emit);
        }
        // Most output is UTF-8 and is taken as it is, without a second copy.
        let kept = String::from_utf8(self.kept)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        (kept, self.truncated)
    }
}

fn display(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line).into_owned()
}

/// What `run()` returns as `stdout`: the text without its final newline.
pub fn trim_final_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_across_chunks() {
        let mut s = LineSplitter::default();
        let mut lines = Vec::new();
        s.push(b"he", |l, _| lines.push(l.to_string()));
        s.push(b"llo\nwor", |l, _| lines.push(l.to_string()));
        s.push(b"ld\r\n\nlast", |l, _| lines.push(l.to_string()));
        let (all, truncated) = s.finish(|l, _| lines.push(l.to_string()));
        assert_eq!(lines, ["hello", "world", "", "last"]);
        assert_eq!(all, "hello\nworld\r\n\nlast");
        assert!(!truncated);
    }

    /// The pieces of `chunks`, as (length in characters, cut).
    fn pieces(chunks: &[&[u8]]) -> Vec<(usize, bool)> {
        let mut s = LineSplitter::default();
        let mut pieces = Vec::new();
        for chunk in chunks {
            s.push(chunk, |l, cut| pieces.push((l.chars().count(), cut)));
        }
        s.finish(|l, cut| pieces.push((l.chars().count(), cut)));
        pieces
    }

    #[test]
    fn long_lines_come_in_pieces_of_the_cap() {
        let long = vec![b'x'; 2 * LINE_CAP + 10];
        assert_eq!(
            pieces(&[&long, b"\nnext\n"]),
            [(LINE_CAP, true), (LINE_CAP, true), (10, false), (4, false)]
        );
        // Byte by byte, and a line exactly at the cap is whole.
        let exact: Vec<u8> = [vec![b'y'; LINE_CAP], b"\n".to_vec()].concat();
        let bytes: Vec<&[u8]> = exact.chunks(1).collect();
        assert_eq!(pieces(&bytes), [(LINE_CAP, false)]);
        assert_eq!(
            pieces(&[&exact[..LINE_CAP], b"\r", b"\n"]),
            [(LINE_CAP, false)]
        );
        assert_eq!(
            pieces(&[&exact[..LINE_CAP], b"y"]),
            [(LINE_CAP, true), (1, false)]
        );
        // A character across the cap goes whole into the next piece.
        let mut wide = vec![b'z'; LINE_CAP - 1];
        wide.extend_from_slice("é€".as_bytes());
        assert_eq!(pieces(&[&wide]), [(LINE_CAP - 1, true), (2, false)]);
    }

    #[test]
    fn an_endless_line_holds_one_piece() {
        let mut s = LineSplitter::default();
        let chunk = vec![b'x'; 1 << 20];
        let mut shown = 0;
        for _ in 0..8 {
            s.push(&chunk, |l, _| shown += l.len());
            assert!(s.partial.len() <= LINE_CAP + 1);
            assert!(s.partial.capacity() <= 2 * LINE_CAP);
        }
        let (kept, truncated) = s.finish(|l, _| shown += l.len());
        assert_eq!((shown, kept.len(), truncated), (8 << 20, 8 << 20, false));
    }
}
