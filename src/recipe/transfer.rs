//! `put`, `get` and `template`: files between the controller and hosts, verified and atomic.
//!
//! Transfers are ordinary commands on the host's connection (`cat > tmp`, `cat file`), so they
//! share its connection, sudo handling, dry-run and reporting. Data is streamed in chunks in
//! both directions, so memory stays flat for any file size. Every transfer is checked with
//! SHA-256 on both ends, and a file only appears under its final name once it is complete and
//! verified: uploads are renamed into place on the host, downloads on the controller.
//!
//! An upload is written, checked, given its mode and owner inside a folder of its own next to
//! the target (`mkdir` with `umask 077`, so only its creator can touch what is inside), and each
//! step works on names inside that folder after `cd` into it. The target's folder may be
//! writable by others (a user-owned config folder that root writes into with `sudo: true`);
//! whatever they swap there, `chmod` and `chown` only ever reach the file rigs wrote, never a file
//! a planted symlink points at. Without `mode`, a replaced regular file passes on its permission
//! bits (those of the file a symlink points at, not the link's own `0777`); anything else, or
//! nothing, gives `0644`. Set-user-ID, set-group-ID and sticky bits are never passed on: new
//! content gets them only when `mode` asks.

use std::path::{Path, PathBuf};

use rhai::{Dynamic, Engine, Map, NativeCallContext};

use super::scope::{CommandOptions, SudoOptions};
use super::spec::{FunctionSpec, Kind, OptionSpec, SUDO};
use super::toolkit::{self, fail, op_error as failed, runtime, task_scope, Fallible};
use crate::quote::quote;

pub(super) struct TransferOptions {
    pub(super) mode: Option<String>,
    pub(super) owner: Option<String>,
    pub(super) sudo: bool,
    pub(super) vars: Map,
    /// Show the upload's command lines with `-v` only: the caller says what it uploaded.
    pub(super) silent: bool,
}

const MODE: OptionSpec = OptionSpec::new(
    "mode",
    Kind::Custom("string", "an octal string like \"0640\""),
    "",
    "the file's mode; default: the replaced file's, or 0644",
);
const OWNER: OptionSpec = OptionSpec::new(
    "owner",
    Kind::Custom("string", "a string like \"app\" or \"app:app\""),
    "",
    "chown the file to this owner (and group)",
);

const ALLOW_FAIL: OptionSpec = OptionSpec::new(
    "allow_fail",
    Kind::Bool,
    "false",
    "a failed transfer does not fail the host: the function returns ()",
);

pub static PUT: FunctionSpec = FunctionSpec {
    name: "put",
    params: &["local", "remote"],
    options: &[MODE, OWNER, SUDO, ALLOW_FAIL],
    returns: "map #{ bytes, sha256, path }",
    doc: "Copies the file `local` on the controller to `remote` on the host.\n\
          Streamed, verified by SHA-256, and renamed into place only when complete.",
};

pub static GET: FunctionSpec = FunctionSpec {
    name: "get",
    params: &["remote", "local"],
    options: &[SUDO, ALLOW_FAIL],
    returns: "map #{ bytes, sha256, path }",
    doc: "Copies the file `remote` on the host to `local` on the controller.\n\
          Verified by SHA-256; `{host}` in `local` is replaced by the host's name.",
};

pub static TEMPLATE: FunctionSpec = FunctionSpec {
    name: "template",
    params: &["local", "remote"],
    options: &[
        MODE,
        OWNER,
        SUDO,
        OptionSpec::new(
            "vars",
            Kind::Map,
            "",
            "more values for the placeholders: `{{ KEY }}`",
        ),
        ALLOW_FAIL,
    ],
    returns: "map #{ bytes, sha256, path }",
    doc: "Renders the text file `local` and installs the result at `remote` like `put`.\n\
          Each `{{ path }}` is replaced by the value at that path of `host`, `env`, `vars` or the\n\
          `vars` option.",
};

/// The functions of this module, for `rigs -d` and the book.
pub static SPECS: &[&FunctionSpec] = &[&PUT, &GET, &TEMPLATE];

