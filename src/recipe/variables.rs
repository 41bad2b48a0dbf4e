//! The variables a recipe file declares, and the check of a host's variables against them.
//!
//! A recipe reads its settings from `vars`, which the inventory and `--set` fill. Without a
//! declaration a typo is silent: `helth = {…}` turns the health gate off and the deploy reports
//! ok on a dead app. So a recipe file may declare what it reads, as a map constant at its top:
//!
//! ```rhai
//! const VARIABLES = #{
//!     image:  #{ type: "string", required: true, doc: "repository, without a tag" },
//!     keep:   #{ type: "int", default_value: 2, doc: "images kept for rollbacks" },
//!     health: #{ type: ["string", "map"], doc: "the check a release must pass" },
//! };
//! ```
//!
//! Before rigs connects to anything, every host of every task is checked against its file's
//! declarations: a missing required variable, a value of the wrong type, or an undeclared name one
//! typo away from a declared one is an input error. Defaults are filled in, so recipes read
//! `vars.keep` without testing for it. The declaration is read from the source text and
//! evaluated as a lone expression, so loading a recipe never runs its top-level code.

use rhai::{Dynamic, Engine, Map};

use crate::diagnostic::Diagnostic;

/// The name of the constant that holds the declarations.
pub const CONSTANT: &str = "VARIABLES";

/// Variables rigs itself reads from the inventory, whatever the recipes declare.
const RIGS_OWN: &[&str] = &["batch"];

/// What kind of value a variable holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Int,
    Float,
    Bool,
    Array,
    Map,
    Any,
}

impl Kind {
    fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "string" => Kind::String,
            "int" => Kind::Int,
            "float" => Kind::Float,
            "bool" => Kind::Bool,
            "array" => Kind::Array,
            "map" => Kind::Map,
            "any" => Kind::Any,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Bool => "bool",
            Kind::Array => "array",
            Kind::Map => "map",
            Kind::Any => "any",
        }
    }

    fn accepts(self, value: &toml::Value) -> bool {
        matches!(
            (self, value),
            (Kind::Any, _)
                | (Kind::String, toml::Value::String(_))
                | (Kind::Int, toml::Value::Integer(_))
                | (Kind::Float, toml::Value::Float(_) | toml::Value::Integer(_))
                | (Kind::Bool, toml::Value::Boolean(_))
                | (Kind::Array, toml::Value::Array(_))
                | (Kind::Map, toml::Value::Table(_))
        )
    }
}

/// What a value is, in a message.
fn kind_of(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an int",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a bool",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a map",
    }
}

/// One declared variable.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub kinds: Vec<Kind>,
    pub required: bool,
    /// Required only when none of these is set either (`required_unless`).
    pub unless: Vec<String>,
    pub default: Option<toml::Value>,
    pub doc: String,
}

impl Variable {
    /// `string | map`.
    pub fn type_text(&self) -> String {
        self.kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn accepts(&self, value: &toml::Value) -> bool {
        self.kinds.iter().any(|k| k.accepts(value))
    }

    /// A `--set` string turned into the declared type (`--set keep=3` is an int).
    fn coerce(&self, text: &str) -> Option<toml::Value> {
        if self.kinds.contains(&Kind::String) || self.kinds.contains(&Kind::Any) {
            return None;
        }
        let parsed: toml::Table = toml::from_str(&format!("v = {text}")).ok()?;
        parsed.get("v").filter(|v| self.accepts(v)).cloned()
    }
}

/// The declarations of one recipe file.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    pub list: Vec<Variable>,
}

/// One way a host's variables do not match the declarations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing {
        name: String,
        doc: String,
        /// Setting one of these instead would do.
        unless: Vec<String>,
    },
    WrongType {
        name: String,
        expected: String,
        found: String,
        value: String,
    },
    Typo {
        name: String,
        meant: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing { name, doc, unless } => {
                write!(f, "`{name}` is required but not set")?;
                if !doc.is_empty() {
                    write!(f, " ({doc})")?;
                }
                if !unless.is_empty() {
                    let others: Vec<String> = unless.iter().map(|u| format!("`{u}`")).collect();
                    write!(f, "; or set {} instead", others.join(" or "))?;
                }
                Ok(())
            }
            Problem::WrongType {
                name,
                expected,
                found,
                value,
            } => write!(f, "`{name}` must be {expected}, not {found} ({value})"),
            Problem::Typo { name, meant } => {
                write!(
                    f,
                    "`{name}` is not a variable these tasks read; did you mean `{meant}`?"
                )
            }
        }
    }
}

