//! The producer thread: the archive read once, and one compressed copy written per group.

use std::collections::{BTreeSet, HashSet};
use std::io::{self, Read, Write};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::sink::{FrameSink, Receiver};
use super::{Group, Request, Source, Ticket, QUEUE_FRAMES};
use crate::ship::archive::{self, LayerNames, Output};
use crate::ship::bundle::VerifiedBundle;
use crate::ship::compress::{self, Compression, Encoder, Pace};
use crate::ship::image_info::{finish_save, save};
use crate::ship::remote::FRAME;
use crate::ship::ImageInfo;

struct GroupOut {
    skip: HashSet<String>,
    oci: bool,
    encoder: Box<dyn Encoder<FrameSink>>,
    group: Arc<Group>,
}

/// Groups the requests, hands out tickets, and starts the producer thread.
pub(super) fn start(requests: Vec<Request>, source: Source) -> Vec<Ticket> {
    let mut keys: Vec<(Compression, BTreeSet<String>, bool, bool)> = Vec::new();
    let mut members: Vec<Vec<Receiver>> = Vec::new();
    let mut tickets = Vec::new();
    let mut groups: Vec<Arc<Group>> = Vec::new();
    for r in requests {
        let key = (r.compression, r.skip.clone(), r.oci, r.adapt);
        let at = match keys.iter().position(|k| *k == key) {
            Some(at) => at,
            None => {
                keys.push(key);
                members.push(Vec::new());
                groups.push(Arc::new(Group::default()));
                keys.len() - 1
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
        members[at].push(Receiver {
            host: r.host,
            tx,
            stall: r.stall,
            resume_from: r.resume_from,
        });
        tickets.push(Ticket {
            rx,
            group: groups[at].clone(),
        });
    }
    let threads = compress::threads();
    let rt = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime for the image producer"),
    );
    // A bundle's archive is compressed already: its bytes pass through as they are.
    let precompressed = matches!(source, Source::Bundle { .. });
    let outs: Vec<GroupOut> = keys
        .into_iter()
        .zip(members)
        .zip(groups)
        .map(|(((compression, skip, oci, adapt), hosts), group)| {
            let pace = (adapt && !precompressed).then(|| Arc::new(Pace::default()));
            let sink = FrameSink {
                rt: rt.clone(),
                buf: Vec::with_capacity(FRAME + 64 * 1024),
                hosts,
                hasher: Sha256::new(),
                bytes: 0,
                group: group.clone(),
                pace: pace.clone(),
            };
            GroupOut {
                skip: skip.into_iter().collect::<HashSet<String>>(),
                oci,
                encoder: if precompressed {
                    Compression::None.encoder(sink, 1, None)
                } else {
                    compression.encoder(sink, threads, pace)
                },
                group,
            }
        })
        .collect();
    let groups: Vec<Arc<Group>> = outs.iter().map(|o| o.group.clone()).collect();
    std::thread::Builder::new()
        .name("rigs-ship".into())
        .spawn(move || {
            let produced =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| produce(source, outs)));
            if produced.is_err() {
                // The queues are gone without an end frame, so no host loads anything; each
                // is told why instead of seeing a stream that merely broke off.
                for group in groups {
                    group.update(|s| {
                        s.error.get_or_insert_with(|| {
                            "internal error: the image stream stopped (a bug in rigs: please \
                             report it with the message above)"
                                .into()
                        });
                    });
                }
            }
        })
        .expect("spawn the image producer");
    tickets
}

fn produce(source: Source, mut outs: Vec<GroupOut>) {
    let result = match &source {
        Source::Save(images) => produce_save(images, &mut outs),
        Source::Bundle { bundle, body } => produce_bundle(bundle, *body, &mut outs),
    };
    match result {
        Ok(()) => {
            for out in outs {
                match out.encoder.finish() {
                    Ok((sink, choices)) => sink.finish(choices),
                    Err(e) => out
                        .group
                        .update(|s| s.error = Some(format!("compression failed: {e}"))),
                }
            }
        }
        Err(message) => {
            // Dropping the queues without an end frame makes every host reject the stream.
            for out in outs {
                out.group.update(|s| s.error = Some(message.clone()));
            }
        }
    }
}

fn produce_save(images: &[ImageInfo], outs: &mut [GroupOut]) -> Result<(), String> {
    let references: Vec<String> = images.iter().map(|i| i.reference.clone()).collect();
    let what = references.join(" ");
    let wants_delta = outs.iter().any(|o| !o.skip.is_empty());
    // Entry names are the same in every save of an image (v1 ids and blob digests follow from
    // the layers), so what was learnt of each image alone serves a save of several.
    let mut names = LayerNames::default();
    let mut learn = false;
    for image in images {
        let cached = LayerNames::cached(&image.id).unwrap_or_default();
        learn |= !image.names_layers_by_diff_id() && !cached.covers(&image.diff_ids);
        names.by_path.extend(cached.by_path);
    }
    if learn && wants_delta {
        let mut child = save(&references)?;
        let stdout = child.stdout.take().expect("piped stdout");
        let scanned = archive::scan(stdout);
        finish_save(child, &what)?;
        names = scanned.map_err(|e| format!("reading docker save output: {e}"))?;
        for image in images {
            names.store(&image.id);
        }
    }
    let mut child = save(&references)?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut counted: Vec<(&HashSet<String>, bool, Counted)> = outs
        .iter_mut()
        .map(|o| {
            let GroupOut {
                skip,
                oci,
                encoder,
                group,
            } = o;
            (
                &*skip,
                *oci,
                Counted {
                    inner: encoder,
                    group,
                },
            )
        })
        .collect();
    let mut outputs: Vec<Output> = counted
        .iter_mut()
        .map(|(skip, oci, c)| Output {
            oci: *oci,
            ..Output::new(skip, c)
        })
        .collect();
    // Names are learnt only when a delta needs them: hashing every layer would cost the
    // controller CPU that the stream needs.
    if let Err(e) = archive::pass(stdout, &names, &mut outputs, false) {
        let _ = child.kill();
        let saved = finish_save(child, &what);
        return Err(saved
            .err()
            .unwrap_or_else(|| format!("reading docker save output: {e}")));
    }
    finish_save(child, &what)
}

/// An encoder's input, counted for the progress estimate.
struct Counted<'a> {
    inner: &'a mut Box<dyn Encoder<FrameSink>>,
    group: &'a Group,
}

impl archive::Sink for Counted<'_> {
    fn precompressed(&mut self, already: bool) {
        self.inner.precompressed(already)
    }
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.group
            .read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams the first `body` bytes of a verified bundle's archive. They come from the file that
/// was verified, never from its path again, and the reader fails instead of ending when the
/// archive no longer hashes to the manifest's digest: the error drops every queue without an
/// end frame, so no host loads a bundle changed after it was verified.
fn produce_bundle(bundle: &VerifiedBundle, body: u64, outs: &mut [GroupOut]) -> Result<(), String> {
    let path = bundle.path();
    let mut input = bundle.open_archive(body).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1024 * 1024];
    // Groups whose hosts are all gone.
    let mut gone = vec![false; outs.len()];
    loop {
        let n = input
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        for (o, gone) in outs.iter_mut().zip(gone.iter_mut()) {
            if !*gone && o.encoder.write_all(&buf[..n]).is_err() {
                *gone = true;
            }
        }
        if gone.iter().all(|g| *g) {
            return Err("no host is receiving this stream".into());
        }
    }
    Ok(())
}