pub fn register(engine: &mut Engine) {
    type Transfer = fn(&NativeCallContext, &str, &str, &Map) -> Fallible<Map>;
    for (spec, f) in [(&PUT, put as Transfer), (&GET, get), (&TEMPLATE, template)] {
        engine.register_fn(
            spec.name,
            move |ctx: NativeCallContext, a: &str, b: &str| {
                tolerant(spec, f(&ctx, a, b, &Map::new()), &Map::new())
            },
        );
        engine.register_fn(
            spec.name,
            move |ctx: NativeCallContext, a: &str, b: &str, opts: Map| {
                tolerant(spec, f(&ctx, a, b, &opts), &opts)
            },
        );
    }
}

/// A transfer's result; under a valid `allow_fail: true`, a failure (not Ctrl-C) is `()`.
fn tolerant(spec: &'static FunctionSpec, result: Fallible<Map>, opts: &Map) -> Fallible<Dynamic> {
    match result {
        Ok(summary) => Ok(summary.into()),
        Err(e)
            if !matches!(*e, rhai::EvalAltResult::ErrorTerminated(..))
                && spec.check(opts).is_ok_and(|o| o.flag("allow_fail")) =>
        {
            Ok(Dynamic::UNIT)
        }
        Err(e) => Err(e),
    }
}

fn options(
    ctx: &NativeCallContext,
    spec: &'static FunctionSpec,
    opts: &Map,
) -> Fallible<TransferOptions> {
    let o = toolkit::options(ctx, spec, opts)?;
    let bad = |key: &str| fail(ctx, spec, o.bad(key));
    let mode = o.text("mode");
    if let Some(mode) = &mode {
        if !(3..=4).contains(&mode.len()) || !mode.chars().all(|c| ('0'..='7').contains(&c)) {
            return Err(bad("mode"));
        }
    }
    let owner = match o.get("owner") {
        None => None,
        Some(v) => match v.clone().into_string() {
            Ok(owner) if !owner.is_empty() && !owner.contains(char::is_whitespace) => Some(owner),
            _ => return Err(bad("owner")),
        },
    };
    Ok(TransferOptions {
        mode,
        owner,
        sudo: o.flag("sudo"),
        vars: o.map("vars").unwrap_or_default(),
        silent: false,
    })
}

fn summary(bytes: u64, sha256: &str, path: &str) -> Map {
    let mut m = Map::new();
    m.insert("bytes".into(), (bytes as rhai::INT).into());
    m.insert("sha256".into(), sha256.into());
    m.insert("path".into(), path.into());
    m
}

fn temp_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", std::process::id(), nanos & 0xffff_ffff)
}

/// The bookkeeping commands of a transfer: quiet, and judged by the caller.
fn checking(sudo: Option<SudoOptions>) -> CommandOptions {
    CommandOptions {
        sudo,
        ..CommandOptions::checking()
    }
}

/// Source of an upload.
pub(super) enum Upload<'a> {
    File(&'a Path),
    Text(String),
}

