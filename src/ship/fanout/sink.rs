//! The producer's side of one group's stream: frames fanned out to the queues of its hosts.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{Group, QUEUE_FRAMES};
use crate::ship::compress::{Choices, Pace};
use crate::ship::remote::{end_frame, frame_header, FRAME};

/// A receiving host as the producer sees it.
pub(super) struct Receiver {
    pub(super) host: String,
    pub(super) tx: mpsc::Sender<Arc<[u8]>>,
    pub(super) stall: Duration,
    /// Payload bytes the host already holds from an interrupted attempt, not to be sent again.
    pub(super) resume_from: u64,
}

/// One group's output while producing: frames fanned out to its hosts' queues.
pub(super) struct FrameSink {
    /// Waits on the hosts' queues, so that the producer wakes as soon as one has room.
    pub(super) rt: Arc<tokio::runtime::Runtime>,
    pub(super) buf: Vec<u8>,
    pub(super) hosts: Vec<Receiver>,
    pub(super) hasher: Sha256,
    pub(super) bytes: u64,
    pub(super) group: Arc<Group>,
    pub(super) pace: Option<Arc<Pace>>,
}

/// Frames a host queue holds while the stream has not yet measured how fast the hosts take it:
/// what waits in a queue was encoded before anything was known, so the queue stays short until
/// the encoder can choose well (a full queue is 32 MiB of compressed blocks, the whole first
/// half of a 176 MB image at 3:1).
const LEARNING_FRAMES: usize = 2;

/// Queues `item` for one host, waiting while it has `room` frames queued; `false` when the host
/// is gone or was dropped for stalling.
fn deliver(
    rt: &tokio::runtime::Runtime,
    group: &Group,
    r: &Receiver,
    item: Arc<[u8]>,
    room: usize,
) -> bool {
    let queued = |r: &Receiver| r.tx.max_capacity() - r.tx.capacity();
    let send = async {
        while queued(r) >= room && !r.tx.is_closed() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        r.tx.send(item).await
    };
    match rt.block_on(async { tokio::time::timeout(r.stall, send).await }) {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            group.update(|s| {
                s.dropped.insert(
                    r.host.clone(),
                    format!(
                        "the host took no data for {} s while others waited",
                        r.stall.as_secs()
                    ),
                );
            });
            false
        }
    }
}

impl FrameSink {
    fn broadcast(&mut self, frame: Arc<[u8]>) {
        let (group, rt) = (self.group.clone(), self.rt.clone());
        self.hosts
            .retain(|r| deliver(&rt, &group, r, frame.clone(), QUEUE_FRAMES));
    }

    fn emit(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let payload = std::mem::take(&mut self.buf);
        self.hasher.update(&payload);
        self.bytes += payload.len() as u64;
        self.group
            .written
            .fetch_add(payload.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut shared: Option<Arc<[u8]>> = None;
        let (group, rt) = (self.group.clone(), self.rt.clone());
        let room = match &self.pace {
            Some(pace) if !pace.measured() => LEARNING_FRAMES,
            _ => QUEUE_FRAMES,
        };
        self.hosts.retain_mut(|r| {
            let len = payload.len() as u64;
            if r.resume_from >= len {
                // The host has these bytes from an interrupted earlier attempt.
                r.resume_from -= len;
                return true;
            }
            let frame = if r.resume_from > 0 {
                let rest = &payload[r.resume_from as usize..];
                r.resume_from = 0;
                let mut f = frame_header(rest.len());
                f.extend_from_slice(rest);
                f.into()
            } else {
                shared
                    .get_or_insert_with(|| {
                        let mut f = frame_header(payload.len());
                        f.extend_from_slice(&payload);
                        f.into()
                    })
                    .clone()
            };
            deliver(&rt, &group, r, frame, room)
        });
        self.buf = payload;
        self.buf.clear();
        if let Some(pace) = &self.pace {
            // What the slowest host has taken: everything sent but what waits in its queue.
            let queued = self
                .hosts
                .iter()
                .map(|r| r.tx.max_capacity() - r.tx.capacity())
                .max()
                .unwrap_or(0) as u64;
            let wire = self.bytes.saturating_sub(queued * FRAME as u64);
            let read = self.group.read.load(std::sync::atomic::Ordering::Relaxed);
            let raw = (read as f64 * wire as f64 / self.bytes.max(1) as f64) as u64;
            pace.taken(wire, raw, queued);
        }
    }

    /// Sends the end frame, once the group's outcome is recorded.
    pub(super) fn finish(mut self, choices: Choices) {
        self.emit();
        let sha = crate::hex::encode(&self.hasher.clone().finalize());
        self.group.update(|s| {
            s.sha256 = Some(sha.clone());
            s.choices = choices;
        });
        self.broadcast(end_frame(&sha).into());
    }
}

impl Write for FrameSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.hosts.is_empty() {
            return Err(io::Error::other("no host is receiving this stream"));
        }
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= FRAME {
            self.emit();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
