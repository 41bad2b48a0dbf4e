//! Shell-style wildcards (`*` and `?`) for `--limit` and known_hosts patterns.
//!
//! Both patterns come from users and files rigs does not control, so matching must stay fast on any
//! input: a recursive matcher tries every way of splitting the text among the stars, which took
//! minutes for `*a*a*a*a*a*a*a*a*a*a*b` against 200 `a`s. This one walks the text once and, on a
//! mismatch, retries only from the last star, so the work is at most text × pattern.

/// Whether `text` matches `pattern`, where `*` is any run of characters (also none), `?` is any one
/// character, and every other character is itself.
pub fn matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // After the last star seen: where the rest of the pattern starts, and the text position the
    // star's match ends at so far. A later star supersedes it: whatever the earlier star would
    // swallow in addition, the later one can swallow just as well.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                p += 1;
                star = Some((p, t));
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((after, end)) => {
                    p = after;
                    t = end + 1;
                    star = Some((after, end + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("web-*", "web-12"));
        assert!(matches("w?b", "web"));
        assert!(!matches("web-?", "web-12"));
        assert!(matches("*", ""));
        assert!(matches("**", "x"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        assert!(!matches("?", ""));
        assert!(matches("*.example.com", "a.example.com"));
        assert!(!matches("*.example.com", "example.com"));
        assert!(matches("[h]:*", "[h]:2222"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("*ab", "aab"));
        assert!(matches("*a?", "xxab"));
        assert!(!matches("web", "web-1"));
        assert!(matches("db-ü?", "db-üx"));
    }

    #[test]
    fn many_stars_against_a_long_text_that_does_not_match() {
        // The recursive matcher ran for minutes on this one.
        let text = "a".repeat(200);
        assert!(!matches("*a*a*a*a*a*a*a*a*a*a*b", &text));
        assert!(matches("*a*a*a*a*a*a*a*a*a*a*", &text));
        let host = format!("{}.example.com", "a".repeat(5000));
        assert!(!matches(
            "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*.example.org",
            &host
        ));
    }
}
