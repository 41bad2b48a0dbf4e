//! The `docker::` module: the host's docker CLI, driven from recipes.
//!
//! Every function composes one `docker ...` line with each argument quoted by the one quoting
//! helper, and runs it on the task's host like `run` does (same connection, sudo-free). What the
//! output shows follows what a person needs ([`Shown`]): a deploy runs a dozen read-only queries
//! for each command that changes something, and docker prints container IDs and progress that
//! nobody reads, so queries and that chatter show with `-v` only, while every change shows its
//! command line. Secrets never go on a command line: the registry password reaches
//! `docker login` on stdin, and container environment values reach `docker run` through
//! `--env-file /dev/stdin`. Docker's own error message becomes the host's failure.

use rhai::{Array, Dynamic, Map, Module, NativeCallContext};
use serde_json::Value;

use super::api::{runtime, task_scope, Fallible};
use super::scope::{CommandOptions, CommandResult, OpError};
use crate::quote::quote;

/// How a `docker` line shows in the plain and pretty output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// A read-only query (`inspect`, `images`, `ps`): the line and its output with `-v` only.
    Query,
    /// A change: the line always, its output (container IDs, pull progress, `Untagged:` lines)
    /// with `-v` only. A failure still shows docker's message in the host's error.
    Change,
    /// A command whose output is what the user asked for (`docker logs`).
    Loud,
}

/// Runs `docker ARGS...` on the host, shown as `shown` says; failures become errors carrying
/// docker's message unless `allow_fail`.
fn docker(
    ctx: &NativeCallContext,
    func: &str,
    args: &[String],
    stdin: Option<String>,
    shown: Shown,
    allow_fail: bool,
) -> Fallible<CommandResult> {
    let scope = task_scope(ctx)?;
    let line = format!(
        "docker {}",
        args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
    );
    let options = CommandOptions {
        quiet: shown == Shown::Query,
        silent: shown == Shown::Query,
        chatter: shown == Shown::Change,
        allow_fail: true,
        stdin,
        ..CommandOptions::default()
    };
    let result = scope
        .ops
        .command(&line, &options, false)
        .map_err(|e| match e {
            OpError::Failed(m) => runtime(m, ctx.call_position()),
            OpError::Interrupted => Box::new(rhai::EvalAltResult::ErrorTerminated(
                Dynamic::from(super::api::INTERRUPTED),
                ctx.call_position(),
            )),
        })?;
    if !result.ok() && !allow_fail {
        let reason = result
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no message)")
            .trim()
            .to_string();
        return Err(runtime(
            format!(
                "docker::{func}: `{line}` failed (exit {}): {reason}",
                result.code
            ),
            ctx.call_position(),
        ));
    }
    Ok(result)
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

fn bad_option(
    ctx: &NativeCallContext,
    func: &str,
    key: &str,
    expected: &str,
) -> Box<rhai::EvalAltResult> {
    runtime(
        format!("docker::{func}: option `{key}` must be {expected}"),
        ctx.call_position(),
    )
}

fn as_list(ctx: &NativeCallContext, func: &str, key: &str, v: &Dynamic) -> Fallible<Vec<String>> {
    if let Some(a) = v.read_lock::<Array>() {
        return Ok(a.iter().map(|x| x.to_string()).collect());
    }
    if v.is_string() {
        return Ok(vec![v.to_string()]);
    }
    Err(bad_option(
        ctx,
        func,
        key,
        "a string or an array of strings",
    ))
}

fn as_map(ctx: &NativeCallContext, func: &str, key: &str, v: &Dynamic) -> Fallible<Map> {
    v.read_lock::<Map>()
        .map(|m| m.clone())
        .ok_or_else(|| bad_option(ctx, func, key, "a map"))
}

const RUN_OPTIONS: &str = "publish, env, env_file, volumes, network, restart, labels, command, entrypoint, \
                           user, workdir, health_cmd, health_interval, health_retries, memory, cpus, \
                           hostname, extra_args";

