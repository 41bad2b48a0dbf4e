//! Unpacking a bundle into a directory, only after it verified and only its known entries, plus
//! the files of its compose project under `compose/`.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::compose::{is_safe_name, ComposeFileAt};
use super::verify::{inspect, is_plain_name, not_plain, stream, Located};
use super::{create_fresh, part_path, sync_dir, BundleError, BundleManifest};

/// The folder inside the extraction folder that receives a compose project's files.
pub const COMPOSE_DIR: &str = "compose";

/// Writes the bundle's entries into `dir` (created if missing) after
/// [`verify`](super::verify()), reading the same open file. Only the known entry names are ever
/// written; each goes to `<name>.part` first, created anew so that no symlink is followed, and is
/// renamed into place once its content matches what was verified. A compose project's files go under `dir/compose/` by their names
/// (env files and secrets with mode 0600), through folders that must be real folders, never
/// symlinks.
pub fn extract(path: &Path, dir: &Path) -> Result<BundleManifest, BundleError> {
    let mut bundle = File::open(path).map_err(|e| BundleError::io(path, e))?;
    let inspected = inspect(&mut bundle, path)?;
    fs::create_dir_all(dir).map_err(|e| BundleError::io(dir, e))?;
    let mut entries = vec![&inspected.archive];
    if let Some((entry, _, _)) = &inspected.compose {
        entries.push(entry);
    }
    entries.extend([&inspected.manifest_entry, &inspected.sums]);
    for entry in entries {
        extract_entry(&mut bundle, path, entry, dir)?;
    }
    if let Some((_, bytes, files)) = &inspected.compose {
        for file in files {
            extract_project_file(path, dir, bytes, file)?;
        }
    }
    sync_dir(dir);
    Ok(inspected.manifest)
}

/// Writes one verified project file from `compose.tar`'s `bytes` to `dir/compose/<name>`.
fn extract_project_file(
    path: &Path,
    dir: &Path,
    bytes: &[u8],
    file: &ComposeFileAt,
) -> Result<(), BundleError> {
    if !is_safe_name(&file.name) {
        return Err(BundleError::corrupt(
            path,
            format!("project file {:?} is not a plain relative path", file.name),
        ));
    }
    let mut folder = dir.join(COMPOSE_DIR);
    let parts: Vec<&str> = file.name.split('/').collect();
    let (leaf, folders) = parts.split_last().unwrap_or((&"", &[]));
    for part in std::iter::once(&"").chain(folders) {
        if !part.is_empty() {
            folder.push(part);
        }
        match fs::symlink_metadata(&folder) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(BundleError::io(
                    &folder,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "it exists and is not a folder (a symlink is not followed): remove it or \
                         extract into an empty folder",
                    ),
                ))
            }
            Err(_) => fs::create_dir(&folder).map_err(|e| BundleError::io(&folder, e))?,
        }
    }
    let target = folder.join(leaf);
    let part = part_path(&target);
    let data = bytes
        .get(file.start..file.start + file.len)
        .unwrap_or_default();
    let written = (|| {
        match fs::remove_file(&part) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(BundleError::io(&part, e))
            }
            _ => {}
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if file.private { 0o600 } else { 0o644 })
            .open(&part)
            .map_err(|e| BundleError::io(&part, e))?;
        out.write_all(data).map_err(|e| BundleError::io(&part, e))?;
        out.sync_all().map_err(|e| BundleError::io(&part, e))?;
        fs::rename(&part, &target).map_err(|e| BundleError::io(&target, e))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&part);
    }
    written
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

            assert_eq!(written.format, 1, "images only: readable by older rigs");
            assert_eq!(written.compose, None);
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

    #[test]
    fn a_compose_project_round_trips_through_create_verify_and_extract() {
        use crate::ship::bundle::{
            build_compose_tar, BundleCompose, BundleWriter, ComposePart, COMPOSE_ENTRY,
        };
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("shop.rigs");
        let (tar, listed) = build_compose_tar(&project_files(), 1_796_113_800).unwrap();
        let project = BundleCompose {
            project_files: listed,
            compose_files: vec!["compose.yaml".into()],
            variables: [("TAG".to_string(), "v1".to_string())].into(),
            services: [("web".to_string(), "app:1".to_string())].into(),
        };
        let mut writer = BundleWriter::create(&path, Compression::Gzip).unwrap();
        writer.write_all(b"image archive").unwrap();
        let part = ComposePart {
            manifest: project.clone(),
            tar: tar.clone(),
        };
        let written = writer.finish_with(images(), Some(part)).unwrap();
        assert_eq!(written.format, 2);
        assert_eq!(written.compose.as_ref(), Some(&project));
        assert_eq!(verify(&path).unwrap().manifest, written);

        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("compose"), b"").unwrap();
        assert!(
            extract(&path, &out).is_err(),
            "a file where the compose folder goes"
        );
        fs::remove_file(out.join("compose")).unwrap();
        assert_eq!(extract(&path, &out).unwrap(), written);
        assert_eq!(fs::read(out.join(COMPOSE_ENTRY)).unwrap(), tar);
        let yaml = fs::read(out.join("compose/compose.yaml")).unwrap();
        assert_eq!(yaml, project_files()[0].data);
        let env = out.join("compose/env/web.env");
        assert_eq!(fs::read(&env).unwrap(), b"TOKEN=s3cret\n");
        assert_eq!(
            fs::metadata(&env).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let check = std::process::Command::new("sha256sum")
            .args(["--check", "--strict", SUMS])
            .current_dir(&out)
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");

        // Extracting again replaces the files, and never writes through a symlinked folder.
        extract(&path, &out).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::remove_dir_all(out.join("compose/env")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("compose/env")).unwrap();
        assert!(extract(&path, &out).is_err());
        assert!(fs::read_dir(&elsewhere).unwrap().next().is_none());
    }
}
