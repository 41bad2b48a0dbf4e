//! Helpers shared by the fuzz targets and the seed generator (`cargo run --example seeds`).

use arbitrary::{Result, Unstructured};
use rigs::ship::bundle::{BundleArchive, BundleImage, BundleManifest};
use rigs::ship::Compression;
use sha2::{Digest, Sha256};

/// Public keys (ed25519, ed25519, ecdsa, rsa) for known_hosts inputs, base64 as in the file.
pub const KEYS: [(&str, &str); 4] = [
    (
        "ssh-ed25519",
        "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ",
    ),
    (
        "ssh-ed25519",
        "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X",
    ),
    (
        "ecdsa-sha2-nistp256",
        "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFFBcwFpWsAbsJSjVdoZZom9XWcukzNeNlERj/v5dOPfbiV/0rAu9aRWUB1TtTq+WHWsBF+XVIerI6vb1jK0f+A=",
    ),
    (
        "ssh-rsa",
        "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDIY5CB4s4VpbNVk0VDGLtwPh6Aj4fAinABQUlzOiZs2zjkKnzawh3akNfsMdZAV+PP67x7XcFO3tJO6vtP18w0nbyw+Nb3Vlq3I4AGDHnv2X2IlIOGMO605CNSdJFooBIcrUGnt/abtyz5Ai38kG2Bjwyv107jg2BLQFItVw9Ygw==",
    ),
];

/// A key that no seed holds, for `learn`.
pub const NEW_KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIPFP/7tpIxyrtZizx9TH1LrlBT3muoAthrfTasTTznc0";

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// One tar entry written by hand: the name goes into the header as given, unchecked.
pub struct RawEntry {
    pub name: Vec<u8>,
    pub kind: u8,
    pub data: Vec<u8>,
    /// The size the header claims, when not the data's length.
    pub size: Option<u64>,
    pub bad_checksum: bool,
}

impl RawEntry {
    pub fn file(name: &str, data: &[u8]) -> RawEntry {
        RawEntry {
            name: name.as_bytes().to_vec(),
            kind: b'0',
            data: data.to_vec(),
            size: None,
            bad_checksum: false,
        }
    }
}