/// The arguments of `docker run` for `opts`, and the env-file text fed on stdin.
fn run_args(
    ctx: &NativeCallContext,
    name: &str,
    image: &str,
    opts: &Map,
) -> Fallible<(Vec<String>, Option<String>)> {
    let func = "run";
    let mut args = strings(&["run", "--detach", "--name", name]);
    let mut env_file = String::new();
    let mut command: Vec<String> = Vec::new();
    for (key, value) in opts {
        let key = key.as_str();
        match key {
            "publish" => {
                for p in as_list(ctx, func, key, value)? {
                    args.extend(["--publish".to_string(), p]);
                }
            }
            "volumes" => {
                for v in as_list(ctx, func, key, value)? {
                    args.extend(["--volume".to_string(), v]);
                }
            }
            "env" => {
                for (k, v) in as_map(ctx, func, key, value)? {
                    let v = v.to_string();
                    if k.contains('=') || k.contains('\n') || v.contains('\n') {
                        return Err(bad_option(
                            ctx,
                            func,
                            key,
                            "a map of names to one-line values",
                        ));
                    }
                    env_file.push_str(&format!("{k}={v}\n"));
                }
            }
            "env_file" => args.extend(["--env-file".to_string(), value.to_string()]),
            "labels" => {
                for (k, v) in as_map(ctx, func, key, value)? {
                    args.extend(["--label".to_string(), format!("{k}={v}")]);
                }
            }
            "network" | "restart" | "user" | "workdir" | "hostname" | "memory" | "cpus"
            | "entrypoint" => {
                let flag = match key {
                    "workdir" => "--workdir".to_string(),
                    other => format!("--{other}"),
                };
                args.extend([flag, value.to_string()]);
            }
            "health_cmd" => args.extend(["--health-cmd".to_string(), value.to_string()]),
            "health_interval" => args.extend(["--health-interval".to_string(), value.to_string()]),
            "health_retries" => args.extend(["--health-retries".to_string(), value.to_string()]),
            "command" => command = as_list(ctx, func, key, value)?,
            "extra_args" => args.extend(as_list(ctx, func, key, value)?),
            other => {
                return Err(runtime(
                    format!(
                        "docker::run: unknown option `{other}` (expected one of {RUN_OPTIONS})"
                    ),
                    ctx.call_position(),
                ))
            }
        }
    }
    let stdin = if env_file.is_empty() {
        None
    } else {
        args.extend(strings(&["--env-file", "/dev/stdin"]));
        Some(env_file)
    };
    args.extend(strings(&["--", image]));
    args.extend(command);
    Ok((args, stdin))
}

/// One JSON object per line (docker's `--format '{{json .}}'`) as an array of maps.
fn json_lines(ctx: &NativeCallContext, func: &str, text: &str) -> Fallible<Array> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .map(super::value::from_json)
                .map_err(|e| {
                    runtime(
                        format!("docker::{func}: unexpected output from docker: {e}"),
                        ctx.call_position(),
                    )
                })
        })
        .collect()
}

fn image_id(ctx: &NativeCallContext, reference: &str) -> Fallible<String> {
    Ok(image_field(ctx, "image_id", "{{.Id}}", reference)?.unwrap_or_default())
}

/// `docker image inspect --format FORMAT` of one image, quietly; `None` when there is no such
/// image.
fn image_field(
    ctx: &NativeCallContext,
    func: &str,
    format: &str,
    reference: &str,
) -> Fallible<Option<String>> {
    let r = docker(
        ctx,
        func,
        &strings(&["image", "inspect", "--format", format, "--", reference]),
        None,
        Shown::Query,
        true,
    )?;
    Ok(r.ok().then(|| r.stdout.trim().to_string()))
}

