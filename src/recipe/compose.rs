//! The `compose::` module: Docker Compose projects on the task's host, one revision per deploy.
//!
//! A compose deploy has to be as safe as a one-container deploy: what ran before must be
//! restorable without a registry, and a bad release must go back on its own. Compose itself keeps
//! no history and pulls by tag, so rigs gives every deploy a **revision folder** on the host
//! (`~/.rigs/compose/PROJECT/revisions/0007`) holding the compose files, every file they
//! reference, a `.env` (mode 0600) with the interpolation variables, and `pins.yaml`, an override
//! that pins every service to the image *ID* it resolved to. Running a revision again runs exactly
//! those files and images (`--pull never`), which is what a rollback is. `current` points at the
//! last revision that came up healthy, and moves only then.
//!
//! The functions are host-side primitives; the standard recipe (`recipes/docker.rhai`) strings
//! them into `deploy`, `rollback`, `status` and the rest. Every `docker compose` line names the
//! project, the project folder, the env file and every compose file explicitly, so nothing
//! depends on the session's folder, and a person on the host can run `docker compose ps` inside
//! `current` (its `.env` names the same project and files).
//!
//! Values of the `.env` (secrets among them) never appear on a command line or in output: the
//! file is written through stdin and never hashed or recorded, and `docker compose config` is
//! only ever asked questions whose answers hold no values (`--quiet`, `--images`).

use std::collections::BTreeMap;

use rhai::{Array, Dynamic, Map, Module, NativeCallContext};
use serde::{Deserialize, Serialize};

use super::docker::ALLOW_FAIL;
use super::docker_call::{call, DockerCall};
use super::spec::{FunctionSpec, Kind, OptionSpec, Options, SUDO, TIMEOUT};
use super::toolkit::Fallible;

/// Where project folders live on the host, relative to the login's home folder.
pub const DEFAULT_DIR: &str = ".rigs/compose";

const DIR: OptionSpec = OptionSpec::new(
    "dir",
    Kind::Text,
    ".rigs/compose",
    "the folder of the project folders on the host, relative to the home folder or absolute",
);
const SERVICES: OptionSpec = OptionSpec::new(
    "services",
    Kind::Texts,
    "all",
    "only these services (a role's share of the project)",
);

const QUERY: &[OptionSpec] = &[SUDO];
const BY_NAME: &[OptionSpec] = &[DIR, SUDO];
const REVISION_MAP: &str = "map: a revision (see compose::prepare)";

pub static PROJECT: FunctionSpec = FunctionSpec {
    name: "compose::project",
    params: &[],
    options: &[],
    returns: "string",
    doc: "The default project name: the name of the folder rigs runs in, as Compose allows it\n\
          (lowercase letters, digits, `-` and `_`).",
};

pub static CHECK: FunctionSpec = FunctionSpec {
    name: "compose::check",
    params: &[],
    options: QUERY,
    returns: "string: the Compose version",
    doc: "Checks that the host's docker has the Compose v2 plugin, recent enough for rigs.\n\
          Fails with what to install when it has none, or only the Python docker-compose 1.x.",
};

pub static PREPARE: FunctionSpec = FunctionSpec {
    name: "compose::prepare",
    params: &["files"],
    options: &[
        OptionSpec::new(
            "project",
            Kind::Text,
            "compose::project()",
            "the project name: `docker compose -p` on every line",
        ),
        OptionSpec::new(
            "env",
            Kind::Map,
            "",
            "interpolation variables, written to the revision's .env (mode 0600), never shown",
        ),
        SERVICES,
        OptionSpec::new(
            "version",
            Kind::Scalar,
            "",
            "what the revision is recorded as (the deploy's tag)",
        ),
        DIR,
        SUDO,
    ],
    returns: "map #{ project, root, dir, revision, version, created, compose_files, files, services, all_services, images, activated }",
    doc: "Makes a new revision folder of the project on the host from the compose file(s) `files`\n\
          (a path or an array, relative to the folder rigs runs in): uploads them and every file\n\
          they reference (env_file, configs, secrets), writes the .env, and has the host's Compose\n\
          check the result. A variable the files use but nobody set is an error.",
};

pub static IMAGES: FunctionSpec = FunctionSpec {
    name: "compose::images",
    params: &["revision"],
    options: QUERY,
    returns: "map: service => #{ image, id }, id () when the host lacks the image",
    doc: "The image each service of `revision` on this host runs, as its compose file names it\n\
          after interpolation, and its ID on the host.",
};

