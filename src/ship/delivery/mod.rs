//! Images into `docker load` on hosts that cannot reach a registry, streamed over the host's own
//! SSH connection: what `docker::ship`, `docker::ship_bundle` and `rigs bundle load` do on each
//! host.
//!
//! Each host asks its engine what it already holds, then joins the invocation's shared stream
//! for the image, or for all the images a Compose project needs (see [`fanout`](super::fanout)),
//! so the controller reads and compresses them once however many hosts receive them. What the host receives is verified before
//! `docker load` registers anything (see [`remote`](super::remote)), and the image id the host
//! ends up with is compared with the controller's. A host whose engine rejects a delta gets the
//! full image once more.
//!
//! A [`Delivery`] reaches its host only through [`Destination`], so the same code serves a
//! recipe function and the scheduler's `bundle load`.

mod bundle;
mod image;
mod images;
mod load;
mod ship_options;
mod shipped;

pub use images::ShippedImages;
pub use ship_options::ShipOptions;
pub use shipped::Shipped;

use std::time::Duration;

use super::remote::{self, HostImages};
use super::{Destination, Gather, HostCommand, Request, ShipError, Shipments};
use super::{Source, Ticket};
use crate::quote::quote;

/// One host's side of shipping: its [`Destination`] and the invocation's streams.
pub struct Delivery<'a> {
    to: &'a dyn Destination,
    ships: &'a Shipments,
    host: String,
}

impl<'a> Delivery<'a> {
    /// A delivery to `to`, joining the streams of `ships`.
    pub fn new(to: &'a dyn Destination, ships: &'a Shipments) -> Delivery<'a> {
        Delivery {
            to,
            ships,
            host: to.name(),
        }
    }

    /// In a dry run: shows the load that would run.
    fn show(&self, line: &str) -> Result<(), ShipError> {
        self.to.run(HostCommand::shown(line))?;
        Ok(())
    }

    /// What the host's engine holds.
    fn query(&self) -> Result<HostImages, ShipError> {
        let r = self.to.run(HostCommand::silent(&remote::query_command()))?;
        if !r.ok() {
            return Err(ShipError::failed(format!(
                "cannot ask the host's docker engine what it holds: {}",
                last_line(&r.stderr)
            )));
        }
        HostImages::parse(&r.stdout).map_err(ShipError::Failed)
    }

    fn tag(&self, id: &str, reference: &str) -> Result<(), ShipError> {
        let line = format!("docker tag -- {} {}", quote(id), quote(reference));
        let r = self.to.run(HostCommand::shown(&line))?;
        if !r.ok() {
            return Err(ShipError::failed(format!(
                "docker tag {reference} failed: {}",
                last_line(&r.stderr)
            )));
        }
        Ok(())
    }

    /// Joins the invocation's stream `key`, waiting for the other hosts of the step.
    fn join(&self, key: String, request: Request, source: Source) -> Result<Ticket, ShipError> {
        self.ships.join(
            &key,
            request,
            source,
            Gather {
                peers: &|| self.to.peers(),
                cancelled: &|| self.to.cancelled(),
            },
        )
    }
}

/// The last line of a command's stderr that says something.
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no message)")
        .trim()
}

fn rate(bytes: u64, took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs <= 0.0 {
        return String::new();
    }
    format!(", {}/s", crate::report::bytes((bytes as f64 / secs) as u64))
}

/// The error when what the host loaded as `reference` is not the controller's `image`.
fn not_as_sent(
    after: &str,
    reference: &str,
    got: &remote::HostImage,
    image: &super::ImageInfo,
) -> ShipError {
    let host_has = if got.id.is_empty() {
        "nothing".to_string()
    } else {
        format!(
            "{} ({} layers, built {})",
            got.id,
            got.layers.len(),
            got.created
        )
    };
    ShipError::failed(format!(
        "{after}, the host has {reference} as {host_has}, the controller as {} ({} layers, built {})",
        image.id,
        image.diff_ids.len(),
        image.created
    ))
}