fn container_exists(ctx: &NativeCallContext, name: &str) -> Fallible<bool> {
    let r = docker(
        ctx,
        "exists",
        &strings(&["container", "inspect", "--format", "{{.Id}}", "--", name]),
        None,
        Shown::Query,
        true,
    )?;
    Ok(r.ok())
}

/// `repo:tag` or `repo@digest` -> `repo` (a registry port is not a tag).
pub fn repository(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    match without_digest.rfind(':') {
        Some(i) if !without_digest[i..].contains('/') => &without_digest[..i],
        _ => without_digest,
    }
}

fn replace(ctx: &NativeCallContext, name: &str, reference: &str, opts: &Map) -> Fallible<Map> {
    let mut run_opts = opts.clone();
    let pull = match run_opts.remove("pull") {
        Some(v) => v
            .as_bool()
            .map_err(|_| bad_option(ctx, "replace", "pull", "true or false"))?,
        None => true,
    };
    if pull {
        docker(
            ctx,
            "replace",
            &strings(&["pull", "--", reference]),
            None,
            Shown::Change,
            false,
        )?;
    }
    let dry_run = task_scope(ctx)?.ops.dry_run();
    let mut new_id = image_id(ctx, reference)?;
    if dry_run {
        new_id = format!("<image of {reference}>");
    }
    if new_id.is_empty() {
        return Err(runtime(
            format!("docker::replace: image {reference} is not on the host"),
            ctx.call_position(),
        ));
    }
    let repo = repository(reference);
    let previous_tag = format!("{repo}:previous");
    // Rolling back to `:previous` moves that tag to the image being replaced, so the new
    // container is started from one of the image's other tags (or its ID), fixed before it moves.
    let run_ref = if reference == previous_tag {
        let tags = docker(
            ctx,
            "replace",
            &strings(&[
                "image",
                "inspect",
                "--format",
                "{{join .RepoTags \" \"}}",
                "--",
                &new_id,
            ]),
            None,
            Shown::Query,
            false,
        )?;
        tags.stdout
            .split_whitespace()
            .find(|t| *t != previous_tag && repository(t) == repo)
            .map(str::to_string)
            .unwrap_or_else(|| new_id.clone())
    } else {
        reference.to_string()
    };
    let mut old_id = String::new();
    if container_exists(ctx, name)? {
        let r = docker(
            ctx,
            "replace",
            &strings(&["container", "inspect", "--format", "{{.Image}}", "--", name]),
            None,
            Shown::Query,
            false,
        )?;
        old_id = r.stdout.trim().to_string();
        docker(
            ctx,
            "replace",
            &strings(&["stop", "--", name]),
            None,
            Shown::Change,
            false,
        )?;
        docker(
            ctx,
            "replace",
            &strings(&["rm", "--", name]),
            None,
            Shown::Change,
            false,
        )?;
    }
    let displaced = image_id(ctx, &previous_tag)?;
    if !old_id.is_empty() && old_id != new_id {
        docker(
            ctx,
            "replace",
            &strings(&["tag", "--", &old_id, &previous_tag]),
            None,
            Shown::Change,
            false,
        )?;
    }
    let (args, stdin) = run_args(ctx, name, &run_ref, &run_opts)?;
    docker(ctx, "replace", &args, stdin, Shown::Change, false)?;
    // The image `:previous` pointed at before is now untagged unless something else holds it.
    if !displaced.is_empty() && displaced != old_id && displaced != new_id {
        remove_if_unreferenced(ctx, &displaced)?;
    }
    remember(ctx, repo, &[&new_id, &old_id])?;
    let mut out = Map::new();
    out.insert("image".into(), new_id.into());
    out.insert("previous".into(), old_id.into());
    Ok(out)
}

