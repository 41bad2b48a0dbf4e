//! `docker::ship([...])`: several images from the controller's engine in one `docker save`
//! stream, as a Compose project needs them before `docker compose up`.
//!
//! One stream rather than one per image, because `docker save` of several images stores a layer
//! they share once: a project whose services build on the same base sends that base once, and
//! the host runs one verified `docker load`. The images the host already holds are only tagged;
//! the rest travel together, without the layers the host holds, and hosts that need the same
//! images share one read and compression of the archive, as a single image's hosts do.
//!
//! A shared layer is in the archive once, so it is left out only when no image of the stream
//! still needs it: a layer the host holds under one image's bottom layers but another image
//! stacks on other parents must travel (see [`archive::skippable`]).

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::image::short;
use super::load::{stream_failure, Load};
use super::{not_as_sent, rate, Delivery, ShipOptions, Shipped};
use crate::quote::quote;
use crate::report::Total;
use crate::ship::remote::{HostImages, LoadReply};
use crate::ship::{archive, Compression, ImageInfo, Request, ShipError, Source};

/// What shipping several images did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShippedImages {
    /// Each reference asked for (once) and the id of its image, in the order asked.
    pub images: Vec<(String, String)>,
    /// Bytes sent, for the whole stream.
    pub bytes: u64,
    /// The codec of the stream; empty when nothing was sent.
    pub compression: String,
    /// How the bytes travelled, e.g. `zstd, 40% stored (...)`.
    pub sent_as: String,
    pub took: Duration,
    /// Distinct layers sent, and distinct layers of all the images asked for (those the host
    /// already held count as not sent).
    pub layers: (usize, usize),
}

impl ShippedImages {
    /// One image shipped alone, in the shape of several.
    fn from_one(s: Shipped, layers: usize) -> ShippedImages {
        ShippedImages {
            images: vec![(s.image, s.id)],
            bytes: s.bytes,
            compression: s.compression,
            sent_as: s.sent_as,
            took: s.took,
            layers: s.layers.unwrap_or((0, layers)),
        }
    }
}