pub(super) fn upload(
    ctx: &NativeCallContext,
    func: &str,
    source: Upload,
    remote: &str,
    opts: &TransferOptions,
) -> Fallible<Map> {
    let name = remote.rsplit('/').next().unwrap_or(remote);
    if matches!(name, "" | "." | "..") {
        return Err(runtime(
            format!("{func}: `{remote}` is not a file path on the host"),
            ctx.call_position(),
        ));
    }
    let scope = task_scope(ctx)?;
    let suffix = temp_suffix();
    // The folder the upload is prepared in, from the login directory and from inside itself.
    let tmp = format!("{remote}.rigs-{suffix}");
    let tmp_name = format!("{name}.rigs-{suffix}");
    let sudo = opts.sudo.then(SudoOptions::default);
    let mut write = CommandOptions {
        quiet: true,
        silent: opts.silent,
        sudo: sudo.clone(),
        ..CommandOptions::default()
    };
    let expected_size = match &source {
        Upload::File(path) => {
            let meta = std::fs::metadata(path).map_err(|e| {
                runtime(
                    format!("{func}: cannot read {}: {e}", path.display()),
                    ctx.call_position(),
                )
            })?;
            if !meta.is_file() {
                return Err(runtime(
                    format!("{func}: {} is not a file", path.display()),
                    ctx.call_position(),
                ));
            }
            write.stdin_file = Some(path.to_path_buf());
            meta.len()
        }
        Upload::Text(text) => {
            write.stdin = Some(text.clone());
            text.len() as u64
        }
    };
    let (t, t_name, n) = (quote(&tmp), quote(&tmp_name), quote(name));
    // Removes the folder when it is still this upload's; a swapped one is left alone.
    let cleanup_command =
        format!("cd {t} 2>/dev/null && [ -O . ] && rm -f upload && cd .. && rmdir {t_name}");
    let sent = scope
        .ops
        .command(
            &format!("umask 077 && mkdir {t} && cd {t} && cat > upload"),
            &write,
            false,
        )
        .map_err(|e| failed(ctx, e))?;
    let Some((bytes, sha256)) = sent.sent.clone() else {
        // A dry run: nothing was sent.
        return Ok(summary(expected_size, "", remote));
    };
    let cleanup = checking(sudo.clone());
    if !sent.ok() {
        let _ = scope.ops.command(&cleanup_command, &cleanup, false);
        return Err(runtime(
            format!(
                "{func}: cannot write {tmp}/upload on the host: {}",
                sent.stderr.lines().last().unwrap_or("").trim()
            ),
            ctx.call_position(),
        ));
    }
    if bytes != expected_size {
        let _ = scope.ops.command(&cleanup_command, &cleanup, false);
        return Err(runtime(
            format!("{func}: the local file changed while it was sent ({expected_size} bytes expected, {bytes} sent)"),
            ctx.call_position(),
        ));
    }
    let mode = match &opts.mode {
        Some(m) => format!("chmod {m} upload"),
        // A replaced regular file passes on its permission bits, through a symlink too (`-L`:
        // the link's own mode is always 0777); anything else gets the usual 0644.
        None => format!(
            "if [ -f ../{n} ]; then chmod \"$(stat -L -c %a ../{n})\" upload && chmod a-st upload; \
             else chmod 644 upload; fi"
        ),
    };
    let owner = opts
        .owner
        .as_ref()
        .map(|o| format!(" && chown {} upload", quote(o)))
        .unwrap_or_default();
    // Everything after `cd` names files inside the folder, which only its owner can change; a
    // folder someone else put under its name (`-O`) is refused. A symlink to a folder is
    // replaced (`mv -T`), as a symlink to a file is; a real folder is refused.
    let finish = format!(
        "cd {t} || exit 4; if [ ! -O . ]; then printf '%s\\n' {replaced} >&2; exit 4; fi; \
         h=$(sha256sum upload) && h=${{h%% *}} && if [ \"$h\" != {sha256} ]; then \
         echo \"checksum mismatch: sent {sha256}, the host has $h\" >&2; false; fi && {mode}{owner} && \
         if [ -d ../{n} ] && [ ! -L ../{n} ]; then printf '%s\\n' {folder} >&2; false; \
         elif [ -d ../{n} ]; then mv -f -T upload ../{n}; else mv -f upload ../{n}; fi; \
         s=$?; rm -f upload; cd .. && rmdir {t_name}; exit $s",
        replaced = quote(&format!("{tmp} is not the folder rigs made")),
        folder = quote(&format!("{remote} is a folder")),
    );
    let done = scope
        .ops
        .command(
            &finish,
            &CommandOptions {
                silent: opts.silent,
                ..checking(sudo)
            },
            false,
        )
        .map_err(|e| failed(ctx, e))?;
    if !done.ok() {
        return Err(runtime(
            format!(
                "{func}: {} on the host: {}",
                remote,
                done.stderr.lines().last().unwrap_or("failed").trim()
            ),
            ctx.call_position(),
        ));
    }
    Ok(summary(bytes, &sha256, remote))
}

fn put(ctx: &NativeCallContext, local: &str, remote: &str, opts: &Map) -> Fallible<Map> {
    let o = options(ctx, &PUT, opts)?;
    upload(ctx, "put", Upload::File(Path::new(local)), remote, &o)
}