impl Variables {
    /// The declarations in `text`, if it has a `const VARIABLES = #{…};` at the top level.
    /// `file` is the name errors show.
    pub fn from_source(
        engine: &Engine,
        text: &str,
        file: &str,
    ) -> Result<Option<Variables>, Diagnostic> {
        let Some((line, expression)) = declaration_text(engine, text) else {
            return Ok(None);
        };
        let fail = |message: String| Diagnostic::new(message, file).at(text, line, 1);
        let value: Dynamic = engine.eval_expression(&expression).map_err(|e| {
            fail(format!(
                "`{CONSTANT}` must be a map written out in the file: {e}"
            ))
        })?;
        let Some(map) = value.try_cast::<Map>() else {
            return Err(fail(format!(
                "`{CONSTANT}` must be a map of variable names to #{{ type, required, default_value, doc }}"
            )));
        };
        let mut list = Vec::new();
        for (name, spec) in map {
            let name = name.to_string();
            let spec = spec.try_cast::<Map>().ok_or_else(|| {
                fail(format!(
                    "`{CONSTANT}.{name}` must be a map like #{{ type: \"string\", doc: \"…\" }}"
                ))
            })?;
            list.push(variable(&name, &spec).map_err(fail)?);
        }
        Ok(Some(Variables { list }))
    }

    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.list.iter().find(|v| v.name == name)
    }

    /// Checks `vars` (a host's merged variables) and fills in defaults. `from_set` names the
    /// variables given with `--set`, whose text is read as the declared type. `known` holds
    /// every variable any loaded recipe declares: those are never typos.
    pub fn apply(
        &self,
        vars: &mut toml::Table,
        from_set: &[String],
        known: &[&str],
    ) -> Vec<Problem> {
        // Typos first: they explain the missing variables that usually come with them.
        let mut problems: Vec<Problem> = vars
            .keys()
            .filter(|name| !known.contains(&name.as_str()) && !RIGS_OWN.contains(&name.as_str()))
            .filter_map(|name| {
                let meant = self
                    .list
                    .iter()
                    .map(|v| v.name.as_str())
                    .find(|d| is_typo(name, d))?;
                Some(Problem::Typo {
                    name: name.clone(),
                    meant: meant.to_string(),
                })
            })
            .collect();
        for v in &self.list {
            match vars.get(&v.name) {
                None => match &v.default {
                    Some(d) => {
                        vars.insert(v.name.clone(), d.clone());
                    }
                    None if v.required && !v.unless.iter().any(|u| vars.contains_key(u)) => {
                        problems.push(Problem::Missing {
                            name: v.name.clone(),
                            doc: v.doc.clone(),
                            unless: v.unless.clone(),
                        })
                    }
                    None => {}
                },
                Some(value) if v.accepts(value) => {}
                Some(value) => {
                    let coerced = match value {
                        toml::Value::String(s) if from_set.contains(&v.name) => v.coerce(s),
                        _ => None,
                    };
                    match coerced {
                        Some(c) => {
                            vars.insert(v.name.clone(), c);
                        }
                        None => problems.push(Problem::WrongType {
                            name: v.name.clone(),
                            expected: article(&v.type_text()),
                            found: kind_of(value).to_string(),
                            value: short(value),
                        }),
                    }
                }
            }
        }
        problems
    }

    /// The lines `rigs -d TASK` shows.
    pub fn describe(&self) -> Vec<String> {
        let width = self.list.iter().map(|v| v.name.len()).max().unwrap_or(0);
        let types = self
            .list
            .iter()
            .map(|v| v.type_text().len())
            .max()
            .unwrap_or(0);
        let need = |v: &Variable| {
            if v.required && !v.unless.is_empty() {
                format!("required unless {}", v.unless.join(" or "))
            } else if v.required {
                "required".to_string()
            } else if let Some(d) = &v.default {
                format!("= {}", short(d))
            } else {
                "optional".to_string()
            }
        };
        let needs = self
            .list
            .iter()
            .map(|v| need(v).chars().count())
            .max()
            .unwrap_or(0);
        self.list
            .iter()
            .map(|v| {
                let line = format!(
                    "{:<width$}  {:<types$}  {:<needs$}",
                    v.name,
                    v.type_text(),
                    need(v),
                );
                if v.doc.is_empty() {
                    line.trim_end().to_string()
                } else {
                    format!("{line}  {}", v.doc)
                }
            })
            .collect()
    }
}

