//! The `docker save` archive as a stream of tar entries: which entry holds which layer, and one
//! pass over it that writes a copy per target, each leaving out the layers its hosts already have.
//!
//! Entries are copied byte for byte (headers included), so what a host loads is exactly what the
//! controller's engine saved, minus whole entries. Engines load an archive whose `layer.tar`
//! files are missing for layers they already hold. The end-of-archive marker is never copied:
//! the receiving side appends it only once the stream is verified (see `remote`).
//!
//! Which entry is which layer depends on the engine that saved it. Docker 25 and later with the
//! classic image store name layers `blobs/sha256/<diff id>`. Older engines name them
//! `<v1 id>/layer.tar`, where the v1 id cannot be derived from the diff id, and the containerd
//! image store saves each layer as the blob it keeps — usually gzip-compressed, named by the
//! digest of the compressed bytes, which says nothing about the diff id. Every layout has a
//! `manifest.json` whose `Layers` list the layer entries in the order of the config's
//! `rootfs.diff_ids`, but both come at the end of the archive, after the layers. So one pass
//! learns the names (`scan`) and the result is cached per image on the controller.

mod layer_names;
mod oci;

pub use layer_names::LayerNames;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::compress::Encoder;
use layer_names::{is_digest, manifest_names};
use oci::{oci_entry, oci_tail, OciEntry};

const BLOCK: usize = 512;

/// Whether an entry may be an uncompressed layer of an old-format archive, worth hashing when
/// its manifest does not say which layer it is.
fn layer_like(path: &str) -> bool {
    path.ends_with("/layer.tar")
}

/// Entries up to this size are kept while learning names: the manifest and the configs it
/// points to are among them.
const SMALL_ENTRY: u64 = 4 * 1024 * 1024;
/// And no more than this in all.
const SMALL_ENTRIES: usize = 64 * 1024 * 1024;

/// Where a pass writes one copy of the archive.
pub trait Sink: Write {
    /// The bytes written from now on are the content of a compressed blob (or no longer are).
    fn precompressed(&mut self, _already: bool) {}
}

impl Sink for Vec<u8> {}
impl Sink for io::Sink {}

impl<W> Sink for Box<dyn Encoder<W> + '_> {
    fn precompressed(&mut self, already: bool) {
        (**self).precompressed(already)
    }
}

/// Whether data that starts with `head` is gzip or zstd compressed.
fn compressed(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

/// Entries smaller than this are not worth telling apart.
const BLOB_HINT_MIN: u64 = 64 * 1024;

/// One copy being written by a pass, without the layers in `skip`.
pub struct Output<'a> {
    pub skip: &'a HashSet<String>,
    pub sink: &'a mut dyn Sink,
    /// Rewrite an old-format archive (`<v1 id>/layer.tar`) as an OCI layout: the containerd
    /// image store loads an old-format archive only whole, but an OCI layout without the
    /// layers it already holds.
    pub oci: bool,
    /// Filled in by the pass.
    pub stats: OutputStats,
}

#[derive(Debug, Clone, Default)]
pub struct OutputStats {
    /// Uncompressed archive bytes written.
    pub bytes: u64,
    pub layers_sent: usize,
    pub layers_skipped: usize,
    pub bytes_skipped: u64,
    /// A sink failed (its hosts are gone); the pass carried on for the others.
    pub error: Option<String>,
}

impl<'a> Output<'a> {
    pub fn new(skip: &'a HashSet<String>, sink: &'a mut dyn Sink) -> Output<'a> {
        Output {
            skip,
            sink,
            oci: false,
            stats: OutputStats::default(),
        }
    }

    /// Writes one regular file entry: header, data, padding.
    fn put_entry(&mut self, path: &str, data: &[u8]) {
        self.put(&entry_header(path, data.len() as u64));
        self.put(data);
        self.put(&vec![
            0u8;
            (padded(data.len() as u64) - data.len() as u64)
                as usize
        ]);
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.stats.error.is_some() {
            return;
        }
        match self.sink.write_all(bytes) {
            Ok(()) => self.stats.bytes += bytes.len() as u64,
            Err(e) => self.stats.error = Some(e.to_string()),
        }
    }
}

