//! The on-disk format of an image bundle: how Docker images reach servers that have no registry.
//!
//! A bundle is one uncompressed tar file that someone can carry to an air-gapped site and check
//! there with standard tools (`tar -xf bundle.tar && sha256sum -c SHA256SUMS`). It holds, in order:
//!
//! 1. `image.tar.zst`, `image.tar.gz` or `image.tar`: the `docker save` archive, compressed as its
//!    name says;
//! 2. only in a bundle made with `--compose`: `compose.tar`, the compose project's files (see
//!    [`BundleCompose`]);
//! 3. `manifest.json`: a [`BundleManifest`] describing the images, the archive and the project;
//! 4. `SHA256SUMS`: the digests of the entries before it, in `sha256sum -c` format.
//!
//! Format 2 added the compose project. A bundle without one is still written as format 1, which
//! it is entry for entry, so rigs versions from before compose projects can read it.
//!
//! The archive comes first because it is streamed from `docker save` and its size is known only at
//! the end: the writer puts down a placeholder header, streams and hashes the data, and seeks back to
//! write the real header. The manifest and the sums follow because they record that size and digest.
//! Everything goes to `<path>.part` and is renamed into place after an fsync, so an interrupted
//! create never leaves a file that looks like a finished bundle.
//!
//! [`verify`] trusts nothing in the file. It walks the tar block by block instead of using a
//! general-purpose reader, so long-name records, pax headers, links and anything else that could
//! rename an entry or point it elsewhere are refused rather than interpreted. It reads the archive
//! once, hashing as it goes, and never holds it in memory.
//!
//! The manifest also records `body_bytes`, where the archive's final compressed member or frame
//! (the one carrying the tar end-of-archive marker) begins, so a sender can ship the body on its own
//! through [`VerifiedBundle::open_archive`].
//!
//! The format is defined here; [`BundleWriter`] writes it, [`verify`] checks a file against it,
//! [`VerifiedBundle`] reads the archive of a checked one, and [`extract`] unpacks one.

mod compose;
mod extract;
#[cfg(test)]
mod testing;
mod verified;
mod verify;
mod writer;

pub use compose::{
    build_tar as build_compose_tar, BundleCompose, BundleProjectFile, ComposePart, ProjectFileData,
    COMPOSE_ENTRY,
};
pub use extract::extract;
pub use verified::{ArchiveReader, VerifiedBundle};
pub use verify::verify;
pub use writer::BundleWriter;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tar::{EntryType, Header};

use super::Compression;

/// The bundle format this version writes for a bundle with a compose project.
pub const BUNDLE_FORMAT: u32 = 2;

/// The format this version writes for a bundle of images only: such a bundle is laid out as in
/// format 1, so it says so, and rigs versions from before compose projects read it too.
pub const IMAGES_ONLY_FORMAT: u32 = 1;

/// The formats this version reads: 1 (images only) and 2 (images, maybe a compose project).
pub const READABLE_FORMATS: [u32; 2] = [1, 2];

const MANIFEST: &str = "manifest.json";
const SUMS: &str = "SHA256SUMS";
const BLOCK: u64 = 512;
const ZEROS: [u8; BLOCK as usize] = [0; BLOCK as usize];
const CHUNK: usize = 256 * 1024;

impl Compression {
    /// The name of the archive entry in a bundle: `image.tar.zst`, `image.tar.gz` or
    /// `image.tar`.
    pub fn archive_name(self) -> &'static str {
        match self {
            Compression::Zstd => "image.tar.zst",
            Compression::Gzip => "image.tar.gz",
            Compression::None => "image.tar",
        }
    }

    /// The compression an archive entry's name declares, if it is one of the three archive
    /// names.
    pub fn from_archive_name(name: &str) -> Option<Compression> {
        [Compression::Zstd, Compression::Gzip, Compression::None]
            .into_iter()
            .find(|compression| compression.archive_name() == name)
    }
}

/// One image carried by a bundle, as Docker described it when the bundle was made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleImage {
    /// The reference the user asked for, e.g. `registry.example/app:1.2.3`.
    pub reference: String,
    /// The image ID (`sha256:...`).
    pub id: String,
    pub repo_tags: Vec<String>,
    /// The layer digests of the image's root filesystem, bottom first.
    pub diff_ids: Vec<String>,
    /// The image size in bytes as Docker reports it.
    pub size: u64,
    /// When the image was built: with the diff ids, what identifies the image on an engine
    /// with the other image store, where its id differs. Empty in bundles from before rigs
    /// recorded it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created: String,
}

