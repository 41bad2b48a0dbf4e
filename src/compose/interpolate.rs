//! Compose's `${VAR}` interpolation, for the one place rigs needs it: which image each service
//! runs.
//!
//! The host's Compose can say which images a project uses (`config --images`), but not which
//! service uses which, and the only output that says so with values filled in (`config --format
//! json`) also prints every variable, secrets included. So rigs asks the host for the merged
//! model *without* interpolation and fills in the `image:` strings itself, from the variables it
//! wrote to the revision's `.env`. A variable it did not write is an error rather than a guess.

use std::collections::BTreeMap;

/// `text` with `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
/// `${VAR?error}`, `${VAR:+other}`, `${VAR+other}` and `$$` resolved from `vars`, as Compose does.
pub fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(braced) = rest.strip_prefix('{') {
            let end = closing(braced).ok_or_else(|| format!("`{text}` has an unclosed `${{`"))?;
            out.push_str(&expression(&braced[..end], vars, text)?);
            rest = &braced[end + 1..];
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                return Err(format!(
                    "`{text}` has a `$` that starts no variable (write `$$`)"
                ));
            }
            out.push_str(&value(&name, vars, text)?);
            rest = &rest[name.len()..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Where the `}` that closes `text` (after its `${`) is, with nested `${...}` skipped.
fn closing(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn value(name: &str, vars: &BTreeMap<String, String>, text: &str) -> Result<String, String> {
    vars.get(name).cloned().ok_or_else(|| {
        format!(
            "`{text}` uses ${{{name}}}, which the deploy does not set: add {name} to compose_env"
        )
    })
}

fn expression(inner: &str, vars: &BTreeMap<String, String>, text: &str) -> Result<String, String> {
    let name: String = inner
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() {
        return Err(format!(
            "`{text}` has `${{{inner}}}`, which names no variable"
        ));
    }
    let op = &inner[name.len()..];
    if op.is_empty() {
        return value(&name, vars, text);
    }
    let set = vars.get(&name);
    let non_empty = set.filter(|v| !v.is_empty());
    let (kind, arg) = if let Some(a) = op.strip_prefix(":-") {
        ("default", a)
    } else if let Some(a) = op.strip_prefix('-') {
        ("default-unset", a)
    } else if let Some(a) = op.strip_prefix(":?") {
        ("required", a)
    } else if let Some(a) = op.strip_prefix('?') {
        ("required-unset", a)
    } else if let Some(a) = op.strip_prefix(":+") {
        ("alternative", a)
    } else if let Some(a) = op.strip_prefix('+') {
        ("alternative-unset", a)
    } else {
        return Err(format!(
            "`{text}` has `${{{inner}}}`, which Compose does not understand"
        ));
    };
    match kind {
        "default" => match non_empty {
            Some(v) => Ok(v.clone()),
            None => interpolate(arg, vars),
        },
        "default-unset" => match set {
            Some(v) => Ok(v.clone()),
            None => interpolate(arg, vars),
        },
        "required" | "required-unset" => {
            let found = if kind == "required" { non_empty } else { set };
            found.cloned().ok_or_else(|| {
                format!(
                    "`{text}` requires {name}: {}",
                    if arg.is_empty() { "it is not set" } else { arg }
                )
            })
        }
        "alternative" => match non_empty {
            Some(_) => interpolate(arg, vars),
            None => Ok(String::new()),
        },
        _ => match set {
            Some(_) => interpolate(arg, vars),
            None => Ok(String::new()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("TAG", "1.2.3"), ("REG", "r.example:5000"), ("EMPTY", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_forms_compose_knows() {
        let v = vars();
        let i = |t: &str| interpolate(t, &v);
        assert_eq!(i("${REG}/app:${TAG}").unwrap(), "r.example:5000/app:1.2.3");
        assert_eq!(i("$REG/app:$TAG").unwrap(), "r.example:5000/app:1.2.3");
        assert_eq!(i("app:${NOPE:-latest}").unwrap(), "app:latest");
        assert_eq!(i("app:${EMPTY:-latest}").unwrap(), "app:latest");
        assert_eq!(i("app:${EMPTY-latest}").unwrap(), "app:");
        assert_eq!(i("app:${NOPE-${TAG}}").unwrap(), "app:1.2.3");
        assert_eq!(i("app${TAG:+-x}").unwrap(), "app-x");
        assert_eq!(i("app${NOPE:+-x}").unwrap(), "app");
        assert_eq!(i("a$$b").unwrap(), "a$b");
        assert_eq!(i("plain").unwrap(), "plain");
    }

    #[test]
    fn what_is_not_set_is_an_error() {
        let v = vars();
        assert!(interpolate("app:${NOPE}", &v)
            .unwrap_err()
            .contains("add NOPE to compose_env"));
        assert!(interpolate("app:${NOPE:?say which}", &v)
            .unwrap_err()
            .contains("say which"));
        assert!(interpolate("app:${TAG", &v).is_err());
        assert!(interpolate("app:$", &v).is_err());
        assert!(interpolate("app:${TAG/x/y}", &v).is_err());
    }
}
