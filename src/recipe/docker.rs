//! The `docker::` module: the host's docker CLI, driven from recipes.
//!
//! Each function runs `docker ...` lines on the task's host through a [`DockerCall`], which
//! quotes every argument, shows the lines as a person needs them, and applies the call's `sudo`
//! and `allow_fail` options. Secrets never go on a command line: the registry password reaches
//! `docker login` on stdin, and container environment values reach `docker run` through
//! `--env-file /dev/stdin`. Docker's own error message becomes the host's failure.
//!
//! One convention for every function: a lookup that finds nothing returns `()`; a function with
//! nothing to return returns `true`, or `false` when a docker command failed under
//! `allow_fail: true`; one with a value returns `()` in that case.

use rhai::{Dynamic, Map, Module, NativeCallContext};

use super::docker_call::{call, strings, DockerCall, Shown};
use super::docker_container::{container_exists, pull_image, replace, run_args};
use super::docker_images::{
    dangling_images, image_field, image_id, prune_images, remember, repository,
};
use super::spec::{FunctionSpec, Kind, OptionSpec, SUDO};
use super::toolkit::Fallible;

/// The `allow_fail` option of the `docker::` functions.
pub const ALLOW_FAIL: OptionSpec = OptionSpec::new(
    "allow_fail",
    Kind::Bool,
    "false",
    "a failing docker command does not fail the host: the function returns false (or ())",
);

const PLAIN: &[OptionSpec] = &[SUDO, ALLOW_FAIL];
const QUERY: &[OptionSpec] = &[SUDO];
const DONE: &str = "bool: true, or false when it failed under allow_fail";

pub static LOGIN: FunctionSpec = FunctionSpec {
    name: "docker::login",
    params: &["registry", "user", "password"],
    options: PLAIN,
    returns: DONE,
    doc: "Logs the host's docker in to `registry`; the password goes on stdin, never on a command line.",
};

pub static LOGOUT: FunctionSpec = FunctionSpec {
    name: "docker::logout",
    params: &["registry"],
    options: PLAIN,
    returns: DONE,
    doc: "Logs the host's docker out of `registry`.",
};

pub static PULL: FunctionSpec = FunctionSpec {
    name: "docker::pull",
    params: &["reference"],
    options: PLAIN,
    returns: DONE,
    doc: "Pulls image `reference` on the host and notes its ID as the repository's in the history.",
};

pub static PUSH: FunctionSpec = FunctionSpec {
    name: "docker::push",
    params: &["reference"],
    options: PLAIN,
    returns: DONE,
    doc: "Pushes image `reference` from the host to its registry.",
};

pub static TAG: FunctionSpec = FunctionSpec {
    name: "docker::tag",
    params: &["source", "target"],
    options: PLAIN,
    returns: DONE,
    doc: "Tags image `source` as `target` on the host.",
};

pub static RMI: FunctionSpec = FunctionSpec {
    name: "docker::rmi",
    params: &["reference"],
    options: PLAIN,
    returns: DONE,
    doc: "Removes image `reference` from the host.",
};

pub static IMAGE_ID: FunctionSpec = FunctionSpec {
    name: "docker::image_id",
    params: &["reference"],
    options: QUERY,
    returns: "string, or () when the host does not have the image",
    doc: "The ID of image `reference` on the host.",
};

pub static DIGEST: FunctionSpec = FunctionSpec {
    name: "docker::digest",
    params: &["reference"],
    options: QUERY,
    returns: "string, or () when the image has none (or is not there)",
    doc: "The repository digest `sha256:...` of image `reference` on the host.",
};

pub static IMAGES: FunctionSpec = FunctionSpec {
    name: "docker::images",
    params: &["repo"],
    options: PLAIN,
    returns: "array of maps",
    doc: "The host's images of repository `repo`: docker images --format '{{json .}}' per image.",
};

pub static DANGLING_IMAGES: FunctionSpec = FunctionSpec {
    name: "docker::dangling_images",
    params: &["repo"],
    options: PLAIN,
    returns: "array of image IDs",
    doc:
        "The host's untagged images that were `repo`'s, by their repository digest or the history.",
};

