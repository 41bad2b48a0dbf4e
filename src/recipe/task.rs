//! A task: a public top-level function of a recipe file, with its docs.

use std::fmt;

#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub params: Vec<String>,
    /// Doc comment lines without the `///` leader.
    pub doc: Vec<String>,
    /// Index of the recipe file that defines it.
    pub file: usize,
    /// 1-based line of the `fn`, 0 if not found.
    pub line: usize,
}

impl Task {
    /// The first line of the docs: what `--list` prints.
    pub fn summary(&self) -> &str {
        self.doc
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty() && !l.starts_with('@'))
            .unwrap_or("")
    }

    /// Whether its docs have the line `@lock`: it takes the deploy lock of its hosts.
    pub fn locks(&self) -> bool {
        self.doc.iter().any(|l| l.trim() == "@lock")
    }

    /// `deploy:TAG,FORCE` — how to call it.
    pub fn usage(&self) -> String {
        let mut s = self.name.clone();
        for (i, p) in self.params.iter().enumerate() {
            s.push(if i == 0 { ':' } else { ',' });
            s.push_str(&p.to_uppercase());
        }
        s
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name, self.params.join(", "))
    }
}

/// Doc comment text from Rhai's `///` and `/** */` comments.
pub fn doc_lines(comments: &[&str]) -> Vec<String> {
    let mut lines = Vec::new();
    for c in comments {
        if let Some(block) = c.strip_prefix("/**") {
            let block = block.strip_suffix("*/").unwrap_or(block);
            for l in block.lines() {
                let l = l.trim();
                lines.push(
                    l.strip_prefix("* ")
                        .or_else(|| l.strip_prefix('*'))
                        .unwrap_or(l)
                        .to_string(),
                );
            }
        } else {
            for l in c.lines() {
                let l = l.trim_start();
                let l = l.strip_prefix("///").unwrap_or(l);
                lines.push(l.strip_prefix(' ').unwrap_or(l).trim_end().to_string());
            }
        }
    }
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}
