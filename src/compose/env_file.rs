//! Writes the `.env` file that the host's Compose reads for interpolation.
//!
//! Every value is written double-quoted because that is the only dotenv quoting that can hold any
//! text: single quotes cannot end a value with a backslash, and unquoted values lose spaces and
//! `#` comments. Inside double quotes Compose (checked with 2.26) turns `\\`, `\"`, `\$`, `\n`,
//! `\r` and `\t` back into the character, and would expand a bare `$NAME`, so those are escaped.
//! Values may be secrets, so no error ever quotes one.

/// The `.env` file compose reads for interpolation: one `KEY="value"` line per variable.
pub fn encode(vars: &[(String, String)]) -> Result<String, String> {
    let mut out = String::new();
    for (key, value) in vars {
        if !valid_key(key) {
            return Err(format!(
                "`{key}` is not a valid variable name for the compose .env file: use letters, \
                 digits and `_`, not starting with a digit"
            ));
        }
        out.push_str(key);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '$' => out.push_str("\\$"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\0' => {
                    return Err(format!(
                        "the value of `{key}` contains a NUL character, which an environment \
                         variable cannot hold: remove it"
                    ))
                }
                c => out.push(c),
            }
        }
        out.push_str("\"\n");
    }
    Ok(out)
}

/// Whether `key` can be a variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(key: &str, value: &str) -> Result<String, String> {
        encode(&[(key.to_string(), value.to_string())])
    }

    #[test]
    fn plain_values_are_double_quoted_one_per_line() {
        let vars = [
            ("TAG".to_string(), "1.2.3".to_string()),
            ("EMPTY".to_string(), String::new()),
        ];
        assert_eq!(encode(&vars).unwrap(), "TAG=\"1.2.3\"\nEMPTY=\"\"\n");
        assert_eq!(encode(&[]).unwrap(), "");
    }

    #[test]
    fn quotes_dollars_and_backslashes_are_escaped() {
        assert_eq!(
            one("P", r#"s3cr3t "q" $HOME \ end\"#).unwrap(),
            "P=\"s3cr3t \\\"q\\\" \\$HOME \\\\ end\\\\\"\n"
        );
        assert_eq!(one("P", "${X}'#").unwrap(), "P=\"\\${X}'#\"\n");
    }

    #[test]
    fn line_breaks_and_tabs_are_escaped() {
        assert_eq!(
            one("K", "a\nb\r\nc\td").unwrap(),
            "K=\"a\\nb\\r\\nc\\td\"\n"
        );
    }

    #[test]
    fn unicode_passes_through() {
        assert_eq!(one("K", "héllo ✓").unwrap(), "K=\"héllo ✓\"\n");
    }

    #[test]
    fn nul_is_refused_without_showing_the_value() {
        let e = one("TOKEN", "abc\0secretpart").unwrap_err();
        assert!(e.contains("TOKEN") && e.contains("NUL"), "{e}");
        assert!(!e.contains("secretpart") && !e.contains("abc"), "{e}");
    }

    #[test]
    fn invalid_keys_are_refused_by_name() {
        for key in ["", "1A", "A-B", "A B", "É", "A=B"] {
            let e = one(key, "hidden-value").unwrap_err();
            assert!(e.contains(&format!("`{key}`")), "{e}");
            assert!(!e.contains("hidden-value"), "{e}");
        }
    }

    #[test]
    fn valid_keys() {
        for key in ["A", "_", "_a1", "TAG", "a_B_9"] {
            assert!(valid_key(key), "{key}");
        }
        for key in ["", "9", "a-b", "a.b", "ä"] {
            assert!(!valid_key(key), "{key}");
        }
    }
}
