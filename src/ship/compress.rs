//! Compression of image streams: zstd or gzip on every core, or none.
//!
//! `docker load` sniffs the compression itself, so hosts need no decompressor of their own:
//! every engine reads gzip, engines from 23.0 on also read zstd. Both formats allow a stream of
//! independent members (gzip) or frames (zstd) to be concatenated, which rigs uses throughout:
//!
//! - The archive is cut into blocks (1 MiB for gzip, 2 MiB for zstd), each compressed on its
//!   own core into a member or frame of its own (as pigz does), and written in order.
//! - A block can also travel *stored*: a member or frame that holds its bytes uncompressed,
//!   which costs a copy and a few header bytes. That is how the layer blobs of an OCI archive
//!   that are gzip or zstd already pass through without being compressed twice, how
//!   incompressible data is never grown, and how a stream stops compressing while the link is
//!   fast enough that compression only costs time ([`Pace`]).
//! - The tar end-of-archive marker always travels as a separate final member, so the
//!   receiving side can hold it back until the stream's checksum has been verified.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How an image stream is compressed on the wire and in bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Zstd,
    Gzip,
    None,
}

/// zstd level 3 ran at ~340 MiB/s on two threads here, far ahead of `docker load` itself.
pub const ZSTD_LEVEL: i32 = 3;
/// gzip level 2. zlib-rs' level 1 uses only static Huffman codes: 176 MB of programs in 1 MiB
/// members came to 81.5 MB (0.76 s on one core here), where its level 2 makes 67.6 MB (1.47 s),
/// less than `gzip -1` (68.7 MB), at twice zlib's level-1 speed.
pub const GZIP_LEVEL: u32 = 2;
/// gzip level 6 while the link is known to be the narrow part: 62.7 MB of the same programs
/// (2.8 s), still far faster than a link narrow enough to be measured so carries.
const GZIP_LINK_LEVEL: u32 = 6;
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
        match self {
            Compression::None => TAR_TRAILER.to_vec(),
            codec => pack(codec, &TAR_TRAILER).expect("compressing into memory cannot fail"),
        }
    }

    /// An encoder writing the compressed form of what it is given into `out`, on `threads`
    /// threads. With a `pace`, blocks travel uncompressed while the far end takes them faster
    /// than compressing would pay for (see [`Pace`]); without one the output depends only on
    /// the input, which resuming an interrupted stream relies on.
    pub fn encoder<'a, W: Write + Send + 'a>(
        self,
        out: W,
        threads: usize,
        pace: Option<Arc<Pace>>,
    ) -> Box<dyn Encoder<W> + 'a> {
        match self {
            Compression::None => Box::new(Plain(out, Choices::default())),
            codec => Box::new(Blocks::new(codec, out, threads.max(1), pace)),
        }
    }

    /// Raw bytes per independently compressed block: zstd's window at level 3 is 2 MiB, gzip's
    /// 32 KiB, so zstd gets larger blocks to lose little of its ratio.
    fn block(self) -> usize {
        match self {
            Compression::Zstd => 2 * 1024 * 1024,
            _ => 1024 * 1024,
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
    /// Writes what is left and hands back the output, with how the bytes travelled.
    fn finish(self: Box<Self>) -> io::Result<(W, Choices)>;

    /// Tells the encoder that the bytes written from now on are (or no longer are) already
    /// compressed, like the gzip or zstd layer blobs of an OCI archive: those are stored as
    /// they are, never compressed a second time.
    fn precompressed(&mut self, already: bool);
}

/// Raw bytes by how they travelled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Choices {
    pub compressed: u64,
    /// Layer blobs compressed already.
    pub precompressed: u64,
    /// Blocks that did not shrink when compressed.
    pub incompressible: u64,
    /// Blocks sent while the far end took data faster than compressing pays for.
    pub fast_link: u64,
    /// Blocks sent while every host waited for the next frame: compressing was the narrow part.
    pub starved: u64,
    /// Everything, when the stream is not compressed at all.
    pub plain: u64,
}

impl Choices {
    pub fn total(&self) -> u64 {
        self.compressed
            + self.precompressed
            + self.incompressible
            + self.fast_link
            + self.starved
            + self.plain
    }

