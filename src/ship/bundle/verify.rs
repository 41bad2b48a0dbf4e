//! Checking a bundle file without Docker, trusting nothing in it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::compose::{check_tar, ComposeFileAt, COMPOSE_ENTRY, COMPOSE_MAX};
use super::{padding, BundleArchive, BundleError, BundleManifest, VerifiedBundle};
use super::{BLOCK, CHUNK, MANIFEST, READABLE_FORMATS, SUMS, ZEROS};
use crate::hex;
use crate::ship::Compression;

/// `manifest.json` and `SHA256SUMS` are read into memory, so a bundle may not make them huge.
const SMALL_ENTRY_MAX: u64 = 16 * 1024 * 1024;

/// Checks everything without Docker: the tar structure, that exactly the expected entries are
/// present (no others, no duplicates), that every entry is a regular file with a plain relative
/// name, that `SHA256SUMS` and `manifest.json` agree with the content, that the format is one of
/// [`READABLE_FORMATS`], that a compose project's `compose.tar` holds exactly the files the
/// manifest lists, and that the file is complete. The file is opened once; the result keeps
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

/// Where one entry's data lies in the bundle and what it hashes to.
pub(super) struct Located {
    pub(super) name: String,
    pub(super) offset: u64,
    pub(super) len: u64,
    pub(super) sha256: String,
}

pub(super) struct Inspected {
    pub(super) manifest: BundleManifest,
    pub(super) archive: Located,
    pub(super) manifest_entry: Located,
    pub(super) sums: Located,
    /// The `compose.tar` entry, its bytes and the files in it, if the bundle carries a project.
    pub(super) compose: Option<(Located, Vec<u8>, Vec<ComposeFileAt>)>,
}

