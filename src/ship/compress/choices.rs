//! How the bytes of a stream travelled: compressed, or stored and why.

use super::Compression;

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
