//! One host's end of a fanned-out stream, as the standard input of its `docker load`.
//!
//! The producer thread fills a bounded queue per host (see [`fanout`](super::fanout)); the SSH
//! layer drains it into the command's channel through the [`StdinStream`] trait, and the
//! delivery watches how far it got, and gives up on a host the producer dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Mutex, Notify};

use crate::ssh::{StdinStream, StreamFuture};

/// Standard input that another thread produces: buffers arrive on a bounded channel, so a
/// producer feeding many hosts is held back by a slow one only as far as that channel holds.
pub struct StreamInput {
    rx: Mutex<mpsc::Receiver<Arc<[u8]>>>,
    /// Bytes taken from the channel so far (for progress).
    pub sent: AtomicU64,
    /// Flip the byte at this offset, as a faulty link would (fault injection for tests).
    corrupt_at: Option<u64>,
    /// Set when the producer gave up on this host: its command is stopped, not waited for.
    abandoned: AtomicBool,
    abandon: Notify,
}

impl StreamInput {
    /// `host`'s input from its queue of the stream.
    pub fn for_host(rx: mpsc::Receiver<Arc<[u8]>>, host: &str) -> Arc<StreamInput> {
        Arc::new(StreamInput {
            rx: Mutex::new(rx),
            sent: AtomicU64::new(0),
            corrupt_at: corrupt_at(host),
            abandoned: AtomicBool::new(false),
            abandon: Notify::new(),
        })
    }

    /// Gives up on the host (it took nothing for too long): the command reading this stream is
    /// stopped on the host and ends with an error instead of waiting for a host that may never
    /// read again.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
        self.abandon.notify_waiters();
    }

    /// Whether [`StreamInput::abandon`] was called.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Refuses further buffers from a thread outside the runtime, and drops what is still
    /// queued: the producer sees this host as gone.
    pub fn close_blocking(&self) {
        let mut rx = self.rx.blocking_lock();
        rx.close();
        while rx.try_recv().is_ok() {}
    }
}

impl StdinStream for StreamInput {
    fn next(&self) -> StreamFuture<'_, Option<Arc<[u8]>>> {
        Box::pin(async move {
            let chunk = self.rx.lock().await.recv().await?;
            let start = self.sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            match self.corrupt_at {
                Some(at) if at >= start && at < start + chunk.len() as u64 => {
                    let mut copy = chunk.to_vec();
                    copy[(at - start) as usize] ^= 0x01;
                    Some(copy.into())
                }
                _ => Some(chunk),
            }
        })
    }

    fn close(&self) -> StreamFuture<'_, ()> {
        Box::pin(async move { self.rx.lock().await.close() })
    }

    fn abandoned(&self) -> StreamFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let notified = self.abandon.notified();
                if self.is_abandoned() {
                    return;
                }
                notified.await;
            }
        })
    }
}

/// Fault injection for the tests: `RIGS_TEST_CORRUPT_SHIP=HOST` flips one byte of what is sent
/// to that host. Only debug builds honour it.
fn corrupt_at(host: &str) -> Option<u64> {
    if !cfg!(debug_assertions) {
        return None;
    }
    (std::env::var("RIGS_TEST_CORRUPT_SHIP").ok().as_deref() == Some(host)).then_some(4096)
}
