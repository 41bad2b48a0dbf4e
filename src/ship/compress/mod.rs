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

mod blocks;
mod choices;
mod pace;

pub use choices::Choices;
pub use pace::Pace;

use std::io::{self, Write};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use blocks::Blocks;

/// How an image stream is compressed on the wire and in bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
    fn engines_from_23_on_get_zstd() {
        assert_eq!(Compression::for_engine("20.10.24+dfsg1"), Compression::Gzip);
        assert_eq!(Compression::for_engine("23.0.1"), Compression::Zstd);
        assert_eq!(Compression::for_engine("28.2.2"), Compression::Zstd);
        assert_eq!(Compression::for_engine(""), Compression::Gzip);
        assert!(Compression::Gzip.trailer().len() < 64);
    }
}
