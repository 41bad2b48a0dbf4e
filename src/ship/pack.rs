//! `rigs bundle create`: images from the controller's engine into a bundle file.
//!
//! The same path as a ship, ending in a file instead of hosts: one `docker save` of all images
//! (so layers they share are stored once), compressed on every core, written straight into the
//! bundle. The archive is stored complete, so `tar -xOf BUNDLE image.tar.gz | docker load`
//! works without rigs, but its end-of-archive marker is a compressed member of its own whose
//! offset the manifest records: rigs ships the body and lets each host append the marker only
//! after verifying what it received.
//!
//! With `--compose`, the bundle also carries the compose project, and its images are every
//! service's image. Which image a service runs can depend on interpolation (`image:
//! ${REGISTRY}/app:${TAG}`), so rigs asks the controller's own Docker Compose (`config`) rather
//! than guessing, with exactly the `--set` variables: no `.env` file and none of the caller's
//! environment, because the deploy from the bundle interpolates with those variables alone, and
//! the images bundled must be the ones it will ask for.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::archive::{self, LayerNames, Output};
use super::bundle::{
    build_compose_tar, BundleCompose, BundleImage, BundleManifest, BundleWriter, ComposePart,
    ProjectFileData,
};
use super::compress::{self, Compression};
use super::image_info::{finish_save, save};
use super::ImageInfo;

/// Writes `references` (images on the controller's engine) into a new bundle at `path`, and with
/// `compose`, that project and its services' images too.
pub fn create(
    path: &Path,
    references: &[String],
    compression: Compression,
    compose: Option<PreparedCompose>,
) -> Result<BundleManifest, String> {
    let (part, references) = match compose {
        Some(prepared) => {
            let mut all = prepared.images;
            for r in references {
                if !all.contains(r) {
                    all.push(r.clone());
                }
            }
            (Some(prepared.part), all)
        }
        None => (None, references.to_vec()),
    };
    let references = &references[..];
    if references.is_empty() {
        return Err("there is no image to put into the bundle".into());
    }
    let mut images = Vec::new();
    for r in references {
        let info = ImageInfo::inspect(r).map_err(|e| {
            format!("`{r}` is not an image on the controller: {e} (build, pull or load it first)")
        })?;
        images.push(BundleImage {
            reference: r.clone(),
            id: info.id,
            repo_tags: info.repo_tags,
            diff_ids: info.diff_ids,
            size: info.size,
            created: info.created,
        });
    }
    let writer = BundleWriter::create(path, compression).map_err(|e| e.to_string())?;
    let mut child = save(references)?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut encoder = compression.encoder(writer, compress::threads(), None);
    let none = HashSet::new();
    let passed = {
        let mut outputs = [Output::new(&none, &mut encoder)];
        let passed = archive::pass(stdout, &LayerNames::default(), &mut outputs, false);
        match (&passed, outputs[0].stats.error.take()) {
            (Ok(_), Some(e)) => Err(format!("writing {}: {e}", path.display())),
            _ => passed.map_err(|e| format!("reading docker save output: {e}")),
        }
    };
    finish_save(child, &references.join(" "))?;
    passed?;
    let (mut writer, _) = encoder
        .finish()
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    writer.mark_body_end();
    writer
        .write_all(&compression.trailer())
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    writer.finish_with(images, part).map_err(|e| e.to_string())
}

/// A compose project read and resolved for a bundle: what goes into it, and the images its
/// services run, in service order.
pub struct PreparedCompose {
    pub part: ComposePart,
    pub images: Vec<String>,
}

/// Why a compose project cannot go into a bundle.
#[derive(Debug)]
pub enum ComposeError {
    /// Something in the project or the `--set` values: the user fixes the files or the command.
    Project(String),
    /// The controller cannot resolve the project: no Docker Compose v2 there, or it failed.
    Controller(String),
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComposeError::Project(m) | ComposeError::Controller(m) => f.write_str(m),
        }
    }
}

/// The name Compose is given for the project while resolving it; it names nothing that is made.
const RESOLVE_PROJECT: &str = "rigs-bundle";

/// Variables the controller's `docker compose` keeps, so it finds its client configuration,
/// plugins and engine; everything else of the caller's environment is left out.
const KEPT_ENV: [&str; 9] = [
    "PATH",
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "XDG_RUNTIME_DIR",
    "TMPDIR",
];

