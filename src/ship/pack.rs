//! `rigs bundle create`: images from the controller's engine into a bundle file.
//!
//! The same path as a ship, ending in a file instead of hosts: one `docker save` of all images
//! (so layers they share are stored once), compressed on every core, written straight into the
//! bundle. The archive is stored complete, so `tar -xOf BUNDLE image.tar.gz | docker load`
//! works without rigs, but its end-of-archive marker is a compressed member of its own whose
//! offset the manifest records: rigs ships the body and lets each host append the marker only
//! after verifying what it received.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use super::archive::{self, LayerNames, Output};
use super::bundle::{BundleImage, BundleManifest, BundleWriter};
use super::compress::{self, Compression};
use super::image_info::{finish_save, save};
use super::ImageInfo;

/// Writes `references` (images on the controller's engine) into a new bundle at `path`.
pub fn create(
    path: &Path,
    references: &[String],
    compression: Compression,
) -> Result<BundleManifest, String> {
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
    writer.finish(images).map_err(|e| e.to_string())
}