    /// Says how a `codec` stream travelled, when not simply all compressed: e.g. "zstd, 61%
    /// stored: already compressed 12%, the link took it faster than compressing pays 49%".
    pub fn describe(&self, codec: Compression) -> String {
        let total = self.total();
        let stored = total - self.compressed - self.plain;
        if codec == Compression::None || total == 0 || stored == 0 {
            return codec.name().to_string();
        }
        let pct = |n: u64| (n as f64 * 100.0 / total as f64).round() as u64;
        let mut why = Vec::new();
        for (n, what) in [
            (self.precompressed, "already compressed"),
            (self.incompressible, "incompressible"),
            (self.fast_link, "link faster than compression pays"),
            (self.starved, "hosts waiting on compression"),
        ] {
            if n > 0 {
                why.push(format!("{what} {}%", pct(n)));
            }
        }
        format!(
            "{}, {}% stored ({})",
            codec.name(),
            pct(stored),
            why.join(", ")
        )
    }
}

struct Plain<W>(W, Choices);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1.plain += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> Encoder<W> for Plain<W> {
    fn finish(self: Box<Self>) -> io::Result<(W, Choices)> {
        Ok((self.0, self.1))
    }
    fn precompressed(&mut self, _already: bool) {}
}

/// How fast the far end of a stream takes what it is sent, told by the stream's sink.
///
/// Compressing pays while the link is the narrow part: a 20 Mbit/s link carries a 2:1 image
/// twice as fast compressed. When the hosts take the stream as fast as a local `docker load`
/// could (here ~110 MB/s on loopback), the link is not the narrow part any more and
/// compression only costs CPU on both ends, so blocks go uncompressed until the rate drops
/// again. The rate counts raw bytes: wire bytes scaled by the stream's ratio so far.
///
/// The rate alone decides late when compressing is what holds the stream back: the hosts then
/// take compressed bytes as fast as the controller makes them, and the raw rate is the
/// compressor's, which can sit below the fast mark however fast the link is (gzip on two busy
/// cores: 116 of 176 MB compressed before the switch, a second lost). So the sink also tells
/// how full the fullest host queue is: when every host has taken all but the newest frame, the
/// link and the hosts wait for the controller, and a block sent as it is gets there sooner
/// than a compressed one. Once the link is the narrow part, the queues fill and the rate
/// decides again; on a slow link they are full from the first frames on.
#[derive(Default)]
pub struct Pace {
    state: Mutex<PaceState>,
}

#[derive(Default)]
struct PaceState {
    /// (when, wire bytes the slowest host had taken, raw bytes they stand for).
    samples: std::collections::VecDeque<(Instant, u64, u64)>,
    /// Stored blocks while the link is this fast...
    fast: bool,
    /// ...once a rate has been measured at all.
    measured: bool,
    /// Frames waiting in the fullest host queue at the last sample.
    queued: u64,
}

/// The first bytes a link takes fill its buffers (the SSH window, the sockets) at once: they
/// tell nothing of its speed.
const PACE_BURST: u64 = 8 * 1024 * 1024;
/// The span of samples the rate is taken over.
const PACE_WINDOW: Duration = Duration::from_secs(1);
const PACE_MIN_SPAN: Duration = Duration::from_millis(100);
/// At most this many frames waiting in the fullest host queue: the hosts wait on the controller.
const STARVING: u64 = 1;
/// Raw MB/s above which blocks are stored, and below which they are compressed again.
const FAST_RAW: f64 = 40e6;
const SLOW_RAW: f64 = 20e6;

impl Pace {
    /// Records that the slowest receiver has taken `wire` bytes, standing for `raw` bytes of
    /// the archive, since the stream began, and has `queued` frames still waiting.
    pub fn taken(&self, wire: u64, raw: u64, queued: u64) {
        self.taken_at(Instant::now(), wire, raw, queued);
    }