/// Appends a GNU header, the data and its padding.
pub fn put_entry(out: &mut Vec<u8>, entry: &RawEntry) {
    let mut header = tar::Header::new_gnu();
    let n = entry.name.len().min(100);
    header.as_old_mut().name[..n].copy_from_slice(&entry.name[..n]);
    header.set_size(entry.size.unwrap_or(entry.data.len() as u64));
    header.set_mode(0o644);
    header.set_mtime(1_796_113_800);
    header.set_entry_type(tar::EntryType::new(entry.kind));
    header.set_cksum();
    if entry.bad_checksum {
        header.as_old_mut().cksum[0] ^= 1;
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&entry.data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A bundle laid out by a fuzzer: mostly consistent (digests right, so that `verify` gets past
/// its checks and `extract` runs), with each part open to being wrong in some way.
pub fn arbitrary_bundle(u: &mut Unstructured) -> Result<Vec<u8>> {
    let compression = *u.choose(&[
        Compression::Zstd,
        Compression::Gzip,
        Compression::None,
    ])?;
    let archive_name = if u.ratio(1, 16)? {
        String::arbitrary_take(u)?
    } else {
        compression.archive_name().to_string()
    };
    let archive: Vec<u8> = {
        let len = u.int_in_range(0..=2048usize)?;
        u.bytes(len.min(u.len()))?.to_vec()
    };
    let digest = sha256_hex(&archive);
    let manifest = BundleManifest {
        format: if u.ratio(1, 16)? { u.arbitrary()? } else { 1 },
        rigs_version: u.arbitrary()?,
        created: u.arbitrary()?,
        images: (0..u.int_in_range(0..=2)?)
            .map(|_| {
                Ok(BundleImage {
                    reference: u.arbitrary()?,
                    id: u.arbitrary()?,
                    repo_tags: u.arbitrary()?,
                    diff_ids: u.arbitrary()?,
                    size: u.arbitrary()?,
                    created: u.arbitrary()?,
                })
            })
            .collect::<Result<_>>()?,
        archive: BundleArchive {
            name: if u.ratio(1, 16)? {
                u.arbitrary()?
            } else {
                archive_name.clone()
            },
            compression: if u.ratio(1, 16)? {
                *u.choose(&[
                    Compression::Zstd,
                    Compression::Gzip,
                    Compression::None,
                ])?
            } else {
                compression
            },
            bytes: if u.ratio(1, 16)? {
                u.arbitrary()?
            } else {
                archive.len() as u64
            },
            sha256: match u.int_in_range(0..=15u8)? {
                0 => u.arbitrary()?,
                1 => digest.to_uppercase(),
                _ => digest.clone(),
            },
            body_bytes: if u.ratio(1, 4)? {
                u.arbitrary()?
            } else {
                u.int_in_range(0..=archive.len() as u64)?
            },
        },
    };
    let manifest_json = if u.ratio(1, 16)? {
        Vec::<u8>::arbitrary_take(u)?
    } else {
        let mut json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        json.push(b'\n');
        json
    };
    let mut sums = match u.int_in_range(0..=15u8)? {
        0 => Vec::<u8>::arbitrary_take(u)?,
        n => {
            let mut lines = vec![
                format!("{digest}  {archive_name}"),
                format!("{}  manifest.json", sha256_hex(&manifest_json)),
            ];
            if n == 1 {
                lines.push(String::arbitrary_take(u)?);
            } else if n == 2 {
                lines.swap(0, 1);
                lines[0] = lines[0].replacen("  ", " *", 1);
            }
            let mut text = lines.join("\n");
            if n != 3 {
                text.push('\n');
            }
            text.into_bytes()
        }
    };
    if u.ratio(1, 32)? {
        sums.push(0xff);
    }
    let mut entries = vec![
        RawEntry::file(&archive_name, &archive),
        RawEntry::file("manifest.json", &manifest_json),
        RawEntry::file("SHA256SUMS", &sums),
    ];
    if u.ratio(1, 8)? {
        let i = u.choose_index(entries.len())?;
        let j = u.choose_index(entries.len())?;
        entries.swap(i, j);
    }
    if u.ratio(1, 8)? {
        let at = u.int_in_range(0..=entries.len())?;
        let len = u.int_in_range(0..=100usize)?;
        let name = u.bytes(len.min(u.len()))?.to_vec();
        let kind = *u.choose(b"0125LKxg7S")?;
        entries.insert(
            at,
            RawEntry {
                name,
                kind,
                data: u.arbitrary()?,
                size: None,
                bad_checksum: false,
            },
        );
    }
    for entry in entries.iter_mut() {
        if u.ratio(1, 32)? {
            entry.kind = u.arbitrary()?;
        }
        if u.ratio(1, 32)? {
            entry.size = Some(u.arbitrary()?);
        }
        if u.ratio(1, 64)? {
            entry.bad_checksum = true;
        }
    }
    let mut out = Vec::new();
    for entry in &entries {
        put_entry(&mut out, entry);
    }
    let end_blocks = if u.ratio(1, 8)? {
        u.int_in_range(0..=4usize)?
    } else {
        2
    };
    out.resize(out.len() + end_blocks * 512, 0);
    if u.ratio(1, 8)? {
        out.extend_from_slice(u.bytes(u.len().min(600))?);
    }
    if u.ratio(1, 16)? {
        let cut = u.int_in_range(0..=out.len())?;
        out.truncate(cut);
    }
    Ok(out)
}

trait TakeRest: Sized {
    fn arbitrary_take(u: &mut Unstructured) -> Result<Self>;
}

impl TakeRest for String {
    /// A short arbitrary string that leaves the rest of the input for later choices.
    fn arbitrary_take(u: &mut Unstructured) -> Result<String> {
        let bytes = Vec::<u8>::arbitrary_take(u)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

impl TakeRest for Vec<u8> {
    fn arbitrary_take(u: &mut Unstructured) -> Result<Vec<u8>> {
        let len = u.int_in_range(0..=200usize)?;
        Ok(u.bytes(len.min(u.len()))?.to_vec())
    }
}
