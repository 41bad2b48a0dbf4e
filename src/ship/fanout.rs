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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::archive::{self, LayerNames, Output, OutputStats};
use super::bundle::VerifiedBundle;
use super::compress::{self, Choices, Compression, Encoder, Pace};
use super::remote::{end_frame, frame_header, FRAME};

/// Frames a host may lag behind the fastest one (4 MiB each).
pub const QUEUE_FRAMES: usize = 8;
/// A host whose queue stays full this long is dropped from the stream.
pub const DEFAULT_STALL: Duration = Duration::from_secs(120);
/// The gathering ends this long after the last host joined...
const QUIET: Duration = Duration::from_millis(750);
/// ...and at the latest this long after the first.
const MAX_GATHER: Duration = Duration::from_secs(5);

/// An image on the controller's engine.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub reference: String,
    pub id: String,
    pub diff_ids: Vec<String>,
    /// When the image was built: with the diff ids, what identifies it across image stores,
    /// whose image ids differ (the classic store's is the config digest, the containerd
    /// store's the manifest digest).
    pub created: String,
    pub repo_tags: Vec<String>,
    pub size: u64,
    /// The controller engine's version: which archive layout `docker save` writes.
    pub engine_version: String,
    /// Whether the controller's engine keeps images in containerd's store, whose `docker save`
    /// names layers by the digest of their (usually compressed) blobs.
    pub containerd_store: bool,
}

impl ImageInfo {
    /// Asks the controller's engine (`DOCKER_HOST` or the default socket) about `reference`.
    pub fn inspect(reference: &str) -> Result<ImageInfo, String> {
        let out = docker(&["image", "inspect", "--format", "{{json .}}", reference])?;
        let value: serde_json::Value = serde_json::from_str(out.trim())
            .map_err(|e| format!("unexpected output from docker image inspect: {e}"))?;
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let engine = docker(&[
            "info",
            "--format",
            "{{.ServerVersion}} {{json .DriverStatus}}",
        ])?;
        let (version, drivers) = engine.trim().split_once(' ').unwrap_or((engine.trim(), ""));
        Ok(ImageInfo {
            reference: reference.to_string(),
            id: value["Id"].as_str().unwrap_or_default().to_string(),
            diff_ids: strings(&value["RootFS"]["Layers"]),
            created: value["Created"].as_str().unwrap_or_default().to_string(),
            repo_tags: strings(&value["RepoTags"]),
            size: value["Size"].as_u64().unwrap_or(0),
            engine_version: version.trim().to_string(),
            containerd_store: drivers.contains("io.containerd.snapshotter"),
        })
    }

    /// Whether `docker save` writes an OCI layout (`index.json` and `blobs/`): Docker 25 and
    /// later. Older engines write only Docker's own format.
    pub fn saves_oci_layout(&self) -> bool {
        compress::engine_major(&self.engine_version) >= 25
    }

    /// Whether `docker save` names every layer by its diff id: from Docker 25 on with the
    /// classic store. Older engines name them by v1 id, and the containerd store by blob digest.
    fn names_layers_by_diff_id(&self) -> bool {
        compress::engine_major(&self.engine_version) >= 25 && !self.containerd_store
    }
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker on the controller: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("docker failed")
            .trim()
            .to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where the archive comes from.
#[derive(Clone)]
pub enum Source {
    /// `docker save` of an image on the controller's engine.
    Save(ImageInfo),
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

/// The outcome of one compressed copy, filled in by the producer before its end frame is sent.
#[derive(Default)]
pub struct Group {
    state: Mutex<GroupState>,
    /// Archive bytes read into this copy so far, before compression...
    pub read: std::sync::atomic::AtomicU64,
    /// ...and what they became: together an estimate of the compression ratio.
    pub written: std::sync::atomic::AtomicU64,
}

#[derive(Default, Clone)]
pub struct GroupState {
    /// SHA-256 of all payload bytes, once complete.
    pub sha256: Option<String>,
    pub bytes: u64,
    pub stats: OutputStats,
    /// How the archive's bytes travelled.
    pub choices: Choices,
    /// Why the stream could not be completed (the source failed).
    pub error: Option<String>,
    /// Hosts dropped for not keeping up, and why.
    pub dropped: HashMap<String, String>,
}

impl Group {
    pub fn state(&self) -> GroupState {
        self.state.lock().expect("group lock").clone()
    }

