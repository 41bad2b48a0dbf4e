//! What each native recipe function takes: one table per function, the one source for checking
//! a call's options map and for describing the function.
//!
//! Every function that takes an options map used to read it with its own list of valid keys and
//! its own wording, and the book was the only place that said what a function takes. A
//! [`FunctionSpec`] holds the function's parameters, options (name, type, default, meaning) and
//! doc; [`FunctionSpec::check`] rejects an unknown option or a value of the wrong type with the
//! same words for every function, `rigs -d FUNCTION` prints the table, and a test holds the book
//! to it. What a function checks beyond the type (a port's range, an octal mode) it says with
//! [`Options::bad`], in the same words.

use std::time::Duration;

use rhai::{Array, Dynamic, ImmutableString, Map};

/// What an option takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `true` or `false`.
    Bool,
    /// A string.
    Text,
    /// A string or a number, passed on as text (`cpus: 1.5`, `tail: "all"`).
    Scalar,
    /// A string, or an array whose items are passed on as text.
    Texts,
    /// A map.
    Map,
    /// A length of time: a number of seconds (`30`, `2.5`) or text with a unit (`"30s"`,
    /// `"2m"`, `"1h"`, `"500ms"`, `"1m30s"`), within the range.
    Duration(Range),
    /// Checked by the function itself: the type shown and what the value must be.
    Custom(&'static str, &'static str),
}

/// The durations an option accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Whether 0 is accepted (a pause may be none; a timeout may not).
    pub zero: bool,
    /// The most, in seconds.
    pub max: u64,
    /// The most, in words: "365 days".
    pub max_text: &'static str,
}

/// Up to [`crate::time::MAX_SECONDS`], above 0: timeouts.
pub const TIMEOUT: Range = Range {
    zero: false,
    max: crate::time::MAX_SECONDS,
    max_text: "365 days",
};

/// The `sudo` option of every function that runs commands on the host.
pub const SUDO: OptionSpec = OptionSpec::new(
    "sudo",
    Kind::Bool,
    "false",
    "run through sudo, as root (like `sudo(cmd)`)",
);

impl Range {
    /// Whether `secs` is in the range (never NaN or infinite).
    pub fn contains(&self, secs: f64) -> bool {
        (if self.zero { secs >= 0.0 } else { secs > 0.0 }) && secs <= self.max as f64
    }

    fn words(&self) -> String {
        let from = if self.zero {
            "from 0 to"
        } else {
            "above 0 and at most"
        };
        format!(
            "a number of seconds {from} {} ({}), such as 30, 2.5, \"30s\", \"2m\" or \"1h\"",
            self.max, self.max_text
        )
    }
}

impl Kind {
    /// The type as `rigs -d` shows it.
    pub fn shown(&self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Text => "string",
            Kind::Scalar => "string|number",
            Kind::Texts => "string|array",
            Kind::Map => "map",
            Kind::Duration(_) => "duration",
            Kind::Custom(shown, _) => shown,
        }
    }

    /// What a value must be, for errors: "true or false".
    pub fn wanted(&self) -> String {
        match self {
            Kind::Bool => "true or false".into(),
            Kind::Text => "a string".into(),
            Kind::Scalar => "a string or a number".into(),
            Kind::Texts => "a string or an array of strings".into(),
            Kind::Map => "a map".into(),
            Kind::Duration(range) => range.words(),
            Kind::Custom(_, wanted) => (*wanted).into(),
        }
    }

    fn accepts(&self, v: &Dynamic) -> bool {
        match self {
            Kind::Bool => v.is_bool(),
            Kind::Text => v.is_string(),
            Kind::Scalar => v.is_string() || v.is_int() || v.is_float(),
            Kind::Texts => v.is_string() || v.is_array(),
            Kind::Map => v.is_map(),
            Kind::Duration(range) => seconds(v).is_some_and(|s| range.contains(s)),
            Kind::Custom(..) => true,
        }
    }
}

/// One option of a function's options map.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: Kind,
    /// What leaving it out means, as shown by `rigs -d` ("" when there is nothing to say).
    pub default: &'static str,
    /// One line: what it does.
    pub doc: &'static str,
}

impl OptionSpec {
    pub const fn new(
        name: &'static str,
        kind: Kind,
        default: &'static str,
        doc: &'static str,
    ) -> OptionSpec {
        OptionSpec {
            name,
            kind,
            default,
            doc,
        }
    }
}

