//! Which files make up a compose project, and under which names they are uploaded.
//!
//! Compose resolves every relative path, in every compose file, against the project directory:
//! the folder of the first compose file (the "base folder"). rigs uploads the project into a
//! revision folder that stands in for the base folder, so each file's name is its path relative
//! to the base folder, and anything that would not be found there after upload is refused here,
//! before anything is sent: paths leaving the base folder, paths that need interpolation to be
//! known, and features that pull in files rigs does not follow (`include:`, `extends.file`).
//!
//! Only the keys that name files and the shape Compose requires are read; nothing is
//! interpolated. The host's Compose validates the rest after upload.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// One file of a compose project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    /// Where the file is on the controller.
    pub local: PathBuf,
    /// Its path inside the revision folder: relative, '/'-separated, without `.` or `..`.
    pub name: String,
    /// An `env_file` or `secrets` file: uploaded with mode 0600 (else 0644).
    pub private: bool,
}

/// A compose project as rigs uploads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeProject {
    /// The compose files' `name`s, in the order given (for `-f`).
    pub compose_names: Vec<String>,
    /// The compose files first (in order), then every referenced file, deduplicated by name.
    pub files: Vec<ProjectFile>,
    /// Every service name, in first-seen order across the files.
    pub services: Vec<String>,
}

/// Reads the compose file(s) and lists the project's files and services.
///
/// `root`: the project root (paths in `compose` are relative to it, or absolute). `compose`: the
/// compose file(s) as the user listed them.
pub fn load(root: &Path, compose: &[String]) -> Result<ComposeProject, String> {
    let Some(first) = compose.first() else {
        return Err("no compose file given: list at least one (e.g. `compose.yaml`)".into());
    };
    let root = std::path::absolute(root)
        .map_err(|e| format!("cannot resolve the project folder {}: {e}", root.display()))?;
    let first_path = normalize(&root.join(first));
    let base = match first_path.parent() {
        Some(parent) => parent.to_path_buf(),
        None => return Err(format!("compose file `{first}` is not a file path")),
    };
    let mut project = Project {
        base,
        compose_names: Vec::new(),
        files: Vec::new(),
        index: HashMap::new(),
        services: Vec::new(),
        shapes: HashMap::new(),
    };
    for (i, given) in compose.iter().enumerate() {
        let path = normalize(&root.join(given));
        let name = project.name_in_base(&path).ok_or_else(|| {
            format!(
                "compose file `{given}` is not in or under {}, the folder of the first compose \
                 file: move it there (Compose resolves every path against that folder)",
                project.base.display()
            )
        })?;
        let text = read(&path, given)?;
        project.add(name.clone(), path, false);
        project.compose_names.push(name);
        project.read_compose(given, &text, i == 0)?;
    }
    project.check_builds()?;
    Ok(ComposeProject {
        compose_names: project.compose_names,
        files: project.files,
        services: project.services,
    })
}

/// What the compose files say about one service, merged across the files.
#[derive(Default)]
struct Shape {
    image: bool,
    build: bool,
    extends: bool,
    first_file: String,
}

struct Project {
    base: PathBuf,
    compose_names: Vec<String>,
    files: Vec<ProjectFile>,
    index: HashMap<String, usize>,
    services: Vec<String>,
    shapes: HashMap<String, Shape>,
}

/// Which kind of key a referenced file comes from, for messages and for its mode.
enum Reference<'a> {
    EnvFile { service: &'a str },
    Config { key: &'a str },
    Secret { key: &'a str },
}

impl fmt::Display for Reference<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::EnvFile { service } => write!(f, "services.{service}.env_file"),
            Reference::Config { key } => write!(f, "configs.{key}.file"),
            Reference::Secret { key } => write!(f, "secrets.{key}.file"),
        }
    }
}

