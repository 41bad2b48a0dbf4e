//! Text from outside rigs made harmless for a terminal: control characters are shown, not obeyed.
//!
//! What a host prints was written by someone else. A carriage return lets it overwrite the start
//! of its own line, so `\r[web-9] ok` would pass for another host's line; escape sequences move
//! the cursor, clear the screen, retitle the window or hide text. So before anything from outside
//! is printed (host output, recipe messages, errors, history cells, bundle manifests), each control
//! character in it is replaced with a visible escape: `\r` for a carriage return, `\xNN` for the
//! other ASCII controls and DEL, `\u{NN}` for the C1 controls (U+0080 to U+009F, which some
//! terminals obey as they obey ESC sequences). Tabs stay. Backslashes are not doubled: the text is
//! for reading, not for decoding; the JSON output carries the exact text.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character but the tab escaped.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_except(text, '\t')
}

/// `text` with every control character but the tab and the newline escaped: for blocks of lines
/// (an error with its snippet).
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    let mut lines = text.split('\n').map(escape);
    let Some(first) = lines.next() else {
        return Cow::Borrowed(text);
    };
    let mut out = first.into_owned();
    for line in lines {
        out.push('\n');
        out.push_str(&line);
    }
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

fn escape_except(text: &str, kept: char) -> Cow<'_, str> {
    let hidden = |c: char| c.is_control() && c != kept;
    // Most text has no control character: a quick look at the bytes (0xc2 leads every C1
    // character) saves a copy.
    let suspect = text.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2);
    if !suspect || !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if !hidden(c) => out.push(c),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

/// A serialised JSON value with DEL and the C1 controls written as `\u00NN`, as serde_json
/// already writes the other controls: the same value, and no byte a terminal would obey. They
/// can only stand inside strings, where the escape means the same character.
pub fn escape_json(json: String) -> String {
    if !json.bytes().any(|b| b == 0x7f || b == 0xc2) || !json.chars().any(char::is_control) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_and_tabs_stay() {
        assert!(matches!(escape("plain text, ünïcode"), Cow::Borrowed(_)));
        assert_eq!(escape("\r[h9] ok\x1b[2J"), "\\r[h9] ok\\x1b[2J");
        assert_eq!(escape("a\tb\x7f\u{9b}1m\0"), "a\tb\\x7f\\u{9b}1m\\x00");
        assert_eq!(escape("one\ntwo"), "one\\x0atwo");
        assert_eq!(escape_lines("one\r\ntwo\x07"), "one\\r\ntwo\\x07");
        assert!(matches!(escape_lines("one\ntwo"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_its_value_and_loses_raw_controls() {
        let value = serde_json::json!({"line": "a\x7fb\u{9b}c\u{e9}\r"});
        let text = escape_json(value.to_string());
        assert_eq!(text, r#"{"line":"a\u007fb\u009bcé\r"}"#);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }
}