    fn taken_at(&self, now: Instant, wire: u64, raw: u64, queued: u64) {
        let mut state = self.state.lock().expect("pace lock");
        if wire < PACE_BURST {
            return;
        }
        state.queued = queued;
        // `raw` is an estimate from the ratio so far, which can dip: the count never goes back.
        let raw = state.samples.back().map_or(raw, |last| raw.max(last.2));
        state.samples.push_back((now, wire, raw));
        while state.samples.len() > 2 && now.duration_since(state.samples[1].0) >= PACE_WINDOW {
            state.samples.pop_front();
        }
        let (first, last) = (state.samples[0], state.samples[state.samples.len() - 1]);
        let span = last.0.duration_since(first.0);
        if span < PACE_MIN_SPAN {
            return;
        }
        let rate = last.2.saturating_sub(first.2) as f64 / span.as_secs_f64();
        // The first rate is of compressed blocks, which may be what holds the stream back: any
        // rate that is not slow is worth a try of stored blocks, and a link that cannot take
        // those as fast turns slow again at the next measure.
        let fast_mark = if state.measured { FAST_RAW } else { SLOW_RAW };
        state.measured = true;
        if rate >= fast_mark {
            state.fast = true;
        } else if rate < SLOW_RAW {
            state.fast = false;
        }
    }

    /// Whether a rate has been measured since the stream began.
    pub fn measured(&self) -> bool {
        self.state.lock().expect("pace lock").measured
    }

    /// Whether the hosts, past the first burst, wait for the controller's next frame.
    pub fn starved(&self) -> bool {
        let state = self.state.lock().expect("pace lock");
        !state.samples.is_empty() && state.queued <= STARVING
    }

    /// Whether a rate has been measured and it is not fast: the link is the narrow part.
    pub fn slow(&self) -> bool {
        let state = self.state.lock().expect("pace lock");
        state.measured && !state.fast
    }

    /// Whether the link is fast enough right now that compressing would only cost time.
    pub fn fast(&self) -> bool {
        self.state.lock().expect("pace lock").fast
    }
}

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

/// `data` compressed as a gzip member or zstd frame of its own.
fn pack(codec: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
    pack_at(codec, data, GZIP_LEVEL)
}

fn pack_at(codec: Compression, data: &[u8], gzip_level: u32) -> io::Result<Vec<u8>> {
    match codec {
        Compression::Gzip => {
            let mut member = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2),
                flate2::Compression::new(gzip_level),
            );
            member.write_all(data)?;
            member.finish()
        }
        Compression::Zstd => zstd::bulk::compress(data, ZSTD_LEVEL),
        Compression::None => Ok(data.to_vec()),
    }
}

/// `data` as a gzip member or zstd frame that stores it uncompressed: a copy and a few header
/// bytes, which every decoder reads like any other member or frame.
fn store(codec: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        Compression::Gzip => {
            let mut member = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() + data.len() / 1000 + 64),
                flate2::Compression::none(),
            );
            member.write_all(data)?;
            member.finish()
        }
        Compression::Zstd => Ok(zstd_raw_frame(data)),
        Compression::None => Ok(data.to_vec()),
    }
}

