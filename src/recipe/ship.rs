//! `docker::ship` and `docker::ship_bundle`: the Rhai side of shipping images to hosts that
//! cannot reach a registry.
//!
//! Shipping itself lives in [`crate::ship::delivery`]; this module parses the options map, lets
//! a task's host serve as the delivery's [`Destination`], and turns what was shipped into the
//! map a recipe gets back.

use std::path::Path;
use std::sync::Arc;

use rhai::{Array, Map, NativeCallContext};

use super::scope::{CommandOptions, Level, OpError, TaskScope};
use super::spec::{FunctionSpec, Kind, OptionSpec, TIMEOUT};
use super::toolkit::{self, fail, op_error, task_scope, Fallible};
use crate::report::Total;
use crate::ship::{
    Compression, Delivery, Destination, HostCommand, HostOutput, ShipError, ShipOptions, Shipped,
    ShippedImages, Shown,
};

const SHIP_OPTIONS: &[OptionSpec] = &[
    OptionSpec::new(
        "compress",
        Kind::Custom("bool|string", "true, false, \"zstd\", \"gzip\" or \"none\""),
        "true",
        "the best codec the host's engine loads; false or \"none\" sends it as it is",
    ),
    OptionSpec::new(
        "delta",
        Kind::Bool,
        "true",
        "send only the layers the host lacks; false sends every layer",
    ),
    OptionSpec::new(
        "resume",
        Kind::Bool,
        "false",
        "keep what the host received, so an interrupted ship continues where it stopped",
    ),
    OptionSpec::new(
        "stall_timeout",
        Kind::Duration(TIMEOUT),
        "120",
        "drop a host that takes nothing for this long",
    ),
];

pub static SHIP: FunctionSpec = FunctionSpec {
    name: "docker::ship",
    params: &["reference | [reference, ...]"],
    options: SHIP_OPTIONS,
    returns:
        "map #{ image, id, bytes, compression, sent_as, seconds, layers_sent, layers_total }; \
              for an array #{ images: [#{ image, id }], bytes, compression, sent_as, seconds, \
              layers_sent, layers_total }",
    doc: "Streams image `reference` from the controller's engine into the host's docker load.\n\
          Read and compressed once for all hosts, verified by SHA-256 before docker load, and\n\
          only the layers the host lacks are sent. Given an array of references (a Compose\n\
          project's images), the images the host lacks travel in one docker save stream, a\n\
          layer they share once; `resume` then works only for a single image.",
};

pub static SHIP_BUNDLE: FunctionSpec = FunctionSpec {
    name: "docker::ship_bundle",
    params: &["path"],
    options: SHIP_OPTIONS,
    returns: "map #{ image, bytes, compression, seconds }",
    doc: "Loads the bundle file at `path` on the controller into the host's engine, verified.",
};

/// The functions of this module, for `rigs -d` and the book.
pub static SPECS: &[&FunctionSpec] = &[&SHIP, &SHIP_BUNDLE];

fn options(
    ctx: &NativeCallContext,
    spec: &'static FunctionSpec,
    opts: &Map,
) -> Fallible<ShipOptions> {
    let o = toolkit::options(ctx, spec, opts)?;
    let mut out = ShipOptions::default();
    if let Some(v) = o.get("compress") {
        out.compression = match v.as_bool() {
            Ok(b) => (!b).then_some(Compression::None),
            Err(_) => Some(
                Compression::parse(&v.to_string())
                    .ok_or_else(|| fail(ctx, spec, o.bad("compress")))?,
            ),
        };
    }
    out.delta = o.flag_or("delta", out.delta);
    out.resume = o.flag_or("resume", out.resume);
    if let Some(stall) = o.duration("stall_timeout") {
        out.stall = stall;
    }
    Ok(out)
}

impl From<OpError> for ShipError {
    fn from(e: OpError) -> ShipError {
        match e {
            OpError::Failed(m) => ShipError::Failed(m),
            OpError::Interrupted => ShipError::Interrupted,
        }
    }
}

/// A task's host as the receiving end of a delivery.
impl Destination for TaskScope {
    fn name(&self) -> String {
        self.host_name()
    }

    fn run(&self, command: HostCommand) -> Result<HostOutput, ShipError> {
        let options = CommandOptions {
            // rigs says what was loaded itself, with sizes and times.
            silent: command.shown == Shown::Verbose,
            stdin_stream: command.stdin.map(|s| s as Arc<dyn crate::ssh::StdinStream>),
            display: command.display,
            ..CommandOptions::checking()
        };
        let r = self.ops.command(command.line, &options, false)?;
        Ok(HostOutput {
            code: r.code,
            stdout: r.stdout,
            stderr: r.stderr,
        })
    }

    fn info(&self, text: &str) {
        self.ops.message(Level::Info, text)
    }

    fn warn(&self, text: &str) {
        self.ops.message(Level::Warn, text)
    }

    fn progress(&self, what: &str, done: u64, total: Option<Total>) {
        self.ops.progress(what, done, total)
    }

    fn transferred(&self, bytes: u64) {
        self.ops.transferred(bytes)
    }

