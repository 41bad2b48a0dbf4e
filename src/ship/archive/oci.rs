//! The OCI layout an old-format archive is rewritten as, for the containerd image store.

use std::collections::HashMap;
use std::io;

use sha2::{Digest, Sha256};

use super::{bad, is_digest, LayerNames};

/// What an old-format archive entry becomes in the OCI layout rewrite.
pub(super) enum OciEntry {
    /// A layer or the config: the same bytes as `blobs/sha256/<hex>`.
    Blob(String),
    /// Not part of the layout (v1 metadata, `repositories`, folders).
    Drop,
    /// `manifest.json`: read to write the layout's own manifest, index and manifest.json.
    Manifest,
}

pub(super) fn oci_entry(path: &str, layer: Option<&String>) -> OciEntry {
    if path == "manifest.json" {
        return OciEntry::Manifest;
    }
    if let (Some(d), true) = (layer, path.ends_with("/layer.tar")) {
        if is_digest(d) {
            return OciEntry::Blob(format!("blobs/sha256/{}", d.trim_start_matches("sha256:")));
        }
    }
    // The config: `<sha256 of its bytes>.json` at the top.
    match path.strip_suffix(".json") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            OciEntry::Blob(format!("blobs/sha256/{hex}"))
        }
        _ => OciEntry::Drop,
    }
}

/// The entries that end an OCI layout rewritten from an old-format archive: each image's OCI
/// manifest blob, `index.json` (naming the images, which is what the containerd store reads),
/// `oci-layout` and Docker's `manifest.json`.
pub(super) fn oci_tail(
    manifest: &[u8],
    names: &LayerNames,
    sizes: &HashMap<String, u64>,
) -> io::Result<Vec<(String, Vec<u8>)>> {
    use serde_json::{json, Value};
    let images: Vec<Value> = serde_json::from_slice(manifest)
        .map_err(|e| bad(format!("the image archive's manifest.json: {e}")))?;
    // A layer two images share is stored under one entry; the other's entry is a link.
    let layer_sizes: HashMap<&String, u64> = sizes
        .iter()
        .filter_map(|(path, size)| Some((names.by_path.get(path)?, *size)))
        .collect();
    let mut entries = Vec::new();
    let mut index = Vec::new();
    let mut docker = Vec::new();
    for image in &images {
        let config = image["Config"].as_str().unwrap_or("");
        let config_hex = config.trim_end_matches(".json");
        let layers: Vec<&str> = image["Layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut descriptors = Vec::new();
        let mut paths = Vec::new();
        for l in &layers {
            let diff_id = names
                .by_path
                .get(*l)
                .ok_or_else(|| bad(format!("no diff id known for {l}")))?;
            descriptors.push(json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": diff_id,
                "size": sizes
                    .get(*l)
                    .or_else(|| layer_sizes.get(diff_id))
                    .copied()
                    .unwrap_or(0),
            }));
            paths.push(format!(
                "blobs/sha256/{}",
                diff_id.trim_start_matches("sha256:")
            ));
        }
        let oci = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": format!("sha256:{config_hex}"),
                "size": sizes.get(config).copied().unwrap_or(0),
            },
            "layers": descriptors,
        })
        .to_string()
        .into_bytes();
        let digest = crate::hex::encode(&Sha256::digest(&oci));
        let tags: Vec<&str> = image["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for tag in tags.iter().copied().chain(tags.is_empty().then_some("")) {
            let mut descriptor = json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{digest}"),
                "size": oci.len(),
            });
            if !tag.is_empty() {
                descriptor["annotations"] = json!({
                    "io.containerd.image.name": containerd_name(tag),
                    "org.opencontainers.image.ref.name": tag.rsplit_once(':').map_or(tag, |t| t.1),
                });
            }
            index.push(descriptor);
        }
        docker.push(json!({
            "Config": format!("blobs/sha256/{config_hex}"),
            "RepoTags": tags,
            "Layers": paths,
        }));
        entries.push((format!("blobs/sha256/{digest}"), oci));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": index,
    });
    entries.push(("index.json".into(), index.to_string().into_bytes()));
    entries.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    entries.push((
        "manifest.json".into(),
        serde_json::to_vec(&docker).unwrap_or_default(),
    ));
    Ok(entries)
}

/// A tag as containerd names images: with the registry, and `library/` for official images.
pub(super) fn containerd_name(tag: &str) -> String {
    let first = tag.split('/').next().unwrap_or("");
    let has_registry =
        tag.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        tag.to_string()
    } else if tag.contains('/') {
        format!("docker.io/{tag}")
    } else {
        format!("docker.io/library/{tag}")
    }
}
