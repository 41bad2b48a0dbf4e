//! What runs on the receiving host: one query for what its engine holds, and the load pipeline.
//!
//! The load pipeline verifies before anything is loaded. The image stream arrives framed on the
//! command's stdin (`LEN\n` then LEN bytes, repeated; `0\n` and the SHA-256 of all payload bytes
//! to end), so it needs nothing on the host but a POSIX shell, `head`, `tee`, `mktemp` and
//! `sha256sum` (or `openssl`, which is faster).
//! Payload bytes flow straight into `docker load` while being hashed, but the stream never
//! contains the tar end-of-archive marker: `docker load` unpacks into a scratch folder and
//! registers nothing until the archive is complete. Only when the hash matches does the host
//! append the marker (compressed as its own member, which both gzip and zstd allow); on a
//! mismatch, or a stream cut short, it kills `docker load` instead, so the engine sees its
//! request break off, fails and loads nothing. No copy is kept on the host.
//!
//! Nothing but stream bytes may ever reach `docker load`: ending a rejected stream with bytes
//! that are no archive, as rigs once did, puts them inside whichever blob the cut fell in. The
//! containerd image store keeps that partial blob after the failed load (its garbage collection
//! fails before reaching it while the store holds no complete blob yet, and may come too late
//! anyway), the next load of the same blob carries on from it, and the blob ends up under
//! another digest: the load fails with `content digest … not found`. A partial blob of genuine
//! stream bytes is carried on correctly.

use std::fmt::Write as _;

use super::compress::Compression;
use super::HostOutput;

/// Bytes per frame. Each frame costs the host one `head` process, so frames are large.
pub const FRAME: usize = 4 * 1024 * 1024;

/// Printed on stderr by the host when the stream it received does not match.
const MISMATCH: &str = "rigs-ship: checksum mismatch";
/// Printed on stderr by the host when the stream ended before its end frame.
const CUT: &str = "rigs-ship: the stream ended early";

/// What a host's load pipeline said, read once from its output.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadReply {
    /// Loaded; with references to check, the images the host now holds under them, in order.
    Loaded(Vec<HostImage>),
    /// The stream ended before its end frame: what arrived is worth keeping.
    Cut,
    /// What arrived does not hash to the end frame's digest; `received` is the host's digest.
    Mismatch { received: String },
    /// `docker load` failed because the engine's containerd store misses a blob of the archive
    /// it was given: the mark of a partial blob, left by an earlier load that was cut short,
    /// spoiling this one (see the module docs). The failed load used that partial blob up, so
    /// loading once more works.
    LostBlob,
    /// `docker load` failed for another reason.
    Failed,
}

impl LoadReply {
    /// Reads the reply from how the load command ended.
    pub fn parse(output: &HostOutput) -> LoadReply {
        if output.ok() {
            return LoadReply::Loaded(
                output
                    .stdout
                    .lines()
                    .filter_map(|l| l.strip_prefix(LOADED))
                    .map(HostImage::parse)
                    .collect(),
            );
        }
        let stderr = &output.stderr;
        if stderr.contains(CUT) {
            return LoadReply::Cut;
        }
        if let Some(line) = stderr.lines().find(|l| l.contains(MISMATCH)) {
            return LoadReply::Mismatch {
                received: line.rsplit(' ').next().unwrap_or("?").to_string(),
            };
        }
        if stderr
            .lines()
            .any(|l| l.contains("content digest") && l.contains("not found"))
        {
            return LoadReply::LostBlob;
        }
        LoadReply::Failed
    }
}

/// Picks the host's fastest SHA-256: OpenSSL's uses the CPU's SHA instructions where there are
/// some, about five times the speed of coreutils' `sha256sum` here (0.11 s against 0.6 s of CPU
/// for 176 MB), which on a fast link is CPU the host's `docker load` can use instead.
const PICK_HASH: &str =
    "if command -v openssl >/dev/null 2>&1 && echo | openssl dgst -sha256 -r >/dev/null 2>&1; \
                         then s='openssl dgst -sha256 -r'; else s=sha256sum; fi; ";
