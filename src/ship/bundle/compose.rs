//! The compose project a format-2 bundle may carry: the `compose.tar` entry and its manifest part.
//!
//! `compose.tar` is a plain uncompressed tar of the project's files under their names in the
//! project (`compose.yaml`, `env/web.env`), so `tar -xf compose.tar` gives a folder that
//! `docker compose` can use as it is. Unlike the outer tar, names may have folders, but the same
//! distrust applies: the reader walks it block by block and accepts only regular files with
//! relative names that stay inside the folder, each listed in the manifest with its length and
//! digest, so nothing in it can land anywhere else or differ from what was recorded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::{padding, BLOCK, ZEROS};
use crate::hex;

/// The entry name of the compose project in a bundle.
pub const COMPOSE_ENTRY: &str = "compose.tar";

/// The most `compose.tar` may hold: the reader keeps it in memory.
pub(super) const COMPOSE_MAX: u64 = 64 * 1024 * 1024;

/// `manifest.json`'s `compose`: the project a bundle carries besides its images.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct BundleCompose {
    /// Every file in `compose.tar`, in its order.
    pub project_files: Vec<BundleProjectFile>,
    /// The compose files' names, in `-f` order.
    pub compose_files: Vec<String>,
    /// The interpolation variables given with `--set` when the bundle was made.
    pub variables: BTreeMap<String, String>,
    /// Each service and the image reference it runs, as Compose resolved it then.
    pub services: BTreeMap<String, String>,
}

/// One file of a bundle's compose project.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleProjectFile {
    /// Its path in the project: relative, '/'-separated.
    pub name: String,
    pub bytes: u64,
    /// The lowercase hex SHA-256 of its content.
    pub sha256: String,
    /// An env_file or secret: written with mode 0600.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

/// What [`BundleWriter::finish_with`](super::BundleWriter::finish_with) puts into a bundle for its
/// compose project: the manifest part and the bytes of `compose.tar` (from [`build_tar`], whose
/// list of files `manifest.project_files` must be).
pub struct ComposePart {
    pub manifest: BundleCompose,
    pub tar: Vec<u8>,
}

/// A file to put into `compose.tar`.
pub struct ProjectFileData {
    pub name: String,
    pub data: Vec<u8>,
    pub private: bool,
}

/// One file found in a checked `compose.tar`: where its content lies in the tar's bytes.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ComposeFileAt {
    pub(super) name: String,
    pub(super) start: usize,
    pub(super) len: usize,
    pub(super) private: bool,
}

/// The bytes of `compose.tar` for `files`, and the manifest's list of them.
pub fn build_tar(
    files: &[ProjectFileData],
    mtime: u64,
) -> Result<(Vec<u8>, Vec<BundleProjectFile>), String> {
    let mut out = Vec::new();
    let mut listed = Vec::new();
    for file in files {
        if !is_safe_name(&file.name) {
            return Err(format!(
                "`{}` is not a plain relative file name and cannot go into a bundle",
                file.name
            ));
        }
        let mut header = Header::new_ustar();
        header.set_path(&file.name).map_err(|_| {
            format!(
                "the project file name `{}` is too long for a bundle (at most 255 bytes, and \
                 100 after its last folder)",
                file.name
            )
        })?;
        header.set_size(file.data.len() as u64);
        header.set_mode(if file.private { 0o600 } else { 0o644 });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        header.set_entry_type(EntryType::Regular);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&file.data);
        out.extend_from_slice(padding(file.data.len() as u64));
        listed.push(BundleProjectFile {
            name: file.name.clone(),
            bytes: file.data.len() as u64,
            sha256: hex::encode(&Sha256::digest(&file.data)),
            private: file.private,
        });
    }
    out.extend_from_slice(&ZEROS);
    out.extend_from_slice(&ZEROS);
    if out.len() as u64 > COMPOSE_MAX {
        return Err(format!(
            "the compose project's files add up to more than the {} MiB a bundle carries: \
             keep large data out of configs and secrets",
            COMPOSE_MAX >> 20
        ));
    }
    Ok((out, listed))
}