    fn update(&self, f: impl FnOnce(&mut GroupState)) {
        f(&mut self.state.lock().expect("group lock"));
    }
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
    error: Option<String>,
}

type ImageSlot = Arc<OnceLock<Result<ImageInfo, String>>>;
type BundleSlot = Arc<OnceLock<Result<Arc<VerifiedBundle>, String>>>;

/// A receiving host as the producer sees it.
struct Receiver {
    host: String,
    tx: mpsc::Sender<Arc<[u8]>>,
    stall: Duration,
    /// Payload bytes the host already holds from an interrupted attempt, not to be sent again.
    resume_from: u64,
}

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
    ) -> Result<Ticket, String> {
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
                    state.error = Some("interrupted".into());
                    gathering.ready.notify_all();
                    return Err("interrupted".into());
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
            let tickets = start(requests, source);
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
                    .ok_or_else(|| "internal error: ticket taken twice".to_string());
            }
            state = gathering
                .ready
                .wait_timeout(state, Duration::from_millis(100))
                .expect("gathering lock")
                .0;
        }
    }
}

/// One group's output while producing: frames fanned out to its hosts' queues.
struct FrameSink {
    /// Waits on the hosts' queues, so that the producer wakes as soon as one has room.
    rt: Arc<tokio::runtime::Runtime>,
    buf: Vec<u8>,
    hosts: Vec<Receiver>,
    hasher: Sha256,
    bytes: u64,
    group: Arc<Group>,
    pace: Option<Arc<Pace>>,
}

/// Frames a host queue holds while the stream has not yet measured how fast the hosts take it:
/// what waits in a queue was encoded before anything was known, so the queue stays short until
/// the encoder can choose well (a full queue is 32 MiB of compressed blocks, the whole first
/// half of a 176 MB image at 3:1).
const LEARNING_FRAMES: usize = 2;

/// Queues `item` for one host, waiting while it has `room` frames queued; `false` when the host
/// is gone or was dropped for stalling.
fn deliver(
    rt: &tokio::runtime::Runtime,
    group: &Group,
    r: &Receiver,
    item: Arc<[u8]>,
    room: usize,
) -> bool {
    let queued = |r: &Receiver| r.tx.max_capacity() - r.tx.capacity();
    let send = async {
        while queued(r) >= room && !r.tx.is_closed() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        r.tx.send(item).await
    };
    match rt.block_on(async { tokio::time::timeout(r.stall, send).await }) {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            group.update(|s| {
                s.dropped.insert(
                    r.host.clone(),
                    format!(
                        "the host took no data for {} s while others waited",
                        r.stall.as_secs()
                    ),
                );
            });
            false
        }
    }
}

impl FrameSink {
    fn broadcast(&mut self, frame: Arc<[u8]>) {
        let (group, rt) = (self.group.clone(), self.rt.clone());
        self.hosts
            .retain(|r| deliver(&rt, &group, r, frame.clone(), QUEUE_FRAMES));
    }