    fn dry_run(&self) -> bool {
        self.ops.dry_run()
    }

    fn peers(&self) -> usize {
        self.ops.peers()
    }

    fn cancelled(&self) -> bool {
        self.ops.cancelled()
    }
}

/// What a ship returns to the recipe.
fn summary(s: Shipped) -> Map {
    let mut m = Map::new();
    m.insert("image".into(), s.image.into());
    m.insert("id".into(), s.id.into());
    m.insert("compression".into(), s.compression.into());
    m.insert("sent_as".into(), s.sent_as.into());
    m.insert("bytes".into(), (s.bytes as rhai::INT).into());
    m.insert("seconds".into(), s.took.as_secs_f64().into());
    if let Some((sent, total)) = s.layers {
        m.insert("layers_sent".into(), (sent as rhai::INT).into());
        m.insert("layers_total".into(), (total as rhai::INT).into());
    }
    m
}

/// What a ship of an array of images returns to the recipe.
fn images_summary(s: ShippedImages) -> Map {
    let images: Array = s
        .images
        .into_iter()
        .map(|(image, id)| {
            let mut m = Map::new();
            m.insert("image".into(), image.into());
            m.insert("id".into(), id.into());
            m.into()
        })
        .collect();
    let mut m = Map::new();
    m.insert("images".into(), images.into());
    m.insert("compression".into(), s.compression.into());
    m.insert("sent_as".into(), s.sent_as.into());
    m.insert("bytes".into(), (s.bytes as rhai::INT).into());
    m.insert("seconds".into(), s.took.as_secs_f64().into());
    m.insert("layers_sent".into(), (s.layers.0 as rhai::INT).into());
    m.insert("layers_total".into(), (s.layers.1 as rhai::INT).into());
    m
}

/// The references of an array argument; anything but a string is the recipe's mistake.
fn references(ctx: &NativeCallContext, list: &Array) -> Fallible<Vec<String>> {
    list.iter()
        .enumerate()
        .map(|(i, v)| match v.clone().into_immutable_string() {
            Ok(s) if !s.trim().is_empty() => Ok(s.to_string()),
            Ok(_) => Err(fail(
                ctx,
                &SHIP,
                format!("element {} of the array is an empty image reference", i + 1),
            )),
            Err(kind) => Err(fail(
                ctx,
                &SHIP,
                format!(
                    "element {} of the array is {kind}, not an image reference (a string)",
                    i + 1
                ),
            )),
        })
        .collect()
}

pub fn register(m: &mut rhai::Module) {
    fn image(ctx: NativeCallContext, reference: &str, opts: &Map) -> Fallible<Map> {
        let o = options(&ctx, &SHIP, opts)?;
        let scope = task_scope(&ctx)?;
        Delivery::new(&scope, &scope.ships)
            .image(reference, &o)
            .map(summary)
            .map_err(|e| prefixed(&ctx, &SHIP, e))
    }
    fn images(ctx: NativeCallContext, list: &Array, opts: &Map) -> Fallible<Map> {
        let o = options(&ctx, &SHIP, opts)?;
        let references = references(&ctx, list)?;
        let scope = task_scope(&ctx)?;
        Delivery::new(&scope, &scope.ships)
            .images(&references, &o)
            .map(images_summary)
            .map_err(|e| prefixed(&ctx, &SHIP, e))
    }
    fn bundle(ctx: NativeCallContext, path: &str, opts: &Map) -> Fallible<Map> {
        let o = options(&ctx, &SHIP_BUNDLE, opts)?;
        let scope = task_scope(&ctx)?;
        Delivery::new(&scope, &scope.ships)
            .bundle(Path::new(path), &o)
            .map(summary)
            .map_err(|e| prefixed(&ctx, &SHIP_BUNDLE, e))
    }
    m.set_native_fn("ship", |ctx: NativeCallContext, reference: &str| {
        image(ctx, reference, &Map::new())
    });
    m.set_native_fn(
        "ship",
        |ctx: NativeCallContext, reference: &str, opts: Map| image(ctx, reference, &opts),
    );
    m.set_native_fn("ship", |ctx: NativeCallContext, list: Array| {
        images(ctx, &list, &Map::new())
    });
    m.set_native_fn("ship", |ctx: NativeCallContext, list: Array, opts: Map| {
        images(ctx, &list, &opts)
    });
    m.set_native_fn("ship_bundle", |ctx: NativeCallContext, path: &str| {
        bundle(ctx, path, &Map::new())
    });
    m.set_native_fn(
        "ship_bundle",
        |ctx: NativeCallContext, path: &str, opts: Map| bundle(ctx, path, &opts),
    );
}

/// A failure as a script error naming the function, pointing at the call.
fn prefixed(
    ctx: &NativeCallContext,
    spec: &FunctionSpec,
    e: ShipError,
) -> Box<rhai::EvalAltResult> {
    match e {
        ShipError::Failed(m) => fail(ctx, spec, m),
        ShipError::Interrupted => op_error(ctx, OpError::Interrupted),
    }
}