/// The options of `docker::run`, in the order `docker run` gets them, then `extra`, then the
/// call's own (`sudo`, `allow_fail`).
macro_rules! run_options {
    ($($extra:expr),*) => {
        &[
            OptionSpec::new(
                "publish",
                Kind::Texts,
                "",
                "ports, as for docker run --publish",
            ),
            OptionSpec::new(
                "env",
                Kind::Custom("map", "a map of names to one-line values"),
                "",
                "environment variables, fed on stdin (never on a command line)",
            ),
            OptionSpec::new(
                "env_file",
                Kind::Scalar,
                "",
                "docker run --env-file, a file on the host",
            ),
            OptionSpec::new(
                "volumes",
                Kind::Texts,
                "",
                "volumes, as for docker run --volume",
            ),
            OptionSpec::new("network", Kind::Scalar, "", "docker run --network"),
            OptionSpec::new(
                "restart",
                Kind::Scalar,
                "",
                "the restart policy: docker run --restart",
            ),
            OptionSpec::new(
                "labels",
                Kind::Map,
                "",
                "labels: docker run --label NAME=VALUE",
            ),
            OptionSpec::new(
                "command",
                Kind::Texts,
                "the image's CMD",
                "the command and its arguments, after the image",
            ),
            OptionSpec::new("entrypoint", Kind::Scalar, "", "docker run --entrypoint"),
            OptionSpec::new("user", Kind::Scalar, "", "docker run --user"),
            OptionSpec::new("workdir", Kind::Scalar, "", "docker run --workdir"),
            OptionSpec::new(
                "health_cmd",
                Kind::Scalar,
                "",
                "the container's HEALTHCHECK command: docker run --health-cmd",
            ),
            OptionSpec::new(
                "health_interval",
                Kind::Duration(super::spec::TIMEOUT),
                "",
                "time between HEALTHCHECK runs: docker run --health-interval",
            ),
            OptionSpec::new(
                "health_retries",
                Kind::Scalar,
                "",
                "failed HEALTHCHECK runs before unhealthy: docker run --health-retries",
            ),
            OptionSpec::new("memory", Kind::Scalar, "", "docker run --memory"),
            OptionSpec::new("cpus", Kind::Scalar, "", "docker run --cpus"),
            OptionSpec::new("hostname", Kind::Scalar, "", "docker run --hostname"),
            OptionSpec::new(
                "extra_args",
                Kind::Texts,
                "",
                "more arguments of docker run, before the image",
            ),
            $($extra,)*
            SUDO,
            ALLOW_FAIL,
        ]
    };
}

pub static RUN: FunctionSpec = FunctionSpec {
    name: "docker::run",
    params: &["name", "image"],
    options: run_options!(),
    returns: "string: the container's ID, or () when it failed under allow_fail",
    doc: "Starts a detached container `name` from `image` on the host.\n\
          Environment values reach docker on stdin (--env-file /dev/stdin), never on a command line.",
};

pub static REPLACE: FunctionSpec = FunctionSpec {
    name: "docker::replace",
    params: &["name", "reference"],
    options: run_options!(OptionSpec::new(
        "pull",
        Kind::Bool,
        "true",
        "pull the image first; false uses the host's copy",
    )),
    returns: "map #{ image, previous }: the image IDs now and before",
    doc: "Replaces container `name` with one running `reference`, keeping the old image as :previous.\n\
          Pulls (unless `pull: false`), stops and removes the old container, tags its image\n\
          REPO:previous, runs the new one with the options, and removes the image :previous named\n\
          before when no tag or container uses it any more.",
};

pub static PRUNE_IMAGES: FunctionSpec = FunctionSpec {
    name: "docker::prune_images",
    params: &["repo"],
    options: &[
        OptionSpec::new(
            "keep",
            Kind::Custom("int", "a number of images, 1 or more"),
            "2",
            "images of `repo` to keep",
        ),
        SUDO,
        ALLOW_FAIL,
    ],
    returns: "array: what it removed (tags, or the IDs of untagged images)",
    doc: "Keeps `keep` images of `repo` on the host and removes the others.\n\
          The images containers use and :previous are kept first, then the newest others.",
};

pub static STOP: FunctionSpec = FunctionSpec {
    name: "docker::stop",
    params: &["name"],
    options: PLAIN,
    returns: DONE,
    doc: "Stops container `name`.",
};

pub static RM: FunctionSpec = FunctionSpec {
    name: "docker::rm",
    params: &["name"],
    options: PLAIN,
    returns: DONE,
    doc: "Removes container `name`, running or not (docker rm --force).",
};

pub static EXISTS: FunctionSpec = FunctionSpec {
    name: "docker::exists",
    params: &["name"],
    options: QUERY,
    returns: "bool",
    doc: "Whether a container named `name` exists on the host.",
};

