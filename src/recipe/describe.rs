//! What `rigs --list` and `rigs --describe` print: the tasks, and the built-in functions.

use super::functions;
use super::{Recipes, Task};
use crate::error::{closest, Error, Result};

impl Recipes {
    /// `rigs --list`.
    pub fn list_text(&self) -> String {
        if self.tasks.is_empty() {
            return format!("No tasks found in {}.\n", self.origin);
        }
        let usages: Vec<(String, &Task)> = self.tasks().map(|t| (t.usage(), t)).collect();
        let width = usages.iter().map(|(u, _)| u.len()).max().unwrap_or(0);
        let mut out = String::from("Available tasks:\n");
        for (usage, task) in usages {
            let summary = task.summary();
            if summary.is_empty() {
                out.push_str(&format!("    {usage}\n"));
            } else {
                out.push_str(&format!("    {usage:<width$}  # {summary}\n"));
            }
        }
        out
    }

    /// `rigs --describe NAME`: a task (every form of it), a built-in function (`run`,
    /// `docker::run`), or the built-in functions of a module (`docker::`, all with `::`).
    pub fn describe(&self, name: &str) -> Result<String> {
        if let Some(forms) = self.tasks.get(name) {
            return Ok(self.describe_text(forms));
        }
        if let Some(f) = functions::find(name) {
            return Ok(f.describe());
        }
        if let Some(module) = name.strip_suffix("::") {
            if let Some(text) = functions::list_text(module) {
                return Ok(text);
            }
        }
        match self.task(name) {
            Err(Error::Unknown {
                kind,
                name,
                suggestions,
                hint,
            }) if suggestions.is_empty() && !self.files.is_empty() => Err(Error::Unknown {
                kind,
                suggestions: closest(&name, functions::all().map(|f| f.name)),
                name,
                hint: format!("{hint}; `rigs -d ::` the built-in functions"),
            }),
            other => other.map(|forms| self.describe_text(forms)),
        }
    }

    /// `rigs --describe TASK`: every form of the task.
    fn describe_text(&self, forms: &[Task]) -> String {
        forms
            .iter()
            .map(|t| self.describe_one(t))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn describe_one(&self, task: &Task) -> String {
        let mut out = format!("{}\n", task.usage());
        out.push_str(&format!(
            "    defined in {}:{} as `fn {task}`\n",
            self.file_of(task),
            task.line
        ));
        if task.params.is_empty() {
            out.push_str("    takes no arguments\n");
        } else {
            out.push_str(&format!("    parameters: {}\n", task.params.join(", ")));
        }
        if task.locks() {
            out.push_str("    takes its hosts' deploy locks (@lock)\n");
        }
        if let Some(declared) = self.variables_of(task) {
            out.push_str("    reads these variables (inventory or --set):\n");
            for line in declared.describe() {
                out.push_str(&format!("        {line}\n"));
            }
        }
        if !task.doc.is_empty() {
            out.push('\n');
            for line in task.doc.iter().filter(|l| l.trim() != "@lock") {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
        out
    }
}