/// A native function: how it is called, what it accepts, what it does.
#[derive(Debug, Clone, Copy)]
pub struct FunctionSpec {
    /// As a recipe calls it: `run`, `docker::run`.
    pub name: &'static str,
    /// The parameters, in order; the options map is not one of them.
    pub params: &'static [&'static str],
    /// The keys of its options map; empty when it takes none.
    pub options: &'static [OptionSpec],
    /// What it returns, in words ("" for nothing).
    pub returns: &'static str,
    /// What it does: the first line for listings, the rest for `rigs -d`.
    pub doc: &'static str,
}

impl FunctionSpec {
    /// `docker::run(name, image[, options])`.
    pub fn usage(&self) -> String {
        let options = match (self.options.is_empty(), self.params.is_empty()) {
            (true, _) => "",
            (false, true) => "[options]",
            (false, false) => "[, options]",
        };
        format!("{}({}{options})", self.name, self.params.join(", "))
    }

    /// The name without its module: what the module registers (`run` for `docker::run`).
    pub fn base_name(&self) -> &'static str {
        self.name.rsplit_once("::").map_or(self.name, |(_, f)| f)
    }

    /// The module part of the name: `docker` for `docker::run`, "" for `run`.
    pub fn module(&self) -> &'static str {
        self.name.rsplit_once("::").map_or("", |(m, _)| m)
    }

    /// The first line of the doc.
    pub fn summary(&self) -> &'static str {
        self.doc.lines().next().unwrap_or("")
    }

    pub fn option(&self, name: &str) -> Option<&OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }

    /// Checks `map` against the options: every key known, every value of its type. The error
    /// is the message without the function's name.
    pub fn check<'a>(&'static self, map: &'a Map) -> Result<Options<'a>, String> {
        for (key, value) in map {
            let Some(option) = self.option(key) else {
                return Err(self.unknown(key));
            };
            if !option.kind.accepts(value) {
                return Err(must_be(option));
            }
        }
        Ok(Options { spec: self, map })
    }

    fn unknown(&self, key: &str) -> String {
        let names: Vec<&str> = self.options.iter().map(|o| o.name).collect();
        match names.as_slice() {
            [] => format!("unknown option `{key}` (it takes no options)"),
            _ => format!(
                "unknown option `{key}` (expected one of {})",
                names.join(", ")
            ),
        }
    }

    /// What `rigs -d FUNCTION` prints.
    pub fn describe(&self) -> String {
        let mut out = format!("{}\n", self.usage());
        out.push_str("    built-in function\n");
        if self.params.is_empty() {
            out.push_str("    takes no arguments\n");
        } else {
            out.push_str(&format!("    parameters: {}\n", self.params.join(", ")));
        }
        if !self.returns.is_empty() {
            out.push_str(&format!("    returns: {}\n", self.returns));
        }
        if !self.options.is_empty() {
            out.push_str("    options:\n");
            let width = |f: fn(&OptionSpec) -> usize| self.options.iter().map(f).max();
            let names = width(|o| o.name.len()).unwrap_or(0);
            let types = width(|o| o.kind.shown().len()).unwrap_or(0);
            let defaults = width(|o| default_text(o).chars().count()).unwrap_or(0);
            for o in self.options {
                let line = format!(
                    "{:<names$}  {:<types$}  {:<defaults$}  {}",
                    o.name,
                    o.kind.shown(),
                    default_text(o),
                    o.doc
                );
                out.push_str(&format!("        {}\n", line.trim_end()));
            }
        }
        out.push('\n');
        for line in self.doc.lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("    {line}\n"));
            }
        }
        out
    }
}

fn default_text(o: &OptionSpec) -> String {
    if o.default.is_empty() {
        "-".into()
    } else {
        format!("= {}", o.default)
    }
}

fn must_be(option: &OptionSpec) -> String {
    format!("option `{}` must be {}", option.name, option.kind.wanted())
}

/// An options map checked against its function's table.
pub struct Options<'a> {
    pub spec: &'static FunctionSpec,
    map: &'a Map,
}

