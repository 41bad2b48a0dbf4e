//! The images of one app on a host: which are its, which to keep, which to remove.
//!
//! A deploy leaves images behind (the replaced one, tags that moved); `prune_images` keeps the
//! few a rollback needs and `dangling_images` finds the app's untagged ones, never another app's.
//! The classic image store remembers which repository an untagged image came from, the
//! containerd store does not, so the `docker::` functions note in the host's history which image
//! IDs were the app's while they were tagged ([`remember`]).

use rhai::Array;
use serde_json::Value;

use super::docker_call::{strings, DockerCall, Shown};
use super::spec::Options;
use super::toolkit::Fallible;

/// The ID of image `reference` on the host; `None` when the host does not have it.
pub fn image_id(d: &DockerCall, reference: &str) -> Fallible<Option<String>> {
    image_field(d, "{{.Id}}", reference)
}

/// `docker image inspect --format FORMAT` of one image, quietly; `None` when there is no such
/// image.
pub fn image_field(d: &DockerCall, format: &str, reference: &str) -> Fallible<Option<String>> {
    let r = d.run(
        &strings(&["image", "inspect", "--format", format, "--", reference]),
        None,
        Shown::Query,
        true,
    )?;
    // A dry run answers every query with nothing: no such image.
    Ok(Some(r.stdout.trim().to_string()).filter(|out| r.ok() && !out.is_empty()))
}

/// `repo:tag` or `repo@digest` -> `repo` (a registry port is not a tag).
pub fn repository(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    match without_digest.rfind(':') {
        Some(i) if !without_digest[i..].contains('/') => &without_digest[..i],
        _ => without_digest,
    }
}

/// Removes an image by ID when no tag and no container refers to it any more.
pub fn remove_if_unreferenced(d: &DockerCall, id: &str) -> Fallible<()> {
    if image_field(d, "{{len .RepoTags}}", id)?.as_deref() != Some("0") {
        return Ok(());
    }
    let users = d.run(
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
        d.run(&strings(&["rmi", "--", id]), None, Shown::Change, true)?;
    }
    Ok(())
}

/// Untagged images that were `repo`'s. The classic image store keeps the `repo@sha256:...`
/// digest of a pulled image after it loses its tag; the containerd image store keeps nothing
/// that names an untagged image's repository (it lists it as `<none>`, with no digest and no
/// trace of its tags), so there only the history tells: images that a `docker::` function saw
/// as `repo`'s while they were tagged ([`remember`]).
pub fn dangling_images(d: &DockerCall, repo: &str) -> Fallible<Array> {
    let listed = d.run(
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
    let known = remembered(d, repo)?;
    let mut found = Array::new();
    for id in ids {
        if found.iter().any(|f| f.to_string() == id) {
            continue;
        }
        let ours = known.iter().any(|k| k == id)
            || image_field(d, "{{join .RepoDigests \" \"}}", id)?
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
pub fn remember(d: &DockerCall, repo: &str, ids: &[&str]) -> Fallible<()> {
    let ops = d.scope()?.ops;
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
fn remembered(d: &DockerCall, repo: &str) -> Fallible<Vec<String>> {
    let lines = super::toolkit::host_history(d.ctx)?;
    let now = d.scope()?.ops.recorded(REMEMBERED);
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
pub fn prune_images(d: &DockerCall, repo: &str, o: &Options) -> Fallible<Array> {
    let keep = match o.get("keep") {
        None => 2,
        Some(v) => v
            .as_int()
            .ok()
            .filter(|k| *k >= 1)
            .ok_or_else(|| d.fail(o.bad("keep")))?,
    };
    let listed = d.run(
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
    let used_ids = d.run(
        &strings(&["ps", "--all", "--quiet", "--no-trunc"]),
        None,
        Shown::Query,
        false,
    )?;
    let mut in_use: Vec<String> = Vec::new();
    for id in used_ids.stdout.lines().filter(|l| !l.is_empty()) {
        let r = d.run(
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
        d.run(
            &strings(&["rmi", "--", &reference]),
            None,
            Shown::Change,
            false,
        )?;
        removed.push(reference.into());
    }
    let kept: Vec<&str> = kept_ids.iter().map(String::as_str).collect();
    remember(d, repo, &kept)?;
    Ok(removed)
}
