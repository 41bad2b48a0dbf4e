//! Unpacking a bundle into a directory, only after it verified and only its three entries.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use super::verify::{inspect, is_plain_name, not_plain, stream, Located};
use super::{create_fresh, part_path, sync_dir, BundleError, BundleManifest};

/// Writes the bundle's entries into `dir` (created if missing) after [`verify`], reading the same
/// open file. Only the three known entry names are ever written; each goes to `<name>.part`
/// first, created anew so that no symlink is followed, and is renamed into place once its content
/// matches what was verified.
pub fn extract(path: &Path, dir: &Path) -> Result<BundleManifest, BundleError> {
    let mut bundle = File::open(path).map_err(|e| BundleError::io(path, e))?;
    let inspected = inspect(&mut bundle, path)?;
    fs::create_dir_all(dir).map_err(|e| BundleError::io(dir, e))?;
    for entry in [
        &inspected.archive,
        &inspected.manifest_entry,
        &inspected.sums,
    ] {
        extract_entry(&mut bundle, path, entry, dir)?;
    }
    sync_dir(dir);
    Ok(inspected.manifest)
}

fn extract_entry(
    bundle: &mut File,
    path: &Path,
    entry: &Located,
    dir: &Path,
) -> Result<(), BundleError> {
    if !is_plain_name(&entry.name) {
        return Err(not_plain(path, &entry.name));
    }
    let target = dir.join(&entry.name);
    let part = part_path(&target);
    let mut out = create_fresh(&part).map_err(|e| BundleError::io(&part, e))?;
    let written = (|| {
        bundle
            .seek(SeekFrom::Start(entry.offset))
            .map_err(|e| BundleError::io(path, e))?;
        let sha256 = stream(bundle, entry.len, path, |chunk| {
            out.write_all(chunk).map_err(|e| BundleError::io(&part, e))
        })?;
        if sha256 != entry.sha256 {
            return Err(BundleError::corrupt(
                path,
                format!("{:?} changed while it was being extracted", entry.name),
            ));
        }
        out.sync_all().map_err(|e| BundleError::io(&part, e))?;
        fs::rename(&part, &target).map_err(|e| BundleError::io(&target, e))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&part);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;
    use crate::ship::bundle::testing::*;
    use crate::ship::bundle::{verify, BundleArchive, CHUNK, MANIFEST, SUMS};
    use crate::ship::noise;
    use crate::ship::Compression;
    use sha2::{Digest, Sha256};
    use std::io::Read;
    use tempfile::TempDir;

    #[test]
    fn round_trip_through_create_verify_and_extract() {
        for compression in [Compression::Zstd, Compression::Gzip, Compression::None] {
            let tmp = TempDir::new().unwrap();
            let path = tmp.path().join("app.bundle");
            let data = noise(3 * CHUNK + 123, 7);
            let body = data.len() - 37;
            let written = write_bundle(&path, compression, &data, body);

            assert_eq!(written.format, 1);
            assert_eq!(written.rigs_version, env!("CARGO_PKG_VERSION"));
            assert_eq!(written.images, images());
            assert_eq!(written.created.len(), "2026-12-01T08:30:00Z".len());
            assert!(written.created.ends_with('Z'));
            assert_eq!(
                written.archive,
                BundleArchive {
                    name: compression.archive_name().to_string(),
                    compression,
                    bytes: data.len() as u64,
                    sha256: hex::encode(&Sha256::digest(&data)),
                    body_bytes: body as u64,
                }
            );
            assert!(!part_path(&path).exists());

            let verified = verify(&path).unwrap();
            assert_eq!(verified.manifest, written);
            assert_eq!(verified.archive_len, data.len() as u64);
            let file = fs::read(&path).unwrap();
            let at = verified.archive_offset as usize;
            assert_eq!(&file[at..at + data.len()], &data[..]);

            let mut prefix = Vec::new();
            verified
                .open_archive(written.archive.body_bytes)
                .unwrap()
                .read_to_end(&mut prefix)
                .unwrap();
            assert_eq!(prefix, &data[..body]);

            let out = tmp.path().join("out/nested");
            assert_eq!(extract(&path, &out).unwrap(), written);
            assert_eq!(
                fs::read(out.join(compression.archive_name())).unwrap(),
                data
            );
            let manifest: BundleManifest =
                serde_json::from_slice(&fs::read(out.join(MANIFEST)).unwrap()).unwrap();
            assert_eq!(manifest, written);
            let sums = fs::read_to_string(out.join(SUMS)).unwrap();
            assert!(sums.starts_with(&format!(
                "{}  {}\n",
                written.archive.sha256,
                compression.archive_name()
            )));
            let mut names: Vec<String> = fs::read_dir(&out)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            let mut expected = vec![compression.archive_name(), MANIFEST, SUMS];
            expected.sort();
            assert_eq!(names, expected);
        }
    }
}
