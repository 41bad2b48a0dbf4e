//! One image read once on the controller, compressed once per distinct delta, and streamed to
//! every receiving host at the same time.
//!
//! Hosts ask for an image from their own task threads, at slightly different moments. The
//! first one to ask waits briefly for the others of the same step ([`Shipments::join`]); then
//! one producer thread reads `docker save` (or a bundle) once and writes one compressed copy per
//! group of hosts that need the same layers. Frames are shared between the hosts of a group, and
//! each host's queue holds at most [`QUEUE_FRAMES`] of them: a slow host holds the others back
//! only once its queue is full, memory stays bounded whatever the number of hosts, and a host
//! that takes nothing for the stall timeout is dropped so that the rest carry on.

mod group;
mod produce;
mod sink;

pub use group::{Group, GroupState};

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::bundle::VerifiedBundle;
use super::compress::Compression;
use super::{ImageInfo, ShipError};

/// Frames a host may lag behind the fastest one (4 MiB each).
pub const QUEUE_FRAMES: usize = 8;
/// A host whose queue stays full this long is dropped from the stream.
pub const DEFAULT_STALL: Duration = Duration::from_secs(120);
/// The gathering ends this long after the last host joined...
const QUIET: Duration = Duration::from_millis(750);
/// ...and at the latest this long after the first.
const MAX_GATHER: Duration = Duration::from_secs(5);

/// Where the archive comes from.
#[derive(Clone)]
pub enum Source {
    /// One `docker save` of images on the controller's engine: a layer two of them share is in
    /// the archive once.
    Save(Vec<ImageInfo>),
    /// The already compressed archive of a verified bundle, without its end-of-archive member,
    /// read from the very file that was verified.
    Bundle {
        bundle: Arc<VerifiedBundle>,
        body: u64,
    },
}

/// What one host asks for.
pub struct Request {
    pub host: String,
    pub compression: Compression,
    /// Whether blocks may go uncompressed while the link is fast (see [`Pace`]). Resumable
    /// streams may not: their bytes must not depend on timing.
    pub adapt: bool,
    /// Layers (diff ids) to leave out.
    pub skip: BTreeSet<String>,
    /// Rewrite an old-format archive as an OCI layout (see `archive::Output::oci`).
    pub oci: bool,
    pub stall: Duration,
    /// Payload bytes the host kept from an interrupted earlier attempt.
    pub resume_from: u64,
}

/// A host's place in a stream: its queue, and the group it shares with hosts needing the same.
pub struct Ticket {
    pub rx: mpsc::Receiver<Arc<[u8]>>,
    pub group: Arc<Group>,
}

/// How long a gathering may wait for more hosts.
pub struct Gather<'a> {
    /// Hosts of the step still running (the ones that may yet join).
    pub peers: &'a dyn Fn() -> usize,
    pub cancelled: &'a dyn Fn() -> bool,
}

struct Gathering {
    state: Mutex<GatherState>,
    ready: Condvar,
}

#[derive(Default)]
struct GatherState {
    requests: Vec<Request>,
    last: Option<Instant>,
    tickets: Option<Vec<Option<Ticket>>>,
    error: Option<ShipError>,
}

type ImageSlot = Arc<OnceLock<Result<ImageInfo, String>>>;
type BundleSlot = Arc<OnceLock<Result<Arc<VerifiedBundle>, String>>>;

/// Every stream of one invocation.
#[derive(Default)]
pub struct Shipments {
    gatherings: Mutex<HashMap<String, Arc<Gathering>>>,
    images: Mutex<HashMap<String, ImageSlot>>,
    bundles: Mutex<HashMap<PathBuf, BundleSlot>>,
}

impl Shipments {
    /// The controller's image, inspected once per invocation.
    pub fn image(&self, reference: &str) -> Result<ImageInfo, String> {
        let cell = self
            .images
            .lock()
            .expect("images lock")
            .entry(reference.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| ImageInfo::inspect(reference)).clone()
    }

    /// The bundle at `path`, verified once per invocation before any host receives it.
    pub fn bundle(&self, path: &std::path::Path) -> Result<Arc<VerifiedBundle>, String> {
        let cell = self
            .bundles
            .lock()
            .expect("bundles lock")
            .entry(path.to_path_buf())
            .or_default()
            .clone();
        cell.get_or_init(|| {
            super::bundle::verify(path)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
    }

    /// Records a bundle verified before the run, so that hosts do not read it again.
    pub fn insert_bundle(&self, path: &std::path::Path, verified: VerifiedBundle) {
        let cell: BundleSlot = Arc::new(OnceLock::new());
        let _ = cell.set(Ok(Arc::new(verified)));
        self.bundles
            .lock()
            .expect("bundles lock")
            .insert(path.to_path_buf(), cell);
    }

    /// Joins the stream `key` of `source` and returns this host's ticket once the stream starts.
    pub fn join(
        &self,
        key: &str,
        request: Request,
        source: Source,
        gather: Gather,
    ) -> Result<Ticket, ShipError> {
        let (gathering, index, leader) = {
            let mut all = self.gatherings.lock().expect("gatherings lock");
            let leader = !all.contains_key(key);
            let g = all
                .entry(key.to_string())
                .or_insert_with(|| {
                    Arc::new(Gathering {
                        state: Mutex::new(GatherState::default()),
                        ready: Condvar::new(),
                    })
                })
                .clone();
            let mut state = g.state.lock().expect("gathering lock");
            state.requests.push(request);
            state.last = Some(Instant::now());
            let index = state.requests.len() - 1;
            drop(state);
            g.ready.notify_all();
            (g, index, leader)
        };
        if leader {
            let first = Instant::now();
            let requests = loop {
                if (gather.cancelled)() {
                    self.gatherings.lock().expect("gatherings lock").remove(key);
                    let mut state = gathering.state.lock().expect("gathering lock");
                    state.error = Some(ShipError::Interrupted);
                    gathering.ready.notify_all();
                    return Err(ShipError::Interrupted);
                }
                let mut all = self.gatherings.lock().expect("gatherings lock");
                let mut state = gathering.state.lock().expect("gathering lock");
                let quiet = state.last.is_some_and(|t| t.elapsed() >= QUIET);
                if state.requests.len() >= (gather.peers)()
                    || quiet
                    || first.elapsed() >= MAX_GATHER
                {
                    all.remove(key);
                    break std::mem::take(&mut state.requests);
                }
                drop(all);
                let _ = gathering
                    .ready
                    .wait_timeout(state, Duration::from_millis(25))
                    .expect("gathering lock");
            };
            let tickets = produce::start(requests, source);
            let mut state = gathering.state.lock().expect("gathering lock");
            state.tickets = Some(tickets.into_iter().map(Some).collect());
            gathering.ready.notify_all();
        }
        let mut state = gathering.state.lock().expect("gathering lock");
        loop {
            if let Some(e) = &state.error {
                return Err(e.clone());
            }
            if let Some(tickets) = state.tickets.as_mut() {
                return tickets[index]
                    .take()
                    .ok_or_else(|| ShipError::failed("internal error: ticket taken twice"));
            }
            state = gathering
                .ready
                .wait_timeout(state, Duration::from_millis(100))
                .expect("gathering lock")
                .0;
        }
    }
}
