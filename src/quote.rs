//! The one quoting helper: every value rigs composes into a remote shell line goes through here.
//!
//! Remote commands run under the login shell, so a value is safe when it is a single word to any
//! shell a host may log in with: plain words stay readable, anything else is single-quoted. "Plain"
//! is narrower than POSIX `sh` needs: zsh expands a word starting with `=` (`=ls` is `/bin/ls`)
//! and, with `extendedglob`, treats `^` as negation; fish before 3.0 expanded `%name` to process
//! IDs and redirected with `^`.

/// Quotes `value` as one shell word.
pub fn quote(value: &str) -> String {
    if !value.is_empty()
        && !value.starts_with(['=', '%'])
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes every word and joins them with spaces.
pub fn join<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words.into_iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(
            quote("registry.example.com/app:1.2.3"),
            "registry.example.com/app:1.2.3"
        );
    }

    #[test]
    fn specials_are_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("a\nb"), "'a\nb'");
    }

    #[test]
    fn words_other_shells_expand_are_quoted() {
        assert_eq!(quote("=ls"), "'=ls'");
        assert_eq!(quote("%self"), "'%self'");
        assert_eq!(quote("^x"), "'^x'");
        assert_eq!(quote("a^b"), "'a^b'");
        // Inside a word, `=` and `%` are plain everywhere.
        assert_eq!(quote("KEY=value"), "KEY=value");
        assert_eq!(quote("50%"), "50%");
        assert_eq!(quote("-rf"), "-rf");
    }

    #[test]
    fn quoted_words_survive_a_real_shell() {
        let nasty = [
            "it's", "$HOME", "`id`", "a;b", "x\ny", "*", "~", "\"q\"", "-n", "=ls", "%1", "^x",
        ];
        let line = format!("printf '%s\\n' {}", join(nasty));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        let got = String::from_utf8(out.stdout).unwrap();
        let expected: String = nasty.iter().map(|w| format!("{w}\n")).collect();
        assert_eq!(got, expected);
    }
}
