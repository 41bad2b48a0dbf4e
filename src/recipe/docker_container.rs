//! Containers: `docker run` from an options map, and the replacement of a running container.

use rhai::Map;

use super::docker_call::{strings, DockerCall, Shown};
use super::docker_images::{image_id, remember, remove_if_unreferenced, repository};
use super::spec::Options;
use super::toolkit::Fallible;

/// The arguments of `docker run` for the options (those of `docker run` only), and the env-file
/// text fed on stdin.
pub fn run_args(
    d: &DockerCall,
    name: &str,
    image: &str,
    o: &Options,
) -> Fallible<(Vec<String>, Option<String>)> {
    let mut args = strings(&["run", "--detach", "--name", name]);
    let mut env_file = String::new();
    let mut command: Vec<String> = Vec::new();
    let list = |key: &str| o.texts(key).unwrap_or_default();
    for (key, value) in o.iter() {
        match key {
            "publish" => {
                for p in list(key) {
                    args.extend(["--publish".to_string(), p]);
                }
            }
            "volumes" => {
                for v in list(key) {
                    args.extend(["--volume".to_string(), v]);
                }
            }
            "env" => {
                let env = o.map(key).ok_or_else(|| d.fail(o.bad(key)))?;
                for (k, v) in env {
                    let v = v.to_string();
                    if k.contains('=') || k.contains('\n') || v.contains('\n') {
                        return Err(d.fail(o.bad(key)));
                    }
                    env_file.push_str(&format!("{k}={v}\n"));
                }
            }
            "env_file" => args.extend(["--env-file".to_string(), value.to_string()]),
            "labels" => {
                for (k, v) in o.map(key).unwrap_or_default() {
                    args.extend(["--label".to_string(), format!("{k}={v}")]);
                }
            }
            "network" | "restart" | "user" | "workdir" | "hostname" | "memory" | "cpus"
            | "entrypoint" => args.extend([format!("--{key}"), value.to_string()]),
            "health_cmd" => args.extend(["--health-cmd".to_string(), value.to_string()]),
            "health_interval" => args.extend([
                "--health-interval".to_string(),
                super::spec::docker_duration(value),
            ]),
            "health_retries" => args.extend(["--health-retries".to_string(), value.to_string()]),
            "command" => command = list(key),
            "extra_args" => args.extend(list(key)),
            // `pull`, `sudo`, `allow_fail`: the call's, not the container's.
            _ => {}
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

pub fn container_exists(d: &DockerCall, name: &str) -> Fallible<bool> {
    let r = d.run(
        &strings(&["container", "inspect", "--format", "{{.Id}}", "--", name]),
        None,
        Shown::Query,
        true,
    )?;
    Ok(r.ok())
}

/// `docker pull -- reference` on the host, shown as a change.
pub fn pull_image(d: &DockerCall, reference: &str) -> Fallible<()> {
    d.run(
        &strings(&["pull", "--", reference]),
        None,
        Shown::Change,
        false,
    )?;
    Ok(())
}

/// Pulls `reference` (unless `pull: false`), replaces container `name` with one running it (same
/// options as given), keeps the replaced image as `:previous` and removes the one `:previous`
/// named before when nothing uses it any more.
pub fn replace(d: &DockerCall, name: &str, reference: &str, o: &Options) -> Fallible<Map> {
    let pull = o.flag_or("pull", true);
    if pull {
        pull_image(d, reference)?;
    }
    let dry_run = d.scope()?.ops.dry_run();
    let new_id = match image_id(d, reference)? {
        _ if dry_run => format!("<image of {reference}>"),
        Some(id) => id,
        None => return Err(d.fail(format!("image {reference} is not on the host"))),
    };
    let repo = repository(reference);
    let previous_tag = format!("{repo}:previous");
    // Rolling back to `:previous` moves that tag to the image being replaced, so the new
    // container is started from one of the image's other tags (or its ID), fixed before it moves.
    let run_ref = if reference == previous_tag {
        let tags = d.run(
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
    if container_exists(d, name)? {
        let r = d.run(
            &strings(&["container", "inspect", "--format", "{{.Image}}", "--", name]),
            None,
            Shown::Query,
            false,
        )?;
        old_id = r.stdout.trim().to_string();
        d.run(&strings(&["stop", "--", name]), None, Shown::Change, false)?;
        d.run(&strings(&["rm", "--", name]), None, Shown::Change, false)?;
    }
    let displaced = image_id(d, &previous_tag)?.unwrap_or_default();
    if !old_id.is_empty() && old_id != new_id {
        d.run(
            &strings(&["tag", "--", &old_id, &previous_tag]),
            None,
            Shown::Change,
            false,
        )?;
    }
    let (args, stdin) = run_args(d, name, &run_ref, o)?;
    d.run(&args, stdin, Shown::Change, false)?;
    // The image `:previous` pointed at before is now untagged unless something else holds it.
    if !displaced.is_empty() && displaced != old_id && displaced != new_id {
        remove_if_unreferenced(d, &displaced)?;
    }
    remember(d, repo, &[&new_id, &old_id])?;
    let mut out = Map::new();
    out.insert("image".into(), new_id.into());
    out.insert("previous".into(), old_id.into());
    Ok(out)
}
