//! Reading the archive of a bundle that passed [`verify`](super::verify()), from the very file
//! that was checked.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{BundleError, BundleManifest, CHUNK};
use crate::hex;

/// A bundle that passed [`verify`](super::verify()): its manifest, where the archive entry's data
/// lies, and the verified file itself, still open. Readers take their bytes from that open file,
/// never from the path again: a file put in the bundle's place after the check is never read.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    pub manifest: BundleManifest,
    /// Offset of the archive entry's first data byte in the bundle file.
    pub archive_offset: u64,
    /// Length of the archive entry's data.
    pub archive_len: u64,
    pub(super) path: PathBuf,
    pub(super) file: Arc<File>,
}

impl VerifiedBundle {
    /// The path the bundle was verified at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader over the first `len` bytes of the archive entry (for shipping the body without its
    /// trailer), from the file that was verified. It hashes the whole archive on the way: before
    /// reporting the end, it reads the rest of the archive too, and fails instead of ending when
    /// the digest is no longer the manifest's (the file was changed in place after
    /// [`verify`](super::verify())). A consumer that treats a read error as "discard everything"
    /// never uses changed bytes.
    pub fn open_archive(&self, len: u64) -> Result<ArchiveReader, BundleError> {
        if len > self.archive_len {
            let problem = format!(
                "asked for {len} bytes of an archive that holds {}",
                self.archive_len
            );
            return Err(BundleError::io(
                &self.path,
                io::Error::new(io::ErrorKind::InvalidInput, problem),
            ));
        }
        Ok(ArchiveReader {
            bundle: self.clone(),
            at: 0,
            len,
            hasher: Sha256::new(),
            checked: false,
        })
    }
}

/// Reads the verified archive from [`VerifiedBundle::open_archive`], checking its digest before
/// it ends.
pub struct ArchiveReader {
    bundle: VerifiedBundle,
    /// Bytes of the archive read so far.
    at: u64,
    len: u64,
    hasher: Sha256,
    checked: bool,
}

impl ArchiveReader {
    /// Reads at `at` in the archive entry; positioned reads, so clones of the file never
    /// disturb each other.
    fn read_at(&self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self
            .bundle
            .file
            .read_at(buf, self.bundle.archive_offset + self.at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the bundle got shorter after it was verified",
            ));
        }
        Ok(n)
    }

    /// Hashes what the caller does not read, then compares the digest with the manifest's.
    fn check(&mut self) -> io::Result<()> {
        let mut buf = vec![0; CHUNK];
        while self.at < self.bundle.archive_len {
            let want = (self.bundle.archive_len - self.at).min(CHUNK as u64) as usize;
            let n = match self.read_at(&mut buf[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            self.hasher.update(&buf[..n]);
            self.at += n as u64;
        }
        let digest = hex::encode(&self.hasher.finalize_reset());
        let expected = &self.bundle.manifest.archive.sha256;
        if !digest.eq_ignore_ascii_case(expected) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the bundle changed after it was verified: the archive now hashes to \
                     {digest}, its manifest says {expected}"
                ),
            ));
        }
        self.checked = true;
        Ok(())
    }
}

impl Read for ArchiveReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.len {
            if !self.checked {
                self.check()?;
            }
            return Ok(0);
        }
        let want = (self.len - self.at).min(buf.len() as u64) as usize;
        let n = self.read_at(&mut buf[..want])?;
        self.hasher.update(&buf[..n]);
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ship::bundle::testing::*;
    use crate::ship::bundle::verify;
    use crate::ship::noise;
    use crate::ship::Compression;
    use std::fs::{self, OpenOptions};
    use tempfile::TempDir;

    #[test]
    fn open_archive_refuses_more_than_the_archive() {
        let tmp = TempDir::new().unwrap();
        let path = write_raw(tmp.path(), &entries(b"archive"));
        let verified = verify(&path).unwrap();
        assert!(matches!(
            verified.open_archive(8),
            Err(BundleError::Io { .. })
        ));
        let mut all = Vec::new();
        verified
            .open_archive(7)
            .unwrap()
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, b"archive");
    }

    #[test]
    fn a_bundle_swapped_after_verify_is_never_read() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("app.bundle");
        let data = noise(2 * CHUNK + 99, 11);
        let body = data.len() - 50;
        write_bundle(&path, Compression::Zstd, &data, body);
        let verified = verify(&path).unwrap();
        // Another valid bundle is renamed into the verified one's place.
        let other = tmp.path().join("other.bundle");
        write_bundle(&other, Compression::Zstd, &noise(data.len(), 12), body);
        fs::rename(&other, &path).unwrap();
        for len in [body as u64, data.len() as u64] {
            let mut read = Vec::new();
            verified
                .open_archive(len)
                .unwrap()
                .read_to_end(&mut read)
                .unwrap();
            assert_eq!(read, &data[..len as usize], "{len} bytes");
        }
    }

    #[test]
    fn a_bundle_changed_in_place_after_verify_fails_before_the_end() {
        use std::os::unix::fs::FileExt;
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("app.bundle");
        let data = noise(2 * CHUNK + 99, 13);
        let body = data.len() - 50;
        write_bundle(&path, Compression::Zstd, &data, body);
        // One byte in the body, and one in the trailer that a body-only reader never returns.
        for at in [10, body + 10] {
            let verified = verify(&path).unwrap();
            let file = OpenOptions::new().write(true).open(&path).unwrap();
            file.write_at(b"!", verified.archive_offset + at as u64)
                .unwrap();
            let mut read = Vec::new();
            let error = verified
                .open_archive(body as u64)
                .unwrap()
                .read_to_end(&mut read)
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
            assert!(
                error.to_string().contains("changed after it was verified"),
                "{error}"
            );
            file.write_at(&data[at..at + 1], verified.archive_offset + at as u64)
                .unwrap();
        }
    }
}
