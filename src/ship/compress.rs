//! Compression of image streams: zstd (multi-threaded), parallel gzip, or none.
//!
//! `docker load` sniffs the compression itself, so hosts need no decompressor of their own:
//! every engine reads gzip, engines from 23.0 on also read zstd. Both formats allow a stream of
//! independent members (gzip) or frames (zstd) to be concatenated, which rigs uses twice: gzip
//! is compressed in 1 MiB blocks on every core at once, each block its own member (as pigz
//! does), and the tar end-of-archive marker always travels as a separate final member, so the
//! receiving side can hold it back until the stream's checksum has been verified.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// How an image stream is compressed on the wire and in bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Zstd,
    Gzip,
    None,
}

/// zstd level 3 ran at ~340 MiB/s on two threads here, far ahead of `docker load` itself.
pub const ZSTD_LEVEL: i32 = 3;
/// gzip level 1: the fastest level, about a third of the level-6 time for a few percent of size.
pub const GZIP_LEVEL: u32 = 1;
const GZIP_BLOCK: usize = 1024 * 1024;
/// The tar end-of-archive marker: two zero blocks.
pub const TAR_TRAILER: [u8; 1024] = [0; 1024];

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Compression> {
        match text {
            "zstd" => Some(Compression::Zstd),
            "gzip" | "gz" => Some(Compression::Gzip),
            "none" => Some(Compression::None),
            _ => None,
        }
    }

    /// The best compression an engine of this server version can load: zstd from 23.0 on.
    pub fn for_engine(version: &str) -> Compression {
        if engine_major(version) >= 23 {
            Compression::Zstd
        } else {
            Compression::Gzip
        }
    }

    /// The tar end-of-archive marker compressed as a member or frame of its own.
    pub fn trailer(self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = self.encoder(&mut out, 1);
        encoder
            .write_all(&TAR_TRAILER)
            .and_then(|_| encoder.finish().map(|_| ()))
            .expect("compressing into memory cannot fail");
        out
    }

    /// An encoder writing the compressed form of what it is given into `out`.
    pub fn encoder<'a, W: Write + Send + 'a>(
        self,
        out: W,
        threads: usize,
    ) -> Box<dyn Encoder<W> + 'a> {
        match self {
            Compression::None => Box::new(Plain(out)),
            Compression::Gzip if threads > 1 => Box::new(ParallelGzip::new(out, threads)),
            Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Compression::Zstd => Box::new(Zstd::new(out, threads)),
        }
    }
}

/// The major number of a Docker engine version (`20.10.24+dfsg1` -> 20); 0 when unreadable.
pub fn engine_major(version: &str) -> u32 {
    version
        .trim()
        .split(['.', '-', '+'])
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// A compressing writer that hands its output back when finished.
pub trait Encoder<W>: Write + Send {
    fn finish(self: Box<Self>) -> io::Result<W>;
}

struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> Encoder<W> for Plain<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        Ok(self.0)
    }
}

impl<W: Write + Send> Encoder<W> for flate2::write::GzEncoder<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        (*self).finish()
    }
}

struct Zstd<'a, W: Write>(zstd::stream::write::Encoder<'a, W>);

impl<'a, W: Write> Zstd<'a, W> {
    fn new(out: W, threads: usize) -> Self {
        let mut encoder =
            zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).expect("zstd level 3 is valid");
        if threads > 1 {
            // Without the multi-threading support compiled in this fails, and one thread it is.
            let _ = encoder.multithread(threads as u32);
        }
        Zstd(encoder)
    }
}

impl<W: Write> Write for Zstd<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> Encoder<W> for Zstd<'_, W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        self.0.finish()
    }
}

/// One block as a gzip member. Blocks that do not shrink (layers of compressed files, media,
/// model weights) are stored instead, which costs a copy instead of a compression and does not
/// grow the data; after a run of them, only every 16th block is tried, until one shrinks again.
fn gzip_member(data: &[u8], hopeless: &AtomicU32, seq: u64) -> io::Result<Vec<u8>> {
    let streak = hopeless.load(Ordering::Relaxed);
    let try_compress = streak < 4 || seq % 16 == 0;
    if try_compress {
        let mut member = flate2::write::GzEncoder::new(
            Vec::with_capacity(data.len() / 2),
            flate2::Compression::new(GZIP_LEVEL),
        );
        member.write_all(data)?;
        let packed = member.finish()?;
        if packed.len() < data.len() / 100 * 97 {
            hopeless.store(0, Ordering::Relaxed);
            return Ok(packed);
        }
        hopeless.fetch_add(1, Ordering::Relaxed);
    }
    let mut member = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() + 1024),
        flate2::Compression::none(),
    );
    member.write_all(data)?;
    member.finish()
}

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

/// gzip on several threads: each 1 MiB block becomes an independent gzip member, and members
/// are written in order. Memory stays bounded at two blocks in flight per thread.
struct ParallelGzip<W> {
    out: W,
    block: Vec<u8>,
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    dispatched: u64,
    written: u64,
    ready: BTreeMap<u64, Vec<u8>>,
    limit: u64,
}