impl Delivery<'_> {
    /// Streams the controller's images `references` into the host's engine, in one stream.
    pub fn images(
        &self,
        references: &[String],
        o: &ShipOptions,
    ) -> Result<ShippedImages, ShipError> {
        let mut unique: Vec<&String> = Vec::new();
        for r in references {
            if !unique.contains(&r) {
                unique.push(r);
            }
        }
        match unique.as_slice() {
            [] => return Ok(ShippedImages::default()),
            // One image is a single image's ship, with everything that supports (resuming).
            [one] => {
                let shipped = self.image(one, o)?;
                let layers = if self.to.dry_run() {
                    0
                } else {
                    self.ships.image(one).map_or(0, |i| distinct(&[&i]))
                };
                return Ok(ShippedImages::from_one(shipped, layers));
            }
            _ => {}
        }
        if o.resume {
            return Err(ShipError::failed(format!(
                "`resume: true` works for one image at a time, and {} were asked for in one \
                 stream: ship them without `resume`, or call docker::ship once per image with it",
                unique.len()
            )));
        }
        if self.to.dry_run() {
            self.show(&format!(
                "docker load  # {} images from the controller's docker save, verified: {}",
                unique.len(),
                unique
                    .iter()
                    .map(|r| quote(r))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))?;
            return Ok(ShippedImages {
                images: unique
                    .iter()
                    .map(|r| (r.to_string(), String::new()))
                    .collect(),
                ..ShippedImages::default()
            });
        }
        let (images, held) = self.ask(&unique)?;
        let mut sending: Vec<&ImageInfo> = Vec::new();
        for image in &images {
            match held.find(&image.id, &image.created, &image.diff_ids) {
                Some(copy) => {
                    self.tag(&copy.id, &image.reference)?;
                    self.to.info(&format!(
                        "{}: already on the host ({}), nothing sent",
                        image.reference,
                        short(&image.id)
                    ));
                }
                None => sending.push(image),
            }
        }
        let all: Vec<&ImageInfo> = images.iter().collect();
        let done = ShippedImages {
            images: images
                .iter()
                .map(|i| (i.reference.clone(), i.id.clone()))
                .collect(),
            layers: (0, distinct(&all)),
            ..ShippedImages::default()
        };
        if sending.is_empty() {
            return Ok(done);
        }
        // The stream's bytes follow from the images alone, whichever host asked first.
        sending.sort_by(|a, b| a.reference.cmp(&b.reference));
        let mut streamed = self.stream_images(&sending, &held, o)?;
        streamed.images = done.images;
        streamed.layers.1 = done.layers.1;
        Ok(streamed)
    }

    /// The controller's images and what the host holds, asked at the same time.
    fn ask(&self, references: &[&String]) -> Result<(Vec<ImageInfo>, HostImages), ShipError> {
        let (inspected, held) = std::thread::scope(|threads| {
            let asked: Vec<_> = references
                .iter()
                .map(|r| threads.spawn(|| self.ships.image(r)))
                .collect();
            let held = self.query();
            let inspected: Vec<Result<ImageInfo, String>> = asked
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|_| Err("internal error: the image query panicked".into()))
                })
                .collect();
            (inspected, held)
        });
        let mut images = Vec::new();
        let mut missing = Vec::new();
        for (r, result) in references.iter().zip(inspected) {
            match result {
                Ok(image) => images.push(image),
                Err(e) => missing.push(format!("`{r}` ({e})")),
            }
        }
        if !missing.is_empty() {
            return Err(ShipError::failed(format!(
                "not an image on the controller: {}\n\
                 build, pull or load {} on the controller first (its docker follows DOCKER_HOST); \
                 nothing was sent",
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" }
            )));
        }
        Ok((images, held?))
    }

    /// One stream of `images` into the host's engine, without the layers it can do without.
    fn stream_images(
        &self,
        images: &[&ImageInfo],
        held: &HostImages,
        o: &ShipOptions,
    ) -> Result<ShippedImages, ShipError> {
        let compression = o
            .compression
            .unwrap_or_else(|| Compression::for_engine(&held.engine_version));
        let mut skip = if o.delta {
            shared_skip(images, &held.layer_lists())
        } else {
            BTreeSet::new()
        };
        let layers = distinct(images);
        let size: u64 = images.iter().map(|i| i.size).sum();
        let references: Vec<&str> = images.iter().map(|i| i.reference.as_str()).collect();
        let named = references.join(", ");
        let count = images.len();
        let mut key_parts: Vec<String> = images
            .iter()
            .map(|i| format!("{}={}", i.id, i.reference))
            .collect();
        key_parts.sort();
        let key_images = key_parts.join(",");
        // The controller's engine writes every image of the save in one layout.
        let old_layout = images.iter().any(|i| !i.saves_oci_layout());
        let mut reloaded = false;
        for attempt in 0.. {
            let sending = layers - skip.len();
            let ticket = self.join(
                format!("saves|{key_images}|{attempt}"),
                Request {
                    host: self.host.clone(),
                    compression,
                    adapt: o.compression.is_none(),
                    skip: skip.clone(),
                    oci: !skip.is_empty() && held.containerd_store && old_layout,
                    stall: o.stall,
                    resume_from: 0,
                },
                Source::Save(images.iter().map(|i| (*i).clone()).collect()),
            )?;
            let group = ticket.group.clone();
            let display = format!(
                "docker load  # {count} image{} from the controller ({named}): {sending} of {layers} layers, {}",
                if count == 1 { "" } else { "s" },
                compression.name()
            );
            let total: Box<dyn Fn() -> Option<Total> + Send + Sync> = if skip.is_empty() {
                let group = group.clone();
                Box::new(move || {
                    let read = group.read.load(Ordering::Relaxed);
                    let written = group.written.load(Ordering::Relaxed);
                    (read > 0 && written > 0).then(|| {
                        Total::Estimate((size as f64 * written as f64 / read as f64) as u64)
                    })
                })
            } else {
                Box::new(|| None)
            };
            let streamed = self.stream_load(
                ticket,
                Load {
                    compression,
                    display,
                    what: format!(
                        "shipping {count} image{}",
                        if count == 1 { "" } else { "s" }
                    ),
                    total,
                    resume: None,
                    check: references.clone(),
                },
            )?;
            let state = group.state();
            let failure = match &streamed.reply {
                LoadReply::Loaded(loaded) => {
                    for (i, image) in images.iter().enumerate() {
                        let got = loaded.get(i).cloned().unwrap_or_default();
                        if !got.is(&image.id, &image.created, &image.diff_ids) {
                            return Err(not_as_sent(
                                &format!("after loading {count} images"),
                                &image.reference,
                                &got,
                                image,
                            ));
                        }
                    }
                    let sent_as = state.choices.describe(compression);
                    self.to.info(&format!(
                        "loaded {count} image{}: {named} ({sending} of {layers} layers sent as {} {sent_as} for {} of images, {:.1} s{})",
                        if count == 1 { "" } else { "s" },
                        crate::report::bytes(streamed.sent),
                        crate::report::bytes(size),
                        streamed.took.as_secs_f64(),
                        if skip.is_empty() {
                            rate(size, streamed.took)
                        } else {
                            String::new()
                        }
                    ));
                    return Ok(ShippedImages {
                        images: Vec::new(),
                        bytes: streamed.sent,
                        compression: compression.name().to_string(),
                        sent_as,
                        took: streamed.took,
                        layers: (sending, layers),
                    });
                }
                failure => failure,
            };
            // A verified whole stream the engine lost a blob of, once: see `remote::LoadReply`.
            if matches!(failure, LoadReply::LostBlob)
                && !reloaded
                && skip.is_empty()
                && stream_failure(failure, &state, &self.host).is_none()
            {
                self.to.warn(&format!(
                    "{named}: the host's engine lost a layer of what it was sent ({}), as containerd does after an earlier load of it was cut short; loading them once more",
                    streamed.last_line
                ));
                reloaded = true;
                continue;
            }
            if let Some(reason) = stream_failure(failure, &state, &self.host) {
                return Err(ShipError::failed(format!("{named}: {reason}")));
            }
            let reason = &streamed.last_line;
            if attempt == 0 && !skip.is_empty() {
                self.to.warn(&format!(
                    "{named}: the host's engine refused the layer delta ({reason}); sending the whole images"
                ));
                skip.clear();
                continue;
            }
            return Err(ShipError::failed(format!(
                "docker load of {count} images ({named}) failed on the host (exit {}): {reason}",
                streamed.code
            )));
        }
        unreachable!("the loop returns")
    }
}

