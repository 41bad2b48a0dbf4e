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
    /// The compose project it carries, if any.
    pub compose: Option<ComposeListing<'a>>,
}

/// The compose project of a bundle.
pub struct ComposeListing<'a> {
    /// The compose files, in `-f` order.
    pub compose_files: Vec<&'a str>,
    /// How many files the project has, compose files included.
    pub files: usize,
    /// Each service and its image.
    pub services: Vec<(&'a str, &'a str)>,
    /// The variables recorded with `--set` (names only are shown: values may be private).
    pub variables: Vec<&'a str>,
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
    let mut out = format!(
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
    );
    if let Some(c) = &b.compose {
        out.push_str(&format!(
            "compose project: {} ({} files, services {})\n",
            list(&c.compose_files),
            c.files,
            list(&c.services.iter().map(|(s, _)| *s).collect::<Vec<_>>())
        ));
    }
    out
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| escape(i))
        .collect::<Vec<_>>()
        .join(", ")
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
    if let Some(c) = &b.compose {
        out.push_str(&format!(
            "  compose project: {} ({} files)\n",
            list(&c.compose_files),
            c.files
        ));
        if !c.variables.is_empty() {
            out.push_str(&format!("    variables {}\n", list(&c.variables)));
        }
        for (service, image) in &c.services {
            out.push_str(&format!(
                "    service {}  {}\n",
                escape(service),
                escape(image)
            ));
        }
    }
    out
}

/// `rigs bundle extract`: where the files went.
pub fn extracted(path: &Path, dir: &Path, b: &BundleListing) -> String {
    let compose = match &b.compose {
        Some(c) => format!(
            ", compose.tar, and the compose project in {} ({} files)",
            dir.join("compose").display(),
            c.files
        ),
        None => String::new(),
    };
    format!(
        "extracted {} into {}: {}, manifest.json, SHA256SUMS{compose}\n",
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
            compose: None,
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

    #[test]
    fn a_compose_project_is_listed_with_its_services() {
        let path = Path::new("a.rigs");
        let mut b = listing();
        b.compose = Some(ComposeListing {
            compose_files: vec!["compose.yaml", "prod.yaml"],
            files: 4,
            services: vec![("db", "pg:16"), ("web", "app:1\u{1b}[2J")],
            variables: vec!["TAG"],
        });
        let text = verified(path, &b);
        assert!(
            text.contains("\n  compose project: compose.yaml, prod.yaml (4 files)\n    variables TAG\n    service db  pg:16\n    service web  app:1\\x1b[2J\n"),
            "{text}"
        );
        let text = created(path, &b, Duration::from_millis(1300));
        assert!(
            text.ends_with(
                "compose project: compose.yaml, prod.yaml (4 files, services db, web)\n"
            ),
            "{text}"
        );
        let text = extracted(path, Path::new("out"), &b);
        assert!(
            text.contains("compose.tar, and the compose project in out/compose (4 files)"),
            "{text}"
        );
    }
}
