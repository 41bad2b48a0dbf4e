//! Air-gapped delivery: images streamed from the controller into `docker load` on hosts that
//! cannot reach a registry, and bundle files for hosts that cannot be reached at all.
//!
//! The pieces, in the order data flows: [`archive`] reads the `docker save` stream and leaves
//! out layers a host already holds, [`compress`] compresses it once, [`fanout`] streams the same
//! frames to every host at once, and [`remote`] is what runs on the host: a query for the layers
//! its engine holds and a pipeline that verifies the stream before anything is loaded.
//! [`bundle`] is the file format for sneakernet. The recipe functions (`docker::ship`,
//! `docker::ship_bundle`) and `rigs bundle ...` drive these.

pub mod archive;
pub mod bundle;
pub mod compress;
pub mod fanout;
pub mod pack;
pub mod remote;

pub use compress::Compression;

/// Deterministic bytes that do not repeat and do not compress (xorshift), for tests.
#[cfg(test)]
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
pub use fanout::{Gather, ImageInfo, Request, Shipments, Source, Ticket};
