//! Secrets: values that must never reach output, logs, JSON or a remote argv.
//!
//! [`Secret`] hides its value from `Debug` and `Display`. The [`Masker`] remembers every secret value
//! rigs has handed out and replaces it with `****` in each line before that line is written
//! anywhere, so even a recipe that echoes a secret by mistake does not leak it.
//!
//! Masking works on text as it appears, so the masker knows each form a secret takes in what
//! rigs writes: the value itself, each line of a multi-line value (output is masked line by
//! line), and the value as a task call word writes it (task labels). JSON is masked field by field
//! *before* it is serialised ([`Masker::mask_json`]): serde escapes `"`, `\` and control
//! characters, and an escaped secret no longer matches its value.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::diagnostic::{display_path, Diagnostic};
use crate::error::{Error, Result};

pub const MASK: &str = "****";

/// The shortest value masked: masking one- or two-character values would shred all output, and
/// such "secrets" are not secret anyway.
const MIN_VALUE: usize = 3;

/// The shortest line of a multi-line secret masked on its own (after trimming): shorter lines
/// (`{`, `}`, `],`) are everywhere and give nothing away.
const MIN_LINE: usize = 4;

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
    /// Masks `secret` from now on: its value, its forms in task labels, and, when it has several
    /// lines, each line long enough to give something away.
    pub fn add(&self, secret: &Secret) {
        let value = secret.expose();
        // A value inside the mask itself would make masking twice mask the mask.
        if value.len() < MIN_VALUE || MASK.contains(value) {
            return;
        }
        let mut forms = vec![value.to_string()];
        forms.extend(crate::task_call::written(value));
        if value.contains('\n') {
            forms.extend(
                value
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= MIN_LINE)
                    .map(str::to_string),
            );
        }
        let mut values = self.values.write().expect("masker lock");
        let before = values.len();
        for form in forms {
            if !values.iter().any(|v| **v == *form) {
                values.push(form.into());
            }
        }
        if values.len() != before {
            // Longest first, so a secret that contains another is masked whole.
            values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        mask_with(&self.values.read().expect("masker lock"), text)
    }

    /// Masks every string in `value`, object keys included, and every number whose digits hold
    /// a secret (it becomes a masked string). Call it on anything before it is serialised: the
    /// serialised text escapes a secret that holds `"`, `\` or a control character out of the
    /// mask's reach, and masking that text could cut the JSON itself apart (a secret `","`).
    pub fn mask_json(&self, value: &mut serde_json::Value) {
        let values = self.values.read().expect("masker lock");
        if !values.is_empty() {
            mask_json_with(&values, value);
        }
    }
}

/// `text` with each of `values` (longest first) replaced by the mask.
fn mask_with<'a>(values: &[Arc<str>], text: &'a str) -> Cow<'a, str> {
    if !values.iter().any(|v| text.contains(&**v)) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for v in values {
        if out.contains(&**v) {
            out = out.replace(&**v, MASK);
        }
    }
    Cow::Owned(out)
}

fn mask_json_with(values: &[Arc<str>], value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Cow::Owned(masked) = mask_with(values, s) {
                *s = masked;
            }
        }
        Value::Number(n) => {
            if let Cow::Owned(masked) = mask_with(values, &n.to_string()) {
                *value = Value::String(masked);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_json_with(values, v)),
        Value::Object(map) => {
            if map
                .keys()
                .any(|k| matches!(mask_with(values, k), Cow::Owned(_)))
            {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, mut v)| {
                        mask_json_with(values, &mut v);
                        (mask_with(values, &k).into_owned(), v)
                    })
                    .collect();
            } else {
                map.values_mut().for_each(|v| mask_json_with(values, v));
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// Why a secrets file error does not show its line.
const UNSHOWN: &str = "the line is not shown, as it may hold a secret";

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
            // A bad line is named by its number only: it may be (part of) a secret, and even
            // the text before an `=` may be one (base64 padding).
            let Some((key, value)) = line.split_once('=') else {
                return Err(Diagnostic::new("expected KEY=VALUE in secrets file", shown)
                    .at_line(index + 1)
                    .note(UNSHOWN)
                    .into());
            };
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Diagnostic::new("invalid secret name", shown)
                    .at_line(index + 1)
                    .note("names may contain letters, digits and `_`")
                    .note(UNSHOWN)
                    .into());
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

    #[test]
    fn json_is_masked_before_it_is_serialised() {
        let m = Masker::default();
        let tricky = "pa\"ss\\word";
        let control = "ctl\u{1}value";
        m.add(&Secret::new(tricky));
        m.add(&Secret::new(control));
        m.add(&Secret::new("48213"));
        m.add(&Secret::new("***"));
        let mut value = serde_json::json!({
            "args": [tricky, format!("x{control}y")],
            "nested": {tricky: {"deep": control}},
            "number": 4821,
            "pin": 48213,
            "ok": true,
        });
        m.mask_json(&mut value);
        let text = value.to_string();
        // The old way, masking the serialised text, finds neither: serde escaped both.
        assert_eq!(
            m.mask(&serde_json::json!([tricky, control]).to_string())
                .matches(MASK)
                .count(),
            0
        );
        for leak in ["pa\\\"ss", "ctl\\u0001", "ctl\u{1}"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        assert_eq!(
            value,
            serde_json::json!({
                "args": ["****", "x****y"], "nested": {"****": {"deep": "****"}},
                "number": 4821, "pin": "****", "ok": true,
            })
        );
        // A secret inside the mask is not one: masking twice changes nothing.
        assert_eq!(m.mask("****"), "****");
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_masked() {
        let m = Masker::default();
        let pem = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\n  9Cnzj4p4WGeKLs1Pt8Qu  \n}\n-----END KEY-----";
        m.add(&Secret::new(pem));
        assert_eq!(m.mask(pem), "****");
        assert_eq!(
            m.mask("MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf"),
            "****"
        );
        assert_eq!(m.mask("[h1] 9Cnzj4p4WGeKLs1Pt8Qu\r"), "[h1] ****\r");
        assert_eq!(m.mask("-----END KEY-----"), "****");
        // Lines too short to give anything away stay.
        assert_eq!(m.mask("}"), "}");
    }

    #[test]
    fn secrets_are_masked_as_task_labels_write_them() {
        let m = Masker::default();
        m.add(&Secret::new("a\\b,c=d"));
        assert_eq!(m.mask("deploy:a\\\\b\\,c\\=d"), "deploy:****");
        assert_eq!(m.mask("deploy:tag=a\\\\b\\,c=d"), "deploy:tag=****");
        assert_eq!(m.mask("a\\b,c=d"), "****");
    }

    #[test]
    fn a_bad_secrets_file_line_is_named_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        for (text, message) in [
            (
                "# ok\nGOOD=fine\nhunter2-in-the-clear\n",
                "expected KEY=VALUE",
            ),
            (
                "GOOD=fine\n\nbad name=hunter2-in-the-clear\n",
                "invalid secret name",
            ),
            ("dGhl+IGtleQ==hunter2\n", "invalid secret name"),
        ] {
            let path = dir.path().join("secrets.env");
            std::fs::write(&path, text).unwrap();
            let error = SecretStore::load(&path)
                .err()
                .expect("an error")
                .to_string();
            let line = text.lines().count();
            assert!(error.contains(message), "{error}");
            assert!(
                error.contains(&format!("secrets.env:{line}")),
                "names the line: {error}"
            );
            assert!(
                !error.contains("hunter2")
                    && !error.contains("bad name")
                    && !error.contains("dGhl"),
                "shows the line: {error}"
            );
        }
    }
}
