//! `docker::ship` and `docker::ship_bundle`: images into `docker load` on hosts that cannot reach
//! a registry, streamed over the host's own SSH connection.
//!
//! Each host asks its engine what it already holds, then joins the invocation's shared stream
//! for the image (see `ship::fanout`), so the controller reads and compresses the image once
//! however many hosts receive it. What the host receives is verified before `docker load`
//! registers anything, and the image id the host ends up with is compared with the controller's.
//! A host whose engine rejects a delta gets the full image once more.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Map, NativeCallContext};

use super::api::{op_error as failed, runtime, task_scope, Fallible};
use super::scope::{CommandOptions, CommandResult, HostOps, Level, OpError, TaskScope};
use crate::quote::quote;
use crate::report::Total;
use crate::ship::bundle::{BundleCompression, BundleImage};
use crate::ship::{
    archive, fanout, remote, Compression, Gather, ImageInfo, Request, Source, Ticket,
};
use crate::ssh::StreamInput;

/// Why shipping failed: a message for the user, or Ctrl-C.
pub enum Fail {
    Message(String),
    Interrupted,
}

impl From<OpError> for Fail {
    fn from(e: OpError) -> Fail {
        match e {
            OpError::Failed(m) => Fail::Message(m),
            OpError::Interrupted => Fail::Interrupted,
        }
    }
}

fn fail(message: impl Into<String>) -> Fail {
    Fail::Message(message.into())
}

pub struct ShipOptions {
    /// `None`: the best the host's engine loads.
    compression: Option<Compression>,
    delta: bool,
    stall: Duration,
    /// Keep what the host received, so an interrupted ship continues where it stopped.
    resume: bool,
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

fn options(ctx: &NativeCallContext, func: &str, opts: &Map) -> Fallible<ShipOptions> {
    let mut out = ShipOptions::default();
    let bad = |key: &str, expected: &str| {
        runtime(
            format!("docker::{func}: option `{key}` must be {expected}"),
            ctx.call_position(),
        )
    };
    for (key, value) in opts {
        match key.as_str() {
            "compress" => {
                out.compression = if let Ok(b) = value.as_bool() {
                    (!b).then_some(Compression::None)
                } else {
                    let text = value.to_string();
                    Some(Compression::parse(&text).ok_or_else(|| {
                        bad("compress", "true, false, \"zstd\", \"gzip\" or \"none\"")
                    })?)
                }
            }
            "delta" => {
                out.delta = value
                    .as_bool()
                    .map_err(|_| bad("delta", "true or false"))?
            }
            "resume" => {
                out.resume = value
                    .as_bool()
                    .map_err(|_| bad("resume", "true or false"))?
            }
            "stall_timeout" => {
                let range = format!("a number of seconds {}", crate::time::seconds_range());
                out.stall = value
                    .as_int()
                    .map(|s| s as f64)
                    .or_else(|_| value.as_float())
                    .ok()
                    .and_then(crate::time::seconds)
                    .ok_or_else(|| bad("stall_timeout", &range))?;
            }
            other => {
                return Err(runtime(
                    format!(
                        "docker::{func}: unknown option `{other}` (expected one of compress, delta, resume, stall_timeout)"
                    ),
                    ctx.call_position(),
                ))
            }
        }
    }
    Ok(out)
}

fn quiet() -> CommandOptions {
    CommandOptions {
        quiet: true,
        allow_fail: true,
        ..CommandOptions::default()
    }
}

/// Queries and the upkeep of part files: not the user's change, so shown with `-v` only.
fn silent() -> CommandOptions {
    CommandOptions {
        silent: true,
        ..quiet()
    }
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no message)")
        .trim()
}

/// What the host's engine holds.
fn query(ops: &dyn HostOps) -> Result<remote::HostImages, Fail> {
    let r = ops.command(&remote::query_command(), &silent(), false)?;
    if !r.ok() {
        return Err(fail(format!(
            "cannot ask the host's docker engine what it holds: {}",
            last_line(&r.stderr)
        )));
    }
    remote::HostImages::parse(&r.stdout).map_err(fail)
}

