//! Compression on every core: a stream cut into blocks, each compressed on its own into a member
//! or frame, written in order.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{pack_at, store, Choices, Compression, Encoder, Pace, GZIP_LEVEL};

/// gzip level 6 while the link is known to be the narrow part: 62.7 MB of the same programs
/// (2.8 s), still far faster than a link narrow enough to be measured so carries.
const GZIP_LINK_LEVEL: u32 = 6;

/// How one block travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Compress,
    /// Compressed while the stream watches a link that is not fast: worth more CPU per byte.
    SlowLink,
    Precompressed,
    Incompressible,
    FastLink,
    Starved,
}

/// Runs one block: compressed unless told otherwise, and stored after all when compressing
/// did not shrink it by 3%. Returns the bytes and whether they are compressed.
fn encode(codec: Compression, data: &[u8], mode: Mode) -> io::Result<(Vec<u8>, bool)> {
    if matches!(mode, Mode::Compress | Mode::SlowLink) {
        let level = if mode == Mode::SlowLink {
            GZIP_LINK_LEVEL
        } else {
            GZIP_LEVEL
        };
        let packed = pack_at(codec, data, level)?;
        if packed.len() < data.len() / 100 * 97 {
            return Ok((packed, true));
        }
    }
    Ok((store(codec, data)?, false))
}

struct Job {
    seq: u64,
    data: Vec<u8>,
    mode: Mode,
}

type Done = (u64, io::Result<(Vec<u8>, bool)>);

/// gzip or zstd on several threads: each block becomes an independent member or frame (both
/// formats allow them to be concatenated), written in order. Memory stays bounded at two
/// blocks in flight per thread.
pub(super) struct Blocks<W> {
    out: W,
    block: Vec<u8>,
    size: usize,
    /// The bytes being gathered are compressed already.
    precompressed: bool,
    pace: Option<Arc<Pace>>,
    /// Blocks in a row that did not shrink: after 4, only every 16th is tried.
    hopeless: u32,
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    dispatched: u64,
    written: u64,
    /// Per block in flight: its mode and raw length.
    flight: BTreeMap<u64, (Mode, usize)>,
    ready: BTreeMap<u64, (Vec<u8>, bool)>,
    limit: u64,
    choices: Choices,
}

impl<W: Write> Blocks<W> {
    pub(super) fn new(codec: Compression, out: W, threads: usize, pace: Option<Arc<Pace>>) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (finished, done) = mpsc::channel::<Done>();
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|_| {
                let queue = queue.clone();
                let finished = finished.clone();
                std::thread::spawn(move || loop {
                    let job = queue.lock().expect("encoder queue").recv();
                    let Ok(job) = job else { return };
                    let result = encode(codec, &job.data, job.mode);
                    if finished.send((job.seq, result)).is_err() {
                        return;
                    }
                })
            })
            .collect();
        Blocks {
            out,
            block: Vec::with_capacity(codec.block()),
            size: codec.block(),
            precompressed: false,
            pace,
            hopeless: 0,
            jobs: Some(jobs),
            done,
            workers,
            dispatched: 0,
            written: 0,
            flight: BTreeMap::new(),
            ready: BTreeMap::new(),
            limit: 2 * threads as u64,
            choices: Choices::default(),
        }
    }

    fn collect_one(&mut self) -> io::Result<()> {
        let (seq, result) = self
            .done
            .recv()
            .map_err(|_| io::Error::other("an encoder thread stopped"))?;
        self.ready.insert(seq, result?);
        while let Some((bytes, compressed)) = self.ready.remove(&self.written) {
            let (mode, raw) = self
                .flight
                .remove(&self.written)
                .expect("every block in flight is known");
            let raw = raw as u64;
            match mode {
                Mode::Compress | Mode::SlowLink if compressed => {
                    self.hopeless = 0;
                    self.choices.compressed += raw;
                }
                Mode::Compress | Mode::SlowLink => {
                    self.hopeless += 1;
                    self.choices.incompressible += raw;
                }
                Mode::Incompressible => self.choices.incompressible += raw,
                Mode::Precompressed => self.choices.precompressed += raw,
                Mode::FastLink => self.choices.fast_link += raw,
                Mode::Starved => self.choices.starved += raw,
            }
            self.out.write_all(&bytes)?;
            self.written += 1;
        }
        Ok(())
    }

    fn mode(&self) -> Mode {
        if self.precompressed {
            Mode::Precompressed
        } else if self.pace.as_ref().is_some_and(|p| p.fast()) {
            Mode::FastLink
        } else if self.pace.as_ref().is_some_and(|p| p.starved()) {
            Mode::Starved
        } else if self.pace.is_some() && self.hopeless >= 4 && !self.dispatched.is_multiple_of(16) {
            Mode::Incompressible
        } else if self.pace.as_ref().is_some_and(|p| p.slow()) {
            Mode::SlowLink
        } else {
            Mode::Compress
        }
    }

    fn dispatch(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        while self.dispatched - self.written >= self.limit {
            self.collect_one()?;
        }
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(self.size));
        let mode = self.mode();
        self.flight.insert(self.dispatched, (mode, data.len()));
        self.jobs
            .as_ref()
            .expect("encoder not finished")
            .send(Job {
                seq: self.dispatched,
                data,
                mode,
            })
            .map_err(|_| io::Error::other("the encoder threads stopped"))?;
        self.dispatched += 1;
        Ok(())
    }
}

impl<W: Write> Write for Blocks<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        while !buf.is_empty() {
            let take = (self.size - self.block.len()).min(buf.len());
            self.block.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.block.len() == self.size {
                self.dispatch()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send> Encoder<W> for Blocks<W> {
    fn finish(mut self: Box<Self>) -> io::Result<(W, Choices)> {
        self.dispatch()?;
        while self.written < self.dispatched {
            self.collect_one()?;
        }
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        self.out.flush()?;
        Ok((self.out, self.choices))
    }

    fn precompressed(&mut self, already: bool) {
        if already != self.precompressed {
            // A block holds one kind of bytes only. A failure here shows at the next write.
            let _ = self.dispatch();
            self.precompressed = already;
        }
    }
}
