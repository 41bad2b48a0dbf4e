//! Writing a bundle: the archive streamed in behind a placeholder header, then the manifest and
//! the sums, all into `<path>.part` until [`BundleWriter::finish`] renames it into place.

use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::compose::{ComposePart, COMPOSE_ENTRY};
use super::{
    create_fresh, entry_header, padding, part_path, sync_dir, BundleArchive, BundleError,
    BundleImage, BundleManifest, BUNDLE_FORMAT, CHUNK, IMAGES_ONLY_FORMAT, MANIFEST, SUMS, ZEROS,
};
use crate::hex;
use crate::ship::Compression;
use crate::time::rfc3339;

/// Streams an archive into a new bundle: write the archive bytes through [`Write`], then
/// [`finish`](BundleWriter::finish). Dropping the writer unfinished removes the partial file.
pub struct BundleWriter {
    path: PathBuf,
    part: PathBuf,
    out: BufWriter<File>,
    compression: Compression,
    hasher: Sha256,
    bytes: u64,
    body_end: Option<u64>,
    created: u64,
    renamed: bool,
}

impl BundleWriter {
    /// Starts a bundle that will appear at `path` once finished; until then it is `<path>.part`.
    pub fn create(path: &Path, compression: Compression) -> Result<BundleWriter, BundleError> {
        let part = part_path(path);
        let file = create_fresh(&part).map_err(|e| BundleError::io(&part, e))?;
        let mut writer = BundleWriter {
            path: path.to_path_buf(),
            part,
            out: BufWriter::with_capacity(CHUNK, file),
            compression,
            hasher: Sha256::new(),
            bytes: 0,
            body_end: None,
            created: now_secs(),
            renamed: false,
        };
        let placeholder = entry_header(compression.archive_name(), 0, writer.created)
            .and_then(|header| writer.out.write_all(header.as_bytes()));
        placeholder.map_err(|e| BundleError::io(&writer.part, e))?;
        Ok(writer)
    }

    /// Marks the current byte count as the end of the body (the caller calls this right before
    /// writing the final trailer frame).
    pub fn mark_body_end(&mut self) {
        self.body_end = Some(self.bytes);
    }

    /// Completes the bundle: writes `manifest.json`, `SHA256SUMS` and the end-of-archive marker,
    /// fixes the archive header, fsyncs and renames the file into place.
    pub fn finish(self, images: Vec<BundleImage>) -> Result<BundleManifest, BundleError> {
        self.finish_with(images, None)
    }

    /// [`finish`](BundleWriter::finish), with a compose project's `compose.tar` entry between the
    /// archive and the manifest when `compose` is given.
    pub fn finish_with(
        mut self,
        images: Vec<BundleImage>,
        compose: Option<ComposePart>,
    ) -> Result<BundleManifest, BundleError> {
        let (compose, compose_tar) = match compose {
            Some(part) => (Some(part.manifest), Some(part.tar)),
            None => (None, None),
        };
        let manifest = BundleManifest {
            format: match compose {
                Some(_) => BUNDLE_FORMAT,
                None => IMAGES_ONLY_FORMAT,
            },
            rigs_version: env!("CARGO_PKG_VERSION").to_string(),
            created: rfc3339(self.created),
            images,
            archive: BundleArchive {
                name: self.compression.archive_name().to_string(),
                compression: self.compression,
                bytes: self.bytes,
                sha256: hex::encode(&self.hasher.finalize_reset()),
                body_bytes: self.body_end.unwrap_or(self.bytes),
            },
            compose,
        };
        self.write_tail(&manifest, compose_tar.as_deref())
            .map_err(|e| BundleError::io(&self.part, e))?;
        fs::rename(&self.part, &self.path).map_err(|e| BundleError::io(&self.path, e))?;
        self.renamed = true;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")));
        Ok(manifest)
    }