pub static PIN: FunctionSpec = FunctionSpec {
    name: "compose::pin",
    params: &["revision"],
    options: &[
        OptionSpec::new(
            "pull",
            Kind::Bool,
            "false",
            "docker compose pull the services' images first",
        ),
        SUDO,
        ALLOW_FAIL,
    ],
    returns: "map: the revision, its `images` filled in",
    doc: "Pins every service of `revision` to the ID of its image on the host (pins.yaml), so\n\
          running the revision again runs exactly these images, with no registry.",
};

pub static UP: FunctionSpec = FunctionSpec {
    name: "compose::up",
    params: &["revision"],
    options: &[
        OptionSpec::new(
            "timeout",
            Kind::Duration(TIMEOUT),
            "120",
            "how long the services may take to be running and healthy: up --wait-timeout",
        ),
        OptionSpec::new(
            "settle",
            Kind::Duration(super::spec::Range {
                zero: true,
                max: 3600,
                max_text: "1 hour",
            }),
            "5",
            "after that, how long every container must keep running without a restart",
        ),
        SUDO,
        ALLOW_FAIL,
    ],
    returns: "map: service => #{ container, id, state, health }",
    doc:
        "Runs pinned `revision`: docker compose up --wait, nothing pulled or built. Fails when a\n\
          service exits, turns unhealthy, or restarts within `settle`, with its last log lines.\n\
          On a host running only some services, this project's other containers are removed.",
};

pub static ACTIVATE: FunctionSpec = FunctionSpec {
    name: "compose::activate",
    params: &["revision"],
    options: &[],
    returns: "bool: true",
    doc: "Marks `revision` as released: `current` points at it from now on.",
};

pub static CURRENT: FunctionSpec = FunctionSpec {
    name: "compose::current",
    params: &["project"],
    options: BY_NAME,
    returns: "map: the revision `current` points at, or () before the first release",
    doc: "The project's current revision on the host.",
};

pub static REVISIONS: FunctionSpec = FunctionSpec {
    name: "compose::revisions",
    params: &["project"],
    options: BY_NAME,
    returns: "array of revision maps, oldest first; the current one has `current: true`",
    doc: "Every revision folder of the project on the host.",
};

pub static PS: FunctionSpec = FunctionSpec {
    name: "compose::ps",
    params: &["revision"],
    options: QUERY,
    returns: "array of maps: Service, Name, State, Health, Status, ID, plus image (the reference) and image_id",
    doc: "The containers of `revision`'s project on the host, stopped ones too.",
};

pub static LOGS: FunctionSpec = FunctionSpec {
    name: "compose::logs",
    params: &["revision"],
    options: &[
        SERVICES,
        OptionSpec::new(
            "tail",
            Kind::Scalar,
            "all",
            "only the last lines of each: docker compose logs --tail",
        ),
        OptionSpec::new(
            "since",
            Kind::Scalar,
            "",
            "only lines since a time or for a while: docker compose logs --since",
        ),
        SUDO,
        ALLOW_FAIL,
    ],
    returns: "string: the logs",
    doc: "The logs of `revision`'s services, shown as they are read.",
};

pub static EXEC: FunctionSpec = FunctionSpec {
    name: "compose::exec",
    params: &["revision", "service", "command"],
    options: &[SUDO, ALLOW_FAIL],
    returns: "string: what the command printed",
    doc: "Runs shell command `command` inside the running container of `service`.",
};

pub static PRUNE: FunctionSpec = FunctionSpec {
    name: "compose::prune",
    params: &["project"],
    options: &[
        OptionSpec::new(
            "keep",
            Kind::Custom("int", "a number of revisions, 1 or more"),
            "2",
            "released revisions to keep, the current one included",
        ),
        DIR,
        SUDO,
        ALLOW_FAIL,
    ],
    returns: "array: the revisions and images it removed",
    doc: "Removes the project's revisions beyond the newest `keep` released ones, failed ones,\n\
          and the images only they pinned. Images another project's kept revision pins, or a\n\
          container uses, stay.",
};

/// The functions of this module, for `rigs -d` and the book.
pub static SPECS: &[&FunctionSpec] = &[
    &PROJECT, &CHECK, &PREPARE, &IMAGES, &PIN, &UP, &ACTIVATE, &CURRENT, &REVISIONS, &PS, &LOGS,
    &EXEC, &PRUNE,
];

