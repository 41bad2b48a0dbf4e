//! The on-disk format of an image bundle: how Docker images reach servers that have no registry.
//!
//! A bundle is one uncompressed tar file that someone can carry to an air-gapped site and check
//! there with standard tools (`tar -xf bundle.tar && sha256sum -c SHA256SUMS`). It holds, in order:
//!
//! 1. `image.tar.zst`, `image.tar.gz` or `image.tar`: the `docker save` archive, compressed as its
//!    name says;
//! 2. `manifest.json`: a [`BundleManifest`] describing the images and the archive;
//! 3. `SHA256SUMS`: the digests of entries 1 and 2, in `sha256sum -c` format.
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

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::time::rfc3339;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

/// The bundle format this version writes, and the only one it reads.
pub const BUNDLE_FORMAT: u32 = 1;

const MANIFEST: &str = "manifest.json";
const SUMS: &str = "SHA256SUMS";
const BLOCK: u64 = 512;
const ZEROS: [u8; BLOCK as usize] = [0; BLOCK as usize];
const CHUNK: usize = 256 * 1024;
/// `manifest.json` and `SHA256SUMS` are read into memory, so a bundle may not make them huge.
const SMALL_ENTRY_MAX: u64 = 16 * 1024 * 1024;

/// How the `docker save` archive inside a bundle is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleCompression {
    Zstd,
    Gzip,
    None,
}

impl BundleCompression {
    /// How the archive's name ends: `.tar.zst`, `.tar.gz` or `.tar`.
    pub fn extension(self) -> &'static str {
        match self {
            BundleCompression::Zstd => ".tar.zst",
            BundleCompression::Gzip => ".tar.gz",
            BundleCompression::None => ".tar",
        }
    }

    /// The name of the archive entry in a bundle: `image` followed by [`Self::extension`].
    pub fn archive_name(self) -> &'static str {
        match self {
            BundleCompression::Zstd => "image.tar.zst",
            BundleCompression::Gzip => "image.tar.gz",
            BundleCompression::None => "image.tar",
        }
    }

    /// The compression an archive entry's name declares, if it is one of the three archive names.
    pub fn from_archive_name(name: &str) -> Option<BundleCompression> {
        [
            BundleCompression::Zstd,
            BundleCompression::Gzip,
            BundleCompression::None,
        ]
        .into_iter()
        .find(|compression| compression.archive_name() == name)
    }

    /// The name used in `manifest.json`: `zstd`, `gzip` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            BundleCompression::Zstd => "zstd",
            BundleCompression::Gzip => "gzip",
            BundleCompression::None => "none",
        }
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
    /// The entry name, one of [`BundleCompression::archive_name`].
    pub name: String,
    pub compression: BundleCompression,
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
    /// Always [`BUNDLE_FORMAT`] for bundles this version can read.
    pub format: u32,
    /// The version of rigs that made the bundle.
    pub rigs_version: String,
    /// When the bundle was made, RFC 3339 in UTC (`2026-12-01T08:30:00Z`).
    pub created: String,
    pub images: Vec<BundleImage>,
    pub archive: BundleArchive,
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

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            BundleError::Io { path, .. } | BundleError::Corrupt { path, .. } => path,
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

/// Streams an archive into a new bundle: write the archive bytes through [`Write`], then
/// [`finish`](BundleWriter::finish). Dropping the writer unfinished removes the partial file.
pub struct BundleWriter {
    path: PathBuf,
    part: PathBuf,
    out: BufWriter<File>,
    compression: BundleCompression,
    hasher: Sha256,
    bytes: u64,
    body_end: Option<u64>,
    created: u64,
    renamed: bool,
}

