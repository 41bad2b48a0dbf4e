//! Air-gapped delivery: images streamed from the controller into `docker load` on hosts that
//! cannot reach a registry, and bundle files for hosts that cannot be reached at all.
//!
//! Everything about moving images lives here; the recipe functions (`docker::ship`,
//! `docker::ship_bundle`) and `rigs bundle ...` only call it. The pieces, in the order data
//! flows: [`ImageInfo`] is what the controller's engine says of an image, [`archive`] reads its
//! `docker save` stream and leaves out layers a host already holds, [`compress`] compresses it
//! once, [`fanout`] streams the same frames to every host at once, and a [`StreamInput`] is one
//! host's end of that stream. [`delivery`] is each host's side of a ship: what it asks of the
//! host's engine, the load it runs and what it does when that fails. [`remote`] is the shell
//! that runs on the host: a query for the layers its engine holds and a pipeline that verifies
//! the stream before anything is loaded. [`bundle`] is the file format for sneakernet, and
//! [`pack`] writes one from the controller's engine.
//!
//! `ship` is a leaf. It reaches a host only through [`Destination`], which the task runner
//! implements, and the SSH layer only through the [`StdinStream`](crate::ssh::StdinStream)
//! trait its streams implement.

pub mod archive;
pub mod bundle;
pub mod compress;
pub mod delivery;
pub mod destination;
pub mod error;
pub mod fanout;
pub mod image_info;
pub mod pack;
pub mod remote;
pub mod stream_input;

pub use compress::Compression;
pub use delivery::{Delivery, ShipOptions, Shipped, ShippedImages};
pub use destination::{Destination, HostCommand, HostOutput, Shown};
pub use error::ShipError;
pub use fanout::{Gather, Request, Shipments, Source, Ticket};
pub use image_info::ImageInfo;
pub use stream_input::StreamInput;

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
