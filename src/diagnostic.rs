//! Errors in user files rendered the way compilers do: `file:line:col`, the line, and a caret.
//!
//! Inventory, recipe and secrets-file errors all go through [`Diagnostic`] so a user sees one
//! consistent shape whichever file is wrong.

use std::fmt;

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub message: String,
    /// Display path of the file (relative to the working directory when possible).
    pub file: String,
    /// 1-based line and column; 0 when unknown.
    pub line: usize,
    pub column: usize,
    /// The text of the offending line, when known.
    pub source_line: Option<String>,
    /// Extra context lines printed after the snippet (`= note: ...`).
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, file: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            file: file.into(),
            line: 0,
            column: 0,
            source_line: None,
            notes: Vec::new(),
        }
    }

    /// Points at 1-based `line`/`column` inside `text`, copying that line for the snippet.
    pub fn at(mut self, text: &str, line: usize, column: usize) -> Self {
        self.line = line;
        self.column = column;
        self.source_line = text.lines().nth(line.saturating_sub(1)).map(str::to_string);
        self
    }

    /// Points at 1-based `line` without showing it: for files whose text must not be printed
    /// (a secrets file).
    pub fn at_line(mut self, line: usize) -> Self {
        self.line = line;
        self.column = 0;
        self.source_line = None;
        self
    }

    /// Points at a byte offset inside `text`.
    pub fn at_offset(self, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = text[line_start..offset].chars().count() + 1;
        self.at(text, line, column)
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// `file:line:col` (or as much of it as is known).
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (0, _) => self.file.clone(),
            (l, 0) => format!("{}:{l}", self.file),
            (l, c) => format!("{}:{l}:{c}", self.file),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        write!(f, "  --> {}", self.location())?;
        if let Some(text) = &self.source_line {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            let shown = text.replace('\t', " ");
            write!(f, "\n{pad} |\n{number} | {shown}\n{pad} |")?;
            if self.column > 0 {
                let caret_pad = " ".repeat(self.column - 1);
                write!(f, " {caret_pad}^")?;
            }
        }
        for note in &self.notes {
            write!(f, "\n  = {note}")?;
        }
        Ok(())
    }
}

/// Shows `path` relative to the working directory when it lies below it.
pub fn display_path(path: &std::path::Path) -> String {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = path.strip_prefix(&cwd) {
            return rel.display().to_string();
        }
    }
    let shown = path.display().to_string();
    match shown.strip_prefix("./") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_column() {
        let text = "a = 1\nhosts = 3\n";
        let d = Diagnostic::new("bad hosts", "inv.toml").at_offset(text, 14);
        assert_eq!(d.location(), "inv.toml:2:9");
        let shown = d.to_string();
        assert!(shown.contains("2 | hosts = 3"), "{shown}");
        assert!(shown.ends_with("  |         ^"), "{shown:?}");
    }
}