    fn emit(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let payload = std::mem::take(&mut self.buf);
        self.hasher.update(&payload);
        self.bytes += payload.len() as u64;
        self.group
            .written
            .fetch_add(payload.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut shared: Option<Arc<[u8]>> = None;
        let (group, rt) = (self.group.clone(), self.rt.clone());
        let room = match &self.pace {
            Some(pace) if !pace.measured() => LEARNING_FRAMES,
            _ => QUEUE_FRAMES,
        };
        self.hosts.retain_mut(|r| {
            let len = payload.len() as u64;
            if r.resume_from >= len {
                // The host has these bytes from an interrupted earlier attempt.
                r.resume_from -= len;
                return true;
            }
            let frame = if r.resume_from > 0 {
                let rest = &payload[r.resume_from as usize..];
                r.resume_from = 0;
                let mut f = frame_header(rest.len());
                f.extend_from_slice(rest);
                f.into()
            } else {
                shared
                    .get_or_insert_with(|| {
                        let mut f = frame_header(payload.len());
                        f.extend_from_slice(&payload);
                        f.into()
                    })
                    .clone()
            };
            deliver(&rt, &group, r, frame, room)
        });
        self.buf = payload;
        self.buf.clear();
        if let Some(pace) = &self.pace {
            // What the slowest host has taken: everything sent but what waits in its queue.
            let queued = self
                .hosts
                .iter()
                .map(|r| r.tx.max_capacity() - r.tx.capacity())
                .max()
                .unwrap_or(0) as u64;
            let wire = self.bytes.saturating_sub(queued * FRAME as u64);
            let read = self.group.read.load(std::sync::atomic::Ordering::Relaxed);
            let raw = (read as f64 * wire as f64 / self.bytes.max(1) as f64) as u64;
            pace.taken(wire, raw, queued);
        }
    }

    /// Sends the end frame, once the group's outcome is recorded.
    fn finish(mut self, stats: OutputStats, choices: Choices) {
        self.emit();
        let sha = crate::ssh::hex(&self.hasher.clone().finalize());
        let bytes = self.bytes;
        self.group.update(|s| {
            s.sha256 = Some(sha.clone());
            s.bytes = bytes;
            s.stats = stats;
            s.choices = choices;
        });
        self.broadcast(end_frame(&sha).into());
    }
}

impl Write for FrameSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.hosts.is_empty() {
            return Err(io::Error::other("no host is receiving this stream"));
        }
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= FRAME {
            self.emit();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct GroupOut {
    skip: HashSet<String>,
    oci: bool,
    encoder: Box<dyn Encoder<FrameSink>>,
    group: Arc<Group>,
}

/// Groups the requests, hands out tickets, and starts the producer thread.
fn start(requests: Vec<Request>, source: Source) -> Vec<Ticket> {
    let mut keys: Vec<(Compression, BTreeSet<String>, bool, bool)> = Vec::new();
    let mut members: Vec<Vec<Receiver>> = Vec::new();
    let mut tickets = Vec::new();
    let mut groups: Vec<Arc<Group>> = Vec::new();
    for r in requests {
        let key = (r.compression, r.skip.clone(), r.oci, r.adapt);
        let at = match keys.iter().position(|k| *k == key) {
            Some(at) => at,
            None => {
                keys.push(key);
                members.push(Vec::new());
                groups.push(Arc::new(Group::default()));
                keys.len() - 1
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
        members[at].push(Receiver {
            host: r.host,
            tx,
            stall: r.stall,
            resume_from: r.resume_from,
        });
        tickets.push(Ticket {
            rx,
            group: groups[at].clone(),
        });
    }
    let threads = compress::threads();
    let rt = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime for the image producer"),
    );
    // A bundle's archive is compressed already: its bytes pass through as they are.
    let precompressed = matches!(source, Source::Bundle { .. });
    let outs: Vec<GroupOut> = keys
        .into_iter()
        .zip(members)
        .zip(groups)
        .map(|(((compression, skip, oci, adapt), hosts), group)| {
            let pace = (adapt && !precompressed).then(|| Arc::new(Pace::default()));
            let sink = FrameSink {
                rt: rt.clone(),
                buf: Vec::with_capacity(FRAME + 64 * 1024),
                hosts,
                hasher: Sha256::new(),
                bytes: 0,
                group: group.clone(),
                pace: pace.clone(),
            };
            GroupOut {
                skip: skip.into_iter().collect::<HashSet<String>>(),
                oci,
                encoder: if precompressed {
                    Compression::None.encoder(sink, 1, None)
                } else {
                    compression.encoder(sink, threads, pace)
                },
                group,
            }
        })
        .collect();
    let groups: Vec<Arc<Group>> = outs.iter().map(|o| o.group.clone()).collect();
    std::thread::Builder::new()
        .name("rigs-ship".into())
        .spawn(move || {
            let produced =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| produce(source, outs)));
            if produced.is_err() {
                // The queues are gone without an end frame, so no host loads anything; each
                // is told why instead of seeing a stream that merely broke off.
                for group in groups {
                    group.update(|s| {
                        s.error.get_or_insert_with(|| {
                            "internal error: the image stream stopped (a bug in rigs: please \
                             report it with the message above)"
                                .into()
                        });
                    });
                }
            }
        })
        .expect("spawn the image producer");
    tickets
}

fn produce(source: Source, mut outs: Vec<GroupOut>) {
    let result = match &source {
        Source::Save(image) => produce_save(image, &mut outs),
        Source::Bundle { bundle, body } => produce_bundle(bundle, *body, &mut outs),
    };
    match result {
        Ok(stats) => {
            for (out, stats) in outs.into_iter().zip(stats) {
                match out.encoder.finish() {
                    Ok((sink, choices)) => sink.finish(stats, choices),
                    Err(e) => out
                        .group
                        .update(|s| s.error = Some(format!("compression failed: {e}"))),
                }
            }
        }
        Err(message) => {
            // Dropping the queues without an end frame makes every host reject the stream.
            for out in outs {
                out.group.update(|s| s.error = Some(message.clone()));
            }
        }
    }
}

/// `docker save REFERENCES...` on the controller, its archive on stdout.
pub(super) fn save(references: &[String]) -> Result<std::process::Child, String> {
    Command::new("docker")
        .arg("save")
        .args(references)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run docker save on the controller: {e}"))
}

/// Waits for `docker save`, turning its failure into a message.
pub(super) fn finish_save(mut child: std::process::Child, what: &str) -> Result<(), String> {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        // A save that was killed says nothing: then how it ended is all there is to tell.
        let why = match err.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
            Some(line) => line.to_string(),
            None => format!("{status}, with no message"),
        };
        return Err(format!(
            "docker save {what} failed on the controller: {why}"
        ));
    }
    Ok(())
}