/// A zstd frame (RFC 8878) of raw blocks: single segment, 4-byte content size, no checksum.
fn zstd_raw_frame(data: &[u8]) -> Vec<u8> {
    const MAX_BLOCK: usize = 128 * 1024;
    let mut out = Vec::with_capacity(data.len() + 9 + 3 * (data.len() / MAX_BLOCK + 1));
    out.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Frame_Content_Size_flag 2 (4 bytes), Single_Segment_flag.
    out.push(0b1010_0000);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let mut chunks = data.chunks(MAX_BLOCK).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none() as u32;
        // Block_Type 0 (raw) in bits 1-2.
        let header = ((chunk.len() as u32) << 3) | last;
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
    out
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
struct Blocks<W> {
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
    fn new(codec: Compression, out: W, threads: usize, pace: Option<Arc<Pace>>) -> Self {
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
        } else if self.pace.is_some() && self.hopeless >= 4 && self.dispatched % 16 != 0 {
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

    const BLOCK: usize = 1024 * 1024;

    fn sample() -> Vec<u8> {
        // Compressible but not trivial: 3.5 blocks of a repeating counter pattern.
        (0..(BLOCK * 7 / 2))
            .map(|i| ((i / 7) % 251) as u8)
            .collect()
    }

    fn random(len: usize) -> Vec<u8> {
        crate::ship::noise(len, 0x2545_f491_4f6c_dd1d)
    }

    fn compress(c: Compression, threads: usize, data: &[u8]) -> Vec<u8> {
        let mut encoder = c.encoder(Vec::new(), threads, None);
        for piece in data.chunks(100_000) {
            encoder.write_all(piece).unwrap();
        }
        let (mut out, _) = encoder.finish().unwrap();
        out.extend(c.trailer());
        out
    }

    fn unpack(c: Compression, packed: &[u8]) -> Vec<u8> {
        let mut unpacked = Vec::new();
        match c {
            Compression::Gzip => {
                flate2::read::MultiGzDecoder::new(packed)
                    .read_to_end(&mut unpacked)
                    .unwrap();
            }
            Compression::Zstd => {
                zstd::stream::read::Decoder::new(packed)
                    .unwrap()
                    .read_to_end(&mut unpacked)
                    .unwrap();
            }
            Compression::None => unpacked = packed.to_vec(),
        }
        unpacked
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
            assert!(
                unpack(c, &packed) == expected,
                "{c:?} with {threads} threads"
            );
            if c != Compression::None {
                assert!(packed.len() < data.len() / 4, "{c:?} compresses");
            }
        }
    }

    #[test]
    fn without_a_pace_the_output_depends_only_on_the_input() {
        let mut data = sample();
        data.extend(random(3 * BLOCK));
        data.extend(sample());
        for c in [Compression::Gzip, Compression::Zstd] {
            assert!(compress(c, 1, &data) == compress(c, 3, &data), "{c:?}");
        }
    }

    #[test]
    fn incompressible_data_is_stored_not_grown() {
        let random = random(BLOCK * 9);
        for c in [Compression::Gzip, Compression::Zstd] {
            let packed = compress(c, 2, &random);
            assert!(
                packed.len() < random.len() + random.len() / 500,
                "{c:?}: {} bytes for {}",
                packed.len(),
                random.len()
            );
            assert_eq!(&unpack(c, &packed)[..random.len()], &random[..]);
        }
    }

    #[test]
    fn precompressed_bytes_pass_through_untouched() {
        // An archive whose middle is a gzip blob, as in an OCI layout of a pulled image.
        let before = sample();
        let mut blob = Vec::new();
        let mut gz = flate2::write::GzEncoder::new(&mut blob, flate2::Compression::fast());
        gz.write_all(&random(3 * BLOCK + 12345)).unwrap();
        gz.finish().unwrap();
        let after = sample();
        for c in [Compression::Gzip, Compression::Zstd] {
            let mut encoder = c.encoder(Vec::new(), 2, None);
            encoder.write_all(&before).unwrap();
            encoder.precompressed(true);
            for piece in blob.chunks(70_000) {
                encoder.write_all(piece).unwrap();
            }
            encoder.precompressed(false);
            encoder.write_all(&after).unwrap();
            let (packed, choices) = encoder.finish().unwrap();
            assert_eq!(choices.precompressed, blob.len() as u64);
            // The blob's bytes appear as they are (zstd stores them in 128 KiB blocks).
            let piece = &blob[1000..60_000];
            assert!(
                packed.windows(piece.len()).any(|w| w == piece),
                "{c:?} stores the blob verbatim"
            );
            assert!(packed.len() < blob.len() + (before.len() + after.len()) / 4);
            let mut expected = before.clone();
            expected.extend_from_slice(&blob);
            expected.extend_from_slice(&after);
            assert!(unpack(c, &packed) == expected, "{c:?} round trip");
        }
    }

    #[test]
    fn stored_zstd_frames_decode_at_any_size() {
        for len in [0, 1, 128 * 1024, 128 * 1024 + 1, 3 * 128 * 1024 + 77] {
            let data = random(len);
            let frame = zstd_raw_frame(&data);
            assert_eq!(
                frame.len(),
                data.len() + 9 + 3 * len.div_ceil(128 * 1024).max(1)
            );
            assert_eq!(unpack(Compression::Zstd, &frame), data, "{len} bytes");
        }
    }

    #[test]
    fn choices_say_how_a_stream_travelled() {
        let mut encoder = Compression::Zstd.encoder(Vec::new(), 2, None);
        encoder.write_all(&sample()).unwrap();
        encoder.precompressed(true);
        encoder.write_all(&random(BLOCK)).unwrap();
        encoder.precompressed(false);
        encoder.write_all(&random(BLOCK)).unwrap();
        let (_, choices) = encoder.finish().unwrap();
        assert_eq!(choices.compressed, sample().len() as u64);
        assert_eq!(choices.precompressed, BLOCK as u64);
        assert_eq!(choices.incompressible, BLOCK as u64);
        let c = Choices {
            compressed: 600,
            precompressed: 200,
            incompressible: 0,
            fast_link: 100,
            starved: 100,
            plain: 0,
        };
        assert_eq!(
            c.describe(Compression::Zstd),
            "zstd, 40% stored (already compressed 20%, link faster than compression pays 10%, \
             hosts waiting on compression 10%)"
        );
        assert_eq!(Choices::default().describe(Compression::Gzip), "gzip");
    }

    #[test]
    fn the_pace_turns_fast_and_slow_with_hysteresis() {
        let pace = Pace::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(!pace.fast() && !pace.slow(), "nothing known: compress");
        // The first bytes fill buffers and are not counted.
        pace.taken_at(at(10), 4 << 20, 8 << 20, 8);
        assert!(!pace.fast());
        // 100 MB/s of raw bytes: fast.
        pace.taken_at(at(100), 10 << 20, 20_000_000, 8);
        pace.taken_at(at(300), 20 << 20, 40_000_000, 8);
        assert!(pace.fast());
        // 30 MB/s: between the thresholds, it stays as it was.
        pace.taken_at(at(1400), 30 << 20, 70_000_000, 8);
        pace.taken_at(at(2400), 40 << 20, 100_000_000, 8);
        assert!(pace.fast());
        // 2.5 MB/s, as on a 20 Mbit/s link: compress again.
        pace.taken_at(at(3400), 41 << 20, 102_500_000, 8);
        pace.taken_at(at(4400), 42 << 20, 105_000_000, 8);
        assert!(!pace.fast() && pace.slow());
        // An estimate that dips counts as no progress, never as a negative one.
        pace.taken_at(at(4500), 43 << 20, 90_000_000, 8);
        assert!(!pace.fast());
    }

    #[test]
    fn a_first_rate_that_is_not_slow_tries_stored_blocks() {
        let pace = Pace::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 30 MB/s while compressing: maybe the compressor's limit, so stored blocks are tried...
        pace.taken_at(at(0), 8 << 20, 20_000_000, 8);
        pace.taken_at(at(1000), 12 << 20, 50_000_000, 8);
        assert!(pace.fast());
        // ...and a link that takes them at 30 MB/s keeps them, being no slower stored.
        pace.taken_at(at(2000), 40 << 20, 80_000_000, 8);
        pace.taken_at(at(3000), 68 << 20, 110_000_000, 8);
        assert!(pace.fast());
        // Stored blocks at 12 MB/s: the link is the narrow part, compress again.
        pace.taken_at(at(4000), 80 << 20, 122_000_000, 8);
        pace.taken_at(at(5000), 92 << 20, 134_000_000, 8);
        assert!(!pace.fast() && pace.slow());
        // From now on only a rate above the fast mark stores again.
        pace.taken_at(at(6000), 102 << 20, 164_000_000, 8);
        pace.taken_at(at(7000), 112 << 20, 194_000_000, 8);
        assert!(!pace.fast());
    }

    #[test]
    fn hosts_waiting_for_frames_get_them_stored_once_past_the_burst() {
        let pace = Pace::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        pace.taken_at(at(10), 4 << 20, 8 << 20, 0);
        assert!(!pace.starved(), "the first burst tells nothing");
        // 12 MB/s of raw bytes, every queue empty: the compressor holds the stream back.
        pace.taken_at(at(100), 9 << 20, 18_000_000, 0);
        pace.taken_at(at(1100), 12 << 20, 30_000_000, 1);
        assert!(pace.starved() && !pace.fast());
        // The queues fill: the link is the narrow part again, and the rate decides.
        pace.taken_at(at(2100), 13 << 20, 32_000_000, 8);
        assert!(!pace.starved() && pace.slow());
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