/// Walks the bundle open as `file` (at its start), which was opened from `path`.
pub(super) fn inspect(file: &mut File, path: &Path) -> Result<Inspected, BundleError> {
    let corrupt = |problem: String| BundleError::corrupt(path, problem);
    let file_len = file.metadata().map_err(|e| BundleError::io(path, e))?.len();
    let mut archive: Option<Located> = None;
    let mut manifest: Option<(Located, Vec<u8>)> = None;
    let mut sums: Option<(Located, Vec<u8>)> = None;
    let mut compose: Option<(Located, Vec<u8>)> = None;
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
        let is_archive = Compression::from_archive_name(&name).is_some();
        if !is_archive && name != MANIFEST && name != SUMS && name != COMPOSE_ENTRY {
            return Err(corrupt(format!(
                "unexpected entry {name:?}; a bundle holds only the image archive, \
                 {COMPOSE_ENTRY}, {MANIFEST} and {SUMS}"
            )));
        }
        let duplicate = match name.as_str() {
            MANIFEST => manifest.is_some(),
            SUMS => sums.is_some(),
            COMPOSE_ENTRY => compose.is_some(),
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
        let max = if name == COMPOSE_ENTRY {
            COMPOSE_MAX
        } else {
            SMALL_ENTRY_MAX
        };
        if !is_archive && len > max {
            return Err(corrupt(format!(
                "entry {name:?} is {len} bytes, more than the {} MiB allowed",
                max >> 20
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
            COMPOSE_ENTRY => compose = Some((entry, bytes)),
            _ => archive = Some(entry),
        }
        file.seek(SeekFrom::Start(next))
            .map_err(|e| BundleError::io(path, e))?;
        offset = next;
    }

    let archive = archive.ok_or_else(|| {
        corrupt(format!(
            "there is no image archive entry ({}, {} or {})",
            Compression::Zstd.archive_name(),
            Compression::Gzip.archive_name(),
            Compression::None.archive_name()
        ))
    })?;
    let (manifest_entry, manifest_bytes) =
        manifest.ok_or_else(|| corrupt(format!("there is no {MANIFEST} entry")))?;
    let (sums, sums_bytes) = sums.ok_or_else(|| corrupt(format!("there is no {SUMS} entry")))?;
    let mut listed = vec![&archive, &manifest_entry];
    if let Some((entry, _)) = &compose {
        listed.push(entry);
    }
    check_sums(&sums_bytes, &listed, path)?;
    let manifest = parse_manifest(&manifest_bytes, path)?;
    check_manifest_archive(&manifest.archive, &archive, path)?;
    let compose = match (compose, &manifest.compose) {
        (None, None) => None,
        (Some(_), _) | (None, Some(_)) if manifest.format < 2 => {
            return Err(corrupt(format!(
                "the bundle has format {}, which carries no compose project, yet it has one",
                manifest.format
            )))
        }
        (Some(_), None) => {
            return Err(corrupt(format!(
                "the bundle holds {COMPOSE_ENTRY}, but {MANIFEST} describes no compose project"
            )))
        }
        (None, Some(_)) => {
            return Err(corrupt(format!(
                "{MANIFEST} describes a compose project, but there is no {COMPOSE_ENTRY} entry"
            )))
        }
        (Some((entry, bytes)), Some(project)) => {
            let files = check_tar(&bytes, project).map_err(corrupt)?;
            Some((entry, bytes, files))
        }
    };
    Ok(Inspected {
        manifest,
        archive,
        manifest_entry,
        sums,
        compose,
    })
}

/// The entry's name, once its header has proved intact and it is a plain regular file.
pub(super) fn entry_name(header: &Header, offset: u64, path: &Path) -> Result<String, BundleError> {
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
pub(super) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

pub(super) fn not_plain(path: &Path, name: &str) -> BundleError {
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

fn check_sums(sums: &[u8], entries: &[&Located], path: &Path) -> Result<(), BundleError> {
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
        Some(format) if READABLE_FORMATS.iter().any(|&f| u64::from(f) == format) => {}
        Some(format) => {
            let made_by = value
                .get("rigs_version")
                .and_then(serde_json::Value::as_str)
                .map(|version| format!(", made by rigs {version:?},"))
                .unwrap_or_default();
            return Err(corrupt(format!(
                "the bundle{made_by} has format {format}, but rigs {} reads only formats {}",
                env!("CARGO_PKG_VERSION"),
                READABLE_FORMATS.map(|f| f.to_string()).join(" and ")
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
            claimed.compression.name(),
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
pub(super) fn stream(
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
    Ok(hex::encode(&hasher.finalize()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ship::bundle::extract;
    use crate::ship::bundle::testing::*;
    use crate::ship::bundle::{build_compose_tar, BundleCompose, BundleProjectFile};
    use crate::ship::noise;
    use std::fs;
    use tempfile::TempDir;

    #[test]
    fn a_flipped_byte_in_the_archive_is_a_sha256_mismatch() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("app.bundle");
        let data = noise(2 * CHUNK, 5);
        write_bundle(&path, Compression::Zstd, &data, data.len());
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
        write_bundle(&path, Compression::Zstd, &noise(5000, 9), 4000);
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
        write_bundle(&path, Compression::Zstd, &data, 10);
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
            manifest["format"] = 3.into();
            manifest["rigs_version"] = "9.0.0".into();
            manifest["archive"] = "shaped differently".into();
        });
        let path = write_raw(tmp.path(), &crafted);
        let problem = problem(verify(&path));
        assert!(problem.contains("format 3"), "{problem}");
        assert!(problem.contains("reads only formats 1 and 2"), "{problem}");
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
    fn format_1_bundles_still_verify() {
        let tmp = TempDir::new().unwrap();
        let crafted = entries_with(b"archive", |manifest| manifest["format"] = 1.into());
        let verified = verify(&write_raw(tmp.path(), &crafted)).unwrap();
        assert_eq!(verified.manifest.format, 1);
        assert_eq!(verified.manifest.compose, None);
    }

    fn project() -> (Vec<u8>, BundleCompose) {
        let (tar, listed) = build_compose_tar(&project_files(), 0).unwrap();
        let project = BundleCompose {
            project_files: listed,
            compose_files: vec!["compose.yaml".into()],
            ..BundleCompose::default()
        };
        (tar, project)
    }

    #[test]
    fn a_compose_project_must_match_its_manifest() {
        let tmp = TempDir::new().unwrap();
        let (tar, project) = project();
        let good = entries_with_compose(b"archive", &tar, &project, 2);
        let verified = verify(&write_raw(tmp.path(), &good)).unwrap();
        assert_eq!(verified.manifest.compose, Some(project.clone()));

        let mut changed = project.clone();
        changed.project_files[1].sha256 = "0".repeat(64);
        let crafted = entries_with_compose(b"archive", &tar, &changed, 2);
        let found = problem(verify(&write_raw(tmp.path(), &crafted)));
        assert!(
            found.contains("sha256 mismatch for \"env/web.env\""),
            "{found}"
        );

        let mut without_entry = good;
        without_entry.remove(1);
        let found = problem(verify(&write_raw(tmp.path(), &without_entry)));
        assert!(found.contains("compose.tar"), "{found}");

        let old = entries_with_compose(b"archive", &tar, &project, 1);
        let found = problem(verify(&write_raw(tmp.path(), &old)));
        assert!(
            found.contains("format 1, which carries no compose project"),
            "{found}"
        );

        let mut unlisted = entries_with_compose(b"archive", &tar, &project, 2);
        unlisted[2] = entries(b"archive").remove(1);
        let sums = String::from_utf8(entries(b"archive")[2].data.clone()).unwrap();
        let compose_sum = String::from_utf8(unlisted[3].data.clone()).unwrap();
        let compose_line = compose_sum
            .lines()
            .find(|l| l.ends_with("compose.tar"))
            .unwrap();
        unlisted[3].data = format!("{sums}{compose_line}\n").into_bytes();
        let found = problem(verify(&write_raw(tmp.path(), &unlisted)));
        assert!(found.contains("describes no compose project"), "{found}");
    }

    #[test]
    fn a_compose_tar_that_could_escape_is_refused() {
        use sha2::{Digest, Sha256};
        let tmp = TempDir::new().unwrap();
        let out = tmp.path().join("out");
        let absolute = tmp.path().join("abs-evil");
        for (name, kind, link, expected) in [
            (
                absolute.to_str().unwrap(),
                EntryType::Regular,
                None,
                "not a plain relative path",
            ),
            (
                "../evil",
                EntryType::Regular,
                None,
                "not a plain relative path",
            ),
            (
                "sub/../../evil",
                EntryType::Regular,
                None,
                "not a plain relative path",
            ),
            (
                "evil",
                EntryType::Symlink,
                Some("/etc/passwd"),
                "not a regular file",
            ),
            ("evil", EntryType::Link, Some("../x"), "not a regular file"),
        ] {
            let tar = crate::ship::bundle::compose::tests::crafted(name, kind, link);
            let project = BundleCompose {
                project_files: vec![BundleProjectFile {
                    name: name.to_string(),
                    bytes: 4,
                    sha256: hex::encode(&Sha256::digest(b"evil")),
                    private: false,
                }],
                ..BundleCompose::default()
            };
            let crafted = entries_with_compose(b"archive", &tar, &project, 2);
            let path = write_raw(tmp.path(), &crafted);
            let problem = problem(verify(&path));
            assert!(problem.contains(expected), "{name}: {problem}");
            assert!(extract(&path, &out).is_err());
            assert_nothing_extracted(&out);
        }
        assert!(!absolute.exists() && !tmp.path().join("evil").exists());
    }
}