pub static PS: FunctionSpec = FunctionSpec {
    name: "docker::ps",
    params: &[],
    options: PLAIN,
    returns: "array of maps",
    doc: "Every container on the host: docker ps --all --format '{{json .}}' per container.",
};

pub static INSPECT: FunctionSpec = FunctionSpec {
    name: "docker::inspect",
    params: &["name"],
    options: PLAIN,
    returns: "map, or () when there is no such container or image",
    doc: "docker inspect of one container or image.",
};

pub static LOGS: FunctionSpec = FunctionSpec {
    name: "docker::logs",
    params: &["name"],
    options: &[
        OptionSpec::new(
            "tail",
            Kind::Scalar,
            "all",
            "only the last lines: docker logs --tail",
        ),
        OptionSpec::new(
            "since",
            Kind::Scalar,
            "",
            "only lines since a time or for a while: docker logs --since",
        ),
        SUDO,
        ALLOW_FAIL,
    ],
    returns: "string: the log",
    doc: "The log of container `name`, shown as it is read.",
};

/// The functions of this module, for `rigs -d` and the book.
pub static SPECS: &[&FunctionSpec] = &[
    &LOGIN,
    &LOGOUT,
    &PULL,
    &PUSH,
    &TAG,
    &RMI,
    &IMAGE_ID,
    &DIGEST,
    &IMAGES,
    &DANGLING_IMAGES,
    &RUN,
    &REPLACE,
    &PRUNE_IMAGES,
    &STOP,
    &RM,
    &EXISTS,
    &PS,
    &INSPECT,
    &LOGS,
];

/// Registers `$spec`'s function twice, without and with the options map: the body gets the
/// call and the checked options; under `allow_fail` a failing docker line gives `$otherwise`.
macro_rules! register {
    ($m:ident, $spec:ident, $otherwise:expr, |$d:ident, $o:ident $(, $p:ident: $t:ty)*| $body:expr) => {{
        $m.set_native_fn($spec.base_name(), |ctx: NativeCallContext $(, $p: $t)*| {
            call(&ctx, &$spec, &Map::new(), $otherwise, |$d, $o| $body)
        });
        $m.set_native_fn($spec.base_name(), |ctx: NativeCallContext $(, $p: $t)*, opts: Map| {
            call(&ctx, &$spec, &opts, $otherwise, |$d, $o| $body)
        });
    }};
}

/// Runs one changing docker line; `true` when done.
fn change(d: &DockerCall, args: &[&str], stdin: Option<String>) -> Fallible<Dynamic> {
    d.run(&strings(args), stdin, Shown::Change, false)?;
    Ok(true.into())
}

/// `()` for nothing.
fn or_unit(value: Option<String>) -> Dynamic {
    value.map_or(Dynamic::UNIT, Dynamic::from)
}