impl Project {
    fn name_in_base(&self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(&self.base).ok()?;
        let mut parts = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_str()?),
                _ => return None,
            }
        }
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    fn add(&mut self, name: String, local: PathBuf, private: bool) {
        match self.index.get(&name) {
            Some(&i) => self.files[i].private |= private,
            None => {
                self.index.insert(name.clone(), self.files.len());
                self.files.push(ProjectFile {
                    local,
                    name,
                    private,
                });
            }
        }
    }

    fn read_compose(&mut self, file: &str, text: &str, main: bool) -> Result<(), String> {
        let document: Value = serde_saphyr::from_str(text).map_err(|e| yaml_error(file, &e))?;
        if document.is_null() {
            return Err(format!(
                "compose file `{file}` is empty: it must define `services:`"
            ));
        }
        let Value::Object(document) = document else {
            return Err(format!(
                "compose file `{file}` is not a mapping of keys (`services:` ...) but {}",
                kind(&document)
            ));
        };
        if document.contains_key("include") {
            return Err(format!(
                "compose file `{file}` uses `include:`, which rigs does not support yet: merge \
                 the included files into it, or list them as further compose files"
            ));
        }
        let services = match document.get("services") {
            Some(Value::Object(services)) => services,
            Some(Value::Null) if !main => return self.read_top_level_files(file, &document),
            None if !main => return self.read_top_level_files(file, &document),
            Some(other) => {
                return Err(format!(
                    "compose file `{file}`: `services` must be a mapping of service names, not {}",
                    kind(other)
                ))
            }
            None => {
                return Err(format!(
                    "compose file `{file}` has no `services:`: it must define at least one \
                     service"
                ))
            }
        };
        for name in ordered_service_names(text, file)? {
            let Some(service) = services.get(&name) else {
                continue;
            };
            self.read_service(file, &name, service)?;
        }
        self.read_top_level_files(file, &document)
    }

    fn read_service(&mut self, file: &str, name: &str, service: &Value) -> Result<(), String> {
        let empty = Map::new();
        let service = match service {
            Value::Object(service) => service,
            Value::Null => &empty,
            other => {
                return Err(format!(
                    "compose file `{file}`: service `{name}` must be a mapping, not {}",
                    kind(other)
                ))
            }
        };
        if !self.shapes.contains_key(name) {
            self.services.push(name.to_string());
        }
        let shape = self
            .shapes
            .entry(name.to_string())
            .or_insert_with(|| Shape {
                first_file: file.to_string(),
                ..Shape::default()
            });
        shape.image |= service.get("image").is_some_and(|v| !v.is_null());
        shape.build |= service.get("build").is_some_and(|v| !v.is_null());
        shape.extends |= service.contains_key("extends");
        if let Some(Value::Object(extends)) = service.get("extends") {
            if extends.contains_key("file") {
                return Err(format!(
                    "compose file `{file}`: service `{name}` uses `extends` with `file:`, which \
                     rigs does not support: copy that service's settings into this file or \
                     list the other file as a further compose file"
                ));
            }
        }
        let Some(env_files) = service.get("env_file") else {
            return Ok(());
        };
        let reference = Reference::EnvFile { service: name };
        let entries = match env_files {
            Value::Null => return Ok(()),
            Value::Array(entries) => entries.iter().collect(),
            single => vec![single],
        };
        for entry in entries {
            let (path, required) = match entry {
                Value::String(path) => (path, true),
                Value::Object(entry) => {
                    let Some(Value::String(path)) = entry.get("path") else {
                        return Err(format!(
                            "compose file `{file}`: an entry of `{reference}` has no `path` \
                             string: write `- path: FILE`"
                        ));
                    };
                    let required = match entry.get("required") {
                        None | Some(Value::Null) => true,
                        Some(Value::Bool(required)) => *required,
                        Some(other) => {
                            return Err(format!(
                                "compose file `{file}`: `required` of `{path}` in `{reference}` \
                                 must be true or false, not {}",
                                kind(other)
                            ))
                        }
                    };
                    (path, required)
                }
                other => {
                    return Err(format!(
                        "compose file `{file}`: `{reference}` must be a path or a list of \
                         paths, not {}",
                        kind(other)
                    ))
                }
            };
            self.reference(file, &reference, path, required)?;
        }
        Ok(())
    }

    fn read_top_level_files(
        &mut self,
        file: &str,
        document: &Map<String, Value>,
    ) -> Result<(), String> {
        for section in ["configs", "secrets"] {
            let entries = match document.get(section) {
                None | Some(Value::Null) => continue,
                Some(Value::Object(entries)) => entries,
                Some(other) => {
                    return Err(format!(
                        "compose file `{file}`: `{section}` must be a mapping, not {}",
                        kind(other)
                    ))
                }
            };
            for (key, entry) in entries {
                let reference = if section == "configs" {
                    Reference::Config { key }
                } else {
                    Reference::Secret { key }
                };
                match entry.get("file") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(path)) => self.reference(file, &reference, path, true)?,
                    Some(other) => {
                        return Err(format!(
                            "compose file `{file}`: `{reference}` must be a path, not {}",
                            kind(other)
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    fn reference(
        &mut self,
        file: &str,
        reference: &Reference,
        path: &str,
        required: bool,
    ) -> Result<(), String> {
        if path.contains('$') {
            return Err(format!(
                "compose file `{file}`: `{reference}` is `{path}`, which uses interpolation; \
                 rigs does not interpolate file paths: write the path literally"
            ));
        }
        if path.is_empty() {
            return Err(format!(
                "compose file `{file}`: `{reference}` is empty: give a path"
            ));
        }
        let local = normalize(&self.base.join(path));
        let Some(name) = self.name_in_base(&local) else {
            return Err(format!(
                "compose file `{file}`: `{reference}` is `{path}`, which is outside {}, the \
                 project folder: rigs uploads only files inside it, so move the file there",
                self.base.display()
            ));
        };
        match std::fs::metadata(&local) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(format!(
                    "compose file `{file}`: `{reference}` is `{path}`, which is not a regular \
                     file: rigs uploads files, so point it at one"
                ))
            }
            Err(_) if !required => return Ok(()),
            Err(e) => {
                return Err(format!(
                    "compose file `{file}`: `{reference}` is `{path}`, which cannot be read ({}): \
                     create it, or for an env_file mark it `required: false`",
                    io_reason(&e)
                ))
            }
        }
        let private = !matches!(reference, Reference::Config { .. });
        self.add(name, local, private);
        Ok(())
    }

    fn check_builds(&self) -> Result<(), String> {
        for name in &self.services {
            let Some(shape) = self.shapes.get(name) else {
                continue;
            };
            if shape.build && !shape.image && !shape.extends {
                return Err(format!(
                    "compose file `{}`: service `{name}` has `build:` but no `image:`; rigs \
                     deploys images, it does not build them: build and push the image first \
                     and set `image:` to its reference",
                    shape.first_file
                ));
            }
        }
        Ok(())
    }
}

fn read(path: &Path, given: &str) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read compose file `{given}` ({}): {}",
            path.display(),
            io_reason(&e)
        )
    })?;
    String::from_utf8(bytes).map_err(|_| format!("compose file `{given}` is not UTF-8 text"))
}

