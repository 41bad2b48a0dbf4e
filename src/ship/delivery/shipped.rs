//! What a delivery reports back.

use std::time::Duration;

/// What one delivery did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shipped {
    /// The image reference, or the bundle's path.
    pub image: String,
    /// The image id; empty for a bundle and in a dry run.
    pub id: String,
    /// The codec of the stream; empty when nothing was sent.
    pub compression: String,
    /// How the bytes travelled, e.g. `zstd, 40% stored (...)`.
    pub sent_as: String,
    /// Bytes sent.
    pub bytes: u64,
    pub took: Duration,
    /// Layers sent and layers of the image, for a streamed image.
    pub layers: Option<(usize, usize)>,
}

impl Shipped {
    pub(super) fn nothing(image: &str, compression: &str) -> Shipped {
        Shipped {
            image: image.to_string(),
            compression: compression.to_string(),
            sent_as: compression.to_string(),
            ..Shipped::default()
        }
    }
}