/// One service's pinned image: the reference its compose file names, and the ID it resolved to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Pin {
    pub image: String,
    pub id: String,
}

/// One revision folder, as `revision.json` records it and scripts see it. It holds no value of
/// the `.env`, so it may be printed, recorded and kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Revision {
    pub project: String,
    /// The project folder on the host (absolute).
    pub root: String,
    /// The revision folder on the host (absolute): `root/revisions/NNNN`.
    pub dir: String,
    /// `0007`.
    pub revision: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub created: String,
    /// The compose files' names inside the folder, in `-f` order.
    pub compose_files: Vec<String>,
    /// Every file of the folder rigs uploaded, by name: its SHA-256.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// The services this host runs; every service when it is all of them.
    pub services: Vec<String>,
    pub all_services: Vec<String>,
    /// Service => the image its compose file names, interpolated: what `pin` resolves.
    #[serde(default)]
    pub references: BTreeMap<String, String>,
    /// Service => pinned image; empty until pinned.
    #[serde(default)]
    pub images: BTreeMap<String, Pin>,
    #[serde(default)]
    pub activated: bool,
    /// Only in what `compose::revisions` returns.
    #[serde(default, skip_serializing)]
    pub current: bool,
}

impl Revision {
    /// The revision a script handed back, checked.
    pub fn from_script(d: &DockerCall, v: &Dynamic) -> Fallible<Revision> {
        if v.is_unit() {
            return Err(d.fail(
                "no revision: this is () (in a dry run, or before the project's first release)",
            ));
        }
        serde_json::from_value(super::value::to_json(v)).map_err(|e| {
            d.fail(format!(
                "expected {REVISION_MAP} as compose::prepare returns it: {e}"
            ))
        })
    }