/// What one pass saw.
#[derive(Debug, Default)]
pub struct PassStats {
    /// Bytes read from the input.
    pub read: u64,
    /// Layer-like entries and the SHA-256 of their content (when asked to hash).
    pub names: LayerNames,
}

/// A plain header for an entry rigs writes itself (fixed mode and time: the stream stays
/// deterministic, which resuming relies on).
fn entry_header(path: &str, size: u64) -> [u8; BLOCK] {
    let mut h = tar::Header::new_ustar();
    // Blob paths are short; a path that does not fit would be a bug, not input.
    h.set_path(path).expect("a short entry path");
    h.set_size(size);
    h.set_mode(0o444);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut block = [0u8; BLOCK];
    block.copy_from_slice(h.as_bytes());
    block
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn read_block(input: &mut impl Read, block: &mut [u8; BLOCK]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < BLOCK {
        let n = input.read(&mut block[filled..])?;
        if n == 0 {
            return if filled == 0 {
                Ok(false)
            } else {
                Err(bad("the image archive ends in the middle of a tar header"))
            };
        }
        filled += n;
    }
    Ok(true)
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// The `path` record of a pax extended header.
fn pax_path(data: &[u8]) -> Option<String> {
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        // A record's length counts its own digits and the space after them.
        if len <= space || len > rest.len() {
            return None;
        }
        let record = &rest[space + 1..len];
        if let Some(value) = record.strip_prefix(b"path=") {
            let value = value.strip_suffix(b"\n").unwrap_or(value);
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        rest = &rest[len..];
    }
    None
}

/// Copies the archive in `input` to every output, leaving out entries whose layer is in that
/// output's skip set, and stops at the end-of-archive marker (which is not copied). With
/// `hash_layers` (learning names), also reads the manifest, and computes the digest of the
/// old-format layer entries it does not name.
pub fn pass(
    mut input: impl Read,
    names: &LayerNames,
    outputs: &mut [Output],
    hash_layers: bool,
) -> io::Result<PassStats> {
    let mut stats = PassStats::default();
    let mut block = [0u8; BLOCK];
    let mut buf = vec![0u8; 256 * 1024];
    // Extension headers (long names, pax) travel with the entry that follows them.
    let mut pending: Vec<u8> = Vec::new();
    let mut long_name: Option<String> = None;
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut small_total = 0usize;
    let rewrite = outputs.iter().any(|o| o.oci);
    // For the OCI rewrite: entry sizes, and the old manifest.
    let mut sizes: HashMap<String, u64> = HashMap::new();
    let mut old_manifest: Option<Vec<u8>> = None;
    let mut blobs: HashSet<String> = HashSet::new();
    loop {
        if !read_block(&mut input, &mut block)? {
            break;
        }
        stats.read += BLOCK as u64;
        if block.iter().all(|b| *b == 0) {
            // The end-of-archive marker: drain the rest so the writer exits cleanly.
            stats.read += io::copy(&mut input, &mut io::sink())?;
            break;
        }
        let header = tar::Header::from_byte_slice(&block);
        let size = header
            .entry_size()
            .map_err(|e| bad(format!("bad tar header in the image archive: {e}")))?;
        // The binary size field holds up to 2^64 - 1: a size that does not even round up to a
        // whole block is damage (and the stream ends long before such an entry could).
        if size.checked_next_multiple_of(BLOCK as u64).is_none() {
            return Err(bad(format!(
                "bad tar header in the image archive: an entry of {size} bytes"
            )));
        }
        let kind = header.entry_type();
        if kind.is_gnu_longname() || kind.is_pax_local_extensions() {
            if size > 1024 * 1024 {
                return Err(bad("an oversized extended tar header in the image archive"));
            }
            let mut data = vec![0u8; padded(size) as usize];
            input.read_exact(&mut data)?;
            stats.read += data.len() as u64;
            let content = &data[..size as usize];
            if kind.is_gnu_longname() {
                let end = content
                    .iter()
                    .position(|b| *b == 0)
                    .unwrap_or(content.len());
                long_name = Some(String::from_utf8_lossy(&content[..end]).into_owned());
            } else if let Some(p) = pax_path(content) {
                long_name = Some(p);
            }
            pending.extend_from_slice(&block);
            pending.extend_from_slice(&data);
            continue;
        }
        let path = match long_name.take() {
            Some(p) => p,
            None => String::from_utf8_lossy(&header.path_bytes()).into_owned(),
        };
        let path = path.trim_start_matches("./").to_string();
        let layer = names.diff_id(&path);
        let skipped: Vec<bool> = outputs
            .iter()
            .map(|o| layer.as_ref().is_some_and(|d| o.skip.contains(d)))
            .collect();
        let oci = if !rewrite {
            None
        } else if kind.is_symlink() || kind.is_hard_link() {
            // A save of several images links a layer they share to where it was stored first
            // (`<v1 id>/layer.tar -> ../<other>/layer.tar`); in a layout the blob is there once.
            Some(OciEntry::Drop)
        } else {
            sizes.insert(path.clone(), size);
            match oci_entry(&path, layer.as_ref()) {
                OciEntry::Blob(name) if !blobs.insert(name.clone()) => Some(OciEntry::Drop),
                other => Some(other),
            }
        };
        // Which outputs get this entry's data.
        let mut keep: Vec<bool> = Vec::with_capacity(outputs.len());
        for (o, skipped) in outputs.iter_mut().zip(&skipped) {
            if *skipped {
                o.stats.layers_skipped += 1;
                o.stats.bytes_skipped += size;
                keep.push(false);
                continue;
            }
            match (&oci, o.oci) {
                (Some(OciEntry::Blob(name)), true) => {
                    o.put(&entry_header(name, size));
                    if path.ends_with("/layer.tar") {
                        o.stats.layers_sent += 1;
                    }
                    keep.push(true);
                }
                (Some(_), true) => keep.push(false),
                _ => {
                    o.put(&pending);
                    o.put(&block);
                    if layer.is_some() {
                        o.stats.layers_sent += 1;
                    }
                    keep.push(true);
                }
            }
        }
        // The header's size is a claim: memory is reserved for at most a small entry's worth,
        // and grows only with data actually read.
        let mut manifest_data = matches!(oci, Some(OciEntry::Manifest))
            .then(|| Vec::with_capacity(size.min(SMALL_ENTRY) as usize));
        pending.clear();
        if !outputs.is_empty() && outputs.iter().all(|o| o.stats.error.is_some()) {
            return Err(io::Error::other("no host is receiving the image any more"));
        }
        let mut hasher = (hash_layers && layer_like(&path)).then(Sha256::new);
        let mut kept =
            (hash_layers && size <= SMALL_ENTRY && small_total + size as usize <= SMALL_ENTRIES)
                .then(|| Vec::with_capacity(size as usize));
        let mut left = padded(size);
        let mut data_left = size;
        let mut blob = false;
        while left > 0 {
            let want = (buf.len() as u64).min(left) as usize;
            let n = input.read(&mut buf[..want])?;
            if n == 0 {
                return Err(bad(format!(
                    "the image archive ends in the middle of {path}"
                )));
            }
            let data = (n as u64).min(data_left) as usize;
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[..data]);
            }
            if let Some(k) = kept.as_mut() {
                k.extend_from_slice(&buf[..data]);
            }
            if let Some(m) = manifest_data.as_mut() {
                m.extend_from_slice(&buf[..data]);
            }
            if data_left == size && size >= BLOB_HINT_MIN && compressed(&buf[..data]) {
                blob = true;
                for (o, keep) in outputs.iter_mut().zip(&keep) {
                    if *keep {
                        o.sink.precompressed(true);
                    }
                }
            }
            data_left = data_left.saturating_sub(n as u64);
            for (o, keep) in outputs.iter_mut().zip(&keep) {
                if *keep {
                    o.put(&buf[..n]);
                }
            }
            left -= n as u64;
            stats.read += n as u64;
        }
        if blob {
            for (o, keep) in outputs.iter_mut().zip(&keep) {
                if *keep {
                    o.sink.precompressed(false);
                }
            }
        }
        if let Some(m) = manifest_data {
            old_manifest = Some(m);
        }
        if let Some(k) = kept {
            small_total += k.len();
            small.insert(path.clone(), k);
        }
        if let Some(h) = hasher {
            stats.names.by_path.insert(
                path,
                format!("sha256:{}", crate::hex::encode(&h.finalize())),
            );
        }
    }
    if !pending.is_empty() {
        // A long name or pax record names the entry after it; the archive ended instead.
        return Err(bad(
            "the image archive ends after an extended tar header, without its entry",
        ));
    }
    stats.names.by_path.extend(manifest_names(&small));
    if rewrite {
        let manifest =
            old_manifest.ok_or_else(|| bad("the image archive has no manifest.json to rewrite"))?;
        let tail = oci_tail(&manifest, names, &sizes)?;
        for o in outputs.iter_mut().filter(|o| o.oci) {
            for (path, data) in &tail {
                o.put_entry(path, data);
            }
        }
    }
    Ok(stats)
}

