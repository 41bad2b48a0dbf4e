//! What a recipe may ask of a ship.

use std::time::Duration;

use crate::ship::{fanout, Compression};

/// How a ship goes, as the recipe asked.
#[derive(Debug, Clone)]
pub struct ShipOptions {
    /// `None`: the best the host's engine loads.
    pub compression: Option<Compression>,
    /// Leave out the layers the host holds.
    pub delta: bool,
    /// A host that takes nothing this long is dropped from the stream.
    pub stall: Duration,
    /// Keep what the host received, so an interrupted ship continues where it stopped.
    pub resume: bool,
}

impl Default for ShipOptions {
    fn default() -> Self {
        ShipOptions {
            compression: None,
            delta: true,
            stall: fanout::DEFAULT_STALL,
            resume: false,
        }
    }
}
