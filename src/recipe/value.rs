//! Values crossing into and out of scripts: inventory TOML and JSON (docker's output, the
//! history) as Rhai values, and Rhai values as JSON (`record(...)`).

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

pub fn from_json(v: serde_json::Value) -> Dynamic {
    match v {
        serde_json::Value::Null => Dynamic::UNIT,
        serde_json::Value::Bool(b) => b.into(),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(0.0).into(),
        },
        serde_json::Value::String(s) => s.into(),
        serde_json::Value::Array(a) => a.into_iter().map(from_json).collect::<Array>().into(),
        serde_json::Value::Object(o) => o
            .into_iter()
            .map(|(k, v)| (k.into(), from_json(v)))
            .collect::<Map>()
            .into(),
    }
}

pub fn to_json(v: &Dynamic) -> serde_json::Value {
    if v.is_unit() {
        return serde_json::Value::Null;
    }
    if let Ok(b) = v.as_bool() {
        return b.into();
    }
    if let Ok(i) = v.as_int() {
        return i.into();
    }
    if let Ok(f) = v.as_float() {
        return serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into);
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a.iter().map(to_json).collect::<Vec<_>>().into();
    }
    if let Some(m) = v.read_lock::<Map>() {
        return m
            .iter()
            .map(|(k, v)| (k.to_string(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    v.to_string().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_rhai_values() {
        let v = serde_json::json!({"a": [1, 2.5, "x", true, null], "b": {"c": "d"}});
        assert_eq!(to_json(&from_json(v.clone())), v);
    }
}
