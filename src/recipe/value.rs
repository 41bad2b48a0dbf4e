//! Inventory values (TOML) as Rhai values.

use rhai::{Array, Dynamic, Map};

pub fn from_toml(value: &toml::Value) -> Dynamic {
    match value {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(a) => a.iter().map(from_toml).collect::<Array>().into(),
        toml::Value::Table(t) => table(t).into(),
    }
}

pub fn table(t: &toml::Table) -> Map {
    t.iter()
        .map(|(k, v)| (k.as_str().into(), from_toml(v)))
        .collect()
}