/// Removes an image by ID when no tag and no container refers to it any more.
fn remove_if_unreferenced(ctx: &NativeCallContext, id: &str) -> Fallible<()> {
    if image_field(ctx, "replace", "{{len .RepoTags}}", id)?.as_deref() != Some("0") {
        return Ok(());
    }
    let users = docker(
        ctx,
        "replace",
        &strings(&[
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("ancestor={id}"),
        ]),
        None,
        Shown::Query,
        false,
    )?;
    if users.stdout.trim().is_empty() {
        docker(
            ctx,
            "replace",
            &strings(&["rmi", "--", id]),
            None,
            Shown::Change,
            true,
        )?;
    }
    Ok(())
}

/// Untagged images that were `repo`'s. The classic image store keeps the `repo@sha256:...`
/// digest of a pulled image after it loses its tag; the containerd image store keeps nothing
/// that names an untagged image's repository (it lists it as `<none>`, with no digest and no
/// trace of its tags), so there only the history tells: images that a `docker::` function saw
/// as `repo`'s while they were tagged ([`remember`]).
fn dangling_images(ctx: &NativeCallContext, repo: &str) -> Fallible<Array> {
    let listed = docker(
        ctx,
        "dangling_images",
        &strings(&[
            "images",
            "--filter",
            "dangling=true",
            "--quiet",
            "--no-trunc",
        ]),
        None,
        Shown::Query,
        false,
    )?;
    let ids: Vec<&str> = listed
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if ids.is_empty() {
        return Ok(Array::new());
    }
    let known = remembered(ctx, repo)?;
    let mut found = Array::new();
    for id in ids {
        if found.iter().any(|f| f.to_string() == id) {
            continue;
        }
        let ours = known.iter().any(|k| k == id)
            || image_field(ctx, "dangling_images", "{{join .RepoDigests \" \"}}", id)?
                .unwrap_or_default()
                .split_whitespace()
                .any(|d| repository(d) == repo);
        if ours {
            found.push(id.into());
        }
    }
    Ok(found)
}

/// The history field where `docker::` functions note which image IDs were which repository's:
/// `{"REPO": ["sha256:...", ...]}`.
const REMEMBERED: &str = "docker_images";

/// Notes in this task's history line that `ids` are images of `repo` on this host, so that
/// [`dangling_images`] still knows them as `repo`'s after they lose their tags.
fn remember(ctx: &NativeCallContext, repo: &str, ids: &[&str]) -> Fallible<()> {
    let ops = task_scope(ctx)?.ops;
    if ops.dry_run() {
        return Ok(());
    }
    let mut all = match ops.recorded(REMEMBERED) {
        Some(Value::Object(all)) => all,
        _ => serde_json::Map::new(),
    };
    let mut list = match all.remove(repo) {
        Some(Value::Array(list)) => list,
        _ => Vec::new(),
    };
    for id in ids {
        if !id.is_empty() && !list.iter().any(|known| known == id) {
            list.push((*id).into());
        }
    }
    all.insert(repo.to_string(), list.into());
    ops.record(REMEMBERED, Value::Object(all));
    Ok(())
}

/// The image IDs this host's history, and this task so far, remember as `repo`'s.
fn remembered(ctx: &NativeCallContext, repo: &str) -> Fallible<Vec<String>> {
    let lines = super::api::host_history(ctx)?;
    let now = task_scope(ctx)?.ops.recorded(REMEMBERED);
    Ok(lines
        .iter()
        .filter_map(|line| line.get(REMEMBERED))
        .chain(now.as_ref())
        .filter_map(|field| field.get(repo))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect())
}