fn get(ctx: &NativeCallContext, remote: &str, local: &str, opts: &Map) -> Fallible<Map> {
    let o = options(ctx, &GET, opts)?;
    let scope = task_scope(ctx)?;
    let host = scope.host_name();
    let local = PathBuf::from(local.replace("{host}", &host));
    if local.as_os_str().is_empty() || local.to_string_lossy().ends_with('/') {
        return Err(runtime(
            format!("get: `{}` is not a local file path", local.display()),
            ctx.call_position(),
        ));
    }
    let part = PathBuf::from(format!("{}.rigs-part-{}", local.display(), temp_suffix()));
    let sudo = o.sudo.then(SudoOptions::default);
    let read = CommandOptions {
        quiet: true,
        sudo: sudo.clone(),
        stdout_file: Some(part.clone()),
        ..CommandOptions::default()
    };
    let result = scope
        .ops
        .command(&format!("cat {}", quote(remote)), &read, false)
        .map_err(|e| {
            let _ = std::fs::remove_file(&part);
            failed(ctx, e)
        })?;
    let Some((bytes, sha256)) = result.received.clone() else {
        return Ok(summary(0, "", &local.display().to_string()));
    };
    let fail = |message: String| {
        let _ = std::fs::remove_file(&part);
        runtime(message, ctx.call_position())
    };
    if !result.ok() {
        return Err(fail(format!(
            "get: cannot read {remote} on the host: {}",
            result.stderr.lines().last().unwrap_or("").trim()
        )));
    }
    let check = scope
        .ops
        .command(
            &format!("sha256sum {}", quote(remote)),
            &checking(sudo),
            false,
        )
        .map_err(|e| {
            let _ = std::fs::remove_file(&part);
            failed(ctx, e)
        })?;
    let remote_sha = check.stdout.split_whitespace().next().unwrap_or("");
    if remote_sha != sha256 {
        return Err(fail(format!(
            "get: checksum mismatch for {remote}: received {sha256}, the host has {remote_sha} (changed during the transfer?)"
        )));
    }
    std::fs::rename(&part, &local)
        .map_err(|e| fail(format!("get: cannot create {}: {e}", local.display())))?;
    Ok(summary(bytes, &sha256, &local.display().to_string()))
}

fn template(ctx: &NativeCallContext, local: &str, remote: &str, opts: &Map) -> Fallible<Map> {
    let o = options(ctx, &TEMPLATE, opts)?;
    let text = std::fs::read_to_string(local).map_err(|e| {
        runtime(
            format!("template: cannot read {local}: {e}"),
            ctx.call_position(),
        )
    })?;
    let scope = task_scope(ctx)?;
    let mut root = Map::new();
    root.insert("host".into(), scope.host.clone());
    root.insert("env".into(), scope.env.clone());
    root.insert("vars".into(), scope.vars.clone());
    for (k, v) in &o.vars {
        root.insert(k.clone(), v.clone());
    }
    let rendered =
        render(&text, &root).map_err(|m| fail(ctx, &TEMPLATE, format!("{local}: {m}")))?;
    upload(ctx, "template", Upload::Text(rendered), remote, &o)
}

/// Replaces each `{{ path.to.value }}` with the value found under `root`.
pub fn render(text: &str, root: &Map) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let line = text[..text.len() - rest.len() + start]
            .matches('\n')
            .count()
            + 1;
        let end = after
            .find("}}")
            .ok_or_else(|| format!("line {line}: `{{{{` without a closing `}}}}`"))?;
        let path = after[..end].trim();
        out.push_str(
            &lookup(root, path)
                .ok_or_else(|| format!("line {line}: `{{{{ {path} }}}}` is not defined"))?,
        );
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(root: &Map, path: &str) -> Option<String> {
    let mut parts = path.split('.');
    let mut current: Dynamic = root.get(parts.next()?.trim())?.clone();
    for part in parts {
        let next = current.read_lock::<Map>()?.get(part.trim())?.clone();
        current = next;
    }
    if current.is_unit() {
        return None;
    }
    Some(current.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nested_values_and_reports_missing_ones() {
        let mut vars = Map::new();
        vars.insert("image".into(), "app:1.2".into());
        let mut root = Map::new();
        root.insert("vars".into(), vars.into());
        assert_eq!(
            render("image={{ vars.image }}\n", &root).unwrap(),
            "image=app:1.2\n"
        );
        assert_eq!(render("no placeholders", &root).unwrap(), "no placeholders");
        assert!(render("a\n{{ vars.nope }}", &root)
            .unwrap_err()
            .contains("line 2"));
        assert!(render("{{ vars.image", &root).is_err());
    }
}
