//! `docker::ship_bundle` and `rigs bundle load`: the images of a verified bundle file on the
//! controller into the host's engine.

use std::collections::BTreeSet;
use std::path::Path;

use super::load::{stream_failure, Load};
use super::{rate, Delivery, ShipOptions, Shipped};
use crate::quote::quote;
use crate::report::Total;
use crate::ship::bundle::BundleImage;
use crate::ship::remote::{HostImages, LoadReply};
use crate::ship::{Compression, Request, ShipError, Source};

/// The host's own id of `image`: on the other image store it differs from the bundle's.
fn on_host(held: &HostImages, image: &BundleImage) -> Option<String> {
    held.find(&image.id, &image.created, &image.diff_ids)
        .map(|h| h.id.clone())
}

impl Delivery<'_> {
    /// Loads the images of the bundle at `path` (on the controller) into the host's engine.
    pub fn bundle(&self, path: &Path, o: &ShipOptions) -> Result<Shipped, ShipError> {
        let shown = path.display().to_string();
        if self.to.dry_run() {
            self.show(&format!(
                "docker load  # bundle {} from the controller, verified",
                quote(&shown)
            ))?;
            return Ok(Shipped::nothing(&shown, ""));
        }
        let verified = self.ships.bundle(path).map_err(ShipError::Failed)?;
        let manifest = &verified.manifest;
        let compression = manifest.archive.compression;
        let references: Vec<String> = manifest
            .images
            .iter()
            .map(|i| i.reference.clone())
            .collect();
        let held = self.query()?;
        let found: Vec<Option<String>> =
            manifest.images.iter().map(|i| on_host(&held, i)).collect();
        if found.iter().all(Option::is_some) {
            for (image, id) in manifest.images.iter().zip(found.iter().flatten()) {
                for t in &image.repo_tags {
                    self.tag(id, t)?;
                }
            }
            self.to.info(&format!(
                "{shown}: the host already holds {}, nothing sent",
                references.join(", ")
            ));
            return Ok(Shipped::nothing(&shown, compression.name()));
        }
        if compression == Compression::Zstd
            && Compression::for_engine(&held.engine_version) != Compression::Zstd
        {
            return Err(ShipError::failed(format!(
                "{shown} is zstd-compressed, but this host's docker engine ({}) loads only gzip: \
                 make the bundle with `rigs --compress gzip bundle create ...`",
                held.engine_version
            )));
        }
        let body = manifest.archive.body_bytes;
        let ticket = self.join(
            format!("bundle|{}|{}", manifest.archive.sha256, shown),
            Request {
                host: self.host.clone(),
                compression,
                adapt: false,
                skip: BTreeSet::new(),
                oci: false,
                stall: o.stall,
                resume_from: 0,
            },
            Source::Bundle {
                bundle: verified.clone(),
                body,
            },
        )?;
        let group = ticket.group.clone();
        let display = format!(
            "docker load  # bundle {} from the controller: {}",
            quote(&shown),
            references.join(", ")
        );
        let streamed = self.stream_load(
            ticket,
            Load {
                compression,
                display,
                what: format!("loading {shown}"),
                total: Box::new(move || Some(Total::Exact(body))),
                resume: None,
                check: Vec::new(),
            },
        )?;
        if !matches!(streamed.reply, LoadReply::Loaded(_)) {
            if let Some(reason) = stream_failure(&streamed.reply, &group.state(), &self.host) {
                return Err(ShipError::failed(format!("{shown}: {reason}")));
            }
            return Err(ShipError::failed(format!(
                "docker load of {shown} failed on the host (exit {}): {}",
                streamed.code, streamed.last_line
            )));
        }
        let after = self.query()?;
        for image in &manifest.images {
            if on_host(&after, image).is_none() {
                return Err(ShipError::failed(format!(
                    "after loading {shown}, the host does not hold {} ({})",
                    image.reference, image.id
                )));
            }
        }
        self.to.info(&format!(
            "{shown}: loaded {} ({} {}, {:.1} s{})",
            references.join(", "),
            crate::report::bytes(streamed.sent),
            compression.name(),
            streamed.took.as_secs_f64(),
            rate(streamed.sent, streamed.took)
        ));
        Ok(Shipped {
            image: shown,
            compression: compression.name().to_string(),
            sent_as: compression.name().to_string(),
            bytes: streamed.sent,
            took: streamed.took,
            ..Shipped::default()
        })
    }
}
