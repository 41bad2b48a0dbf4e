//! `docker::ship`: one image from the controller's engine, with only the layers the host lacks,
//! resumed where an interrupted ship stopped when asked to.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use super::load::{stream_failure, Load};
use super::{not_as_sent, rate, Delivery, ShipOptions, Shipped};
use crate::quote::quote;
use crate::report::Total;
use crate::ship::remote::{self, LoadReply};
use crate::ship::{archive, Compression, HostCommand, ImageInfo, Request, ShipError, Source};

impl Delivery<'_> {
    /// Streams the controller's image `reference` into the host's engine.
    pub fn image(&self, reference: &str, o: &ShipOptions) -> Result<Shipped, ShipError> {
        if self.to.dry_run() {
            self.show(&format!(
                "docker load  # {} streamed from the controller's docker save, verified",
                quote(reference)
            ))?;
            return Ok(Shipped::nothing(reference, ""));
        }
        // The controller's engine and the host's are asked at the same time.
        let (image, held) = std::thread::scope(|threads| {
            let image = threads.spawn(|| self.ships.image(reference));
            let held = self.query();
            (image.join(), held)
        });
        let image: ImageInfo = image
            .unwrap_or_else(|_| Err("internal error: the image query panicked".into()))
            .map_err(|e| {
                ShipError::failed(format!(
                    "`{reference}` is not an image on the controller: {e}\n\
                     build, pull or load it on the controller first (its docker follows DOCKER_HOST)"
                ))
            })?;
        let held = held?;
        if let Some(copy) = held.find(&image.id, &image.created, &image.diff_ids) {
            self.tag(&copy.id, reference)?;
            if o.resume {
                // An interrupted ship may have finished loading after all: its parts are useless.
                self.to
                    .run(HostCommand::silent(&remote::forget_parts_command(
                        &part_prefix(&image.id),
                    )))?;
            }
            self.to.info(&format!(
                "{reference}: already on the host ({}), nothing sent",
                short(&image.id)
            ));
            return Ok(Shipped {
                id: image.id.clone(),
                ..Shipped::nothing(reference, "")
            });
        }
        let compression = o
            .compression
            .unwrap_or_else(|| Compression::for_engine(&held.engine_version));
        let mut skip: BTreeSet<String> = if o.delta {
            archive::skippable(&image.diff_ids, &held.layer_lists())
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        let host = self.host.clone();
        let layers = image.diff_ids.len();
        let mut resumable = o.resume;
        // Whether the host's engine already lost a blob of a verified stream once.
        let mut reloaded = false;
        for attempt in 0.. {
            let sending = image.diff_ids.iter().filter(|d| !skip.contains(*d)).count();
            let key = resumable.then(|| part_key(&image.id, &host, compression, &skip));
            let resume_from = match &key {
                Some(k) => self.part_size(k)?,
                None => 0,
            };
            if resume_from > 0 && !reloaded {
                self.to.info(&format!(
                    "{reference}: resuming after the {} the host kept from an interrupted ship",
                    crate::report::bytes(resume_from)
                ));
            }
            let ticket = self.join(
                format!("save|{}|{reference}|{attempt}", image.id),
                Request {
                    host: host.clone(),
                    compression,
                    // A codec named by the recipe is used throughout; resumed bytes must repeat.
                    adapt: key.is_none() && o.compression.is_none(),
                    skip: skip.clone(),
                    oci: !skip.is_empty() && held.containerd_store && !image.saves_oci_layout(),
                    stall: o.stall,
                    resume_from,
                },
                Source::Save(vec![image.clone()]),
            )?;
            let group = ticket.group.clone();
            let display = format!(
                "docker load  # {} from the controller: {sending} of {layers} layers, {}",
                quote(reference),
                compression.name()
            );
            // Whole images: the size docker reports, scaled by the compression seen so far,
            // which is an estimate (the reporter shows it so and never lets it shrink).
            let total: Box<dyn Fn() -> Option<Total> + Send + Sync> = if skip.is_empty() {
                let (group, size) = (group.clone(), image.size);
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
                    what: format!("shipping {reference}"),
                    total,
                    resume: key.as_deref(),
                    check: vec![reference],
                },
            )?;
            let state = group.state();
            let failure = match &streamed.reply {
                LoadReply::Loaded(loaded) => {
                    let loaded = loaded.first().cloned().unwrap_or_default();
                    if !loaded.is(&image.id, &image.created, &image.diff_ids) {
                        return Err(not_as_sent("after loading", reference, &loaded, &image));
                    }
                    let sent_as = state.choices.describe(compression);
                    self.to.info(&format!(
                        "{reference}: loaded {} ({sending} of {layers} layers sent as {} {sent_as} for a {} image, {:.1} s{})",
                        short(&image.id),
                        crate::report::bytes(streamed.sent),
                        crate::report::bytes(image.size),
                        streamed.took.as_secs_f64(),
                        if skip.is_empty() {
                            rate(image.size, streamed.took)
                        } else {
                            String::new()
                        }
                    ));
                    return Ok(Shipped {
                        image: reference.to_string(),
                        id: image.id.clone(),
                        compression: compression.name().to_string(),
                        sent_as,
                        bytes: streamed.sent,
                        took: streamed.took,
                        layers: Some((sending, layers)),
                    });
                }
                failure => failure,
            };
            let cut = matches!(failure, LoadReply::Cut);
            // A verified whole image the engine lost a blob of, once: see `remote::LoadReply`.
            // (With a delta, a missing blob may be one the host was meant to hold: sending it
            // all follows.)
            let lost = matches!(failure, LoadReply::LostBlob)
                && !reloaded
                && skip.is_empty()
                && stream_failure(failure, &state, &host).is_none();
            if let (Some(k), false) = (&key, cut || lost) {
                // Only a stream cut short, or one to load again, is worth keeping for the next
                // attempt.
                let rm = format!("rm -f {}", remote::part_path(k));
                self.to.run(HostCommand::silent(&rm))?;
            }
            if lost {
                self.to.warn(&format!(
                    "{reference}: the host's engine lost a layer of what it was sent ({}), as containerd does after an earlier load of it was cut short; loading it once more{}",
                    streamed.last_line,
                    if key.is_some() {
                        " from what the host holds"
                    } else {
                        ""
                    }
                ));
                reloaded = true;
                continue;
            }
            if resume_from > 0 && matches!(failure, LoadReply::Mismatch { .. }) {
                self.to.warn(&format!(
                    "{reference}: what the host kept did not match; sending it all again"
                ));
                resumable = false;
                continue;
            }
            if let Some(reason) = stream_failure(failure, &state, &host) {
                return Err(ShipError::failed(format!("{reference}: {reason}")));
            }
            let reason = &streamed.last_line;
            if attempt == 0 && !skip.is_empty() {
                self.to.warn(&format!(
                    "{reference}: the host's engine refused the layer delta ({reason}); sending the whole image"
                ));
                skip.clear();
                continue;
            }
            return Err(ShipError::failed(format!(
                "docker load of {reference} failed on the host (exit {}): {reason}",
                streamed.code
            )));
        }
        unreachable!("the loop returns")
    }

    /// Bytes of the stream `key` the host kept from an earlier attempt.
    fn part_size(&self, key: &str) -> Result<u64, ShipError> {
        let r = self
            .to
            .run(HostCommand::silent(&remote::part_size_command(key)))?;
        Ok(r.stdout.trim().parse().unwrap_or(0))
    }
}

/// Names the part file of one stream: the same image, compression and layers give the same
/// bytes, because `docker save` and the encoders are deterministic.
/// The key starts with the image id, so that all parts of one image can be found.
fn part_key(id: &str, host: &str, compression: Compression, skip: &BTreeSet<String>) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    // Hosts that share a home folder must not share a part.
    h.update(host.as_bytes());
    h.update(compression.name().as_bytes());
    for layer in skip {
        h.update(layer.as_bytes());
    }
    format!(
        "{}{}",
        part_prefix(id),
        &crate::hex::encode(&h.finalize())[..16]
    )
}

fn part_prefix(id: &str) -> String {
    id.strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect()
}

pub(super) fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}
