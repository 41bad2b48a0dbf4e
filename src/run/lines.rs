//! Turning a command's byte chunks into whole lines for display, and into text for the script.

/// Bytes kept for a command's result; output beyond this is still shown but not returned.
const KEEP: usize = 64 * 1024 * 1024;

#[derive(Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    kept: Vec<u8>,
    truncated: bool,
}

impl LineSplitter {
    /// Adds a chunk and calls `emit` for each line it completes (without the newline).
    pub fn push(&mut self, chunk: &[u8], mut emit: impl FnMut(&str)) {
        if self.kept.len() < KEEP {
            let room = KEEP - self.kept.len();
            self.kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.truncated |= chunk.len() > room;
        } else {
            self.truncated = true;
        }
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&rest[..i]);
            emit(&display(&self.partial));
            self.partial.clear();
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// Emits a last line without a newline, if any, and returns everything kept.
    pub fn finish(mut self, mut emit: impl FnMut(&str)) -> (String, bool) {
        if !self.partial.is_empty() {
            emit(&display(&self.partial));
        }
        self.partial.clear();
        (
            String::from_utf8_lossy(&self.kept).into_owned(),
            self.truncated,
        )
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
        s.push(b"he", |l| lines.push(l.to_string()));
        s.push(b"llo\nwor", |l| lines.push(l.to_string()));
        s.push(b"ld\r\n\nlast", |l| lines.push(l.to_string()));
        let (all, truncated) = s.finish(|l| lines.push(l.to_string()));
        assert_eq!(lines, ["hello", "world", "", "last"]);
        assert_eq!(all, "hello\nworld\r\n\nlast");
        assert!(!truncated);
    }
}