    pub fn to_script(&self) -> Dynamic {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.insert("current".into(), self.current.into());
        }
        super::value::from_json(v)
    }

    /// `compose -p P --project-directory DIR --env-file DIR/.env -f DIR/F... [-f DIR/pins.yaml]`:
    /// the start of every line about this revision.
    pub fn flags(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "compose".into(),
            "-p".into(),
            self.project.clone(),
            "--project-directory".into(),
            self.dir.clone(),
            "--env-file".into(),
            format!("{}/.env", self.dir),
        ];
        for f in &self.compose_files {
            args.push("-f".into());
            args.push(format!("{}/{f}", self.dir));
        }
        if !self.images.is_empty() {
            args.push("-f".into());
            args.push(format!("{}/{PINS}", self.dir));
        }
        args
    }

    /// Whether this host runs only some of the services.
    pub fn partial(&self) -> bool {
        !self.services.is_empty() && self.services.len() < self.all_services.len()
    }

    /// The services this host runs.
    pub fn own_services(&self) -> &[String] {
        if self.services.is_empty() {
            &self.all_services
        } else {
            &self.services
        }
    }

    /// The services of the project this host does not run.
    pub fn other_services(&self) -> Vec<String> {
        self.all_services
            .iter()
            .filter(|s| !self.own_services().contains(s))
            .cloned()
            .collect()
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The override that pins services to image IDs. JSON is YAML, and compose reads it as such.
pub const PINS: &str = "pins.yaml";
/// What rigs knows about a revision, in its folder.
pub const META: &str = "revision.json";

pub fn register(m: &mut Module) {
    macro_rules! both {
        ($spec:ident, $otherwise:expr, |$d:ident, $o:ident $(, $p:ident: $t:ty)*| $body:expr) => {{
            m.set_native_fn($spec.base_name(), |ctx: NativeCallContext $(, $p: $t)*| {
                call(&ctx, &$spec, &Map::new(), $otherwise, |$d, $o| $body)
            });
            m.set_native_fn($spec.base_name(), |ctx: NativeCallContext $(, $p: $t)*, opts: Map| {
                call(&ctx, &$spec, &opts, $otherwise, |$d, $o| $body)
            });
        }};
    }
    m.set_native_fn(PROJECT.base_name(), || Ok(default_project()));
    both!(CHECK, Dynamic::UNIT, |d, _o| {
        super::compose_revision::check(d).map(Into::into)
    });
    both!(PREPARE, Dynamic::UNIT, |d, o, files: Dynamic| {
        super::compose_revision::prepare(d, o, &files)
    });
    both!(IMAGES, Dynamic::UNIT, |d, _o, rev: Map| {
        let rev = Revision::from_script(d, &rev.into())?;
        super::compose_revision::images(d, &rev).map(|images| {
            images
                .into_iter()
                .map(|(service, (image, id))| {
                    let mut m = Map::new();
                    m.insert("image".into(), image.into());
                    m.insert("id".into(), id.map_or(Dynamic::UNIT, Into::into));
                    (service.into(), m.into())
                })
                .collect::<Map>()
                .into()
        })
    });
    both!(PIN, Dynamic::UNIT, |d, o, rev: Map| {
        let rev = Revision::from_script(d, &rev.into())?;
        super::compose_revision::pin(d, o, rev).map(|r| r.to_script())
    });
    both!(UP, Dynamic::UNIT, |d, o, rev: Map| {
        let rev = Revision::from_script(d, &rev.into())?;
        super::compose_up::up(d, o, &rev).map(Into::into)
    });
    m.set_native_fn(ACTIVATE.base_name(), |ctx: NativeCallContext, rev: Map| {
        call(&ctx, &ACTIVATE, &Map::new(), Dynamic::UNIT, |d, _o| {
            let rev = Revision::from_script(d, &rev.into())?;
            super::compose_revision::activate(d, rev).map(|_| true.into())
        })
    });
    both!(CURRENT, Dynamic::UNIT, |d, o, project: &str| {
        super::compose_revision::current(d, o, project)
            .map(|r| r.map_or(Dynamic::UNIT, |r| r.to_script()))
    });
    both!(REVISIONS, Dynamic::UNIT, |d, o, project: &str| {
        super::compose_revision::revisions(d, o, project).map(|all| {
            all.iter()
                .map(Revision::to_script)
                .collect::<Array>()
                .into()
        })
    });
    both!(PS, Dynamic::UNIT, |d, _o, rev: Map| {
        let rev = Revision::from_script(d, &rev.into())?;
        super::compose_up::ps(d, &rev).map(Into::into)
    });
    both!(LOGS, Dynamic::UNIT, |d, o, rev: Map| {
        let rev = Revision::from_script(d, &rev.into())?;
        super::compose_up::logs(d, o, &rev).map(Into::into)
    });
    both!(
        EXEC,
        Dynamic::UNIT,
        |d, _o, rev: Map, service: &str, command: &str| {
            let rev = Revision::from_script(d, &rev.into())?;
            super::compose_up::exec(d, &rev, service, command).map(Into::into)
        }
    );
    both!(PRUNE, Dynamic::UNIT, |d, o, project: &str| {
        super::compose_revision::prune(d, o, project).map(Into::into)
    });
}

/// The name of the folder rigs runs in, made a valid Compose project name.
pub fn default_project() -> String {
    let folder = std::env::current_dir()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_default();
    let name: String = folder
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_start_matches(['-', '_']).to_string();
    if name.is_empty() {
        "app".into()
    } else {
        name
    }
}

/// Whether Compose takes `name` as a project name.
pub fn valid_project(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The `dir` option, or the default.
pub fn base_dir(o: &Options) -> String {
    o.text("dir").unwrap_or_else(|| DEFAULT_DIR.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_follow_compose() {
        assert!(valid_project("shop"));
        assert!(valid_project("shop-2_x"));
        assert!(!valid_project("Shop"));
        assert!(!valid_project("-shop"));
        assert!(!valid_project(""));
        assert!(!valid_project("a b"));
    }

    #[test]
    fn flags_name_everything() {
        let mut r = Revision {
            project: "shop".into(),
            dir: "/h/.rigs/compose/shop/revisions/0001".into(),
            compose_files: vec!["compose.yaml".into()],
            ..Revision::default()
        };
        assert_eq!(
            r.flags().join(" "),
            "compose -p shop --project-directory /h/.rigs/compose/shop/revisions/0001 \
             --env-file /h/.rigs/compose/shop/revisions/0001/.env \
             -f /h/.rigs/compose/shop/revisions/0001/compose.yaml"
        );
        r.images.insert("web".into(), Pin::default());
        assert!(r
            .flags()
            .join(" ")
            .ends_with("-f /h/.rigs/compose/shop/revisions/0001/pins.yaml"));
    }

    #[test]
    fn services_of_a_role() {
        let r = Revision {
            services: vec!["web".into()],
            all_services: vec!["web".into(), "worker".into()],
            ..Revision::default()
        };
        assert!(r.partial());
        assert_eq!(r.other_services(), vec!["worker".to_string()]);
    }
}