impl BundleWriter {
    /// Starts a bundle that will appear at `path` once finished; until then it is `<path>.part`.
    pub fn create(
        path: &Path,
        compression: BundleCompression,
    ) -> Result<BundleWriter, BundleError> {
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
    pub fn finish(mut self, images: Vec<BundleImage>) -> Result<BundleManifest, BundleError> {
        let manifest = BundleManifest {
            format: BUNDLE_FORMAT,
            rigs_version: env!("CARGO_PKG_VERSION").to_string(),
            created: rfc3339(self.created),
            images,
            archive: BundleArchive {
                name: self.compression.archive_name().to_string(),
                compression: self.compression,
                bytes: self.bytes,
                sha256: hex(&self.hasher.finalize_reset()),
                body_bytes: self.body_end.unwrap_or(self.bytes),
            },
        };
        self.write_tail(&manifest)
            .map_err(|e| BundleError::io(&self.part, e))?;
        fs::rename(&self.part, &self.path).map_err(|e| BundleError::io(&self.path, e))?;
        self.renamed = true;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")));
        Ok(manifest)
    }

    fn write_tail(&mut self, manifest: &BundleManifest) -> io::Result<()> {
        self.out.write_all(padding(self.bytes))?;
        let mut json = serde_json::to_vec_pretty(manifest)?;
        json.push(b'\n');
        let sums = format!(
            "{}  {}\n{}  {MANIFEST}\n",
            manifest.archive.sha256,
            manifest.archive.name,
            hex(&Sha256::digest(&json))
        );
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

/// A bundle that passed [`verify`]: its manifest, where the archive entry's data lies, and the
/// verified file itself, still open. Readers take their bytes from that open file, never from
/// the path again: a file put in the bundle's place after the check is never read.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    pub manifest: BundleManifest,
    /// Offset of the archive entry's first data byte in the bundle file.
    pub archive_offset: u64,
    /// Length of the archive entry's data.
    pub archive_len: u64,
    path: PathBuf,
    file: Arc<File>,
}

impl VerifiedBundle {
    /// The path the bundle was verified at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader over the first `len` bytes of the archive entry (for shipping the body without its
    /// trailer), from the file that was verified. It hashes the whole archive on the way: before
    /// reporting the end, it reads the rest of the archive too, and fails instead of ending when
    /// the digest is no longer the manifest's (the file was changed in place after [`verify`]).
    /// A consumer that treats a read error as "discard everything" never uses changed bytes.
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
        let digest = hex(&self.hasher.finalize_reset());
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

/// Checks everything without Docker: the tar structure, that exactly the expected entries are
/// present (no others, no duplicates), that every entry is a regular file with a plain relative
/// name, that `SHA256SUMS` and `manifest.json` agree with the content, that the format is
/// [`BUNDLE_FORMAT`], and that the file is complete. The file is opened once; the result keeps
/// it open for [`VerifiedBundle::open_archive`].
pub fn verify(path: &Path) -> Result<VerifiedBundle, BundleError> {
    let mut file = File::open(path).map_err(|e| BundleError::io(path, e))?;
    let inspected = inspect(&mut file, path)?;
    Ok(VerifiedBundle {
        manifest: inspected.manifest,
        archive_offset: inspected.archive.offset,
        archive_len: inspected.archive.len,
        path: path.to_path_buf(),
        file: Arc::new(file),
    })
}

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

/// Where one entry's data lies in the bundle and what it hashes to.
struct Located {
    name: String,
    offset: u64,
    len: u64,
    sha256: String,
}

struct Inspected {
    manifest: BundleManifest,
    archive: Located,
    manifest_entry: Located,
    sums: Located,
}

/// Walks the bundle open as `file` (at its start), which was opened from `path`.
fn inspect(file: &mut File, path: &Path) -> Result<Inspected, BundleError> {
    let corrupt = |problem: String| BundleError::corrupt(path, problem);
    let file_len = file.metadata().map_err(|e| BundleError::io(path, e))?.len();
    let mut archive: Option<Located> = None;
    let mut manifest: Option<(Located, Vec<u8>)> = None;
    let mut sums: Option<(Located, Vec<u8>)> = None;
    let mut offset = 0;
    let mut block = ZEROS;
    loop {
        match read_full(file, &mut block).map_err(|e| BundleError::io(path, e))? {
            0 => {
                return Err(corrupt(format!(
                    "the file is truncated: it ends at byte {offset} without the tar \
                     end-of-archive marker"
                )))
            }
            n if n < block.len() => {
                return Err(corrupt(format!(
                    "the file is truncated: it ends inside the tar header at byte {offset}"
                )))
            }
            _ => {}
        }
        if block == ZEROS {
            check_end(file, offset + BLOCK, path)?;
            break;
        }
        let header = Header::from_byte_slice(&block);
        let name = entry_name(header, offset, path)?;
        let len = header.entry_size().map_err(|e| {
            corrupt(format!(
                "entry {name:?} at byte {offset} has an unreadable size: {e}"
            ))
        })?;
        let data = offset + BLOCK;
        let next = data
            .checked_add(len)
            .and_then(|end| end.checked_add(padding(end).len() as u64))
            .filter(|&next| next <= file_len)
            .ok_or_else(|| {
                corrupt(format!(
                    "the file is truncated: entry {name:?} needs {len} bytes from byte {data}, \
                     but the file ends at byte {file_len}"
                ))
            })?;
        let is_archive = BundleCompression::from_archive_name(&name).is_some();
        if !is_archive && name != MANIFEST && name != SUMS {
            return Err(corrupt(format!(
                "unexpected entry {name:?}; a bundle holds only the image archive, {MANIFEST} \
                 and {SUMS}"
            )));
        }
        let duplicate = match name.as_str() {
            MANIFEST => manifest.is_some(),
            SUMS => sums.is_some(),
            _ => archive.as_ref().is_some_and(|first| first.name == name),
        };
        if duplicate {
            return Err(corrupt(format!("duplicate entry {name:?}")));
        }
        if let (true, Some(first)) = (is_archive, &archive) {
            return Err(corrupt(format!(
                "two image archives, {:?} and {name:?}; a bundle holds exactly one",
                first.name
            )));
        }
        if !is_archive && len > SMALL_ENTRY_MAX {
            return Err(corrupt(format!(
                "entry {name:?} is {len} bytes, more than the {} MiB allowed",
                SMALL_ENTRY_MAX >> 20
            )));
        }
        let mut bytes = Vec::new();
        let sha256 = stream(file, len, path, |chunk| {
            if !is_archive {
                bytes.extend_from_slice(chunk);
            }
            Ok(())
        })?;
        let entry = Located {
            name,
            offset: data,
            len,
            sha256,
        };
        match entry.name.as_str() {
            MANIFEST => manifest = Some((entry, bytes)),
            SUMS => sums = Some((entry, bytes)),
            _ => archive = Some(entry),
        }
        file.seek(SeekFrom::Start(next))
            .map_err(|e| BundleError::io(path, e))?;
        offset = next;
    }

    let archive = archive.ok_or_else(|| {
        corrupt(format!(
            "there is no image archive entry ({}, {} or {})",
            BundleCompression::Zstd.archive_name(),
            BundleCompression::Gzip.archive_name(),
            BundleCompression::None.archive_name()
        ))
    })?;
    let (manifest_entry, manifest_bytes) =
        manifest.ok_or_else(|| corrupt(format!("there is no {MANIFEST} entry")))?;
    let (sums, sums_bytes) = sums.ok_or_else(|| corrupt(format!("there is no {SUMS} entry")))?;
    check_sums(&sums_bytes, [&archive, &manifest_entry], path)?;
    let manifest = parse_manifest(&manifest_bytes, path)?;
    check_manifest_archive(&manifest.archive, &archive, path)?;
    Ok(Inspected {
        manifest,
        archive,
        manifest_entry,
        sums,
    })
}

/// The entry's name, once its header has proved intact and it is a plain regular file.
fn entry_name(header: &Header, offset: u64, path: &Path) -> Result<String, BundleError> {
    let mut recomputed = header.clone();
    recomputed.set_cksum();
    if header.cksum().ok() != recomputed.cksum().ok() {
        return Err(BundleError::corrupt(
            path,
            format!("the tar header at byte {offset} fails its checksum"),
        ));
    }
    let name = String::from_utf8(header.path_bytes().into_owned()).map_err(|_| {
        BundleError::corrupt(
            path,
            format!("the entry at byte {offset} has a name that is not UTF-8"),
        )
    })?;
    if !is_plain_name(&name) {
        return Err(not_plain(path, &name));
    }
    let kind = header.entry_type();
    if kind != EntryType::Regular {
        return Err(BundleError::corrupt(
            path,
            format!(
                "entry {name:?} is a {}; a bundle holds only regular files",
                describe(kind)
            ),
        ));
    }
    Ok(name)
}

fn describe(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Link => "hard link",
        EntryType::Symlink => "symbolic link",
        EntryType::Directory => "directory",
        EntryType::Char | EntryType::Block => "device",
        EntryType::Fifo => "named pipe",
        EntryType::XHeader | EntryType::XGlobalHeader => "pax extended header",
        EntryType::GNULongName | EntryType::GNULongLink => "GNU long-name record",
        EntryType::GNUSparse => "sparse file",
        _ => "special entry",
    }
}

/// A name that, joined to a directory, stays a file directly inside it.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

fn not_plain(path: &Path, name: &str) -> BundleError {
    BundleError::corrupt(
        path,
        format!(
            "entry {name:?} is not a plain file name; a bundle holds only files at its top \
             level, nothing that could land outside the directory it is extracted to"
        ),
    )
}

/// Checks the second zero block of the end-of-archive marker and that only zeros follow it (tar
/// tools pad archives to whole records).
fn check_end(file: &mut File, second: u64, path: &Path) -> Result<(), BundleError> {
    let mut block = ZEROS;
    let got = read_full(file, &mut block).map_err(|e| BundleError::io(path, e))?;
    if got < block.len() {
        return Err(BundleError::corrupt(
            path,
            format!(
                "the file is truncated: the end-of-archive marker at byte {} is incomplete",
                second - BLOCK
            ),
        ));
    }
    if block != ZEROS {
        return Err(BundleError::corrupt(
            path,
            format!(
                "a lone zero block at byte {} is followed by data",
                second - BLOCK
            ),
        ));
    }
    let mut at = second + BLOCK;
    let mut buf = vec![0; CHUNK];
    loop {
        let n = read_full(file, &mut buf).map_err(|e| BundleError::io(path, e))?;
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Err(BundleError::corrupt(
                path,
                format!(
                    "there is data at byte {} after the end-of-archive marker",
                    at + i as u64
                ),
            ));
        }
        if n < buf.len() {
            return Ok(());
        }
        at += n as u64;
    }
}

fn check_sums(sums: &[u8], entries: [&Located; 2], path: &Path) -> Result<(), BundleError> {
    let corrupt = |problem: String| BundleError::corrupt(path, problem);
    let text =
        std::str::from_utf8(sums).map_err(|_| corrupt(format!("{SUMS} is not UTF-8 text")))?;
    let mut listed: Vec<(&str, &str)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let parsed = line.split_at_checked(64).and_then(|(digest, rest)| {
            let name = rest
                .strip_prefix("  ")
                .or_else(|| rest.strip_prefix(" *"))?;
            digest
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then_some((name, digest))
        });
        let (name, digest) = parsed.ok_or_else(|| {
            corrupt(format!(
                "{SUMS} line {} is not `<sha256>  <name>`",
                number + 1
            ))
        })?;
        if listed.iter().any(|(seen, _)| *seen == name) {
            return Err(corrupt(format!("{SUMS} lists {name:?} twice")));
        }
        if !entries.iter().any(|entry| entry.name == name) {
            return Err(corrupt(format!(
                "{SUMS} lists {name:?}, which is not in the bundle"
            )));
        }
        listed.push((name, digest));
    }
    for entry in entries {
        let (_, digest) = listed
            .iter()
            .find(|(name, _)| *name == entry.name)
            .ok_or_else(|| corrupt(format!("{SUMS} has no line for {:?}", entry.name)))?;
        if !digest.eq_ignore_ascii_case(&entry.sha256) {
            return Err(corrupt(format!(
                "sha256 mismatch for {:?}: {SUMS} lists {digest} but the content hashes to {}",
                entry.name, entry.sha256
            )));
        }
    }
    Ok(())
}