/// Removes all but the `keep` newest images of `repo`, never one a container uses or
/// `:previous`, and remembers the ones it leaves as `repo`'s.
fn prune_images(ctx: &NativeCallContext, repo: &str, opts: &Map) -> Fallible<Array> {
    let keep = match opts.get("keep") {
        Some(v) => v
            .as_int()
            .map_err(|_| bad_option(ctx, "prune_images", "keep", "a number"))?,
        None => 2,
    };
    if keep < 1 {
        return Err(bad_option(ctx, "prune_images", "keep", "at least 1"));
    }
    for k in opts.keys() {
        if k.as_str() != "keep" {
            return Err(runtime(
                format!("docker::prune_images: unknown option `{k}` (expected keep)"),
                ctx.call_position(),
            ));
        }
    }
    let listed = docker(
        ctx,
        "prune_images",
        &strings(&[
            "images",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Tag}} {{.CreatedAt}}",
            "--",
            repo,
        ]),
        None,
        Shown::Query,
        false,
    )?;
    let used_ids = docker(
        ctx,
        "prune_images",
        &strings(&["ps", "--all", "--quiet", "--no-trunc"]),
        None,
        Shown::Query,
        false,
    )?;
    let mut in_use: Vec<String> = Vec::new();
    for id in used_ids.stdout.lines().filter(|l| !l.is_empty()) {
        let r = docker(
            ctx,
            "prune_images",
            &strings(&["container", "inspect", "--format", "{{.Image}}", "--", id]),
            None,
            Shown::Query,
            true,
        )?;
        in_use.push(r.stdout.trim().to_string());
    }
    // The images in use and `:previous` are kept first and count towards `keep`; the newest of
    // the others (`docker images` lists newest first) fill it up. Counted in list order instead,
    // an image newer than the running one would take a place and stay as a third.
    let mut kept_ids: Vec<String> = Vec::new();
    for line in listed.stdout.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(id), Some(tag)) = (parts.next(), parts.next()) else {
            continue;
        };
        let protected = tag == "previous" || in_use.iter().any(|u| u == id);
        if protected && !kept_ids.iter().any(|k| k == id) {
            kept_ids.push(id.to_string());
        }
    }
    let mut removed = Array::new();
    for line in listed.stdout.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(id), Some(tag)) = (parts.next(), parts.next()) else {
            continue;
        };
        let protected = tag == "previous" || in_use.iter().any(|u| u == id);
        if protected || kept_ids.contains(&id.to_string()) || (kept_ids.len() as i64) < keep {
            if !kept_ids.contains(&id.to_string()) {
                kept_ids.push(id.to_string());
            }
            continue;
        }
        let reference = if tag == "<none>" {
            id.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        docker(
            ctx,
            "prune_images",
            &strings(&["rmi", "--", &reference]),
            None,
            Shown::Change,
            false,
        )?;
        removed.push(reference.into());
    }
    let kept: Vec<&str> = kept_ids.iter().map(String::as_str).collect();
    remember(ctx, repo, &kept)?;
    Ok(removed)
}