fn tag(ops: &dyn HostOps, id: &str, reference: &str) -> Result<(), Fail> {
    let r = ops.command(
        &format!("docker tag -- {} {}", quote(id), quote(reference)),
        &quiet(),
        false,
    )?;
    if !r.ok() {
        return Err(fail(format!(
            "docker tag {reference} failed: {}",
            last_line(&r.stderr)
        )));
    }
    Ok(())
}

/// Fault injection for the tests: `RIGS_TEST_CORRUPT_SHIP=HOST` flips one byte of what is sent
/// to that host. Only debug builds honour it.
fn corrupt_at(host: &str) -> Option<u64> {
    if !cfg!(debug_assertions) {
        return None;
    }
    (std::env::var("RIGS_TEST_CORRUPT_SHIP").ok().as_deref() == Some(host)).then_some(4096)
}

/// How one streamed load ended.
struct Streamed {
    result: CommandResult,
    sent: u64,
    took: Duration,
}

/// One streamed load, as [`stream_load`] runs it.
struct Load<'a> {
    compression: Compression,
    /// What the output shows for the command.
    display: String,
    /// What the progress line is about.
    what: String,
    /// Bytes to send, as far as known at each moment.
    total: Box<dyn Fn() -> Option<Total> + Send>,
    /// Key of the part file, for a resumable stream.
    resume: Option<&'a str>,
    /// Reference whose image id to print after loading.
    check: Option<&'a str>,
}

/// Runs the verified load with `ticket`'s stream on stdin, showing progress meanwhile.
fn stream_load(scope: &TaskScope, ticket: Ticket, load: Load) -> Result<Streamed, Fail> {
    let Load {
        compression,
        display,
        what,
        total,
        resume,
        check,
    } = load;
    let host = scope.host_name();
    let stream = StreamInput::new(ticket.rx, corrupt_at(&host));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (ops, stream, done, what) = (scope.ops.clone(), stream.clone(), done.clone(), what);
        let (group, host) = (ticket.group.clone(), host.clone());
        std::thread::spawn(move || {
            ops.progress(&what, 0, total());
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                ops.progress(&what, stream.sent.load(Ordering::Relaxed), total());
                // A host dropped from the stream may never read again: its load is stopped
                // rather than waited for.
                if !stream.is_abandoned() && group.state().dropped.contains_key(&host) {
                    stream.abandon();
                }
            }
        })
    };
    let started = Instant::now();
    let result = scope.ops.command(
        &remote::load_command(compression, resume, check),
        &CommandOptions {
            // rigs says what was loaded itself, with sizes and times.
            quiet: true,
            allow_fail: true,
            stdin_stream: Some(stream.clone()),
            display: Some(display),
            ..CommandOptions::default()
        },
        false,
    );
    // Whatever happened, this host takes no more: the producer must not wait for it.
    stream.close_blocking();
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let sent = stream.sent.load(Ordering::Relaxed);
    scope.ops.transferred(sent);
    let result = match result {
        // The caller says why from the stream's state (see `stream_failure`).
        Err(OpError::Failed(_)) if stream.is_abandoned() => CommandResult {
            code: -1,
            ..CommandResult::default()
        },
        other => other?,
    };
    Ok(Streamed {
        result,
        sent,
        took: started.elapsed(),
    })
}

/// Why a streamed load failed, in the user's terms; `None` when docker itself refused it.
fn stream_failure(streamed: &Streamed, state: &fanout::GroupState, host: &str) -> Option<String> {
    if let Some(reason) = state.dropped.get(host) {
        return Some(format!("{reason}; nothing was loaded"));
    }
    if let Some(e) = &state.error {
        return Some(format!("{e}; nothing was loaded"));
    }
    if let Some(line) = streamed
        .result
        .stderr
        .lines()
        .find(|l| l.contains(remote::MISMATCH))
    {
        let received = line.rsplit(' ').next().unwrap_or("?");
        return Some(format!(
            "the stream arrived corrupted: rigs sent SHA-256 {}, the host received {received}; nothing was loaded",
            state.sha256.as_deref().unwrap_or("(unfinished)")
        ));
    }
    None
}

