//! What rigs asks of the controller's docker engine: an image's description, and its
//! `docker save` archive.

use std::io::Read;
use std::process::{Command, Stdio};

use super::compress;

/// An image on the controller's engine.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub reference: String,
    pub id: String,
    pub diff_ids: Vec<String>,
    /// When the image was built: with the diff ids, what identifies it across image stores,
    /// whose image ids differ (the classic store's is the config digest, the containerd
    /// store's the manifest digest).
    pub created: String,
    pub repo_tags: Vec<String>,
    pub size: u64,
    /// The controller engine's version: which archive layout `docker save` writes.
    pub engine_version: String,
    /// Whether the controller's engine keeps images in containerd's store, whose `docker save`
    /// names layers by the digest of their (usually compressed) blobs.
    pub containerd_store: bool,
}

impl ImageInfo {
    /// Asks the controller's engine (`DOCKER_HOST` or the default socket) about `reference`.
    pub fn inspect(reference: &str) -> Result<ImageInfo, String> {
        let out = docker(&["image", "inspect", "--format", "{{json .}}", reference])?;
        let value: serde_json::Value = serde_json::from_str(out.trim())
            .map_err(|e| format!("unexpected output from docker image inspect: {e}"))?;
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let engine = docker(&[
            "info",
            "--format",
            "{{.ServerVersion}} {{json .DriverStatus}}",
        ])?;
        let (version, drivers) = engine.trim().split_once(' ').unwrap_or((engine.trim(), ""));
        Ok(ImageInfo {
            reference: reference.to_string(),
            id: value["Id"].as_str().unwrap_or_default().to_string(),
            diff_ids: strings(&value["RootFS"]["Layers"]),
            created: value["Created"].as_str().unwrap_or_default().to_string(),
            repo_tags: strings(&value["RepoTags"]),
            size: value["Size"].as_u64().unwrap_or(0),
            engine_version: version.trim().to_string(),
            containerd_store: drivers.contains("io.containerd.snapshotter"),
        })
    }

    /// Whether `docker save` writes an OCI layout (`index.json` and `blobs/`): Docker 25 and
    /// later. Older engines write only Docker's own format.
    pub fn saves_oci_layout(&self) -> bool {
        compress::engine_major(&self.engine_version) >= 25
    }

    /// Whether `docker save` names every layer by its diff id: from Docker 25 on with the
    /// classic store. Older engines name them by v1 id, and the containerd store by blob digest.
    pub(super) fn names_layers_by_diff_id(&self) -> bool {
        compress::engine_major(&self.engine_version) >= 25 && !self.containerd_store
    }
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker on the controller: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("docker failed")
            .trim()
            .to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `docker save REFERENCES...` on the controller, its archive on stdout.
pub(super) fn save(references: &[String]) -> Result<std::process::Child, String> {
    Command::new("docker")
        .arg("save")
        .args(references)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run docker save on the controller: {e}"))
}

/// Waits for `docker save`, turning its failure into a message.
pub(super) fn finish_save(mut child: std::process::Child, what: &str) -> Result<(), String> {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        // A save that was killed says nothing: then how it ended is all there is to tell.
        let why = match err.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
            Some(line) => line.to_string(),
            None => format!("{status}, with no message"),
        };
        return Err(format!(
            "docker save {what} failed on the controller: {why}"
        ));
    }
    Ok(())
}