fn produce_save(image: &ImageInfo, outs: &mut [GroupOut]) -> Result<Vec<OutputStats>, String> {
    let wants_delta = outs.iter().any(|o| !o.skip.is_empty());
    let mut names = LayerNames::cached(&image.id).unwrap_or_default();
    let learn = !image.names_layers_by_diff_id() && !names.covers(&image.diff_ids);
    if learn && wants_delta {
        let mut child = save(std::slice::from_ref(&image.reference))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let scanned = archive::scan(stdout);
        finish_save(child, &image.reference)?;
        names = scanned.map_err(|e| format!("reading docker save output: {e}"))?;
        names.store(&image.id);
    }
    let mut child = save(std::slice::from_ref(&image.reference))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut counted: Vec<(&HashSet<String>, bool, Counted)> = outs
        .iter_mut()
        .map(|o| {
            let GroupOut {
                skip,
                oci,
                encoder,
                group,
            } = o;
            (
                &*skip,
                *oci,
                Counted {
                    inner: encoder,
                    group,
                },
            )
        })
        .collect();
    let mut outputs: Vec<Output> = counted
        .iter_mut()
        .map(|(skip, oci, c)| Output {
            oci: *oci,
            ..Output::new(skip, c)
        })
        .collect();
    // Names are learnt only when a delta needs them: hashing every layer would cost the
    // controller CPU that the stream needs.
    let passed = archive::pass(stdout, &names, &mut outputs, false);
    let stats: Vec<OutputStats> = outputs.into_iter().map(|o| o.stats).collect();
    match passed {
        Ok(_) => {}
        Err(e) => {
            let _ = child.kill();
            let saved = finish_save(child, &image.reference);
            return Err(saved
                .err()
                .unwrap_or_else(|| format!("reading docker save output: {e}")));
        }
    }
    finish_save(child, &image.reference)?;
    Ok(stats)
}

/// An encoder's input, counted for the progress estimate.
struct Counted<'a> {
    inner: &'a mut Box<dyn Encoder<FrameSink>>,
    group: &'a Group,
}

impl archive::Sink for Counted<'_> {
    fn precompressed(&mut self, already: bool) {
        self.inner.precompressed(already)
    }
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.group
            .read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams the first `body` bytes of a verified bundle's archive. They come from the file that
/// was verified, never from its path again, and the reader fails instead of ending when the
/// archive no longer hashes to the manifest's digest: the error drops every queue without an
/// end frame, so no host loads a bundle changed after it was verified.
fn produce_bundle(
    bundle: &VerifiedBundle,
    body: u64,
    outs: &mut [GroupOut],
) -> Result<Vec<OutputStats>, String> {
    let path = bundle.path();
    let mut input = bundle.open_archive(body).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1024 * 1024];
    let mut stats = vec![OutputStats::default(); outs.len()];
    loop {
        let n = input
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        for (o, s) in outs.iter_mut().zip(stats.iter_mut()) {
            if s.error.is_none() {
                match o.encoder.write_all(&buf[..n]) {
                    Ok(()) => s.bytes += n as u64,
                    Err(e) => s.error = Some(e.to_string()),
                }
            }
        }
        if stats.iter().all(|s| s.error.is_some()) {
            return Err("no host is receiving this stream".into());
        }
    }
    Ok(stats)
}