fn parse_manifest(bytes: &[u8], path: &Path) -> Result<BundleManifest, BundleError> {
    let corrupt = |problem: String| BundleError::corrupt(path, problem);
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(format!("{MANIFEST} is not valid JSON: {e}")))?;
    // The format is checked on its own first, so that a newer bundle is reported as newer rather
    // than as whatever field it happens to have changed.
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(format) if format == u64::from(BUNDLE_FORMAT) => {}
        Some(format) => {
            let made_by = value
                .get("rigs_version")
                .and_then(serde_json::Value::as_str)
                .map(|version| format!(", made by rigs {version:?},"))
                .unwrap_or_default();
            return Err(corrupt(format!(
                "the bundle{made_by} has format {format}, but rigs {} supports only format \
                 {BUNDLE_FORMAT}",
                env!("CARGO_PKG_VERSION")
            )));
        }
        None => return Err(corrupt(format!("{MANIFEST} has no numeric `format`"))),
    }
    serde_json::from_value(value)
        .map_err(|e| corrupt(format!("{MANIFEST} does not describe a bundle: {e}")))
}

fn check_manifest_archive(
    claimed: &BundleArchive,
    entry: &Located,
    path: &Path,
) -> Result<(), BundleError> {
    let problem = if claimed.name != entry.name {
        format!(
            "{MANIFEST} names the archive {:?}, but the bundle holds {:?}",
            claimed.name, entry.name
        )
    } else if claimed.compression.archive_name() != entry.name {
        format!(
            "{MANIFEST} says the archive is compressed with {}, but it is named {:?}",
            claimed.compression.as_str(),
            entry.name
        )
    } else if claimed.bytes != entry.len {
        format!(
            "{MANIFEST} says the archive is {} bytes, but the entry holds {}",
            claimed.bytes, entry.len
        )
    } else if !claimed.sha256.eq_ignore_ascii_case(&entry.sha256) {
        format!(
            "sha256 mismatch for the archive: {MANIFEST} lists {} but the content hashes to {}",
            claimed.sha256, entry.sha256
        )
    } else if claimed.body_bytes > claimed.bytes {
        format!(
            "{MANIFEST} says the archive body is {} bytes, more than the whole archive ({})",
            claimed.body_bytes, claimed.bytes
        )
    } else {
        return Ok(());
    };
    Err(BundleError::corrupt(path, problem))
}