/// The archive entry of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleArchive {
    /// The entry name, one of [`Compression::archive_name`].
    pub name: String,
    pub compression: Compression,
    /// The entry's length in bytes.
    pub bytes: u64,
    /// The lowercase hex SHA-256 of the entry.
    pub sha256: String,
    /// Bytes of the archive before its final compressed member/frame (the one holding the tar
    /// end-of-archive marker); equal to `bytes` when the writer never marked a body end.
    pub body_bytes: u64,
}

/// `manifest.json`: what a bundle holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleManifest {
    /// One of [`READABLE_FORMATS`]: [`BUNDLE_FORMAT`] with a compose project, else
    /// [`IMAGES_ONLY_FORMAT`].
    pub format: u32,
    /// The version of rigs that made the bundle.
    pub rigs_version: String,
    /// When the bundle was made, RFC 3339 in UTC (`2026-12-01T08:30:00Z`).
    pub created: String,
    pub images: Vec<BundleImage>,
    pub archive: BundleArchive,
    /// The compose project in `compose.tar` (format 2, made with `--compose`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<BundleCompose>,
}

/// Why a bundle could not be written, read or trusted.
#[derive(Debug)]
pub enum BundleError {
    /// The file system refused: a missing path, a permission, a full disk.
    Io { path: PathBuf, source: io::Error },
    /// The file is not a complete, intact bundle this version can read.
    Corrupt { path: PathBuf, problem: String },
}

impl BundleError {
    fn io(path: &Path, source: io::Error) -> BundleError {
        BundleError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn corrupt(path: &Path, problem: impl Into<String>) -> BundleError {
        BundleError::Corrupt {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Io { path, source } => write!(
                f,
                "{}: {source}\n  hint: check that the path exists, that you may read and write \
                 it, and that its file system has space",
                path.display()
            ),
            BundleError::Corrupt { path, problem } => write!(
                f,
                "{} is not a usable image bundle: {problem}\n  hint: copy the bundle again from \
                 where it was made, or make it again with this version of rigs",
                path.display()
            ),
        }
    }
}

impl std::error::Error for BundleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BundleError::Io { source, .. } => Some(source),
            BundleError::Corrupt { .. } => None,
        }
    }
}

fn entry_header(name: &str, size: u64, mtime: u64) -> io::Result<Header> {
    // GNU headers, because a docker image can exceed the 8 GiB that an octal ustar size holds and
    // the GNU format defines the binary size field the tar crate then writes.
    let mut header = Header::new_gnu();
    header.set_path(name)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_entry_type(EntryType::Regular);
    header.set_cksum();
    Ok(header)
}

/// The zeros that pad `len` bytes of entry data to a whole tar block.
fn padding(len: u64) -> &'static [u8] {
    &ZEROS[..((BLOCK - len % BLOCK) % BLOCK) as usize]
}

fn part_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".part");
    PathBuf::from(name)
}

/// Creates `path` anew: a leftover file or symlink there is removed, never written through.
fn create_fresh(path: &Path) -> io::Result<File> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Makes a rename in `dir` durable. Best effort: some file systems refuse to fsync a directory,
/// and the rename has happened either way.
fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    #[test]
    fn errors_say_what_happened_where_and_what_to_do() {
        let tmp = TempDir::new().unwrap();
        let missing = tmp.path().join("missing.bundle");
        let error = verify(&missing).unwrap_err();
        assert!(matches!(&error, BundleError::Io { path, .. } if *path == missing));
        let message = error.to_string();
        assert!(message.contains("missing.bundle"), "{message}");
        assert!(message.contains("hint:"), "{message}");
        assert!(std::error::Error::source(&error).is_some());

        let path = tmp.path().join("short.bundle");
        fs::write(&path, b"not a tar").unwrap();
        let message = verify(&path).unwrap_err().to_string();
        assert!(message.contains("short.bundle"), "{message}");
        assert!(message.contains("truncated"), "{message}");
        assert!(message.contains("hint:"), "{message}");
    }

    #[test]
    fn compression_names() {
        for (compression, json, name) in [
            (Compression::Zstd, "\"zstd\"", "image.tar.zst"),
            (Compression::Gzip, "\"gzip\"", "image.tar.gz"),
            (Compression::None, "\"none\"", "image.tar"),
        ] {
            assert_eq!(serde_json::to_string(&compression).unwrap(), json);
            assert_eq!(json.trim_matches('"'), compression.name());
            assert_eq!(compression.archive_name(), name);
            assert_eq!(Compression::from_archive_name(name), Some(compression));
        }
        assert_eq!(Compression::from_archive_name("image.tar.xz"), None);
    }
}