/// Checks `compose.tar` against the manifest: exactly the listed files, in order, each a regular
/// file with a safe name and the recorded length and digest, then the end marker and nothing but
/// zeros. Also checks that the manifest's compose files are among them.
pub(super) fn check_tar(
    bytes: &[u8],
    manifest: &BundleCompose,
) -> Result<Vec<ComposeFileAt>, String> {
    for name in &manifest.compose_files {
        if !manifest.project_files.iter().any(|f| &f.name == name) {
            return Err(format!(
                "the manifest names compose file {name:?}, which is not among the project files"
            ));
        }
    }
    let mut found = Vec::new();
    let mut offset = 0usize;
    let block = BLOCK as usize;
    loop {
        let Some(raw) = bytes.get(offset..offset + block) else {
            return Err(format!(
                "{COMPOSE_ENTRY} is truncated: it ends at byte {offset} without the tar \
                 end-of-archive marker"
            ));
        };
        if raw == ZEROS {
            if bytes[offset..].iter().any(|&b| b != 0) {
                return Err(format!(
                    "{COMPOSE_ENTRY} has data after its end-of-archive marker at byte {offset}"
                ));
            }
            break;
        }
        let header = Header::from_byte_slice(raw);
        let mut recomputed = header.clone();
        recomputed.set_cksum();
        if header.cksum().ok() != recomputed.cksum().ok() {
            return Err(format!(
                "{COMPOSE_ENTRY}: the tar header at byte {offset} fails its checksum"
            ));
        }
        let name = String::from_utf8(header.path_bytes().into_owned()).map_err(|_| {
            format!("{COMPOSE_ENTRY}: the entry at byte {offset} has a name that is not UTF-8")
        })?;
        if !is_safe_name(&name) {
            return Err(format!(
                "{COMPOSE_ENTRY}: entry {name:?} is not a plain relative path; a compose project \
                 holds only files inside its folder"
            ));
        }
        if header.entry_type() != EntryType::Regular {
            return Err(format!(
                "{COMPOSE_ENTRY}: entry {name:?} is not a regular file; a compose project holds \
                 only regular files, no links or folders"
            ));
        }
        if found.iter().any(|f: &ComposeFileAt| f.name == name) {
            return Err(format!("{COMPOSE_ENTRY} holds {name:?} twice"));
        }
        let Some(expected) = manifest.project_files.get(found.len()) else {
            return Err(format!(
                "{COMPOSE_ENTRY} holds {name:?}, which the manifest does not list"
            ));
        };
        if expected.name != name {
            return Err(format!(
                "{COMPOSE_ENTRY} holds {name:?} where the manifest lists {:?}",
                expected.name
            ));
        }
        let len = header
            .entry_size()
            .map_err(|e| format!("{COMPOSE_ENTRY}: entry {name:?} has an unreadable size: {e}"))?;
        let start = offset + block;
        let data = usize::try_from(len)
            .ok()
            .and_then(|len| bytes.get(start..start.checked_add(len)?))
            .ok_or_else(|| {
                format!("{COMPOSE_ENTRY} is truncated: entry {name:?} needs {len} bytes")
            })?;
        if expected.bytes != len {
            return Err(format!(
                "{COMPOSE_ENTRY}: the manifest says {name:?} is {} bytes, but it holds {len}",
                expected.bytes
            ));
        }
        let digest = hex::encode(&Sha256::digest(data));
        if !expected.sha256.eq_ignore_ascii_case(&digest) {
            return Err(format!(
                "sha256 mismatch for {name:?} in {COMPOSE_ENTRY}: the manifest lists {} but the \
                 content hashes to {digest}",
                expected.sha256
            ));
        }
        found.push(ComposeFileAt {
            name,
            start,
            len: data.len(),
            private: expected.private,
        });
        offset = start + data.len() + padding(len).len();
    }
    if found.len() != manifest.project_files.len() {
        return Err(format!(
            "{COMPOSE_ENTRY} lacks {:?}, which the manifest lists",
            manifest.project_files[found.len()].name
        ));
    }
    Ok(found)
}