/// "a string", "an int", "a string or a map".
fn article(types: &str) -> String {
    types
        .split(" | ")
        .map(|t| match t {
            "int" | "array" | "any" => format!("an {t}"),
            _ => format!("a {t}"),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn short(value: &toml::Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(39).collect::<String>())
    } else {
        text
    }
}

/// One typo away: a letter added, dropped, changed or two swapped (two for longer names).
fn is_typo(name: &str, declared: &str) -> bool {
    if name == declared || name.len() < 3 {
        return false;
    }
    let limit = if declared.len() >= 6 { 2 } else { 1 };
    strsim::damerau_levenshtein(name, declared) <= limit
}

fn variable(name: &str, spec: &Map) -> Result<Variable, String> {
    for key in spec.keys() {
        if ![
            "type",
            "required",
            "required_unless",
            "default_value",
            "doc",
        ]
        .contains(&key.as_str())
        {
            return Err(format!(
                "`{CONSTANT}.{name}` has an unknown field `{key}`; the fields are type, required, \
                 required_unless, default_value and doc"
            ));
        }
    }
    let kinds = match spec.get("type") {
        None => vec![Kind::Any],
        Some(t) => {
            let names: Vec<String> = if t.is_array() {
                t.clone()
                    .into_array()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|x| x.to_string())
                    .collect()
            } else {
                vec![t.to_string()]
            };
            names
                .iter()
                .map(|n| {
                    Kind::parse(n).ok_or_else(|| {
                        format!(
                            "`{CONSTANT}.{name}` has type `{n}`; use string, int, float, bool, \
                             array, map or any (or a list of them)"
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let required = match spec.get("required") {
        None => false,
        Some(r) => r
            .as_bool()
            .map_err(|_| format!("`{CONSTANT}.{name}.required` must be true or false"))?,
    };
    let unless: Vec<String> = match spec.get("required_unless") {
        None => Vec::new(),
        Some(u) if u.is_string() => vec![u.to_string()],
        Some(u) => u
            .clone()
            .into_array()
            .ok()
            .filter(|a| !a.is_empty() && a.iter().all(|x| x.is_string()))
            .map(|a| a.iter().map(|x| x.to_string()).collect())
            .ok_or_else(|| {
                format!(
                    "`{CONSTANT}.{name}.required_unless` must name a variable, or be an array of names"
                )
            })?,
    };
    if required && !unless.is_empty() {
        return Err(format!(
            "`{CONSTANT}.{name}` has both required and required_unless; required_unless alone says it"
        ));
    }
    let required = required || !unless.is_empty();
    let doc = spec.get("doc").map(|d| d.to_string()).unwrap_or_default();
    let mut v = Variable {
        name: name.to_string(),
        kinds,
        required,
        unless,
        default: None,
        doc,
    };
    if let Some(d) = spec.get("default_value") {
        if required {
            return Err(format!(
                "`{CONSTANT}.{name}` is required (or required_unless) and has a default_value; it can be only one of them"
            ));
        }
        let value = toml_value(d).ok_or_else(|| {
            format!("`{CONSTANT}.{name}.default_value` cannot be (); leave it out instead")
        })?;
        if !v.accepts(&value) {
            return Err(format!(
                "`{CONSTANT}.{name}.default_value` is {} but the type is {}",
                kind_of(&value),
                v.type_text()
            ));
        }
        v.default = Some(value);
    }
    Ok(v)
}

/// A script value as an inventory value (`()` has none).
fn toml_value(value: &Dynamic) -> Option<toml::Value> {
    json_to_toml(super::value::to_json(value))
}

fn json_to_toml(value: serde_json::Value) -> Option<toml::Value> {
    Some(match value {
        serde_json::Value::Null => return None,
        serde_json::Value::Bool(b) => toml::Value::Boolean(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        serde_json::Value::String(s) => toml::Value::String(s),
        serde_json::Value::Array(a) => {
            toml::Value::Array(a.into_iter().filter_map(json_to_toml).collect())
        }
        serde_json::Value::Object(o) => toml::Value::Table(
            o.into_iter()
                .filter_map(|(k, v)| Some((k, json_to_toml(v)?)))
                .collect(),
        ),
    })
}

/// The 1-based line of `const VARIABLES` and the text of its value. The value ends at the first
/// `;` after which the text compiles as an expression.
fn declaration_text(engine: &Engine, text: &str) -> Option<(usize, String)> {
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let rest = line
            .strip_prefix("const")
            .filter(|r| r.starts_with(char::is_whitespace))
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix(CONSTANT))
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix('='));
        if let Some(rest) = rest {
            let start = offset + (line.len() - rest.len());
            let value = &text[start..];
            for (at, _) in value.match_indices(';') {
                if engine.compile_expression(&value[..at]).is_ok() {
                    return Some((index + 1, value[..at].to_string()));
                }
            }
            return Some((index + 1, value.to_string()));
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"
// The app.
const VARIABLES = #{
    image: #{ type: "string", required: true, doc: "repository; without a tag" },
    keep: #{ type: "int", default_value: 2, doc: "images kept" },
    health: #{ type: ["string", "map"], doc: "the check" },
};

fn deploy(tag) { vars.image }
"#;

    fn declared() -> Variables {
        Variables::from_source(&Engine::new(), SOURCE, "docker.rhai")
            .unwrap()
            .unwrap()
    }

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn declarations_are_read_without_running_the_file() {
        let v = declared();
        assert_eq!(v.list.len(), 3);
        assert!(v.get("image").unwrap().required);
        assert_eq!(
            v.get("keep").unwrap().default,
            Some(toml::Value::Integer(2))
        );
        assert_eq!(v.get("health").unwrap().type_text(), "string | map");
        assert!(Variables::from_source(&Engine::new(), "fn a() {}", "x")
            .unwrap()
            .is_none());
    }

    #[test]
    fn bad_declarations_point_at_the_constant() {
        for (text, needle) in [
            (
                "const VARIABLES = #{ a: #{ type: \"strng\" } };",
                "type `strng`",
            ),
            (
                "const VARIABLES = #{ a: #{ kind: \"string\" } };",
                "unknown field `kind`",
            ),
            ("const VARIABLES = #{ a: 1 };", "must be a map like"),
            ("const VARIABLES = [1];", "must be a map of"),
            (
                "const VARIABLES = #{ a: #{ type: \"int\", default_value: \"x\" } };",
                "default_value` is a string",
            ),
            (
                "const VARIABLES = #{ a: #{ required: true, default_value: 1 } };",
                "only one of them",
            ),
        ] {
            let e = Variables::from_source(&Engine::new(), text, "r.rhai").unwrap_err();
            assert!(e.message.contains(needle), "{text}: {}", e.message);
            assert_eq!(e.line, 1);
        }
    }

    #[test]
    fn missing_wrong_and_misspelt_variables_are_problems() {
        let v = declared();
        let mut vars = table("helth = \"x\"\nkeep = \"two\"\ncolour = \"blue\"");
        let problems = v.apply(&mut vars, &[], &["image", "keep", "health"]);
        assert_eq!(
            problems,
            vec![
                Problem::Typo {
                    name: "helth".into(),
                    meant: "health".into()
                },
                Problem::Missing {
                    name: "image".into(),
                    doc: "repository; without a tag".into(),
                    unless: Vec::new(),
                },
                Problem::WrongType {
                    name: "keep".into(),
                    expected: "an int".into(),
                    found: "a string".into(),
                    value: "\"two\"".into()
                },
            ]
        );
        assert!(problems[0].to_string().contains("did you mean `health`?"));
    }

    #[test]
    fn defaults_fill_in_and_set_values_take_the_declared_type() {
        let v = declared();
        let mut vars = table("image = \"app\"");
        assert!(v.apply(&mut vars, &[], &[]).is_empty());
        assert_eq!(vars["keep"], toml::Value::Integer(2));
        let mut vars = table("image = \"app\"\nkeep = \"5\"");
        assert!(v.apply(&mut vars, &["keep".into()], &[]).is_empty());
        assert_eq!(vars["keep"], toml::Value::Integer(5));
        // From the inventory, a string stays a wrong type.
        let mut vars = table("image = \"app\"\nkeep = \"5\"");
        assert_eq!(v.apply(&mut vars, &[], &[]).len(), 1);
        // A name another recipe declares is not a typo.
        let mut vars = table("image = \"app\"\nhealthy = 1");
        assert!(v.apply(&mut vars, &[], &["healthy"]).is_empty());
    }

    #[test]
    fn typos_are_close_names_only() {
        assert!(is_typo("helth", "health"));
        assert!(is_typo("imgae", "image"));
        assert!(!is_typo("image_tag", "image"));
        assert!(!is_typo("keys", "kept"));
        assert!(!is_typo("node_env", "network"));
    }

    #[test]
    fn required_unless_another_is_set() {
        let parse = |text: &str| Variables::from_source(&Engine::new(), text, "r.rhai");
        let v = parse(
            "const VARIABLES = #{ image: #{ type: \"string\", required_unless: \"compose\", doc: \"repo\" }, \
             compose: #{ type: \"string\" } };",
        )
        .unwrap()
        .unwrap();
        let mut none = table("");
        let problems = v.apply(&mut none, &[], &["image", "compose"]);
        assert_eq!(
            problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            ["`image` is required but not set (repo); or set `compose` instead"]
        );
        let mut compose = table("compose = \"c.yaml\"");
        assert!(v.apply(&mut compose, &[], &["image", "compose"]).is_empty());
        assert!(v
            .describe()
            .iter()
            .any(|l| l.contains("required unless compose")));
        assert!(
            parse("const VARIABLES = #{ a: #{ required: true, required_unless: \"b\" } };")
                .is_err()
        );
    }
}