pub fn module() -> Module {
    let mut m = Module::new();
    super::health::register(&mut m);
    super::ship::register(&mut m);
    m.set_native_fn(
        "login",
        |ctx: NativeCallContext, registry: &str, user: &str, password: &str| {
            docker(
                &ctx,
                "login",
                &strings(&[
                    "login",
                    "--username",
                    user,
                    "--password-stdin",
                    "--",
                    registry,
                ]),
                Some(password.to_string()),
                Shown::Change,
                false,
            )
            .map(|_| ())
        },
    );
    m.set_native_fn("logout", |ctx: NativeCallContext, registry: &str| {
        docker(
            &ctx,
            "logout",
            &strings(&["logout", "--", registry]),
            None,
            Shown::Change,
            false,
        )
        .map(|_| ())
    });
    m.set_native_fn("pull", |ctx: NativeCallContext, reference: &str| {
        docker(
            &ctx,
            "pull",
            &strings(&["pull", "--", reference]),
            None,
            Shown::Change,
            false,
        )?;
        let id = image_id(&ctx, reference)?;
        remember(&ctx, repository(reference), &[&id])
    });
    m.set_native_fn("push", |ctx: NativeCallContext, reference: &str| {
        docker(
            &ctx,
            "push",
            &strings(&["push", "--", reference]),
            None,
            Shown::Change,
            false,
        )
        .map(|_| ())
    });
    m.set_native_fn(
        "tag",
        |ctx: NativeCallContext, source: &str, target: &str| {
            docker(
                &ctx,
                "tag",
                &strings(&["tag", "--", source, target]),
                None,
                Shown::Change,
                false,
            )
            .map(|_| ())
        },
    );
    m.set_native_fn("rmi", |ctx: NativeCallContext, reference: &str| {
        docker(
            &ctx,
            "rmi",
            &strings(&["rmi", "--", reference]),
            None,
            Shown::Change,
            false,
        )
        .map(|_| ())
    });
    m.set_native_fn("image_id", |ctx: NativeCallContext, reference: &str| {
        image_id(&ctx, reference)
    });
    m.set_native_fn("digest", |ctx: NativeCallContext, reference: &str| {
        let r = docker(
            &ctx,
            "digest",
            &strings(&[
                "image",
                "inspect",
                "--format",
                "{{join .RepoDigests \"\\n\"}}",
                "--",
                reference,
            ]),
            None,
            Shown::Query,
            true,
        )?;
        let repo = repository(reference);
        let digest = r
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{repo}@")))
            .or_else(|| r.stdout.lines().next())
            .and_then(|l| l.split('@').nth(1))
            .unwrap_or("")
            .to_string();
        Ok(digest)
    });
    m.set_native_fn("images", |ctx: NativeCallContext, repo: &str| {
        let r = docker(
            &ctx,
            "images",
            &strings(&["images", "--format", "{{json .}}", "--", repo]),
            None,
            Shown::Query,
            false,
        )?;
        json_lines(&ctx, "images", &r.stdout)
    });
    m.set_native_fn("run", |ctx: NativeCallContext, name: &str, image: &str| {
        let (args, stdin) = run_args(&ctx, name, image, &Map::new())?;
        docker(&ctx, "run", &args, stdin, Shown::Change, false).map(|r| r.stdout.trim().to_string())
    });
    m.set_native_fn(
        "run",
        |ctx: NativeCallContext, name: &str, image: &str, opts: Map| {
            let (args, stdin) = run_args(&ctx, name, image, &opts)?;
            docker(&ctx, "run", &args, stdin, Shown::Change, false)
                .map(|r| r.stdout.trim().to_string())
        },
    );
    m.set_native_fn("dangling_images", |ctx: NativeCallContext, repo: &str| {
        dangling_images(&ctx, repo)
    });
    m.set_native_fn("stop", |ctx: NativeCallContext, name: &str| {
        docker(
            &ctx,
            "stop",
            &strings(&["stop", "--", name]),
            None,
            Shown::Change,
            false,
        )
        .map(|_| ())
    });
    m.set_native_fn("rm", |ctx: NativeCallContext, name: &str| {
        docker(
            &ctx,
            "rm",
            &strings(&["rm", "--force", "--", name]),
            None,
            Shown::Change,
            false,
        )
        .map(|_| ())
    });
    m.set_native_fn("exists", |ctx: NativeCallContext, name: &str| {
        container_exists(&ctx, name)
    });
    m.set_native_fn("ps", |ctx: NativeCallContext| {
        let r = docker(
            &ctx,
            "ps",
            &strings(&["ps", "--all", "--format", "{{json .}}"]),
            None,
            Shown::Query,
            false,
        )?;
        json_lines(&ctx, "ps", &r.stdout)
    });
    m.set_native_fn("inspect", |ctx: NativeCallContext, name: &str| {
        let r = docker(
            &ctx,
            "inspect",
            &strings(&["inspect", "--format", "{{json .}}", "--", name]),
            None,
            Shown::Query,
            false,
        )?;
        let mut all = json_lines(&ctx, "inspect", &r.stdout)?;
        Ok(all.pop().unwrap_or(Dynamic::UNIT))
    });
    m.set_native_fn("logs", |ctx: NativeCallContext, name: &str| {
        docker(
            &ctx,
            "logs",
            &strings(&["logs", "--", name]),
            None,
            Shown::Loud,
            false,
        )
        .map(|r| r.stdout)
    });
    m.set_native_fn("logs", |ctx: NativeCallContext, name: &str, opts: Map| {
        let mut args = strings(&["logs"]);
        for (k, v) in &opts {
            match k.as_str() {
                "tail" => args.extend(["--tail".to_string(), v.to_string()]),
                "since" => args.extend(["--since".to_string(), v.to_string()]),
                other => {
                    return Err(runtime(
                        format!("docker::logs: unknown option `{other}` (expected tail, since)"),
                        ctx.call_position(),
                    ))
                }
            }
        }
        args.extend(strings(&["--", name]));
        docker(&ctx, "logs", &args, None, Shown::Loud, false).map(|r| r.stdout)
    });
    m.set_native_fn(
        "replace",
        |ctx: NativeCallContext, name: &str, reference: &str| {
            replace(&ctx, name, reference, &Map::new())
        },
    );
    m.set_native_fn(
        "replace",
        |ctx: NativeCallContext, name: &str, reference: &str, opts: Map| {
            replace(&ctx, name, reference, &opts)
        },
    );
    m.set_native_fn("prune_images", |ctx: NativeCallContext, repo: &str| {
        prune_images(&ctx, repo, &Map::new())
    });
    m.set_native_fn(
        "prune_images",
        |ctx: NativeCallContext, repo: &str, opts: Map| prune_images(&ctx, repo, &opts),
    );
    m
}