/// Reads the compose project `files` (paths as the user gave them, from the current folder) and
/// asks the controller's Docker Compose, with `variables` as the only interpolation values,
/// which image each service runs.
pub fn prepare_compose(
    files: &[String],
    variables: &[(String, String)],
) -> Result<PreparedCompose, ComposeError> {
    let project = crate::compose::project_files::load(Path::new("."), files)
        .map_err(ComposeError::Project)?;
    for (key, _) in variables {
        if !crate::compose::env_file::valid_key(key) {
            return Err(ComposeError::Project(format!(
                "--set {key}=...: `{key}` cannot be a compose interpolation variable: use \
                 letters, digits and `_`, not starting with a digit"
            )));
        }
    }
    check_controller_compose()?;
    let services = resolve_images(&project, variables)?;
    let mut images: Vec<String> = Vec::new();
    for name in &project.services {
        if let Some(image) = services.get(name) {
            if !images.contains(image) {
                images.push(image.clone());
            }
        }
    }
    for image in services.values() {
        if !images.contains(image) {
            images.push(image.clone());
        }
    }
    let mut data = Vec::new();
    for file in &project.files {
        let bytes = std::fs::read(&file.local).map_err(|e| {
            ComposeError::Project(format!("cannot read {}: {e}", file.local.display()))
        })?;
        data.push(ProjectFileData {
            name: file.name.clone(),
            data: bytes,
            private: file.private,
        });
    }
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (tar, project_files) = build_compose_tar(&data, mtime).map_err(ComposeError::Project)?;
    Ok(PreparedCompose {
        part: ComposePart {
            manifest: BundleCompose {
                project_files,
                compose_files: project.compose_names,
                variables: variables.iter().cloned().collect(),
                services,
            },
            tar,
        },
        images,
    })
}

/// Runs the same probe as on hosts, here, so a missing plugin gets the same advice.
fn check_controller_compose() -> Result<(), ComposeError> {
    let out = Command::new("sh")
        .args(["-c", crate::compose::plugin::PROBE])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ComposeError::Controller(format!("cannot run sh on this machine: {e}")))?;
    crate::compose::plugin::judge(
        out.status.code().map_or(-1, i64::from),
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    )
    .map(|_| ())
    .map_err(|m| {
        let m = m
            .replace("this host's", "this machine's")
            .replace("this host", "this machine");
        ComposeError::Controller(format!(
            "--compose asks this machine's Docker Compose for the services' images, but {m}"
        ))
    })
}

/// `docker compose config` of the project with only `variables`: each service's image.
fn resolve_images(
    project: &crate::compose::project_files::ComposeProject,
    variables: &[(String, String)],
) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut command = Command::new("docker");
    command
        .env_clear()
        .envs(
            KEPT_ENV
                .iter()
                .filter_map(|k| Some((k, std::env::var_os(k)?))),
        )
        .envs(variables.iter().map(|(k, v)| (k, v)))
        .args(["compose", "-p", RESOLVE_PROJECT, "--env-file", "/dev/null"])
        .args(["--profile", "*"]);
    for name in &project.compose_names {
        let local = project
            .files
            .iter()
            .find(|f| &f.name == name)
            .map(|f| f.local.clone())
            .unwrap_or_else(|| name.into());
        command.arg("-f").arg(local);
    }
    let out = command
        .args(["config", "--format", "json"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ComposeError::Controller(format!("cannot run docker compose: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let unset = unset_variables(&stderr);
    if !unset.is_empty() {
        let sets: Vec<String> = unset.iter().map(|v| format!("--set {v}=VALUE")).collect();
        return Err(ComposeError::Project(format!(
            "the compose files use {} but no value was given: add {} (a bundle's compose \
             project is interpolated with the --set values only, not .env or the environment)",
            unset
                .iter()
                .map(|v| format!("${{{v}}}"))
                .collect::<Vec<_>>()
                .join(", "),
            sets.join(" ")
        )));
    }
    if !out.status.success() {
        return Err(ComposeError::Project(format!(
            "docker compose config refused the project: {}",
            stderr.trim()
        )));
    }
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        ComposeError::Controller(format!(
            "docker compose config printed something that is not JSON: {e}"
        ))
    })?;
    let Some(services) = config.get("services").and_then(|s| s.as_object()) else {
        return Err(ComposeError::Controller(
            "docker compose config printed no services".into(),
        ));
    };
    let mut images = BTreeMap::new();
    for (name, service) in services {
        match service.get("image").and_then(|i| i.as_str()) {
            Some(image) if !image.trim().is_empty() => {
                images.insert(name.clone(), image.to_string());
            }
            _ => {
                return Err(ComposeError::Project(format!(
                    "service `{name}` has no image once interpolated: give it `image:` (rigs \
                     bundles images, it does not build them)"
                )))
            }
        }
    }
    Ok(images)
}

/// The variables Compose warned were not set ("The \"TAG\" variable is not set. Defaulting to
/// a blank string."), each once, in order.
fn unset_variables(stderr: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let Some(end) = line.find(" variable is not set") else {
            continue;
        };
        let Some(start) = line[..end].rfind("The ") else {
            continue;
        };
        let name = line[start + 4..end].trim_matches(|c| c == '"' || c == '\\');
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_from_compose_warnings() {
        let stderr = "time=\"2026-12-03T09:51:41Z\" level=warning msg=\"The \\\"TAG\\\" variable is not set. Defaulting to a blank string.\"\n\
                      WARN[0000] The \"REGISTRY\" variable is not set. Defaulting to a blank string.\n\
                      time=\"x\" level=warning msg=\"The \\\"TAG\\\" variable is not set. Defaulting to a blank string.\"\n\
                      something else\n";
        assert_eq!(unset_variables(stderr), ["TAG", "REGISTRY"]);
        assert!(unset_variables("").is_empty());
    }
}
