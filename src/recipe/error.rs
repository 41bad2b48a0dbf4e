//! Script errors as diagnostics: the innermost failing position, in the file that holds it.
//!
//! Rhai nests an error once per function call or module it passes through; the user wants the
//! place where it actually happened, plus the chain of calls that led there.

use std::collections::HashMap;
use std::sync::Mutex;

use rhai::{EvalAltResult, ParseError, Position};

use crate::diagnostic::{display_path, Diagnostic};

/// The error text of Ctrl-C, told apart from failures by [`is_interrupted`].
pub const INTERRUPTED: &str = "interrupted";

/// The text of every source file errors may point into, keyed by the source name Rhai reports.
pub struct Sources {
    texts: Mutex<HashMap<String, (String, Option<String>)>>,
    /// Imported modules report their import path (`lib/util`), relative to this folder.
    dir: std::path::PathBuf,
}

impl Sources {
    pub fn new(dir: &std::path::Path) -> Self {
        Sources {
            texts: Mutex::default(),
            dir: dir.to_path_buf(),
        }
    }

    pub fn add(&self, source: &str, shown: String, text: String) {
        self.texts
            .lock()
            .expect("sources lock")
            .insert(source.to_string(), (shown, Some(text)));
    }

    /// Display name and text of `source`; imported modules are read on first use.
    fn get(&self, source: &str) -> (String, Option<String>) {
        let mut texts = self.texts.lock().expect("sources lock");
        texts
            .entry(source.to_string())
            .or_insert_with(|| {
                let module = self.dir.join(format!("{source}.rhai"));
                let path = if module.is_file() {
                    module
                } else {
                    std::path::PathBuf::from(source)
                };
                (display_path(&path), std::fs::read_to_string(&path).ok())
            })
            .clone()
    }

    pub fn diagnostic(&self, message: String, source: &str, pos: Position) -> Diagnostic {
        let (shown, text) = self.get(source);
        let d = Diagnostic::new(message, shown);
        match (pos.line(), text) {
            (Some(line), Some(text)) => d.at(&text, line, pos.position().unwrap_or(0)),
            (Some(line), None) => {
                let mut d = d;
                d.line = line;
                d.column = pos.position().unwrap_or(0);
                d
            }
            _ => d,
        }
    }
}

pub fn parse_error(err: &ParseError, source: &str, sources: &Sources) -> Diagnostic {
    let message = format!("syntax error: {}", err.err_type());
    sources.diagnostic(message, source, err.position())
}

/// The message of the innermost error without Rhai's `(line x, position y)` suffix.
pub fn runtime_message(err: &EvalAltResult) -> String {
    let mut e = err;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
    | EvalAltResult::ErrorInModule(_, inner, _) = e
    {
        e = inner;
    }
    match e {
        EvalAltResult::ErrorRuntime(value, _) | EvalAltResult::ErrorTerminated(value, _) => {
            value.to_string()
        }
        EvalAltResult::ErrorParsing(kind, _) => format!("syntax error: {kind}"),
        EvalAltResult::ErrorDataTooLarge(what, _) => super::limits::too_large(what),
        other => strip_position(&other.to_string()),
    }
}

fn strip_position(text: &str) -> String {
    match text.rfind(" (line ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text.to_string(),
    }
}

/// The property a script read from a map that does not have it.
pub fn missing_property(err: &EvalAltResult) -> Option<String> {
    let mut e = err;
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
            | EvalAltResult::ErrorInModule(_, inner, _) => e = inner,
            EvalAltResult::ErrorPropertyNotFound(name, _) => return Some(name.clone()),
            _ => return None,
        }
    }
}

/// Whether the script ended because of Ctrl-C.
pub fn is_interrupted(err: &EvalAltResult) -> bool {
    let mut e = err;
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
            | EvalAltResult::ErrorInModule(_, inner, _) => e = inner,
            EvalAltResult::ErrorTerminated(token, _) => return token.to_string() == INTERRUPTED,
            _ => return false,
        }
    }
}

/// Renders a runtime error that started in `source`.
pub fn runtime_error(err: &EvalAltResult, source: &str, sources: &Sources) -> Diagnostic {
    let mut source = source.to_string();
    let mut calls: Vec<String> = Vec::new();
    let mut e = err;
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(name, fn_source, inner, pos) => {
                if !pos.is_none() {
                    calls.push(format!(
                        "in call to `{name}` at {}",
                        location(sources, &source, *pos)
                    ));
                }
                if !fn_source.is_empty() {
                    source = fn_source.clone();
                }
                e = inner;
            }
            EvalAltResult::ErrorInModule(module, inner, pos) => {
                calls.push(format!(
                    "while loading module `{module}` at {}",
                    location(sources, &source, *pos)
                ));
                source = module.clone();
                e = inner;
            }
            _ => break,
        }
    }
    let mut d = sources.diagnostic(runtime_message(e), &source, e.position());
    for c in calls.into_iter().rev() {
        d = d.note(c);
    }
    d
}

fn location(sources: &Sources, source: &str, pos: Position) -> String {
    let (shown, _) = sources.get(source);
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{shown}:{l}:{c}"),
        (Some(l), None) => format!("{shown}:{l}"),
        _ => shown,
    }
}