/// A relative path of plain components that, joined to a folder, stays inside it.
pub(super) fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['\\', '\0'])
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn files() -> Vec<ProjectFileData> {
        vec![
            ProjectFileData {
                name: "compose.yaml".into(),
                data: b"services:\n  web:\n    image: app:1\n".to_vec(),
                private: false,
            },
            ProjectFileData {
                name: "env/web.env".into(),
                data: b"TOKEN=s3cret\n".to_vec(),
                private: true,
            },
        ]
    }

    fn manifest(listed: Vec<BundleProjectFile>) -> BundleCompose {
        BundleCompose {
            project_files: listed,
            compose_files: vec!["compose.yaml".into()],
            ..BundleCompose::default()
        }
    }

    #[test]
    fn standard_tar_reads_what_build_writes() {
        let (bytes, listed) = build_tar(&files(), 1_796_113_800).unwrap();
        let found = check_tar(&bytes, &manifest(listed.clone())).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(&bytes[found[1].start..][..found[1].len], b"TOKEN=s3cret\n");
        assert!(found[1].private && !found[0].private);
        let mut archive = tar::Archive::new(&bytes[..]);
        let names: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("compose.yaml".into(), 0o644),
                ("env/web.env".into(), 0o600)
            ]
        );
    }

    #[test]
    fn unsafe_names_are_not_written() {
        for name in ["../x", "/etc/x", "a/../b", "a//b", "./a", "", "a\\b"] {
            let file = ProjectFileData {
                name: name.into(),
                data: Vec::new(),
                private: false,
            };
            assert!(build_tar(&[file], 0).is_err(), "{name}");
        }
    }

    #[test]
    fn changed_content_or_listing_is_refused() {
        let (bytes, listed) = build_tar(&files(), 0).unwrap();
        let mut bad = bytes.clone();
        bad[512 + 3] ^= 1;
        let e = check_tar(&bad, &manifest(listed.clone())).unwrap_err();
        assert!(e.contains("sha256 mismatch for \"compose.yaml\""), "{e}");

        let mut fewer = listed.clone();
        fewer.pop();
        let e = check_tar(&bytes, &manifest(fewer)).unwrap_err();
        assert!(e.contains("does not list"), "{e}");

        let mut more = listed.clone();
        more.push(listed[0].clone());
        let e = check_tar(&bytes, &manifest(more)).unwrap_err();
        assert!(e.contains("lacks"), "{e}");

        let twice: Vec<ProjectFileData> = files().into_iter().chain(files()).collect();
        let (doubled, doubled_list) = build_tar(&twice, 0).unwrap();
        let e = check_tar(&doubled, &manifest(doubled_list)).unwrap_err();
        assert!(e.contains("\"compose.yaml\" twice"), "{e}");

        let mut other = manifest(listed.clone());
        other.compose_files = vec!["prod.yaml".into()];
        assert!(check_tar(&bytes, &other).unwrap_err().contains("prod.yaml"));

        let e = check_tar(&bytes[..bytes.len() - 1024], &manifest(listed.clone())).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"x");
        let e = check_tar(&trailing, &manifest(listed)).unwrap_err();
        assert!(e.contains("after its end-of-archive"), "{e}");
    }

    /// A tar of one hand-made entry with this name, kind and link, for what `build_tar` refuses
    /// to write.
    pub(crate) fn crafted(name: &str, kind: EntryType, link: Option<&str>) -> Vec<u8> {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(4);
        header.set_mode(0o644);
        header.set_entry_type(kind);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        let mut out = header.as_bytes().to_vec();
        out.extend_from_slice(b"evil");
        out.extend_from_slice(padding(4));
        out.extend_from_slice(&[0; 1024]);
        out
    }

    #[test]
    fn escaping_names_and_links_are_refused() {
        for (name, kind, link, expected) in [
            (
                "/etc/evil",
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
                "a/../../evil",
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
            (
                "evil",
                EntryType::Link,
                Some("compose.yaml"),
                "not a regular file",
            ),
            ("evil", EntryType::Directory, None, "not a regular file"),
        ] {
            let bytes = crafted(name, kind, link);
            let listed = vec![BundleProjectFile {
                name: name.into(),
                bytes: 4,
                sha256: hex::encode(&Sha256::digest(b"evil")),
                private: false,
            }];
            let mut m = manifest(listed);
            m.compose_files.clear();
            let e = check_tar(&bytes, &m).unwrap_err();
            assert!(e.contains(expected), "{name} {kind:?}: {e}");
        }
    }
}