    fn write_tail(&mut self, manifest: &BundleManifest, compose: Option<&[u8]>) -> io::Result<()> {
        self.out.write_all(padding(self.bytes))?;
        let mut json = serde_json::to_vec_pretty(manifest)?;
        json.push(b'\n');
        let mut sums = format!("{}  {}\n", manifest.archive.sha256, manifest.archive.name);
        if let Some(tar) = compose {
            let digest = hex::encode(&Sha256::digest(tar));
            sums.push_str(&format!("{digest}  {COMPOSE_ENTRY}\n"));
            self.append(COMPOSE_ENTRY, tar)?;
        }
        sums.push_str(&format!(
            "{}  {MANIFEST}\n",
            hex::encode(&Sha256::digest(&json))
        ));
        self.append(MANIFEST, &json)?;
        self.append(SUMS, sums.as_bytes())?;
        self.out.write_all(&ZEROS)?;
        self.out.write_all(&ZEROS)?;
        let header = entry_header(&manifest.archive.name, self.bytes, self.created)?;
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(header.as_bytes())?;
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }

    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let header = entry_header(name, data.len() as u64, self.created)?;
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(data)?;
        self.out.write_all(padding(data.len() as u64))
    }
}

impl Write for BundleWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.out.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.part);
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ship::bundle::testing::*;
    use crate::ship::bundle::verify;
    use crate::ship::bundle::verify::entry_name;
    use crate::ship::noise;
    use tar::Header;
    use tempfile::TempDir;

    #[test]
    fn standard_tools_read_a_bundle() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("app.bundle");
        let data = noise(CHUNK + 5, 11);
        write_bundle(&path, Compression::Zstd, &data, 100);

        let mut archive = tar::Archive::new(File::open(&path).unwrap());
        let listed: Vec<(String, u64)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let name = entry.path().unwrap().to_string_lossy().into_owned();
                (name, entry.header().size().unwrap())
            })
            .collect();
        assert_eq!(listed[0], ("image.tar.zst".to_string(), data.len() as u64));
        assert_eq!(listed[1].0, MANIFEST);
        assert_eq!(listed[2].0, SUMS);
        assert_eq!(listed.len(), 3);

        let out = tmp.path().join("by-tar");
        fs::create_dir(&out).unwrap();
        let untar = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&path)
            .current_dir(&out)
            .status()
            .unwrap();
        assert!(untar.success());
        let check = std::process::Command::new("sha256sum")
            .args(["--check", "--strict", SUMS])
            .current_dir(&out)
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");
        assert_eq!(fs::read(out.join("image.tar.zst")).unwrap(), data);
    }

    #[test]
    fn body_is_the_whole_archive_unless_marked() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("empty.bundle");
        let manifest = BundleWriter::create(&path, Compression::None)
            .unwrap()
            .finish(Vec::new())
            .unwrap();
        assert_eq!(manifest.archive.bytes, 0);
        assert_eq!(manifest.archive.body_bytes, 0);
        assert_eq!(verify(&path).unwrap().manifest, manifest);

        let mut writer = BundleWriter::create(&path, Compression::Gzip).unwrap();
        writer.write_all(b"not really gzip").unwrap();
        let manifest = writer.finish(images()).unwrap();
        assert_eq!(manifest.archive.body_bytes, 15);
        assert_eq!(verify(&path).unwrap().manifest, manifest);
    }

    #[test]
    fn an_abandoned_writer_leaves_nothing_behind() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("app.bundle");
        let mut writer = BundleWriter::create(&path, Compression::Zstd).unwrap();
        writer.write_all(&noise(1000, 3)).unwrap();
        assert!(part_path(&path).exists());
        drop(writer);
        assert!(!part_path(&path).exists());
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn create_replaces_a_leftover_part_symlink_instead_of_writing_through_it() {
        let tmp = TempDir::new().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"keep me").unwrap();
        let path = tmp.path().join("app.bundle");
        std::os::unix::fs::symlink(&victim, part_path(&path)).unwrap();
        write_bundle(&path, Compression::Zstd, b"data", 2);
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        verify(&path).unwrap();
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        for (secs, expected) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_868_800, "2000-03-01T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (1_796_113_800, "2026-12-01T08:30:00Z"),
            (4_133_980_799, "2100-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(secs), expected);
        }
    }

    #[test]
    fn headers_hold_archives_beyond_eight_gib() {
        let size = 9 << 30;
        let header = entry_header("image.tar.zst", size, 1_796_113_800).unwrap();
        let parsed = Header::from_byte_slice(header.as_bytes());
        assert_eq!(parsed.entry_size().unwrap(), size);
        assert_eq!(
            entry_name(parsed, 0, Path::new("x")).unwrap(),
            "image.tar.zst"
        );
    }
}