/// How many different layers `images` have.
fn distinct(images: &[&ImageInfo]) -> usize {
    images
        .iter()
        .flat_map(|i| &i.diff_ids)
        .collect::<HashSet<_>>()
        .len()
}

/// The layers one archive of `images` can leave out for a host holding `host_images`: each
/// image's skippable layers, except a layer another image of the archive still needs, since
/// the archive stores a shared layer once.
fn shared_skip(images: &[&ImageInfo], host_images: &[Vec<String>]) -> BTreeSet<String> {
    let each: Vec<HashSet<String>> = images
        .iter()
        .map(|i| archive::skippable(&i.diff_ids, host_images))
        .collect();
    let needed: HashSet<&String> = images
        .iter()
        .zip(&each)
        .flat_map(|(i, skip)| i.diff_ids.iter().filter(|d| !skip.contains(*d)))
        .collect();
    each.iter()
        .flatten()
        .filter(|d| !needed.contains(d))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(reference: &str, layers: &[&str]) -> ImageInfo {
        ImageInfo {
            reference: reference.into(),
            id: format!("sha256:{reference}"),
            diff_ids: layers.iter().map(|l| l.to_string()).collect(),
            created: String::new(),
            repo_tags: Vec::new(),
            size: 0,
            engine_version: "26.1.5".into(),
            containerd_store: false,
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_shared_layer_is_left_out_only_when_no_image_of_the_stream_needs_it() {
        let (app, base, other) = (
            image("app", &["b", "a1"]),
            image("base", &["b"]),
            image("other", &["x", "b"]),
        );
        let held = [ids(&["b", "old"])];
        assert_eq!(shared_skip(&[&app, &base], &held), ["b".into()].into());
        // `other` stacks `b` on `x`, which the host lacks: `b` must travel, once for all.
        assert!(shared_skip(&[&app, &other], &held).is_empty());
        assert!(shared_skip(&[&app, &base], &[]).is_empty());
        assert_eq!(distinct(&[&app, &base, &other]), 3);
    }
}
