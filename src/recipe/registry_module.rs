//! The `registry::` module: registry operations that run on the controller, not on a host.
//!
//! Promoting a build moves a tag, not layers, so it is one manifest copy through the registry's
//! HTTP API, done once for the whole run (recipes wrap it in `once`).

use rhai::{Map, Module, NativeCallContext};

use super::scope::Level;
use super::spec::{FunctionSpec, Kind, OptionSpec};
use super::toolkit::{fail, options, task_scope, Fallible};

pub static COPY_TAG: FunctionSpec = FunctionSpec {
    name: "registry::copy_tag",
    params: &["registry", "repo", "from", "to"],
    options: &[
        OptionSpec::new("user", Kind::Scalar, "", "the registry login's user"),
        OptionSpec::new(
            "password",
            Kind::Scalar,
            "",
            "its password (give both user and password, or neither)",
        ),
    ],
    returns: "map #{ digest, media_type }",
    doc: "Copies the manifest of `repo:from` to `repo:to` through the registry's HTTP API v2.\n\
          Runs on the controller; no layer moves. Basic or bearer-token auth, manifest lists too.",
};

/// The functions of this module, for `rigs -d` and the book.
pub static SPECS: &[&FunctionSpec] = &[&COPY_TAG];

fn copy(
    ctx: &NativeCallContext,
    registry: &str,
    repo: &str,
    from: &str,
    to: &str,
    opts: &Map,
) -> Fallible<Map> {
    let o = options(ctx, &COPY_TAG, opts)?;
    let password = o.text("password").map(crate::secret::Secret::new);
    let credentials = match (o.text("user"), password) {
        (Some(user), Some(password)) => Some(crate::registry::Credentials { user, password }),
        (None, None) => None,
        _ => {
            return Err(fail(
                ctx,
                &COPY_TAG,
                "give both user and password, or neither",
            ))
        }
    };
    let scope = task_scope(ctx)?;
    let line = format!("registry {registry}: tag {repo}:{from} as {repo}:{to} (manifest copy)");
    scope.ops.message(Level::Info, &line);
    let mut m = Map::new();
    if scope.ops.dry_run() {
        m.insert("digest".into(), "".into());
        m.insert("media_type".into(), "".into());
        return Ok(m);
    }
    let mut client = crate::registry::Client::new(registry, credentials);
    let copied = client
        .copy_tag(repo, from, to)
        .map_err(|e| fail(ctx, &COPY_TAG, &e))?;
    m.insert("digest".into(), copied.digest.into());
    m.insert("media_type".into(), copied.media_type.into());
    Ok(m)
}

pub fn register(m: &mut Module) {
    m.set_native_fn(
        "copy_tag",
        |ctx: NativeCallContext, registry: &str, repo: &str, from: &str, to: &str| {
            copy(&ctx, registry, repo, from, to, &Map::new())
        },
    );
    m.set_native_fn(
        "copy_tag",
        |ctx: NativeCallContext, registry: &str, repo: &str, from: &str, to: &str, opts: Map| {
            copy(&ctx, registry, repo, from, to, &opts)
        },
    );
}
