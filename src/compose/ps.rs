//! Reads `docker compose ps --format json`, whose shape changed in Compose 2.21: before, one JSON
//! array; since, one object per line. Both are accepted so rigs works with either on the host.

use serde_json::Value;

/// `docker compose ps --format json` output: one object per line (Compose ≥ 2.21) or one JSON array (older).
pub fn parse(stdout: &str) -> Result<Vec<Value>, String> {
    let text = stdout.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.starts_with('[') {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            format!("docker compose ps printed a JSON array that does not parse: {e}")
        })?;
        let Value::Array(items) = value else {
            return Err("docker compose ps printed something that is not a JSON array".into());
        };
        if let Some(i) = items.iter().position(|item| !item.is_object()) {
            return Err(format!(
                "docker compose ps printed an array whose item {} is not an object",
                i + 1
            ));
        }
        return Ok(items);
    }
    let mut containers = Vec::new();
    for (i, line) in stdout.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value @ Value::Object(_)) => containers.push(value),
            Ok(Value::Array(items)) if items.is_empty() => {}
            Ok(_) => {
                return Err(format!(
                    "docker compose ps printed line {} that is not a JSON object",
                    i + 1
                ))
            }
            Err(e) => {
                return Err(format!(
                    "docker compose ps printed line {} that is not JSON ({e}): {}",
                    i + 1,
                    preview(line)
                ))
            }
        }
    }
    Ok(containers)
}

fn preview(line: &str) -> String {
    const MAX: usize = 80;
    match line.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_output_is_no_containers() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("  \n\n").unwrap().is_empty());
        assert!(parse("[]\n").unwrap().is_empty());
    }

    #[test]
    fn one_object_per_line() {
        let out = "{\"Name\":\"shop-web-1\",\"Service\":\"web\",\"State\":\"running\",\"Health\":\"healthy\"}\n\
                   {\"Name\":\"shop-db-1\",\"Service\":\"db\",\"State\":\"exited\",\"ExitCode\":1}\n";
        let got = parse(out).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["Service"], "web");
        assert_eq!(got[1]["ExitCode"], 1);
    }

    #[test]
    fn one_array_from_older_compose() {
        let out = "[{\"Name\":\"shop-web-1\",\"Service\":\"web\",\"State\":\"running\"},{\"Name\":\"shop-db-1\",\"Service\":\"db\",\"State\":\"running\"}]\n";
        let got = parse(out).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1]["Name"], "shop-db-1");
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        let e = parse("{\"Service\":\"web\"}\nWARN[0000] something odd\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("WARN"), "{e}");
        let e = parse("{\"Service\":\"web\"}\n42\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(parse("[1, 2]").unwrap_err().contains("item 1"));
        assert!(parse("[{\"a\":").is_err());
    }
}