pub fn register(m: &mut Module) {
    register!(
        m,
        LOGIN,
        false.into(),
        |d, _o, registry: &str, user: &str, password: &str| {
            let args = [
                "login",
                "--username",
                user,
                "--password-stdin",
                "--",
                registry,
            ];
            change(d, &args, Some(password.to_string()))
        }
    );
    register!(m, LOGOUT, false.into(), |d, _o, registry: &str| change(
        d,
        &["logout", "--", registry],
        None
    ));
    register!(m, PULL, false.into(), |d, _o, reference: &str| {
        pull_image(d, reference)?;
        let id = image_id(d, reference)?.unwrap_or_default();
        remember(d, repository(reference), &[&id])?;
        Ok(true.into())
    });
    register!(m, PUSH, false.into(), |d, _o, reference: &str| change(
        d,
        &["push", "--", reference],
        None
    ));
    register!(m, TAG, false.into(), |d, _o, source: &str, target: &str| {
        change(d, &["tag", "--", source, target], None)
    });
    register!(m, RMI, false.into(), |d, _o, reference: &str| change(
        d,
        &["rmi", "--", reference],
        None
    ));
    register!(m, IMAGE_ID, Dynamic::UNIT, |d, _o, reference: &str| Ok(
        or_unit(image_id(d, reference)?)
    ));
    register!(m, DIGEST, Dynamic::UNIT, |d, _o, reference: &str| {
        let digests = image_field(d, "{{join .RepoDigests \"\\n\"}}", reference)?;
        let repo = repository(reference);
        let digests = digests.unwrap_or_default();
        let digest = digests
            .lines()
            .find(|l| l.starts_with(&format!("{repo}@")))
            .or_else(|| digests.lines().next())
            .and_then(|l| l.split('@').nth(1))
            .map(str::to_string);
        Ok(or_unit(digest))
    });
    register!(m, IMAGES, Dynamic::UNIT, |d, _o, repo: &str| {
        let args = strings(&["images", "--format", "{{json .}}", "--", repo]);
        let r = d.run(&args, None, Shown::Query, false)?;
        Ok(d.json_lines(&r.stdout)?.into())
    });
    register!(m, DANGLING_IMAGES, Dynamic::UNIT, |d, _o, repo: &str| Ok(
        dangling_images(d, repo)?.into()
    ));
    register!(m, RUN, Dynamic::UNIT, |d, o, name: &str, image: &str| {
        let (args, stdin) = run_args(d, name, image, o)?;
        let r = d.run(&args, stdin, Shown::Change, false)?;
        Ok(r.stdout.trim().to_string().into())
    });
    register!(
        m,
        REPLACE,
        Dynamic::UNIT,
        |d, o, name: &str, reference: &str| Ok(replace(d, name, reference, o)?.into())
    );
    register!(m, PRUNE_IMAGES, Dynamic::UNIT, |d, o, repo: &str| Ok(
        prune_images(d, repo, o)?.into()
    ));
    register!(m, STOP, false.into(), |d, _o, name: &str| change(
        d,
        &["stop", "--", name],
        None
    ));
    register!(m, RM, false.into(), |d, _o, name: &str| change(
        d,
        &["rm", "--force", "--", name],
        None
    ));
    register!(m, EXISTS, false.into(), |d, _o, name: &str| Ok(
        container_exists(d, name)?.into()
    ));
    register!(m, PS, Dynamic::UNIT, |d, _o| {
        let args = strings(&["ps", "--all", "--format", "{{json .}}"]);
        let r = d.run(&args, None, Shown::Query, false)?;
        Ok(d.json_lines(&r.stdout)?.into())
    });
    register!(m, INSPECT, Dynamic::UNIT, |d, _o, name: &str| {
        let args = strings(&["inspect", "--format", "{{json .}}", "--", name]);
        let r = d.run(&args, None, Shown::Query, true)?;
        if !r.ok() && r.stderr.contains("No such") {
            return Ok(Dynamic::UNIT);
        }
        if !r.ok() {
            return Err(d.refused(&args, &r));
        }
        Ok(d.json_lines(&r.stdout)?.pop().unwrap_or(Dynamic::UNIT))
    });
    register!(m, LOGS, Dynamic::UNIT, |d, o, name: &str| {
        let mut args = strings(&["logs"]);
        for (key, value) in o.iter() {
            if matches!(key, "tail" | "since") {
                args.extend([format!("--{key}"), value.to_string()]);
            }
        }
        args.extend(strings(&["--", name]));
        Ok(d.run(&args, None, Shown::Loud, false)?.stdout.into())
    });
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use rhai::Map;
    use serde_json::Value;

    use super::super::scope::{CommandOptions, CommandResult, HostOps, Level, OpError, TaskScope};
    use super::*;

    /// A host that answers every command at once and remembers its `docker` lines.
    #[derive(Default)]
    struct Recorder {
        lines: Mutex<Vec<String>>,
    }

    impl HostOps for Recorder {
        fn command(
            &self,
            command: &str,
            _: &CommandOptions,
            _: bool,
        ) -> Result<CommandResult, OpError> {
            if command.starts_with("docker ") {
                self.lines.lock().unwrap().push(command.to_string());
            }
            // Enough for `replace` and `prune_images` to take every step.
            let stdout = if command.contains("{{.Image}}") {
                "sha256:old"
            } else if command.contains("{{.ID}}") {
                "sha256:a 3 t\nsha256:b 2 t\nsha256:c 1 t"
            } else if command.contains("--all --quiet") || command.contains("dangling=true") {
                ""
            } else if command.contains("{{json .}}") {
                "{}"
            } else {
                "sha256:new"
            };
            Ok(CommandResult {
                stdout: stdout.to_string(),
                ..CommandResult::default()
            })
        }
        fn message(&self, _: Level, _: &str) {}
        fn secret(&self, _: &str) -> Option<crate::secret::Secret> {
            None
        }
        fn dry_run(&self) -> bool {
            false
        }
        fn cancelled(&self) -> bool {
            false
        }
        fn peers(&self) -> usize {
            1
        }
        fn progress(&self, _: &str, _: u64, _: Option<crate::report::Total>) {}
        fn transferred(&self, _: u64) {}
        fn note(&self, _: &str) {}
        fn history(&self) -> Result<Vec<crate::history::HistoryEntry>, OpError> {
            Ok(Vec::new())
        }
        fn step_history(&self) -> Result<Vec<crate::history::HistoryEntry>, OpError> {
            Ok(Vec::new())
        }
        fn record(&self, _: &str, _: Value) {}
        fn recorded(&self, _: &str) -> Option<Value> {
            None
        }
    }

    /// The `docker` lines `script` sends to a host.
    fn lines(script: &str) -> Vec<String> {
        let ops = Arc::new(Recorder::default());
        let mut engine = super::super::engine::build_engine(
            std::path::Path::new("."),
            crate::cancel::Cancel::default(),
        );
        engine.set_default_tag(Dynamic::from(TaskScope {
            host: Dynamic::from(Map::new()),
            env: Dynamic::UNIT,
            vars: Dynamic::UNIT,
            ops: ops.clone(),
            once: Arc::default(),
            ships: Arc::new(crate::ship::Shipments::default()),
        }));
        engine.run(script).unwrap();
        let lines = ops.lines.lock().unwrap().clone();
        lines
    }

    #[test]
    fn names_and_references_are_never_read_as_flags() {
        for (script, expected) in [
            ("docker::push(\"-rf\")", "docker push -- -rf"),
            (
                "docker::tag(\"-rf\", \"--privileged\")",
                "docker tag -- -rf --privileged",
            ),
            ("docker::rmi(\"-rf\")", "docker rmi -- -rf"),
            ("docker::stop(\"-rf\")", "docker stop -- -rf"),
            ("docker::rm(\"-rf\")", "docker rm --force -- -rf"),
            ("docker::logs(\"-rf\")", "docker logs -- -rf"),
            (
                "docker::logs(\"-rf\", #{ tail: 5 })",
                "docker logs --tail 5 -- -rf",
            ),
            (
                "docker::inspect(\"-rf\")",
                "docker inspect --format '{{json .}}' -- -rf",
            ),
            (
                "docker::exists(\"-rf\")",
                "docker container inspect --format '{{.Id}}' -- -rf",
            ),
            (
                "docker::image_id(\"-rf\")",
                "docker image inspect --format '{{.Id}}' -- -rf",
            ),
            (
                "docker::digest(\"-rf\")",
                "docker image inspect --format '{{join .RepoDigests \"\\n\"}}' -- -rf",
            ),
            (
                "docker::images(\"-rf\")",
                "docker images --format '{{json .}}' -- -rf",
            ),
            (
                "docker::login(\"-rf\", \"user\", \"pw\")",
                "docker login --username user --password-stdin -- -rf",
            ),
            ("docker::logout(\"-rf\")", "docker logout -- -rf"),
            (
                "docker::run(\"-rf\", \"--privileged\", #{ command: [\"-x\"] })",
                "docker run --detach --name -rf -- --privileged -x",
            ),
        ] {
            assert_eq!(lines(script), [expected], "{script}");
        }
        assert_eq!(
            lines("docker::pull(\"-rf\")"),
            [
                "docker pull -- -rf",
                "docker image inspect --format '{{.Id}}' -- -rf"
            ]
        );
    }

    #[test]
    fn replace_and_prune_keep_names_and_references_after_the_separator() {
        assert_eq!(
            lines("docker::replace(\"-rf\", \"--privileged:2\")"),
            [
                "docker pull -- --privileged:2",
                "docker image inspect --format '{{.Id}}' -- --privileged:2",
                "docker container inspect --format '{{.Id}}' -- -rf",
                "docker container inspect --format '{{.Image}}' -- -rf",
                "docker stop -- -rf",
                "docker rm -- -rf",
                "docker image inspect --format '{{.Id}}' -- --privileged:previous",
                "docker tag -- sha256:old --privileged:previous",
                "docker run --detach --name -rf -- --privileged:2",
            ]
        );
        assert_eq!(
            lines("docker::prune_images(\"--privileged\", #{ keep: 2 })"),
            [
                "docker images --no-trunc --format '{{.ID}} {{.Tag}} {{.CreatedAt}}' -- --privileged",
                "docker ps --all --quiet --no-trunc",
                "docker rmi -- --privileged:1",
            ]
        );
    }

    #[test]
    fn repository_of_references() {
        assert_eq!(repository("app:1.2"), "app");
        assert_eq!(repository("127.0.0.1:5000/app:1.2"), "127.0.0.1:5000/app");
        assert_eq!(repository("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(
            repository("registry.example.com/team/app@sha256:abc"),
            "registry.example.com/team/app"
        );
    }
}
