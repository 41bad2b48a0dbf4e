//! Bundles for the unit tests: written by the writer, or crafted entry by entry.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::*;
use crate::hex;

pub(super) fn images() -> Vec<BundleImage> {
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

pub(super) fn write_in_pieces(writer: &mut BundleWriter, mut data: &[u8]) {
    let mut piece = 1;
    while !data.is_empty() {
        let (now, rest) = data.split_at(piece.min(data.len()));
        writer.write_all(now).unwrap();
        data = rest;
        piece = piece * 3 + 7;
    }
}

/// Streams `data` into a bundle at `path`, marking the body end after `body` bytes.
pub(super) fn write_bundle(
    path: &Path,
    compression: Compression,
    data: &[u8],
    body: usize,
) -> BundleManifest {
    let mut writer = BundleWriter::create(path, compression).unwrap();
    write_in_pieces(&mut writer, &data[..body]);
    writer.mark_body_end();
    write_in_pieces(&mut writer, &data[body..]);
    writer.finish(images()).unwrap()
}

pub(super) fn problem<T: fmt::Debug>(result: Result<T, BundleError>) -> String {
    match result {
        Err(BundleError::Corrupt { problem, .. }) => problem,
        other => panic!("expected a Corrupt error, got {other:?}"),
    }
}

pub(super) fn assert_nothing_extracted(dir: &Path) {
    if dir.exists() {
        let names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(names.is_empty(), "extract wrote {names:?}");
    }
}

/// One hand-made tar entry; the name goes into the header verbatim, unchecked.
pub(super) struct Raw {
    pub(super) name: Vec<u8>,
    pub(super) kind: EntryType,
    pub(super) link: Option<String>,
    pub(super) data: Vec<u8>,
}

pub(super) fn raw(name: &str, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind: EntryType::Regular,
        link: None,
        data: data.to_vec(),
    }
}

pub(super) fn tar_bytes(entries: &[Raw]) -> Vec<u8> {
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
pub(super) fn entries_with(data: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<Raw> {
    let manifest = BundleManifest {
        format: BUNDLE_FORMAT,
        rigs_version: env!("CARGO_PKG_VERSION").to_string(),
        created: "2026-12-01T08:30:00Z".to_string(),
        images: images(),
        archive: BundleArchive {
            name: "image.tar.zst".to_string(),
            compression: Compression::Zstd,
            bytes: data.len() as u64,
            sha256: hex::encode(&Sha256::digest(data)),
            body_bytes: data.len() as u64 / 2,
        },
        compose: None,
    };
    let mut value = serde_json::to_value(&manifest).unwrap();
    edit(&mut value);
    let json = serde_json::to_vec_pretty(&value).unwrap();
    let sums = format!(
        "{}  image.tar.zst\n{}  manifest.json\n",
        hex::encode(&Sha256::digest(data)),
        hex::encode(&Sha256::digest(&json))
    );
    vec![
        raw("image.tar.zst", data),
        raw("manifest.json", &json),
        raw("SHA256SUMS", sums.as_bytes()),
    ]
}

/// A correct format-2 bundle around `data` that carries `tar` as `compose.tar`, described by
/// `project` in the manifest (nothing checks that they agree), with this `format`.
pub(super) fn entries_with_compose(
    data: &[u8],
    tar: &[u8],
    project: &BundleCompose,
    format: u32,
) -> Vec<Raw> {
    let mut crafted = entries_with(data, |manifest| {
        manifest["compose"] = serde_json::to_value(project).unwrap();
        manifest["format"] = format.into();
    });
    let sums = String::from_utf8(crafted[2].data.clone()).unwrap();
    let sums = format!(
        "{sums}{}  {COMPOSE_ENTRY}\n",
        hex::encode(&Sha256::digest(tar))
    );
    crafted[2].data = sums.into_bytes();
    crafted.insert(1, raw(COMPOSE_ENTRY, tar));
    crafted
}

/// A compose project of two files, one private.
pub(super) fn project_files() -> Vec<ProjectFileData> {
    vec![
        ProjectFileData {
            name: "compose.yaml".into(),
            data: b"services:\n  web:\n    image: app:1\n    env_file: env/web.env\n".to_vec(),
            private: false,
        },
        ProjectFileData {
            name: "env/web.env".into(),
            data: b"TOKEN=s3cret\n".to_vec(),
            private: true,
        },
    ]
}

pub(super) fn entries(data: &[u8]) -> Vec<Raw> {
    entries_with(data, |_| {})
}

pub(super) fn write_raw(dir: &Path, entries: &[Raw]) -> PathBuf {
    let path = dir.join("crafted.bundle");
    fs::write(&path, tar_bytes(entries)).unwrap();
    path
}