fn summary(reference: &str, id: &str, compression: &str, sent: u64, took: Duration) -> Map {
    let mut m = Map::new();
    m.insert("image".into(), reference.into());
    m.insert("id".into(), id.into());
    m.insert("compression".into(), compression.into());
    m.insert("sent_as".into(), compression.into());
    m.insert("bytes".into(), (sent as rhai::INT).into());
    m.insert("seconds".into(), took.as_secs_f64().into());
    m
}

fn rate(bytes: u64, took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs <= 0.0 {
        return String::new();
    }
    format!(", {}/s", crate::report::bytes((bytes as f64 / secs) as u64))
}

/// Names the part file of one stream: the same image, compression and layers give the same
/// bytes, because `docker save` and the encoders are deterministic.
/// The key starts with the image id, so that all parts of one image can be found.
fn part_key(id: &str, host: &str, compression: Compression, skip: &BTreeSet<String>) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    // Hosts that share a home folder must not share a part.
    h.update(host.as_bytes());
    h.update(compression.name().as_bytes());
    for layer in skip {
        h.update(layer.as_bytes());
    }
    format!(
        "{}{}",
        part_prefix(id),
        &crate::ssh::hex(&h.finalize())[..16]
    )
}

fn part_prefix(id: &str) -> String {
    let hex: String = id
        .strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect();
    hex
}