impl Options<'_> {
    pub fn get(&self, name: &str) -> Option<&Dynamic> {
        self.map.get(name)
    }

    /// The options given, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Dynamic)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// A bool option; `false` when left out.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name)
            .and_then(|v| v.as_bool().ok())
            .unwrap_or(false)
    }

    /// A bool option, or `default` when left out.
    pub fn flag_or(&self, name: &str, default: bool) -> bool {
        self.get(name)
            .and_then(|v| v.as_bool().ok())
            .unwrap_or(default)
    }

    /// The value as text.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.to_string())
    }

    /// A string or array option as a list of texts.
    pub fn texts(&self, name: &str) -> Option<Vec<String>> {
        let v = self.get(name)?;
        Some(match v.read_lock::<Array>() {
            Some(a) => a.iter().map(|x| x.to_string()).collect(),
            None => vec![v.to_string()],
        })
    }

    pub fn map(&self, name: &str) -> Option<Map> {
        self.get(name)?.read_lock::<Map>().map(|m| m.clone())
    }

    /// A duration option, in seconds.
    pub fn seconds(&self, name: &str) -> Option<f64> {
        seconds(self.get(name)?)
    }

    pub fn duration(&self, name: &str) -> Option<Duration> {
        self.seconds(name).map(Duration::from_secs_f64)
    }

    /// "option `name` must be ...", for what the function checks beyond the type.
    pub fn bad(&self, name: &str) -> String {
        match self.spec.option(name) {
            Some(o) => must_be(o),
            None => self.spec.unknown(name),
        }
    }
}

/// A duration in seconds: a number, or text with units (`"30s"`, `"2m"`, `"1h"`, `"500ms"`,
/// `"1m30s"`). Text without a unit is not one: `"30"` may have meant minutes.
pub fn seconds(v: &Dynamic) -> Option<f64> {
    let secs = if let Ok(i) = v.as_int() {
        i as f64
    } else if let Ok(f) = v.as_float() {
        f
    } else {
        parse_duration(&v.read_lock::<ImmutableString>()?)?
    };
    secs.is_finite().then_some(secs)
}

/// `"1m30s"` -> 90.0.
pub fn parse_duration(text: &str) -> Option<f64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3_600.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit..];
    }
    Some(total)
}

/// A duration as Docker's flags take it (`--health-interval 2s`): text with a unit as given,
/// a number of seconds with `s` added.
pub fn docker_duration(v: &Dynamic) -> String {
    if v.is_string() {
        v.to_string()
    } else {
        format!("{}s", seconds(v).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SPEC: FunctionSpec = FunctionSpec {
        name: "demo",
        params: &["x"],
        options: &[
            OptionSpec::new("quiet", Kind::Bool, "false", "say nothing"),
            OptionSpec::new("timeout", Kind::Duration(TIMEOUT), "", "give up after it"),
        ],
        returns: "",
        doc: "A demo.",
    };

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    #[test]
    fn durations_take_numbers_and_units() {
        for (text, secs) in [
            ("30s", 30.0),
            ("2m", 120.0),
            ("1h", 3600.0),
            ("500ms", 0.5),
            ("1m30s", 90.0),
            ("1.5s", 1.5),
        ] {
            assert_eq!(seconds(&text.into()), Some(secs), "{text}");
        }
        assert_eq!(seconds(&Dynamic::from(30_i64)), Some(30.0));
        assert_eq!(seconds(&Dynamic::from(2.5_f64)), Some(2.5));
        for bad in ["30", "", "s", "2x", "1e3s", "-1s", "1..2s"] {
            assert_eq!(seconds(&bad.into()), None, "{bad}");
        }
        assert_eq!(seconds(&Dynamic::from(f64::NAN)), None);
        assert_eq!(docker_duration(&Dynamic::from(30_i64)), "30s");
        assert_eq!(docker_duration(&"2m".into()), "2m");
    }

    #[test]
    fn unknown_options_and_wrong_types_say_what_is_wanted() {
        assert_eq!(
            SPEC.check(&map(&[("quite", true.into())])).err().unwrap(),
            "unknown option `quite` (expected one of quiet, timeout)"
        );
        assert_eq!(
            SPEC.check(&map(&[("quiet", 1_i64.into())])).err().unwrap(),
            "option `quiet` must be true or false"
        );
        for bad in [Dynamic::from(0_i64), "30".into(), Dynamic::from(1e20_f64)] {
            assert_eq!(
                SPEC.check(&map(&[("timeout", bad)])).err().unwrap(),
                "option `timeout` must be a number of seconds above 0 and at most 31536000 \
                 (365 days), such as 30, 2.5, \"30s\", \"2m\" or \"1h\""
            );
        }
        let m = map(&[("timeout", "2m".into()), ("quiet", true.into())]);
        let o = SPEC.check(&m).unwrap();
        assert_eq!(o.duration("timeout"), Some(Duration::from_secs(120)));
        assert!(o.flag("quiet"));
    }

    #[test]
    fn describe_shows_parameters_options_and_doc() {
        assert_eq!(
            SPEC.describe(),
            "demo(x[, options])\n    built-in function\n    parameters: x\n    options:\n        \
             quiet    bool      = false  say nothing\n        timeout  duration  -        give up \
             after it\n\n    A demo.\n"
        );
    }
}