/// Learns which entry holds which layer by reading the whole archive once.
pub fn scan(input: impl Read) -> io::Result<LayerNames> {
    Ok(pass(input, &LayerNames::default(), &mut [], true)?.names)
}

/// The layers of `diff_ids` a host can do without: those of the longest leading run of layers
/// the host already holds in that order (an engine reuses a layer only on the same parents),
/// except digests the image needs again further up.
pub fn skippable(diff_ids: &[String], host_images: &[Vec<String>]) -> HashSet<String> {
    let mut present: HashSet<&[String]> = HashSet::new();
    for layers in host_images {
        for end in 1..=layers.len() {
            present.insert(&layers[..end]);
        }
    }
    let prefix = (0..=diff_ids.len())
        .rev()
        .find(|&k| k == 0 || present.contains(&diff_ids[..k]))
        .unwrap_or(0);
    let needed: HashSet<&String> = diff_ids[prefix..].iter().collect();
    diff_ids[..prefix]
        .iter()
        .filter(|d| !needed.contains(d))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::oci::containerd_name;
    use super::*;

    fn archive(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn digest(data: &[u8]) -> String {
        format!("sha256:{}", crate::hex::encode(&Sha256::digest(data)))
    }

    fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut with_end = bytes.to_vec();
        with_end.extend_from_slice(&[0u8; 1024]);
        let mut a = tar::Archive::new(&with_end[..]);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, data)
            })
            .collect()
    }

    #[test]
    fn a_pass_leaves_out_skipped_layers_per_output_and_the_end_marker() {
        let base = vec![7u8; 3000];
        let top = vec![9u8; 700];
        let long = format!("{}/layer.tar", "d".repeat(120));
        let input = archive(&[
            ("config.json", b"{}".to_vec()),
            ("aaa/layer.tar", base.clone()),
            (&long, top.clone()),
            ("manifest.json", b"[]".to_vec()),
        ]);
        let names = scan(&input[..]).unwrap();
        assert_eq!(names.diff_id("aaa/layer.tar"), Some(digest(&base)));
        assert_eq!(names.diff_id(&long), Some(digest(&top)));

        let skip_base: HashSet<String> = [digest(&base)].into();
        let none = HashSet::new();
        let (mut delta, mut full) = (Vec::new(), Vec::new());
        let mut outputs = [
            Output::new(&skip_base, &mut delta),
            Output::new(&none, &mut full),
        ];
        let stats = pass(&input[..], &names, &mut outputs, false).unwrap();
        assert_eq!(stats.read, input.len() as u64);
        assert_eq!(outputs[0].stats.layers_skipped, 1);
        assert_eq!(outputs[0].stats.layers_sent, 1);
        assert_eq!(outputs[1].stats.layers_sent, 2);
        assert_eq!(input.len() - full.len(), 1024, "all but the end marker");
        let names_in = |b: &[u8]| entries(b).into_iter().map(|e| e.0).collect::<Vec<_>>();
        assert_eq!(
            names_in(&delta),
            vec![
                "config.json".to_string(),
                long.clone(),
                "manifest.json".into()
            ]
        );
        assert_eq!(entries(&full)[1].1, base);
    }

    #[test]
    fn compressed_blobs_are_named_by_the_manifest() {
        let layer = b"a gzip blob".to_vec();
        let config = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:d1"]}}"#.to_vec();
        let manifest = br#"[{"Config":"blobs/sha256/cfg","Layers":["blobs/sha256/blob1"]}]"#;
        let input = archive(&[
            ("blobs/sha256/blob1", layer.clone()),
            ("blobs/sha256/cfg", config),
            ("index.json", b"{}".to_vec()),
            ("manifest.json", manifest.to_vec()),
        ]);
        let names = scan(&input[..]).unwrap();
        assert_eq!(
            names.diff_id("blobs/sha256/blob1").as_deref(),
            Some("sha256:d1")
        );
        assert!(names.covers(&["sha256:d1".to_string()]));
        let skip: HashSet<String> = ["sha256:d1".to_string()].into();
        let mut delta = Vec::new();
        let mut outputs = [Output::new(&skip, &mut delta)];
        pass(&input[..], &names, &mut outputs, false).unwrap();
        assert_eq!(outputs[0].stats.layers_skipped, 1);
        assert!(!entries(&delta).iter().any(|e| e.0 == "blobs/sha256/blob1"));
    }

    #[test]
    fn old_format_archives_are_rewritten_as_oci_layouts_without_skipped_layers() {
        let (base, top) = (vec![1u8; 2000], vec![2u8; 700]);
        let (d1, d2) = (digest(&base), digest(&top));
        let config = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["{d1}","{d2}"]}}}}"#);
        let config_name = format!("{}.json", &digest(config.as_bytes())[7..]);
        let manifest = format!(
            r#"[{{"Config":"{config_name}","RepoTags":["127.0.0.1:5000/app:v2"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}}]"#
        );
        let input = archive(&[
            ("aaa/VERSION", b"1.0".to_vec()),
            ("aaa/json", b"{}".to_vec()),
            ("aaa/layer.tar", base.clone()),
            ("bbb/layer.tar", top.clone()),
            (&config_name, config.clone().into_bytes()),
            ("manifest.json", manifest.into_bytes()),
            ("repositories", b"{}".to_vec()),
        ]);
        let names = scan(&input[..]).unwrap();
        let skip: HashSet<String> = [d1.clone()].into();
        let mut out = Vec::new();
        let mut outputs = [Output {
            oci: true,
            ..Output::new(&skip, &mut out)
        }];
        pass(&input[..], &names, &mut outputs, false).unwrap();
        assert_eq!(outputs[0].stats.layers_skipped, 1);
        assert_eq!(outputs[0].stats.layers_sent, 1);
        let got = entries(&out);
        let paths: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        let blob = |d: &str| format!("blobs/sha256/{}", &d[7..]);
        assert_eq!(paths[0], blob(&d2));
        assert_eq!(got[0].1, top);
        assert_eq!(paths[1], format!("blobs/sha256/{}", &config_name[..64]));
        assert_eq!(got[1].1, config.as_bytes());
        assert_eq!(&paths[3..], ["index.json", "oci-layout", "manifest.json"]);
        // The manifest blob is named by its digest and lists both layers, the skipped one too.
        assert_eq!(
            paths[2],
            format!("blobs/sha256/{}", &digest(&got[2].1)[7..])
        );
        let m: serde_json::Value = serde_json::from_slice(&got[2].1).unwrap();
        assert_eq!(m["layers"][0]["digest"], d1.as_str());
        assert_eq!(m["layers"][0]["size"], 2000);
        assert_eq!(m["layers"][1]["digest"], d2.as_str());
        let index: serde_json::Value = serde_json::from_slice(&got[3].1).unwrap();
        assert_eq!(
            index["manifests"][0]["annotations"]["io.containerd.image.name"],
            "127.0.0.1:5000/app:v2"
        );
        assert_eq!(containerd_name("app:1"), "docker.io/library/app:1");
        assert_eq!(containerd_name("me/app:1"), "docker.io/me/app:1");
    }

    #[test]
    fn a_layer_two_images_share_becomes_one_blob_of_the_oci_layout() {
        // `docker save` of several images before Docker 25: the shared base layer is stored
        // under one image's v1 id and linked from the other's.
        let (base, top) = (vec![1u8; 2000], vec![2u8; 700]);
        let (d1, d2) = (digest(&base), digest(&top));
        let c1 = format!(r#"{{"rootfs":{{"diff_ids":["{d1}"]}}}}"#);
        let c2 = format!(r#"{{"rootfs":{{"diff_ids":["{d1}","{d2}"]}}}}"#);
        let n1 = format!("{}.json", &digest(c1.as_bytes())[7..]);
        let n2 = format!("{}.json", &digest(c2.as_bytes())[7..]);
        let manifest = format!(
            r#"[{{"Config":"{n1}","RepoTags":["base:1"],"Layers":["aaa/layer.tar"]}},{{"Config":"{n2}","RepoTags":["app:1"],"Layers":["bbb/layer.tar","ccc/layer.tar"]}}]"#
        );
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data).unwrap();
        };
        add("aaa/layer.tar", &base);
        add("ccc/layer.tar", &top);
        add(&n1, c1.as_bytes());
        add(&n2, c2.as_bytes());
        add("manifest.json", manifest.as_bytes());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Symlink);
        b.append_link(&mut h, "bbb/layer.tar", "../aaa/layer.tar")
            .unwrap();
        let input = b.into_inner().unwrap();
        let names = scan(&input[..]).unwrap();
        assert_eq!(names.diff_id("bbb/layer.tar"), Some(d1.clone()));
        let blob = |d: &str| format!("blobs/sha256/{}", &d[7..]);
        for skip in [HashSet::new(), [d1.clone()].into()] {
            let mut out = Vec::new();
            let mut outputs = [Output {
                oci: true,
                ..Output::new(&skip, &mut out)
            }];
            pass(&input[..], &names, &mut outputs, false).unwrap();
            let got = entries(&out);
            let count = |name: &str| got.iter().filter(|e| e.0 == name).count();
            assert_eq!(count(&blob(&d1)), usize::from(skip.is_empty()), "{skip:?}");
            assert_eq!(count(&blob(&d2)), 1);
            assert!(got.iter().all(|e| !e.0.ends_with("layer.tar")));
            // Both manifests give the shared layer its real size.
            let manifests: Vec<serde_json::Value> = got
                .iter()
                .filter_map(|e| serde_json::from_slice::<serde_json::Value>(&e.1).ok())
                .filter(|m| m["layers"].is_array())
                .collect();
            assert_eq!(manifests.len(), 2);
            for m in &manifests {
                assert_eq!(m["layers"][0]["digest"], d1.as_str());
                assert_eq!(m["layers"][0]["size"], 2000, "{m}");
            }
        }
    }

    #[test]
    fn digest_named_layers_need_no_scan() {
        let names = LayerNames::default();
        assert_eq!(
            names.diff_id("blobs/sha256/abc").as_deref(),
            Some("sha256:abc")
        );
        assert_eq!(names.diff_id("abc/layer.tar"), None);
    }

    #[test]
    fn truncated_archives_are_errors() {
        let input = archive(&[("aaa/layer.tar", vec![1u8; 5000])]);
        for cut in [100, 512, 3000] {
            let err = pass(&input[..cut], &LayerNames::default(), &mut [], false).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "cut at {cut}");
        }
    }

    #[test]
    fn an_extended_header_without_its_entry_is_an_error() {
        // Found by fuzz/fuzz_targets/ship_archive.rs: the record was dropped without a word.
        let mut input = archive(&[("aaa/layer.tar", vec![1u8; 600])]);
        input.truncate(input.len() - 1024); // without the end-of-archive marker
        let long = archive(&[(&format!("{}/layer.tar", "d".repeat(120)), vec![2u8; 10])]);
        input.extend_from_slice(&long[..1024]); // the long-name record, not its entry
        let at_eof = input.clone();
        input.extend_from_slice(&[0u8; 1024]);
        for input in [at_eof, input] {
            let mut out = Vec::new();
            let none = HashSet::new();
            let err = pass(
                &input[..],
                &LayerNames::default(),
                &mut [Output::new(&none, &mut out)],
                false,
            )
            .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("extended tar header"), "{err}");
        }
    }

    #[test]
    fn sizes_no_archive_can_hold_are_errors_not_panics() {
        // Found by fuzz/fuzz_targets/ship_archive.rs: the padding of a size near 2^64
        // overflowed, and an OCI rewrite reserved a manifest.json's claimed size up front.
        for (name, size) in [
            ("aaa/layer.tar", u64::MAX),
            ("manifest.json", u64::MAX),
            ("manifest.json", 1 << 60),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_path(name).unwrap();
            h.set_size(size);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            let mut input = h.as_bytes().to_vec();
            input.extend_from_slice(&[7u8; 1024]);
            let none = HashSet::new();
            let (mut plain, mut oci) = (Vec::new(), Vec::new());
            let mut outputs = [
                Output::new(&none, &mut plain),
                Output {
                    oci: true,
                    ..Output::new(&none, &mut oci)
                },
            ];
            let err = pass(&input[..], &LayerNames::default(), &mut outputs, true).unwrap_err();
            assert_eq!(
                err.kind(),
                io::ErrorKind::InvalidData,
                "{name} {size}: {err}"
            );
        }
    }

    #[test]
    fn pax_records_shorter_than_their_length_field_are_ignored() {
        // Found by fuzz/fuzz_targets/ship_archive.rs: slicing the record panicked.
        assert_eq!(pax_path(b"1 7path=bbb/json\n"), None);
        assert_eq!(pax_path(b"2 \n"), None);
        assert_eq!(pax_path(b"3 \n"), None);
        assert_eq!(
            pax_path(b"3 x14 path=a/b/c\n").as_deref(),
            Some("a/b/c"),
            "the record after a short one"
        );
        assert_eq!(pax_path(b"17 path=bbb/json\n").as_deref(), Some("bbb/json"));
    }

    #[test]
    fn diff_ids_that_are_not_digests_name_no_blob() {
        // A config can call a layer anything. As the blob path of an OCI rewrite such a name
        // panicked (too long for a tar header) or could climb out of `blobs/` (`..`).
        let layer = vec![1u8; 100];
        for bad in ["a".repeat(200), "../../x".into(), "x/y".into()] {
            let config = format!(r#"{{"rootfs":{{"diff_ids":["sha256:{bad}"]}}}}"#);
            let config_name = format!("{}.json", &digest(config.as_bytes())[7..]);
            let manifest = format!(r#"[{{"Config":"{config_name}","Layers":["aaa/layer.tar"]}}]"#);
            let input = archive(&[
                ("aaa/layer.tar", layer.clone()),
                (&config_name, config.into_bytes()),
                ("manifest.json", manifest.into_bytes()),
            ]);
            let names = scan(&input[..]).unwrap();
            assert_eq!(
                names.diff_id("aaa/layer.tar"),
                Some(digest(&layer)),
                "{bad}"
            );
            let none = HashSet::new();
            let mut out = Vec::new();
            let mut outputs = [Output {
                oci: true,
                ..Output::new(&none, &mut out)
            }];
            pass(&input[..], &names, &mut outputs, false).unwrap();
            let blob = format!("blobs/sha256/{}", &digest(&layer)[7..]);
            assert_eq!(entries(&out)[0].0, blob, "{bad}");
        }
        let unlearnt = LayerNames::default();
        assert_eq!(unlearnt.diff_id("blobs/sha256/../x/layer.tar"), None);
        assert!(matches!(
            oci_entry("blobs/sha256/../x/layer.tar", Some(&"sha256:../x".into())),
            OciEntry::Drop
        ));
    }

    #[test]
    fn only_a_leading_run_of_present_layers_is_skippable() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let image = ids(&["a", "b", "c"]);
        assert!(skippable(&image, &[]).is_empty());
        assert_eq!(skippable(&image, &[ids(&["a", "x"])]), ["a".into()].into());
        assert_eq!(
            skippable(&image, &[ids(&["a", "b"])]),
            ["a".into(), "b".into()].into()
        );
        // Same layer on other parents is not reusable.
        assert!(skippable(&image, &[ids(&["b"])]).is_empty());
        // A digest needed again above the present run must still be sent.
        let repeat = ids(&["a", "b", "a"]);
        assert_eq!(skippable(&repeat, &[ids(&["a", "b"])]), ["b".into()].into());
    }
}
