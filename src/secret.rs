//! Secrets: values that must never reach output, logs, JSON or a remote argv.
//!
//! [`Secret`] hides its value from `Debug` and `Display`. The [`Masker`] remembers every secret value
//! rigs has handed out and replaces it with `****` in each line before that line is written
//! anywhere, so even a recipe that echoes a secret by mistake does not leak it.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::diagnostic::{display_path, Diagnostic};
use crate::error::{Error, Result};

pub const MASK: &str = "****";

/// A secret value. Reading it takes an explicit call to [`Secret::expose`].
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Replaces every known secret value in text with `****`.
#[derive(Clone, Default)]
pub struct Masker {
    values: Arc<RwLock<Vec<Arc<str>>>>,
}

impl Masker {
    pub fn add(&self, secret: &Secret) {
        // Masking one-character values would shred all output; such "secrets" are not secret anyway.
        if secret.expose().len() < 3 {
            return;
        }
        let mut values = self.values.write().expect("masker lock");
        if !values.iter().any(|v| **v == *secret.expose()) {
            values.push(secret.0.clone());
            // Longest first, so a secret that contains another is masked whole.
            values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    pub fn mask<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let values = self.values.read().expect("masker lock");
        if !values.iter().any(|v| text.contains(&**v)) {
            return std::borrow::Cow::Borrowed(text);
        }
        let mut out = text.to_string();
        for v in values.iter() {
            if out.contains(&**v) {
                out = out.replace(&**v, MASK);
            }
        }
        std::borrow::Cow::Owned(out)
    }
}

/// Where `secret(NAME)` looks: the `--secrets` file first, then the environment.
#[derive(Default)]
pub struct SecretStore {
    file: HashMap<String, Secret>,
}

impl SecretStore {
    /// Reads `KEY=VALUE` lines; blank lines and `#` comments are skipped, and a value may be wrapped
    /// in single or double quotes.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let shown = display_path(path);
        let mut file = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((key, value)) = line.split_once('=') else {
                return Err(Diagnostic::new("expected KEY=VALUE in secrets file", shown)
                    .at(&text, index + 1, 1)
                    .into());
            };
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(
                    Diagnostic::new(format!("invalid secret name `{key}`"), shown)
                        .at(&text, index + 1, 1)
                        .note("names may contain letters, digits and `_`")
                        .into(),
                );
            }
            let value = value.trim();
            let value = strip_quotes(value);
            file.insert(key.to_string(), Secret::new(value));
        }
        Ok(SecretStore { file })
    }

    pub fn get(&self, name: &str) -> Option<Secret> {
        self.file
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok().map(Secret::new))
    }

    pub fn file_values(&self) -> impl Iterator<Item = &Secret> {
        self.file.values()
    }
}

fn strip_quotes(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter22");
        assert_eq!(format!("{s} {s:?}"), "**** ****");
    }

    #[test]
    fn masker_masks_longest_first() {
        let m = Masker::default();
        m.add(&Secret::new("abc"));
        m.add(&Secret::new("abcdef"));
        assert_eq!(m.mask("x abcdef y abc"), "x **** y ****");
        assert_eq!(m.mask("nothing"), "nothing");
    }
}
