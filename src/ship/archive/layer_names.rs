//! Which archive entry holds which layer, learnt once per image and cached on the controller.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Entry path -> layer diff id, for archives that do not name layers by digest.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LayerNames {
    pub by_path: HashMap<String, String>,
}

impl LayerNames {
    pub fn diff_id(&self, path: &str) -> Option<String> {
        if let Some(d) = self.by_path.get(path) {
            return Some(d.clone());
        }
        // Unlearnt, a blob's name is its digest: the diff id when the layer is not compressed.
        path.strip_prefix("blobs/sha256/")
            .map(|hex| format!("sha256:{hex}"))
            .filter(|d| is_digest(d))
    }

    /// Whether every layer of `diff_ids` can be found by name.
    pub fn covers(&self, diff_ids: &[String]) -> bool {
        let known: HashSet<&String> = self.by_path.values().collect();
        diff_ids.iter().all(|d| known.contains(d))
    }

    fn cache_file(image_id: &str) -> Option<PathBuf> {
        let hex = image_id.strip_prefix("sha256:").unwrap_or(image_id);
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(dirs::cache_dir()?.join("rigs/layer-names").join(hex))
    }

    /// What an earlier pass learned about this image, if anything.
    pub fn cached(image_id: &str) -> Option<LayerNames> {
        let text = std::fs::read_to_string(Self::cache_file(image_id)?).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Remembers the names for the next ship of the same image (best effort: a cache).
    pub fn store(&self, image_id: &str) {
        let Some(path) = Self::cache_file(image_id) else {
            return;
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = path.with_extension("part");
        if let Ok(text) = serde_json::to_string(self) {
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }
}

/// Whether `d` is a layer digest as archives write them, `sha256:` and hex digits (at most 64).
/// Only such a name becomes a blob path: anything else could be too long for a tar header, or
/// hold `/` and `..`.
pub(super) fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|hex| {
        !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Layer entry -> diff id from the archive's `manifest.json` and the configs it names.
pub(super) fn manifest_names(small: &HashMap<String, Vec<u8>>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Some(manifest) = small
        .get("manifest.json")
        .and_then(|m| serde_json::from_slice::<serde_json::Value>(m).ok())
    else {
        return out;
    };
    for image in manifest.as_array().into_iter().flatten() {
        let Some(config) = image["Config"]
            .as_str()
            .and_then(|c| small.get(c.trim_start_matches("./")))
            .and_then(|c| serde_json::from_slice::<serde_json::Value>(c).ok())
        else {
            continue;
        };
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let layers = image["Layers"].as_array().cloned().unwrap_or_default();
        if diff_ids.len() != layers.len() {
            continue;
        }
        for (layer, diff_id) in layers.iter().zip(&diff_ids) {
            if let (Some(l), Some(d)) = (layer.as_str(), diff_id.as_str().filter(|d| is_digest(d)))
            {
                out.insert(l.trim_start_matches("./").to_string(), d.to_string());
            }
        }
    }
    out
}