fn part_size(ops: &dyn HostOps, key: &str) -> Result<u64, Fail> {
    let r = ops.command(&remote::part_size_command(key), &silent(), false)?;
    Ok(r.stdout.trim().parse().unwrap_or(0))
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

fn join(scope: &TaskScope, key: String, request: Request, source: Source) -> Result<Ticket, Fail> {
    let ops = scope.ops.as_ref();
    scope
        .ships
        .join(
            &key,
            request,
            source,
            Gather {
                peers: &|| ops.peers(),
                cancelled: &|| ops.cancelled(),
            },
        )
        .map_err(|e| {
            if e == "interrupted" {
                Fail::Interrupted
            } else {
                fail(e)
            }
        })
}

/// Streams the controller's image `reference` into the host's engine.
pub fn ship_image(scope: &TaskScope, reference: &str, o: &ShipOptions) -> Result<Map, Fail> {
    let ops = scope.ops.as_ref();
    if ops.dry_run() {
        ops.command(
            &format!(
                "docker load  # {} streamed from the controller's docker save, verified",
                quote(reference)
            ),
            &quiet(),
            false,
        )?;
        return Ok(summary(reference, "", "", 0, Duration::ZERO));
    }
    // The controller's engine and the host's are asked at the same time.
    let (image, held) = std::thread::scope(|threads| {
        let image = threads.spawn(|| scope.ships.image(reference));
        let held = query(ops);
        (image.join(), held)
    });
    let image: ImageInfo = image
        .unwrap_or_else(|_| Err("internal error: the image query panicked".into()))
        .map_err(|e| {
            fail(format!(
                "`{reference}` is not an image on the controller: {e}\n\
                 build, pull or load it on the controller first (its docker follows DOCKER_HOST)"
            ))
        })?;
    let held = held?;
    if let Some(copy) = held.find(&image.id, &image.created, &image.diff_ids) {
        tag(ops, &copy.id, reference)?;
        if o.resume {
            // An interrupted ship may have finished loading after all: its parts are useless.
            ops.command(
                &remote::forget_parts_command(&part_prefix(&image.id)),
                &silent(),
                false,
            )?;
        }
        ops.message(
            Level::Info,
            &format!(
                "{reference}: already on the host ({}), nothing sent",
                short(&image.id)
            ),
        );
        return Ok(summary(reference, &image.id, "", 0, Duration::ZERO));
    }
    let compression = o
        .compression
        .unwrap_or_else(|| Compression::for_engine(&held.engine_version));
    let mut skip: BTreeSet<String> = if o.delta {
        archive::skippable(&image.diff_ids, &held.layer_lists())
            .into_iter()
            .collect()
    } else {
        BTreeSet::new()
    };
    let host = scope.host_name();
    let layers = image.diff_ids.len();
    let mut resumable = o.resume;
    // Whether the host's engine already lost a blob of a verified stream once.
    let mut reloaded = false;
    for attempt in 0.. {
        let sending = image.diff_ids.iter().filter(|d| !skip.contains(*d)).count();
        let key = resumable.then(|| part_key(&image.id, &host, compression, &skip));
        let resume_from = match &key {
            Some(k) => part_size(ops, k)?,
            None => 0,
        };
        if resume_from > 0 && !reloaded {
            ops.message(
                Level::Info,
                &format!(
                    "{reference}: resuming after the {} the host kept from an interrupted ship",
                    crate::report::bytes(resume_from)
                ),
            );
        }
        let ticket = join(
            scope,
            format!("save|{}|{reference}|{attempt}", image.id),
            Request {
                host: host.clone(),
                compression,
                // A codec named by the recipe is used throughout; resumed bytes must repeat.
                adapt: key.is_none() && o.compression.is_none(),
                skip: skip.clone(),
                oci: !skip.is_empty() && held.containerd_store && !image.saves_oci_layout(),
                stall: o.stall,
                resume_from,
            },
            Source::Save(image.clone()),
        )?;
        let group = ticket.group.clone();
        let display = format!(
            "docker load  # {} from the controller: {sending} of {layers} layers, {}",
            quote(reference),
            compression.name()
        );
        let what = format!("shipping {reference}");
        // Whole images: the size docker reports, scaled by the compression seen so far, which
        // is an estimate (the reporter shows it so and never lets it shrink).
        let total: Box<dyn Fn() -> Option<Total> + Send> = if skip.is_empty() {
            let (group, size) = (group.clone(), image.size);
            Box::new(move || {
                let read = group.read.load(Ordering::Relaxed);
                let written = group.written.load(Ordering::Relaxed);
                (read > 0 && written > 0)
                    .then(|| Total::Estimate((size as f64 * written as f64 / read as f64) as u64))
            })
        } else {
            Box::new(|| None)
        };
        let streamed = stream_load(
            scope,
            ticket,
            Load {
                compression,
                display,
                what,
                total,
                resume: key.as_deref(),
                check: Some(reference),
            },
        )?;
        let state = group.state();
        if streamed.result.ok() {
            let loaded = remote::loaded(&streamed.result.stdout).unwrap_or_default();
            if !loaded.is(&image.id, &image.created, &image.diff_ids) {
                return Err(fail(format!(
                    "after loading, the host has {reference} as {}, the controller as {} ({} layers, built {})",
                    if loaded.id.is_empty() {
                        "nothing".to_string()
                    } else {
                        format!("{} ({} layers, built {})", loaded.id, loaded.layers.len(), loaded.created)
                    },
                    image.id,
                    image.diff_ids.len(),
                    image.created
                )));
            }
            ops.message(
                Level::Info,
                &format!(
                    "{reference}: loaded {} ({sending} of {layers} layers sent as {} {} for a {} image, {:.1} s{})",
                    short(&image.id),
                    crate::report::bytes(streamed.sent),
                    state.choices.describe(compression),
                    crate::report::bytes(image.size),
                    streamed.took.as_secs_f64(),
                    if skip.is_empty() {
                        rate(image.size, streamed.took)
                    } else {
                        String::new()
                    }
                ),
            );
            let mut m = summary(
                reference,
                &image.id,
                compression.name(),
                streamed.sent,
                streamed.took,
            );
            m.insert("layers_sent".into(), (sending as rhai::INT).into());
            m.insert("sent_as".into(), state.choices.describe(compression).into());
            m.insert("layers_total".into(), (layers as rhai::INT).into());
            return Ok(m);
        }
        let cut = streamed.result.stderr.contains(remote::CUT);
        // A verified whole image the engine lost a blob of, once: see `remote::lost_blob`. (With
        // a delta, a missing blob may be one the host was meant to hold: sending it all follows.)
        let lost = !cut
            && !reloaded
            && skip.is_empty()
            && stream_failure(&streamed, &state, &host).is_none()
            && remote::lost_blob(&streamed.result.stderr);
        if let (Some(k), false) = (&key, cut || lost) {
            // Only a stream cut short, or one to load again, is worth keeping for the next attempt.
            ops.command(&format!("rm -f {}", remote::part_path(k)), &silent(), false)?;
        }
        if lost {
            ops.message(
                Level::Warn,
                &format!(
                    "{reference}: the host's engine lost a layer of what it was sent ({}), as containerd does after an earlier load of it was cut short; loading it once more{}",
                    last_line(&streamed.result.stderr),
                    if key.is_some() {
                        " from what the host holds"
                    } else {
                        ""
                    }
                ),
            );
            reloaded = true;
            continue;
        }
        if resume_from > 0 && !cut && streamed.result.stderr.contains(remote::MISMATCH) {
            ops.message(
                Level::Warn,
                &format!("{reference}: what the host kept did not match; sending it all again"),
            );
            resumable = false;
            continue;
        }
        if let Some(reason) = stream_failure(&streamed, &state, &host) {
            return Err(fail(format!("{reference}: {reason}")));
        }
        let reason = last_line(&streamed.result.stderr).to_string();
        if attempt == 0 && !skip.is_empty() {
            ops.message(
                Level::Warn,
                &format!(
                    "{reference}: the host's engine refused the layer delta ({reason}); sending the whole image"
                ),
            );
            skip.clear();
            continue;
        }
        return Err(fail(format!(
            "docker load of {reference} failed on the host (exit {}): {reason}",
            streamed.result.code
        )));
    }
    unreachable!("the loop returns")
}

/// Loads the images of the bundle at `path` (on the controller) into the host's engine.
pub fn ship_bundle(scope: &TaskScope, path: &Path, o: &ShipOptions) -> Result<Map, Fail> {
    let ops = scope.ops.as_ref();
    let shown = path.display().to_string();
    if ops.dry_run() {
        ops.command(
            &format!(
                "docker load  # bundle {} from the controller, verified",
                quote(&shown)
            ),
            &quiet(),
            false,
        )?;
        return Ok(summary(&shown, "", "", 0, Duration::ZERO));
    }
    let verified = scope.ships.bundle(path).map_err(fail)?;
    let manifest = &verified.manifest;
    let compression = match manifest.archive.compression {
        BundleCompression::Zstd => Compression::Zstd,
        BundleCompression::Gzip => Compression::Gzip,
        BundleCompression::None => Compression::None,
    };
    let references: Vec<String> = manifest
        .images
        .iter()
        .map(|i| i.reference.clone())
        .collect();
    // The host's own id of each image: on the other image store it differs from the bundle's.
    let on_host = |held: &remote::HostImages, image: &BundleImage| {
        held.images
            .iter()
            .find(|h| h.is(&image.id, &image.created, &image.diff_ids))
            .map(|h| h.id.clone())
    };
    let held = query(ops)?;
    let found: Vec<Option<String>> = manifest.images.iter().map(|i| on_host(&held, i)).collect();
    if found.iter().all(Option::is_some) {
        for (image, id) in manifest.images.iter().zip(found.iter().flatten()) {
            for t in &image.repo_tags {
                tag(ops, id, t)?;
            }
        }
        ops.message(
            Level::Info,
            &format!(
                "{shown}: the host already holds {}, nothing sent",
                references.join(", ")
            ),
        );
        return Ok(summary(&shown, "", compression.name(), 0, Duration::ZERO));
    }
    if compression == Compression::Zstd
        && Compression::for_engine(&held.engine_version) != Compression::Zstd
    {
        return Err(fail(format!(
            "{shown} is zstd-compressed, but this host's docker engine ({}) loads only gzip: \
             make the bundle with `rigs --compress gzip bundle create ...`",
            held.engine_version
        )));
    }
    let ticket = join(
        scope,
        format!("bundle|{}|{}", manifest.archive.sha256, shown),
        Request {
            host: scope.host_name(),
            compression,
            adapt: false,
            skip: BTreeSet::new(),
            oci: false,
            stall: o.stall,
            resume_from: 0,
        },
        Source::Bundle {
            bundle: verified.clone(),
            body: manifest.archive.body_bytes,
        },
    )?;
    let group = ticket.group.clone();
    let display = format!(
        "docker load  # bundle {} from the controller: {}",
        quote(&shown),
        references.join(", ")
    );
    let body = manifest.archive.body_bytes;
    let streamed = stream_load(
        scope,
        ticket,
        Load {
            compression,
            display,
            what: format!("loading {shown}"),
            total: Box::new(move || Some(Total::Exact(body))),
            resume: None,
            check: None,
        },
    )?;
    let state = group.state();
    if !streamed.result.ok() {
        if let Some(reason) = stream_failure(&streamed, &state, &scope.host_name()) {
            return Err(fail(format!("{shown}: {reason}")));
        }
        return Err(fail(format!(
            "docker load of {shown} failed on the host (exit {}): {}",
            streamed.result.code,
            last_line(&streamed.result.stderr)
        )));
    }
    let after = query(ops)?;
    for image in &manifest.images {
        if on_host(&after, image).is_none() {
            return Err(fail(format!(
                "after loading {shown}, the host does not hold {} ({})",
                image.reference, image.id
            )));
        }
    }
    ops.message(
        Level::Info,
        &format!(
            "{shown}: loaded {} ({} {}, {:.1} s{})",
            references.join(", "),
            crate::report::bytes(streamed.sent),
            compression.name(),
            streamed.took.as_secs_f64(),
            rate(streamed.sent, streamed.took)
        ),
    );
    Ok(summary(
        &shown,
        "",
        compression.name(),
        streamed.sent,
        streamed.took,
    ))
}

pub fn register(m: &mut rhai::Module) {
    fn image(ctx: NativeCallContext, reference: &str, opts: &Map) -> Fallible<Map> {
        let o = options(&ctx, "ship", opts)?;
        let scope = task_scope(&ctx)?;
        ship_image(&scope, reference, &o).map_err(|e| prefixed(&ctx, "docker::ship", e))
    }
    fn bundle(ctx: NativeCallContext, path: &str, opts: &Map) -> Fallible<Map> {
        let o = options(&ctx, "ship_bundle", opts)?;
        let scope = task_scope(&ctx)?;
        ship_bundle(&scope, Path::new(path), &o)
            .map_err(|e| prefixed(&ctx, "docker::ship_bundle", e))
    }
    m.set_native_fn("ship", |ctx: NativeCallContext, reference: &str| {
        image(ctx, reference, &Map::new())
    });
    m.set_native_fn(
        "ship",
        |ctx: NativeCallContext, reference: &str, opts: Map| image(ctx, reference, &opts),
    );
    m.set_native_fn("ship_bundle", |ctx: NativeCallContext, path: &str| {
        bundle(ctx, path, &Map::new())
    });
    m.set_native_fn(
        "ship_bundle",
        |ctx: NativeCallContext, path: &str, opts: Map| bundle(ctx, path, &opts),
    );
}

/// A failure as a script error naming the function, pointing at the call.
fn prefixed(ctx: &NativeCallContext, func: &str, e: Fail) -> Box<rhai::EvalAltResult> {
    match e {
        Fail::Message(m) => runtime(format!("{func}: {m}"), ctx.call_position()),
        Fail::Interrupted => failed(ctx, OpError::Interrupted),
    }
}