/// The `registry::` module: registry operations that run on the controller, not on a host.
pub fn registry_module() -> Module {
    fn copy(
        ctx: &NativeCallContext,
        registry: &str,
        repo: &str,
        from: &str,
        to: &str,
        opts: &Map,
    ) -> Fallible<Map> {
        let mut user = None;
        let mut password = None;
        for (k, v) in opts {
            match k.as_str() {
                "user" => user = Some(v.to_string()),
                "password" => password = Some(crate::secret::Secret::new(v.to_string())),
                other => {
                    return Err(runtime(
                        format!(
                        "registry::copy_tag: unknown option `{other}` (expected user, password)"
                    ),
                        ctx.call_position(),
                    ))
                }
            }
        }
        let credentials = match (user, password) {
            (Some(user), Some(password)) => Some(crate::registry::Credentials { user, password }),
            (None, None) => None,
            _ => {
                return Err(runtime(
                    "registry::copy_tag: give both user and password, or neither",
                    ctx.call_position(),
                ))
            }
        };
        let scope = task_scope(ctx)?;
        let line = format!("registry {registry}: tag {repo}:{from} as {repo}:{to} (manifest copy)");
        scope.ops.message(super::scope::Level::Info, &line);
        if scope.ops.dry_run() {
            let mut m = Map::new();
            m.insert("digest".into(), "".into());
            m.insert("media_type".into(), "".into());
            return Ok(m);
        }
        let mut client = crate::registry::Client::new(registry, credentials);
        let copied = client
            .copy_tag(repo, from, to)
            .map_err(|e| runtime(format!("registry::copy_tag: {e}"), ctx.call_position()))?;
        let mut m = Map::new();
        m.insert("digest".into(), copied.digest.into());
        m.insert("media_type".into(), copied.media_type.into());
        Ok(m)
    }
    let mut m = Module::new();
    m.set_native_fn(
        "copy_tag",
        |ctx: NativeCallContext, registry: &str, repo: &str, from: &str, to: &str| {
            copy(&ctx, registry, repo, from, to, &Map::new())
        },
    );
    m.set_native_fn(
        "copy_tag",
        |ctx: NativeCallContext, registry: &str, repo: &str, from: &str, to: &str, opts: Map| {
            copy(&ctx, registry, repo, from, to, &opts)
        },
    );
    m
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::super::scope::{HostOps, Level, TaskScope};
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
        fn step_history(&self) -> Result<Vec<Value>, OpError> {
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
        let mut engine = super::super::api::build_engine(
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