/// Runs the picked hash (its first word is the digest, as with `sha256sum`).
const HASH: &str = "$s";

/// Makes room for `docker load`'s PID, which its side of the pipe writes into `$lp`, so that a
/// rejected stream can end the load by killing it (see [`load_command`]). The file goes when the
/// shell exits, also when rigs stops the command.
const KILLABLE: &str =
    "lp=$(mktemp) || exit 1; trap 'rm -f \"$lp\"' EXIT; trap 'exit 143' HUP INT TERM; ";

/// A frame header.
pub fn frame_header(len: usize) -> Vec<u8> {
    format!("{len}\n").into_bytes()
}

/// The end of a stream: an empty frame, then the SHA-256 (hex) of every payload byte.
pub fn end_frame(sha256: &str) -> Vec<u8> {
    format!("0\n{sha256}\n").into_bytes()
}

/// `printf` format text that writes exactly `bytes`.
fn printf_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4);
    for b in bytes {
        let _ = write!(out, "\\{b:03o}");
    }
    out
}

/// Where a host keeps what it received of a resumable stream, as a shell word (`key` is hex).
pub fn part_path(key: &str) -> String {
    debug_assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    format!("\"${{XDG_CACHE_HOME:-$HOME/.cache}}/rigs/ship/{key}.part\"")
}

/// Removes every part whose key starts with `prefix` (hex).
pub fn forget_parts_command(prefix: &str) -> String {
    debug_assert!(prefix.bytes().all(|b| b.is_ascii_hexdigit()));
    format!("rm -f \"${{XDG_CACHE_HOME:-$HOME/.cache}}/rigs/ship/{prefix}\"*.part")
}

/// Prints how many bytes of the stream `key` the host holds from an earlier attempt.
pub fn part_size_command(key: &str) -> String {
    format!(
        "p={}; if [ -f \"$p\" ]; then wc -c < \"$p\"; else echo 0; fi",
        part_path(key)
    )
}

/// The shell line that receives a framed stream of `compression`-compressed archive into
/// `docker load`, verifying it first. With `resume`, the payload is also kept in the part file
/// of that key: a later attempt replays the part and receives only the rest. The part goes once
/// the load succeeds or the stream proves wrong; a stream cut short keeps it.
///
/// A rejected stream ends with `docker load` killed while its input is still open (the short
/// wait covers a stream rejected before `docker load`'s PID is written, which no real stream is),
/// so its request to the engine breaks off mid-archive and fails wherever the cut fell.
pub fn load_command(compression: Compression, resume: Option<&str>, check: Option<&str>) -> String {
    load_command_checking(compression, resume, check.as_slice())
}

/// [`load_command`] printing, after the load, the image each of `checks` names, one line each
/// in their order (a reference the host lacks then fails the command).
pub fn load_command_checking(
    compression: Compression,
    resume: Option<&str>,
    checks: &[&str],
) -> String {
    let trailer = match compression {
        Compression::None => "'; head -c 1024 /dev/zero; printf '".to_string(),
        other => printf_bytes(&other.trailer()),
    };
    let (setup, source, keep, drop) = match resume {
        None => (
            String::new(),
            "head -c \"$n\" || exit 1".to_string(),
            "",
            "",
        ),
        Some(key) => (
            format!(
                "p={}; mkdir -p \"${{p%/*}}\" && touch \"$p\" || exit 1; ",
                part_path(key)
            ),
            "head -c \"$n\" | tee -a \"$p\" || exit 1".to_string(),
            " && rm -f \"$p\"",
            " rm -f \"$p\";",
        ),
    };
    let replay = if resume.is_some() { "cat \"$p\"; " } else { "" };
    format!(
        "{setup}{PICK_HASH}{KILLABLE}{{ exec 3>&1; \
         h=$({{ {replay}while IFS= read -r n && [ \"$n\" != 0 ]; do {source}; done; }} | tee /dev/fd/3 | {HASH}) || h=failed; \
         IFS= read -r want || want=missing; h=${{h%% *}}; \
         if [ \"$h\" = \"$want\" ]; then printf '{trailer}'; exit 0; fi; \
         if [ \"$want\" = missing ]; then echo \"{CUT}\" >&2; else echo \"{MISMATCH}: received $h\" >&2;{drop} fi; \
         [ -s \"$lp\" ] || sleep 1; kill -9 \"$(cat \"$lp\")\" 2>/dev/null; exit 1; \
         }} | sh -c 'echo $$ >\"$0\" && exec docker load' \"$lp\"{loaded}{keep}",
        loaded = if checks.is_empty() {
            String::new()
        } else {
            // The loaded images' ids, in the same round trip.
            let quoted: Vec<String> = checks.iter().map(|r| crate::quote::quote(r)).collect();
            format!(
                " && docker image inspect --format '{LOADED} {IMAGE_FORMAT}' -- {}",
                quoted.join(" ")
            )
        }
    )
}

