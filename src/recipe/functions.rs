//! Every native function recipes can call, registered in one place and described by one
//! [`FunctionSpec`] each.
//!
//! The function modules know nothing of each other and nothing of this one; this module is the
//! only place that gathers them, so registration has no loops, and `rigs -d NAME` (and the test
//! that holds the book to the tables) sees exactly the functions the engine has.

use rhai::{Engine, Module};

use super::spec::FunctionSpec;

/// Registers every native function in `engine`.
pub fn register(engine: &mut Engine) {
    super::api::register(engine);
    super::transfer::register(engine);
    let mut docker = Module::new();
    super::docker::register(&mut docker);
    super::health::register(&mut docker);
    super::ship::register(&mut docker);
    engine.register_static_module("docker", docker.into());
    let mut registry = Module::new();
    super::registry_module::register(&mut registry);
    engine.register_static_module("registry", registry.into());
    let mut compose = Module::new();
    super::compose::register(&mut compose);
    engine.register_static_module("compose", compose.into());
}

/// Every native function, module by module.
pub fn all() -> impl Iterator<Item = &'static FunctionSpec> {
    [
        super::api::SPECS,
        super::transfer::SPECS,
        super::docker::SPECS,
        super::health::SPECS,
        super::ship::SPECS,
        super::registry_module::SPECS,
        super::compose::SPECS,
    ]
    .into_iter()
    .flatten()
    .copied()
}

/// The function a recipe calls `name`.
pub fn find(name: &str) -> Option<&'static FunctionSpec> {
    all().find(|f| f.name == name)
}

/// `rigs -d docker::` (the functions of one module) or `rigs -d ::` (all of them); `None` when
/// no module has that name.
pub fn list_text(module: &str) -> Option<String> {
    let functions: Vec<&FunctionSpec> = all()
        .filter(|f| module.is_empty() || f.module() == module)
        .collect();
    if functions.is_empty() {
        return None;
    }
    let usages: Vec<String> = functions.iter().map(|f| f.usage()).collect();
    let width = usages.iter().map(String::len).max().unwrap_or(0);
    let mut out = if module.is_empty() {
        "Built-in functions (rigs -d NAME describes one):\n".to_string()
    } else {
        format!("Built-in functions of {module}:: (rigs -d NAME describes one):\n")
    };
    for (usage, f) in usages.iter().zip(&functions) {
        out.push_str(&format!("    {usage:<width$}  # {}\n", f.summary()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_options_documented() {
        let names: Vec<&str> = all().map(|f| f.name).collect();
        for (i, name) in names.iter().enumerate() {
            assert!(!names[..i].contains(name), "{name} twice");
        }
        for f in all() {
            assert!(!f.doc.is_empty(), "{}", f.name);
            for o in f.options {
                assert!(!o.doc.is_empty(), "{} {}", f.name, o.name);
            }
        }
    }

    /// The chapters that document the functions, split at their headings.
    fn book_sections() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
        let mut sections = Vec::new();
        for chapter in ["recipes.md", "docker.md", "airgapped.md", "compose.md"] {
            let text = std::fs::read_to_string(dir.join(chapter)).unwrap();
            let mut current = String::new();
            for line in text.lines() {
                if line.starts_with('#') && !current.is_empty() {
                    sections.push(std::mem::take(&mut current));
                }
                current.push_str(line);
                current.push('\n');
            }
            sections.push(current);
        }
        sections
    }

    /// Whether `word` stands on its own in `text` (not inside a longer name).
    fn has_word(text: &str, word: &str) -> bool {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        text.match_indices(word).any(|(at, _)| {
            !text[..at].ends_with(ident) && !text[at + word.len()..].starts_with(ident)
        })
    }

    #[test]
    fn the_book_documents_every_function_and_option_and_no_other() {
        let sections = book_sections();
        for f in all() {
            let call = format!("`{}(", f.name);
            let about: Vec<&String> = sections.iter().filter(|s| s.contains(&call)).collect();
            assert!(
                !about.is_empty(),
                "the book does not document {}",
                f.usage()
            );
            for o in f.options {
                assert!(
                    about.iter().any(|s| has_word(s, o.name)),
                    "the book does not name option `{}` of {} where it documents it",
                    o.name,
                    f.name
                );
            }
        }
        let book = sections.concat();
        for module in ["docker::", "registry::", "compose::"] {
            for (at, _) in book.match_indices(module) {
                let rest = &book[at + module.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if rest[name.len()..].starts_with('(') {
                    let name = format!("{module}{name}");
                    assert!(
                        find(&name).is_some(),
                        "the book names {name}, which is no function"
                    );
                }
            }
        }
        // Headings name functions; `print` is Rhai's own, routed to `info`.
        for heading in book
            .lines()
            .filter(|l| l.starts_with("### `") || l.starts_with("#### `"))
        {
            for part in heading.split('`').skip(1).step_by(2) {
                let name = part.split('(').next().unwrap_or(part);
                assert!(
                    name == "print" || find(name).is_some(),
                    "the book's heading `{heading}` names {name}, which is no function"
                );
            }
        }
    }
}