/// serde-saphyr's message (which starts with its line and column, and shows the lines around),
/// without its own "error: " prefix.
fn yaml_error(file: &str, e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("compose file `{file}` is not valid YAML: {text}")
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".into(),
        _ => e.to_string(),
    }
}

/// `path` with `.` removed and each `..` applied to the component before it, without touching
/// the filesystem (a `..` after a symlink means what it says, as Compose reads it).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The service names of a compose file in the order written (the parsed map is sorted).
fn ordered_service_names(text: &str, file: &str) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Document {
        #[serde(default)]
        services: Option<Keys>,
    }
    let document: Document = serde_saphyr::from_str(text).map_err(|e| yaml_error(file, &e))?;
    Ok(document.services.map(|keys| keys.0).unwrap_or_default())
}

/// The keys of a mapping, in order.
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = Keys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E>(self) -> Result<Keys, E> {
                Ok(Keys(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        deserializer.deserialize_any(KeysVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn load_in(dir: &tempfile::TempDir, compose: &[&str]) -> Result<ComposeProject, String> {
        let compose: Vec<String> = compose.iter().map(|c| c.to_string()).collect();
        load(dir.path(), &compose)
    }

    fn names(project: &ComposeProject) -> Vec<(&str, bool)> {
        project
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.private))
            .collect()
    }

    #[test]
    fn env_file_in_every_form() {
        let dir = folder(&[
            (
                "deploy/compose.yaml",
                "services:\n  web:\n    image: web:1\n    env_file: web.env\n  worker:\n    \
                 image: w:1\n    env_file: [common.env, ./env/worker.env]\n  db:\n    image: \
                 pg:16\n    env_file:\n      - path: db.env\n        required: true\n      - \
                 path: local.env\n        required: false\n",
            ),
            ("deploy/web.env", "A=1\n"),
            ("deploy/common.env", "A=1\n"),
            ("deploy/env/worker.env", "A=1\n"),
            ("deploy/db.env", "A=1\n"),
        ]);
        let project = load_in(&dir, &["deploy/compose.yaml"]).unwrap();
        assert_eq!(project.compose_names, ["compose.yaml"]);
        assert_eq!(project.services, ["web", "worker", "db"]);
        assert_eq!(
            names(&project),
            [
                ("compose.yaml", false),
                ("web.env", true),
                ("common.env", true),
                ("env/worker.env", true),
                ("db.env", true),
            ]
        );
        assert_eq!(
            project.files[3].local,
            dir.path().join("deploy/env/worker.env")
        );
    }

    #[test]
    fn configs_and_secrets_and_dedupe() {
        let dir = folder(&[
            (
                "compose.yaml",
                "services:\n  web:\n    image: web:1\n    env_file: shared.txt\n    configs: \
                 [nginx]\n  api:\n    image: api:1\n    env_file: ./shared.txt\nconfigs:\n  \
                 nginx:\n    file: ./conf/nginx.conf\n  other:\n    file: conf/nginx.conf\n  \
                 ext:\n    external: true\nsecrets:\n  token:\n    file: secrets/token.txt\n  \
                 env:\n    environment: TOKEN\n  again:\n    file: shared.txt\n",
            ),
            ("shared.txt", "x"),
            ("conf/nginx.conf", "x"),
            ("secrets/token.txt", "x"),
        ]);
        let project = load_in(&dir, &["compose.yaml"]).unwrap();
        assert_eq!(
            names(&project),
            [
                ("compose.yaml", false),
                ("shared.txt", true),
                ("conf/nginx.conf", false),
                ("secrets/token.txt", true),
            ]
        );
    }

    #[test]
    fn paths_leaving_the_base_folder_are_refused() {
        for path in ["../outside.env", "sub/../../outside.env", "/etc/passwd"] {
            let dir = folder(&[
                (
                    "app/compose.yaml",
                    &format!("services:\n  web:\n    image: w\n    env_file: {path}\n"),
                ),
                ("outside.env", "x"),
            ]);
            let e = load_in(&dir, &["app/compose.yaml"]).unwrap_err();
            assert!(
                e.contains("app/compose.yaml") && e.contains("services.web.env_file"),
                "{e}"
            );
            assert!(e.contains("outside"), "{e}");
        }
        let dir = folder(&[(
            "compose.yaml",
            "services: {}\nsecrets:\n  s:\n    file: ..\n",
        )]);
        let e = load_in(&dir, &["compose.yaml"]).unwrap_err();
        assert!(e.contains("secrets.s.file"), "{e}");
    }

    #[test]
    fn absolute_paths_inside_the_base_folder_are_fine() {
        let dir = folder(&[("a.env", "x")]);
        let absolute = dir.path().join("a.env");
        std::fs::write(
            dir.path().join("compose.yaml"),
            format!(
                "services:\n  web:\n    image: w\n    env_file: {}\n",
                absolute.display()
            ),
        )
        .unwrap();
        let project = load_in(&dir, &[dir.path().join("compose.yaml").to_str().unwrap()]).unwrap();
        assert_eq!(names(&project), [("compose.yaml", false), ("a.env", true)]);
    }

    #[test]
    fn interpolated_paths_are_refused() {
        let dir = folder(&[(
            "compose.yaml",
            "services:\n  web:\n    image: w\nconfigs:\n  c:\n    file: ./${ENV}.conf\n",
        )]);
        let e = load_in(&dir, &["compose.yaml"]).unwrap_err();
        assert!(
            e.contains("configs.c.file") && e.contains("interpolat"),
            "{e}"
        );
    }

    #[test]
    fn include_and_extends_file_are_refused() {
        let dir = folder(&[(
            "compose.yaml",
            "include:\n  - other.yaml\nservices:\n  web:\n    image: w\n",
        )]);
        let e = load_in(&dir, &["compose.yaml"]).unwrap_err();
        assert!(e.contains("include") && e.contains("compose.yaml"), "{e}");
        let dir = folder(&[(
            "compose.yaml",
            "services:\n  web:\n    extends:\n      file: base.yaml\n      service: web\n",
        )]);
        let e = load_in(&dir, &["compose.yaml"]).unwrap_err();
        assert!(e.contains("`web`") && e.contains("extends"), "{e}");
        let dir = folder(&[(
            "compose.yaml",
            "services:\n  base:\n    image: w\n  web:\n    extends: base\n    build: .\n",
        )]);
        assert!(load_in(&dir, &["compose.yaml"]).is_ok());
    }

    #[test]
    fn build_without_image_is_refused() {
        let dir = folder(&[(
            "compose.yaml",
            "services:\n  web:\n    image: w:1\n    build: .\n  api:\n    build:\n      context: \
             ./api\n",
        )]);
        let e = load_in(&dir, &["compose.yaml"]).unwrap_err();
        assert!(
            e.contains("`api`") && e.contains("build") && e.contains("image"),
            "{e}"
        );
    }

    #[test]
    fn anchors_and_merge_keys() {
        let dir = folder(&[
            (
                "compose.yaml",
                "x-common: &common\n  restart: always\n  env_file: common.env\n  image: \
                 base:1\nservices:\n  web:\n    <<: *common\n    image: web:1\n  worker:\n    \
                 <<: *common\n",
            ),
            ("common.env", "x"),
        ]);
        let project = load_in(&dir, &["compose.yaml"]).unwrap();
        assert_eq!(project.services, ["web", "worker"]);
        assert_eq!(
            names(&project),
            [("compose.yaml", false), ("common.env", true)]
        );
    }

    #[test]
    fn two_compose_files_override() {
        let dir = folder(&[
            (
                "deploy/compose.yaml",
                "services:\n  web:\n    image: web:1\n    build: .\n  db:\n    image: pg\n",
            ),
            (
                "deploy/prod/compose.prod.yaml",
                "services:\n  web:\n    env_file: prod/web.env\n  cache:\n    build: \
                 ./cache\n    image: cache:1\nsecrets:\n  k:\n    file: prod/key\n",
            ),
            ("deploy/prod/web.env", "x"),
            ("deploy/prod/key", "x"),
        ]);
        let project = load_in(
            &dir,
            &["deploy/compose.yaml", "deploy/prod/compose.prod.yaml"],
        )
        .unwrap();
        assert_eq!(
            project.compose_names,
            ["compose.yaml", "prod/compose.prod.yaml"]
        );
        assert_eq!(project.services, ["web", "db", "cache"]);
        assert_eq!(
            names(&project),
            [
                ("compose.yaml", false),
                ("prod/compose.prod.yaml", false),
                ("prod/web.env", true),
                ("prod/key", true),
            ]
        );
    }

    #[test]
    fn override_outside_the_base_folder_is_refused() {
        let dir = folder(&[
            ("deploy/compose.yaml", "services:\n  web:\n    image: w\n"),
            ("other.yaml", "services:\n  web:\n    image: w\n"),
        ]);
        let e = load_in(&dir, &["deploy/compose.yaml", "other.yaml"]).unwrap_err();
        assert!(
            e.contains("`other.yaml`") && e.contains("not in or under"),
            "{e}"
        );
    }

    #[test]
    fn optional_missing_env_file_is_skipped_required_one_is_refused() {
        let dir = folder(&[(
            "compose.yaml",
            "services:\n  web:\n    image: w\n    env_file:\n      - path: missing.env\n        \
             required: false\n",
        )]);
        let project = load_in(&dir, &["compose.yaml"]).unwrap();
        assert_eq!(names(&project), [("compose.yaml", false)]);
        let dir = folder(&[(
            "compose.yaml",
            "services:\n  web:\n    image: w\n    env_file: missing.env\n",
        )]);
        let e = load_in(&dir, &["compose.yaml"]).unwrap_err();
        assert!(
            e.contains("missing.env") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn missing_compose_file_and_bad_documents() {
        let dir = folder(&[
            ("list.yaml", "- a\n- b\n"),
            ("empty.yaml", ""),
            ("noservices.yaml", "volumes: {}\n"),
            ("broken.yaml", "services:\n  web:\n    image: [a\n"),
            ("svclist.yaml", "services:\n  - web\n"),
        ]);
        let e = load_in(&dir, &["nope.yaml"]).unwrap_err();
        assert!(
            e.contains("`nope.yaml`") && e.contains("does not exist"),
            "{e}"
        );
        let e = load_in(&dir, &["list.yaml"]).unwrap_err();
        assert!(
            e.contains("list.yaml") && e.contains("not a mapping"),
            "{e}"
        );
        let e = load_in(&dir, &["empty.yaml"]).unwrap_err();
        assert!(e.contains("empty.yaml"), "{e}");
        let e = load_in(&dir, &["noservices.yaml"]).unwrap_err();
        assert!(e.contains("no `services:`"), "{e}");
        let e = load_in(&dir, &["broken.yaml"]).unwrap_err();
        assert!(e.contains("broken.yaml") && e.contains("YAML"), "{e}");
        assert!(e.contains("line") || e.contains(":3:"), "{e}");
        let e = load_in(&dir, &["svclist.yaml"]).unwrap_err();
        assert!(e.contains("must be a mapping"), "{e}");
        assert!(load_in(&dir, &[]).is_err());
    }

    #[test]
    fn symlinked_files_are_read_through() {
        let dir = folder(&[
            ("real/web.env", "x"),
            (
                "real/compose.yaml",
                "services:\n  web:\n    image: w\n    env_file: web.env\n",
            ),
        ]);
        std::os::unix::fs::symlink(
            dir.path().join("real/compose.yaml"),
            dir.path().join("compose.yaml"),
        )
        .unwrap();
        std::os::unix::fs::symlink(dir.path().join("real/web.env"), dir.path().join("web.env"))
            .unwrap();
        let project = load_in(&dir, &["compose.yaml"]).unwrap();
        assert_eq!(
            names(&project),
            [("compose.yaml", false), ("web.env", true)]
        );
    }
}