/// Prefixes the image printed after a load.
const LOADED: &str = "rigs-loaded";

/// How a host describes one image: id, creation time, diff ids.
const IMAGE_FORMAT: &str = "{{.Id}} {{.Created}} {{range .RootFS.Layers}}{{.}},{{end}}";

/// One shell line asking the engine its version and image store and, for every image it
/// holds, its id, creation time and layer diff ids.
pub fn query_command() -> String {
    format!(
        "s=$(docker info --format '{{{{.ServerVersion}}}} {{{{json .DriverStatus}}}}') && \
         v=${{s%% *}} && [ -n \"$v\" ] && \
         case \"$s\" in *io.containerd.snapshotter*) s=containerd;; *) s=classic;; esac && \
         echo \"$v $s\" && echo -- && \
         docker image ls --all --quiet --no-trunc | sort -u | \
         xargs -r docker image inspect --format '{IMAGE_FORMAT}'"
    )
}

/// One image on a host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostImage {
    pub id: String,
    pub created: String,
    /// Diff ids, bottom first.
    pub layers: Vec<String>,
}

impl HostImage {
    fn parse(line: &str) -> HostImage {
        let mut words = line.split_whitespace();
        let id = words.next().unwrap_or("").to_string();
        let created = words.next().unwrap_or("").to_string();
        let layers = words
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        HostImage {
            id,
            created,
            layers,
        }
    }

    /// Whether this is the controller's image: the same id on the same kind of store, else
    /// the same layers built at the same moment (ids differ between the classic store and
    /// containerd's for the same image).
    pub fn is(&self, id: &str, created: &str, diff_ids: &[String]) -> bool {
        self.id == id || (!created.is_empty() && self.created == created && self.layers == diff_ids)
    }
}

/// What a host's engine holds, as [`query_command`] prints it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostImages {
    pub engine_version: String,
    /// Whether the engine keeps images in containerd's store.
    pub containerd_store: bool,
    pub images: Vec<HostImage>,
}

impl HostImages {
    pub fn parse(text: &str) -> Result<HostImages, String> {
        let mut lines = text.lines();
        let first = lines
            .next()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or("docker printed no server version")?;
        let (engine_version, store) = first.rsplit_once(' ').unwrap_or((first, "classic"));
        let engine_version = engine_version.to_string();
        let containerd_store = store == "containerd";
        if lines.next().map(str::trim) != Some("--") {
            return Err("unexpected output from `docker version`".into());
        }
        let images = lines
            .filter(|l| !l.trim().is_empty())
            .map(HostImage::parse)
            .collect();
        Ok(HostImages {
            engine_version,
            containerd_store,
            images,
        })
    }

    /// The host's copy of the controller's image, if it has one.
    pub fn find(&self, id: &str, created: &str, diff_ids: &[String]) -> Option<&HostImage> {
        self.images.iter().find(|i| i.is(id, created, diff_ids))
    }