impl<W: Write> ParallelGzip<W> {
    fn new(out: W, threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (finished, done) = mpsc::channel::<Done>();
        let queue = Arc::new(Mutex::new(queue));
        let hopeless = Arc::new(AtomicU32::new(0));
        let workers = (0..threads)
            .map(|_| {
                let queue = queue.clone();
                let finished = finished.clone();
                let hopeless = hopeless.clone();
                std::thread::spawn(move || loop {
                    let job = queue.lock().expect("gzip queue").recv();
                    let Ok((seq, data)) = job else { return };
                    let result = gzip_member(&data, &hopeless, seq);
                    if finished.send((seq, result)).is_err() {
                        return;
                    }
                })
            })
            .collect();
        ParallelGzip {
            out,
            block: Vec::with_capacity(GZIP_BLOCK),
            jobs: Some(jobs),
            done,
            workers,
            dispatched: 0,
            written: 0,
            ready: BTreeMap::new(),
            limit: 2 * threads as u64,
        }
    }

    fn collect_one(&mut self) -> io::Result<()> {
        let (seq, result) = self
            .done
            .recv()
            .map_err(|_| io::Error::other("a gzip worker stopped"))?;
        self.ready.insert(seq, result?);
        while let Some(member) = self.ready.remove(&self.written) {
            self.out.write_all(&member)?;
            self.written += 1;
        }
        Ok(())
    }

    fn dispatch(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        while self.dispatched - self.written >= self.limit {
            self.collect_one()?;
        }
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(GZIP_BLOCK));
        self.jobs
            .as_ref()
            .expect("encoder not finished")
            .send((self.dispatched, data))
            .map_err(|_| io::Error::other("the gzip workers stopped"))?;
        self.dispatched += 1;
        Ok(())
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        while !buf.is_empty() {
            let take = (GZIP_BLOCK - self.block.len()).min(buf.len());
            self.block.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.block.len() == GZIP_BLOCK {
                self.dispatch()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send> Encoder<W> for ParallelGzip<W> {
    fn finish(mut self: Box<Self>) -> io::Result<W> {
        self.dispatch()?;
        while self.written < self.dispatched {
            self.collect_one()?;
        }
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Threads to compress on: every core, as the controller has nothing better to do meanwhile.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        // Compressible but not trivial: 3.5 blocks of a repeating counter pattern.
        (0..(GZIP_BLOCK * 7 / 2))
            .map(|i| ((i / 7) % 251) as u8)
            .collect()
    }

    fn compress(c: Compression, threads: usize, data: &[u8]) -> Vec<u8> {
        let mut encoder = c.encoder(Vec::new(), threads);
        for piece in data.chunks(100_000) {
            encoder.write_all(piece).unwrap();
        }
        let mut out = encoder.finish().unwrap();
        out.extend(c.trailer());
        out
    }

    #[test]
    fn every_encoder_round_trips_with_its_trailer_as_a_separate_member() {
        let data = sample();
        let mut expected = data.clone();
        expected.extend_from_slice(&TAR_TRAILER);
        for (c, threads) in [
            (Compression::Gzip, 1),
            (Compression::Gzip, 3),
            (Compression::Zstd, 1),
            (Compression::Zstd, 2),
            (Compression::None, 1),
        ] {
            let packed = compress(c, threads, &data);
            let mut unpacked = Vec::new();
            match c {
                Compression::Gzip => {
                    flate2::read::MultiGzDecoder::new(&packed[..])
                        .read_to_end(&mut unpacked)
                        .unwrap();
                }
                Compression::Zstd => {
                    zstd::stream::read::Decoder::new(&packed[..])
                        .unwrap()
                        .read_to_end(&mut unpacked)
                        .unwrap();
                }
                Compression::None => unpacked = packed.clone(),
            }
            assert!(unpacked == expected, "{c:?} with {threads} threads");
            if c != Compression::None {
                assert!(packed.len() < data.len() / 4, "{c:?} compresses");
            }
        }
    }

    #[test]
    fn incompressible_data_is_stored_not_grown() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let random: Vec<u8> = (0..GZIP_BLOCK * 9)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let packed = compress(Compression::Gzip, 2, &random);
        assert!(
            packed.len() < random.len() + random.len() / 500,
            "{} bytes for {}",
            packed.len(),
            random.len()
        );
        let mut unpacked = Vec::new();
        flate2::read::MultiGzDecoder::new(&packed[..])
            .read_to_end(&mut unpacked)
            .unwrap();
        assert_eq!(&unpacked[..random.len()], &random[..]);
    }

    #[test]
    fn engines_from_23_on_get_zstd() {
        assert_eq!(Compression::for_engine("20.10.24+dfsg1"), Compression::Gzip);
        assert_eq!(Compression::for_engine("23.0.1"), Compression::Zstd);
        assert_eq!(Compression::for_engine("28.2.2"), Compression::Zstd);
        assert_eq!(Compression::for_engine(""), Compression::Gzip);
        assert!(Compression::Gzip.trailer().len() < 64);
    }
}
