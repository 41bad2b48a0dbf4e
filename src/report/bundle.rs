//! What the bundle commands that run on this machine say: `bundle create`, `verify`, `extract`.
//!
//! They show what a bundle's manifest says, given as a [`BundleListing`] so that the output does
//! not depend on how `ship` reads bundles (`ship` reports through here). A manifest's text comes
//! from whoever made the file, so everything read from it is escaped.

use std::path::Path;
use std::time::Duration;

use super::{bytes, escape};

/// A bundle as the listings show it.
pub struct BundleListing<'a> {
    pub format: u32,
    /// The version of rigs that made it, and when.
    pub rigs_version: &'a str,
    pub created: &'a str,
    /// The archive entry: its name, length, compression and checksum.
    pub archive: &'a str,
    pub bytes: u64,
    pub compression: &'a str,
    pub sha256: &'a str,
    pub images: Vec<ImageListing<'a>>,
}

/// One image of a bundle.
pub struct ImageListing<'a> {
    pub reference: &'a str,
    pub id: &'a str,
    pub layers: usize,
    pub bytes: u64,
}

/// `rigs bundle create`: what went in, how big and how long, and the archive's checksum.
pub fn created(path: &Path, b: &BundleListing, took: Duration) -> String {
    format!(
        "created {}: {} ({}, {}, {:.1} s)\nsha256 {}\n",
        path.display(),
        b.images
            .iter()
            .map(|i| i.reference)
            .collect::<Vec<_>>()
            .join(", "),
        bytes(b.bytes),
        b.compression,
        took.as_secs_f64(),
        b.sha256
    )
}

/// `rigs bundle verify`: the bundle's format and maker, its archive, then one line per image.
pub fn verified(path: &Path, b: &BundleListing) -> String {
    let mut out = format!(
        "{}: ok (bundle format {}, made by rigs {} at {})\n  {}  {}  {}  sha256 {}\n",
        path.display(),
        b.format,
        escape(b.rigs_version),
        escape(b.created),
        escape(b.archive),
        bytes(b.bytes),
        b.compression,
        escape(b.sha256)
    );
    for i in &b.images {
        out.push_str(&format!(
            "  {}  {}  {} layers  {}\n",
            escape(i.reference),
            escape(i.id),
            i.layers,
            bytes(i.bytes)
        ));
    }
    out
}

/// `rigs bundle extract`: where the files went.
pub fn extracted(path: &Path, dir: &Path, b: &BundleListing) -> String {
    format!(
        "extracted {} into {}: {}, manifest.json, SHA256SUMS\n",
        path.display(),
        dir.display(),
        escape(b.archive)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing() -> BundleListing<'static> {
        BundleListing {
            format: 1,
            rigs_version: "0.9.0",
            created: "2026-12-01T08:30:00Z",
            archive: "images.tar.zst",
            bytes: 3 * 1024 * 1024,
            compression: "zstd",
            sha256: "abc",
            images: vec![ImageListing {
                reference: "app:1\u{1b}[2J",
                id: "sha256:1",
                layers: 4,
                bytes: 2048,
            }],
        }
    }

    #[test]
    fn the_listings_escape_what_the_bundle_says() {
        let path = Path::new("a.rigs");
        let text = verified(path, &listing());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "a.rigs: ok (bundle format 1, made by rigs 0.9.0 at 2026-12-01T08:30:00Z)"
        );
        assert!(lines[1].starts_with("  images.tar.zst  "), "{text}");
        assert!(
            lines[2].starts_with("  app:1\\x1b[2J  sha256:1  4 layers  "),
            "{text}"
        );
        assert_eq!(
            extracted(path, Path::new("out"), &listing()),
            "extracted a.rigs into out: images.tar.zst, manifest.json, SHA256SUMS\n"
        );
        let text = created(path, &listing(), Duration::from_millis(1300));
        assert!(text.ends_with(", zstd, 1.3 s)\nsha256 abc\n"), "{text}");
    }
}