    /// The layers of every image the host holds, for working out a delta.
    pub fn layer_lists(&self) -> Vec<Vec<String>> {
        self.images.iter().map(|i| i.layers.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_engine_query() {
        let text = "20.10.24+dfsg1 classic\n--\nsha256:aa 2026-01-01T00:00:00Z sha256:1,sha256:2,\nsha256:bb 2026-01-02T00:00:00Z \n";
        let h = HostImages::parse(text).unwrap();
        assert_eq!(h.engine_version, "20.10.24+dfsg1");
        assert!(!h.containerd_store);
        assert!(
            HostImages::parse("26.1.5 containerd\n--\n")
                .unwrap()
                .containerd_store
        );
        assert_eq!(
            h.images,
            vec![
                HostImage {
                    id: "sha256:aa".to_string(),
                    created: "2026-01-01T00:00:00Z".into(),
                    layers: vec!["sha256:1".into(), "sha256:2".into()]
                },
                HostImage {
                    id: "sha256:bb".to_string(),
                    created: "2026-01-02T00:00:00Z".into(),
                    layers: vec![]
                },
            ]
        );
        // The same image loaded into the other kind of store has another id.
        let layers = vec!["sha256:1".to_string(), "sha256:2".to_string()];
        assert!(h
            .find("sha256:zz", "2026-01-01T00:00:00Z", &layers)
            .is_some());
        assert!(h
            .find("sha256:zz", "2026-01-03T00:00:00Z", &layers)
            .is_none());
        assert!(h
            .find("sha256:zz", "2026-01-01T00:00:00Z", &layers[..1])
            .is_none());
        assert!(HostImages::parse("").is_err());
        assert!(HostImages::parse("20.10\nnope\n").is_err());
        let empty = HostImages::parse("28.0.1\n--\n").unwrap();
        assert!(empty.images.is_empty());
    }

    #[test]
    fn the_trailer_is_written_by_printf_escapes_only() {
        let line = load_command(Compression::Gzip, None, None);
        assert!(line.ends_with("exec docker load' \"$lp\""), "{line}");
        let start = line.find("printf '").unwrap() + 8;
        let escapes = &line[start..start + line[start..].find('\'').unwrap()];
        assert!(escapes.starts_with("\\037\\213"), "gzip magic: {escapes}");
        assert_eq!(escapes.len(), Compression::Gzip.trailer().len() * 4);
        assert_eq!(end_frame("ab"), b"0\nab\n");
        let resumable = load_command(Compression::None, Some("ab12"), Some("app:1"));
        assert!(
            resumable.contains("--format 'rigs-loaded {{.Id}} {{.Created}} ")
                && resumable.contains("' -- app:1"),
            "{resumable}"
        );

        assert!(resumable.contains("rigs/ship/ab12.part"), "{resumable}");
        let several = load_command_checking(Compression::Zstd, None, &["app:1", "it's:2"]);
        assert!(
            several.ends_with("' -- app:1 'it'\\''s:2'"),
            "every reference, quoted, in order: {several}"
        );
        assert!(resumable.ends_with("app:1 && rm -f \"$p\""), "{resumable}");
        assert!(resumable.contains("head -c 1024 /dev/zero"), "{resumable}");
    }

    #[test]
    fn replies_are_read_once_from_the_output() {
        let reply = |code: i64, stdout: &str, stderr: &str| {
            LoadReply::parse(&HostOutput {
                code,
                stdout: stdout.into(),
                stderr: stderr.into(),
            })
        };
        assert_eq!(
            reply(
                0,
                "Loaded image: x\nrigs-loaded sha256:ab 2026-01-01T00:00:00Z sha256:1,\n",
                ""
            ),
            LoadReply::Loaded(vec![HostImage {
                id: "sha256:ab".into(),
                created: "2026-01-01T00:00:00Z".into(),
                layers: vec!["sha256:1".into()],
            }])
        );
        assert_eq!(reply(0, "Loaded image: x\n", ""), LoadReply::Loaded(vec![]));
        let two = reply(
            0,
            "Loaded image: x\nLoaded image: y\nrigs-loaded sha256:ab 2026-01-01T00:00:00Z sha256:1,\nrigs-loaded sha256:cd 2026-01-02T00:00:00Z sha256:1,sha256:2,\n",
            "",
        );
        let LoadReply::Loaded(two) = two else {
            panic!("{two:?}")
        };
        assert_eq!(
            two.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            ["sha256:ab", "sha256:cd"]
        );
        assert_eq!(two[1].layers.len(), 2);
        assert_eq!(
            reply(1, "", &format!("{CUT}\nunexpected EOF\n")),
            LoadReply::Cut
        );
        assert_eq!(
            reply(137, "", &format!("{MISMATCH}: received abc123\n")),
            LoadReply::Mismatch {
                received: "abc123".into()
            }
        );
        assert_eq!(
            reply(1, "", "Error: content digest sha256:12 not found\n"),
            LoadReply::LostBlob
        );
        assert_eq!(reply(1, "", "Error: no space left\n"), LoadReply::Failed);
    }

    /// Runs the load line in the machine's `sh` with `input` on stdin and, as `docker`, a
    /// stand-in that keeps what `docker load` read. Returns the exit code, stderr and those bytes.
    #[cfg(unix)]
    fn run_load(
        dir: &std::path::Path,
        line: &str,
        input: Vec<u8>,
    ) -> (Option<i32>, String, Vec<u8>) {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        use std::process::{Command, Stdio};
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let docker = bin.join("docker");
        std::fs::write(
            &docker,
            "#!/bin/sh\n[ \"$1\" = load ] || exit 2\nexec cat >\"$LOADED\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        let loaded = dir.join("loaded");
        let _ = std::fs::remove_file(&loaded);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(line)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("HOME", dir)
            .env_remove("XDG_CACHE_HOME")
            .env("TMPDIR", dir.join("tmp"))
            .env("LOADED", &loaded)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        let tmp: Vec<_> = std::fs::read_dir(dir.join("tmp")).unwrap().collect();
        assert!(tmp.is_empty(), "the PID file is left: {tmp:?}");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            std::fs::read(&loaded).unwrap_or_default(),
        )
    }

    /// Only stream bytes ever reach `docker load`: a rejected stream kills it instead, however
    /// the stream ends, and the part of a stream cut short holds exactly what arrived.
    #[cfg(unix)]
    #[test]
    fn a_rejected_stream_ends_docker_load_without_a_byte_more() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut frames = Vec::new();
        for chunk in payload.chunks(200_000) {
            frames.extend(frame_header(chunk.len()));
            frames.extend_from_slice(chunk);
        }
        let sha = crate::hex::encode(&sha2::Sha256::digest(&payload));
        let part = dir.path().join(".cache/rigs/ship/ab12.part");
        let line = load_command(Compression::None, Some("ab12"), None);

        // Cut short: killed, the part kept for the next attempt.
        let (code, stderr, loaded) = run_load(dir.path(), &line, frames.clone());
        assert_eq!(code, Some(137), "{stderr}");
        assert!(stderr.contains(CUT), "{stderr}");
        assert!(
            payload.starts_with(&loaded),
            "{} bytes reached docker load",
            loaded.len()
        );
        assert_eq!(std::fs::read(&part).unwrap(), payload);

        // Wrong, whether replayed from the part or received: killed, the part gone.
        for wrong in [Vec::new(), frames.clone()] {
            let mut wrong = wrong;
            wrong.extend(end_frame(&"0".repeat(64)));
            let (code, stderr, loaded) = run_load(dir.path(), &line, wrong);
            assert_eq!(code, Some(137), "{stderr}");
            assert!(stderr.contains(MISMATCH), "{stderr}");
            assert!(
                payload.starts_with(&loaded),
                "{} bytes reached docker load",
                loaded.len()
            );
            assert!(!part.exists());
        }

        // Right: the payload and the end-of-archive marker, nothing else.
        let mut right = frames;
        right.extend(end_frame(&sha));
        let (code, stderr, loaded) = run_load(dir.path(), &line, right);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(loaded.len(), payload.len() + 1024);
        assert!(loaded.starts_with(&payload) && loaded[payload.len()..].iter().all(|&b| b == 0));
        assert!(!part.exists());
    }
}