/// Reads `len` bytes from `file`'s position in chunks, hashing them and handing each to `sink`;
/// returns the hex SHA-256.
fn stream(
    file: &mut File,
    len: u64,
    path: &Path,
    mut sink: impl FnMut(&[u8]) -> Result<(), BundleError>,
) -> Result<String, BundleError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0; usize::try_from(len).map_or(CHUNK, |len| len.min(CHUNK))];
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(BundleError::corrupt(
                    path,
                    "the file is truncated: it got shorter while being read",
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BundleError::io(path, e)),
        };
        hasher.update(&buf[..n]);
        sink(&buf[..n])?;
        left -= n as u64;
    }
    Ok(hex(&hasher.finalize()))
}

/// Fills `buf` unless the file ends first; returns how much was read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    use crate::ship::noise;

    fn images() -> Vec<BundleImage> {
        vec![BundleImage {
            reference: "registry.example/app:1.2.3".to_string(),
            id: format!("sha256:{}", "ab".repeat(32)),
            repo_tags: vec!["registry.example/app:1.2.3".to_string()],
            diff_ids: vec![
                format!("sha256:{}", "01".repeat(32)),
                format!("sha256:{}", "02".repeat(32)),
            ],
            size: 123_456_789,
            created: "2026-11-30T10:00:00Z".into(),
        }]
    }

    fn write_in_pieces(writer: &mut BundleWriter, mut data: &[u8]) {
        let mut piece = 1;
        while !data.is_empty() {
            let (now, rest) = data.split_at(piece.min(data.len()));
            writer.write_all(now).unwrap();
            data = rest;
            piece = piece * 3 + 7;
        }
    }

    /// Streams `data` into a bundle at `path`, marking the body end after `body` bytes.
    fn write_bundle(
        path: &Path,
        compression: BundleCompression,
        data: &[u8],
        body: usize,
    ) -> BundleManifest {
        let mut writer = BundleWriter::create(path, compression).unwrap();
        write_in_pieces(&mut writer, &data[..body]);
        writer.mark_body_end();
        write_in_pieces(&mut writer, &data[body..]);
        writer.finish(images()).unwrap()
    }

    fn problem<T: fmt::Debug>(result: Result<T, BundleError>) -> String {
        match result {
            Err(BundleError::Corrupt { problem, .. }) => problem,
            other => panic!("expected a Corrupt error, got {other:?}"),
        }
    }

    fn assert_nothing_extracted(dir: &Path) {
        if dir.exists() {
            let names: Vec<_> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert!(names.is_empty(), "extract wrote {names:?}");
        }
    }

    /// One hand-made tar entry; the name goes into the header verbatim, unchecked.
    struct Raw {
        name: Vec<u8>,
        kind: EntryType,
        link: Option<String>,
        data: Vec<u8>,
    }

    fn raw(name: &str, data: &[u8]) -> Raw {
        Raw {
            name: name.as_bytes().to_vec(),
            kind: EntryType::Regular,
            link: None,
            data: data.to_vec(),
        }
    }

    fn tar_bytes(entries: &[Raw]) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in entries {
            let mut header = Header::new_gnu();
            header.as_old_mut().name[..entry.name.len()].copy_from_slice(&entry.name);
            header.set_size(entry.data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(1_796_113_800);
            header.set_entry_type(entry.kind);
            if let Some(link) = &entry.link {
                header.set_link_name(link).unwrap();
            }
            header.set_cksum();
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(&entry.data);
            out.extend_from_slice(padding(entry.data.len() as u64));
        }
        out.extend_from_slice(&[0; 1024]);
        out
    }

    /// The three entries of a correct bundle around `data`, with `edit` applied to the manifest
    /// before `SHA256SUMS` is computed over it.
    fn entries_with(data: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<Raw> {
        let manifest = BundleManifest {
            format: BUNDLE_FORMAT,
            rigs_version: env!("CARGO_PKG_VERSION").to_string(),
            created: "2026-12-01T08:30:00Z".to_string(),
            images: images(),
            archive: BundleArchive {
                name: "image.tar.zst".to_string(),
                compression: BundleCompression::Zstd,
                bytes: data.len() as u64,
                sha256: hex(&Sha256::digest(data)),
                body_bytes: data.len() as u64 / 2,
            },
        };
        let mut value = serde_json::to_value(&manifest).unwrap();
        edit(&mut value);
        let json = serde_json::to_vec_pretty(&value).unwrap();
        let sums = format!(
            "{}  image.tar.zst\n{}  manifest.json\n",
            hex(&Sha256::digest(data)),
            hex(&Sha256::digest(&json))
        );
        vec![
            raw("image.tar.zst", data),
            raw("manifest.json", &json),
            raw("SHA256SUMS", sums.as_bytes()),
        ]
    }

    fn entries(data: &[u8]) -> Vec<Raw> {
        entries_with(data, |_| {})
    }

    fn write_raw(dir: &Path, entries: &[Raw]) -> PathBuf {
        let path = dir.join("crafted.bundle");
        fs::write(&path, tar_bytes(entries)).unwrap();
        path
    }

    #[test]
    fn round_trip_through_create_verify_and_extract() {
        for compression in [
            BundleCompression::Zstd,
            BundleCompression::Gzip,
            BundleCompression::None,
        ] {
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
                    sha256: hex(&Sha256::digest(&data)),
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
    fn standard_tools_read_a_bundle() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("app.bundle");
        let data = noise(CHUNK + 5, 11);
        write_bundle(&path, BundleCompression::Zstd, &data, 100);

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
        let manifest = BundleWriter::create(&path, BundleCompression::None)
            .unwrap()
            .finish(Vec::new())
            .unwrap();
        assert_eq!(manifest.archive.bytes, 0);
        assert_eq!(manifest.archive.body_bytes, 0);
        assert_eq!(verify(&path).unwrap().manifest, manifest);

        let mut writer = BundleWriter::create(&path, BundleCompression::Gzip).unwrap();
        writer.write_all(b"not really gzip").unwrap();
        let manifest = writer.finish(images()).unwrap();
        assert_eq!(manifest.archive.body_bytes, 15);
        assert_eq!(verify(&path).unwrap().manifest, manifest);
    }

    #[test]
    fn an_abandoned_writer_leaves_nothing_behind() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("app.bundle");
        let mut writer = BundleWriter::create(&path, BundleCompression::Zstd).unwrap();
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
        write_bundle(&path, BundleCompression::Zstd, b"data", 2);
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        verify(&path).unwrap();
    }

    #[test]
    fn a_flipped_byte_in_the_archive_is_a_sha256_mismatch() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("app.bundle");
        let data = noise(2 * CHUNK, 5);
        write_bundle(&path, BundleCompression::Zstd, &data, data.len());
        let verified = verify(&path).unwrap();
        let mut file = fs::read(&path).unwrap();
        file[(verified.archive_offset + verified.archive_len / 2) as usize] ^= 0x01;
        fs::write(&path, &file).unwrap();

        let problem = problem(verify(&path));
        assert!(problem.contains("sha256 mismatch"), "{problem}");
        assert!(problem.contains("image.tar.zst"), "{problem}");
        let out = tmp.path().join("out");
        assert!(extract(&path, &out).is_err());
        assert_nothing_extracted(&out);
    }

    #[test]
    fn a_flipped_byte_elsewhere_is_caught() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("app.bundle");
        write_bundle(&path, BundleCompression::Zstd, &noise(5000, 9), 4000);
        let good = fs::read(&path).unwrap();
        let manifest_data = 512 * (1 + 5000usize.div_ceil(512) + 1);
        for (at, expected) in [
            (0, "checksum"),
            (124, "checksum"),
            (manifest_data + 20, "sha256 mismatch for \"manifest.json\""),
            (good.len() - 1, "lone zero block"),
        ] {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            fs::write(&path, &bad).unwrap();
            let problem = problem(verify(&path));
            assert!(problem.contains(expected), "byte {at}: {problem}");
        }
    }

    #[test]
    fn a_truncated_bundle_is_refused() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("app.bundle");
        let data = noise(CHUNK + 700, 13);
        write_bundle(&path, BundleCompression::Zstd, &data, 10);
        let good = fs::read(&path).unwrap();
        let archive_end = 512 + data.len().div_ceil(512) * 512;
        for cut in [
            0,
            100,
            512,
            512 + 1000,
            512 + data.len(),
            archive_end,
            archive_end + 300,
            good.len() - 1024,
            good.len() - 600,
            good.len() - 512,
            good.len() - 1,
        ] {
            fs::write(&path, &good[..cut]).unwrap();
            let problem = problem(verify(&path));
            assert!(problem.contains("truncated"), "cut at {cut}: {problem}");
            let out = tmp.path().join("out");
            assert!(extract(&path, &out).is_err());
            assert_nothing_extracted(&out);
        }
    }

    #[test]
    fn a_crafted_bundle_without_defects_verifies() {
        let tmp = TempDir::new().unwrap();
        let path = write_raw(tmp.path(), &entries(b"some archive bytes"));
        let verified = verify(&path).unwrap();
        assert_eq!(verified.archive_len, 18);
        assert_eq!(verified.archive_offset, 512);
    }

    #[test]
    fn trailing_zero_records_are_accepted_and_trailing_data_is_not() {
        let tmp = TempDir::new().unwrap();
        let mut bytes = tar_bytes(&entries(b"archive"));
        bytes.resize(bytes.len().div_ceil(10240) * 10240, 0);
        let path = tmp.path().join("padded.bundle");
        fs::write(&path, &bytes).unwrap();
        verify(&path).unwrap();

        let mut smuggled = tar_bytes(&entries(b"archive"));
        smuggled.extend(tar_bytes(&[raw("evil", b"hidden")]));
        fs::write(&path, &smuggled).unwrap();
        assert!(problem(verify(&path)).contains("after the end-of-archive marker"));
    }

    #[test]
    fn an_extra_entry_is_refused() {
        let tmp = TempDir::new().unwrap();
        let mut crafted = entries(b"archive");
        crafted.insert(1, raw("notes.txt", b"hello"));
        let path = write_raw(tmp.path(), &crafted);
        let problem = problem(verify(&path));
        assert!(
            problem.contains("unexpected entry \"notes.txt\""),
            "{problem}"
        );
        let out = tmp.path().join("out");
        assert!(extract(&path, &out).is_err());
        assert_nothing_extracted(&out);
    }

    #[test]
    fn a_duplicate_entry_is_refused() {
        for duplicated in 0..3 {
            let tmp = TempDir::new().unwrap();
            let mut crafted = entries(b"archive");
            let copy = Raw {
                name: crafted[duplicated].name.clone(),
                kind: EntryType::Regular,
                link: None,
                data: crafted[duplicated].data.clone(),
            };
            crafted.push(copy);
            let path = write_raw(tmp.path(), &crafted);
            let problem = problem(verify(&path));
            assert!(problem.contains("duplicate entry"), "{problem}");
        }

        let tmp = TempDir::new().unwrap();
        let mut crafted = entries(b"archive");
        crafted.insert(1, raw("image.tar", b"second"));
        let path = write_raw(tmp.path(), &crafted);
        assert!(problem(verify(&path)).contains("two image archives"));
    }

    #[test]
    fn entries_that_could_escape_the_directory_are_refused() {
        let tmp = TempDir::new().unwrap();
        let out = tmp.path().join("out");
        let absolute = tmp.path().join("absolute-evil");
        let absolute = absolute.to_str().unwrap();
        for name in ["../evil", "/etc/x", absolute, "sub/evil", "..", ".", "a\\b"] {
            let mut crafted = entries(b"archive");
            crafted.insert(1, raw(name, b"evil"));
            let path = write_raw(tmp.path(), &crafted);
            let problem = problem(verify(&path));
            assert!(
                problem.contains("not a plain file name"),
                "{name}: {problem}"
            );
            assert!(extract(&path, &out).is_err());
            assert_nothing_extracted(&out);
        }
        assert!(!tmp.path().join("evil").exists());
        assert!(!Path::new(absolute).exists());
        assert!(!Path::new("/etc/x").exists());
    }

    #[test]
    fn links_and_special_entries_are_refused() {
        let tmp = TempDir::new().unwrap();
        let out = tmp.path().join("out");
        let victim = tmp.path().join("victim");
        for (kind, link, expected) in [
            (EntryType::Symlink, victim.to_str(), "symbolic link"),
            (EntryType::Link, Some(MANIFEST), "hard link"),
            (EntryType::Directory, None, "directory"),
            (EntryType::Fifo, None, "named pipe"),
            (EntryType::XHeader, None, "pax extended header"),
            (EntryType::GNULongName, None, "GNU long-name record"),
            (EntryType::Continuous, None, "special entry"),
        ] {
            let mut crafted = entries(b"archive");
            crafted[0] = Raw {
                name: b"image.tar.zst".to_vec(),
                kind,
                link: link.map(str::to_string),
                data: Vec::new(),
            };
            let path = write_raw(tmp.path(), &crafted);
            let problem = problem(verify(&path));
            assert!(problem.contains(expected), "{kind:?}: {problem}");
            assert!(extract(&path, &out).is_err());
            assert_nothing_extracted(&out);
            assert!(fs::symlink_metadata(out.join("image.tar.zst")).is_err());
            assert!(!victim.exists());
        }
    }

    #[test]
    fn an_unsupported_format_names_the_supported_one() {
        let tmp = TempDir::new().unwrap();
        let crafted = entries_with(b"archive", |manifest| {
            manifest["format"] = 2.into();
            manifest["rigs_version"] = "9.0.0".into();
            manifest["archive"] = "shaped differently".into();
        });
        let path = write_raw(tmp.path(), &crafted);
        let problem = problem(verify(&path));
        assert!(problem.contains("format 2"), "{problem}");
        assert!(problem.contains("supports only format 1"), "{problem}");
        assert!(problem.contains("9.0.0"), "{problem}");
    }

    #[test]
    fn missing_entries_are_refused() {
        for (removed, expected) in [
            (0, "no image archive entry"),
            (1, "no manifest.json entry"),
            (2, "no SHA256SUMS entry"),
        ] {
            let tmp = TempDir::new().unwrap();
            let mut crafted = entries(b"archive");
            crafted.remove(removed);
            let path = write_raw(tmp.path(), &crafted);
            let problem = problem(verify(&path));
            assert!(problem.contains(expected), "{problem}");
        }
    }

    #[test]
    fn sha256sums_must_cover_exactly_the_entries() {
        let data = b"archive";
        let good = String::from_utf8(entries(data)[2].data.clone()).unwrap();
        let first = good.lines().next().unwrap().to_string();
        let zeros = "0".repeat(64);
        for (sums, expected) in [
            (first.clone(), "no line for \"manifest.json\""),
            (
                format!("{good}{zeros}  other\n"),
                "which is not in the bundle",
            ),
            (format!("{good}{first}\n"), "twice"),
            (format!("{good}garbage\n"), "line 3 is not"),
            (format!("{good}\n"), "line 3 is not"),
        ] {
            let tmp = TempDir::new().unwrap();
            let mut crafted = entries(data);
            crafted[2].data = sums.into_bytes();
            let path = write_raw(tmp.path(), &crafted);
            let problem = problem(verify(&path));
            assert!(problem.contains(expected), "{problem}");
        }

        let tmp = TempDir::new().unwrap();
        let mut crafted = entries(data);
        let binary_mode_uppercase: String = good
            .lines()
            .map(|line| {
                let (digest, name) = line.split_once("  ").unwrap();
                format!("{} *{name}\n", digest.to_uppercase())
            })
            .collect();
        crafted[2].data = binary_mode_uppercase.into_bytes();
        verify(&write_raw(tmp.path(), &crafted)).unwrap();
    }

    #[test]
    fn the_manifest_must_agree_with_the_archive_entry() {
        let data = b"archive bytes";
        type Edit = fn(&mut serde_json::Value);
        let edits: [(Edit, &str); 6] = [
            (|m| m["archive"]["bytes"] = 14.into(), "the entry holds 13"),
            (
                |m| m["archive"]["sha256"] = "0".repeat(64).into(),
                "sha256 mismatch for the archive",
            ),
            (
                |m| m["archive"]["name"] = "image.tar.gz".into(),
                "names the archive",
            ),
            (
                |m| m["archive"]["compression"] = "gzip".into(),
                "compressed with gzip",
            ),
            (
                |m| m["archive"]["body_bytes"] = 14.into(),
                "more than the whole",
            ),
            (
                |m| m["images"] = "none".into(),
                "does not describe a bundle",
            ),
        ];
        for (edit, expected) in edits {
            let tmp = TempDir::new().unwrap();
            let path = write_raw(tmp.path(), &entries_with(data, edit));
            let problem = problem(verify(&path));
            assert!(problem.contains(expected), "{problem}");
        }
    }

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
        write_bundle(&path, BundleCompression::Zstd, &data, body);
        let verified = verify(&path).unwrap();
        // Another valid bundle is renamed into the verified one's place.
        let other = tmp.path().join("other.bundle");
        write_bundle(
            &other,
            BundleCompression::Zstd,
            &noise(data.len(), 12),
            body,
        );
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
        write_bundle(&path, BundleCompression::Zstd, &data, body);
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

    #[test]
    fn errors_say_what_happened_where_and_what_to_do() {
        let tmp = TempDir::new().unwrap();
        let missing = tmp.path().join("missing.bundle");
        let error = verify(&missing).unwrap_err();
        assert!(matches!(error, BundleError::Io { .. }));
        assert_eq!(error.path(), missing);
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
            (BundleCompression::Zstd, "\"zstd\"", "image.tar.zst"),
            (BundleCompression::Gzip, "\"gzip\"", "image.tar.gz"),
            (BundleCompression::None, "\"none\"", "image.tar"),
        ] {
            assert_eq!(serde_json::to_string(&compression).unwrap(), json);
            assert_eq!(json.trim_matches('"'), compression.as_str());
            assert_eq!(compression.archive_name(), name);
            assert_eq!(format!("image{}", compression.extension()), name);
            assert_eq!(
                BundleCompression::from_archive_name(name),
                Some(compression)
            );
        }
        assert_eq!(BundleCompression::from_archive_name("image.tar.xz"), None);
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

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
