//! Commands on the controller: `local(...)` in recipes and hosts with `connection = "local"`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cancel::Cancel;
use crate::ssh::{ExecOutcome, Stdin, Stream};

pub enum LocalError {
    Spawn(std::io::Error),
    Timeout(Duration),
    Interrupted,
    /// Its streamed input was given up on (see `StdinStream::abandoned`).
    Abandoned,
}

/// Runs `sh -c command` in its own process group (so a timeout or Ctrl-C stops its children too),
/// streaming output to `on_output`.
pub async fn exec(
    command: &str,
    stdin: Stdin<'_>,
    timeout: Option<Duration>,
    cancel: &Cancel,
    on_output: &mut (dyn FnMut(Stream, &[u8]) + Send),
) -> Result<ExecOutcome, LocalError> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(if matches!(stdin, Stdin::Empty) {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(LocalError::Spawn)?;
    let pid = child.id();

    let feeder = child.stdin.take().map(|pipe| {
        let source = match stdin {
            Stdin::Empty => Source::Empty,
            Stdin::Bytes(b) => Source::Bytes(b.to_vec()),
            Stdin::File(p) => Source::File(p.to_path_buf()),
            Stdin::Stream(s) => Source::Stream(s.clone()),
        };
        tokio::spawn(feed(pipe, source))
    });
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");

    let run = async {
        let (mut ob, mut eb) = (vec![0u8; 32 * 1024], vec![0u8; 32 * 1024]);
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                n = out.read(&mut ob), if out_open => match n {
                    Ok(0) | Err(_) => out_open = false,
                    Ok(n) => on_output(Stream::Stdout, &ob[..n]),
                },
                n = err.read(&mut eb), if err_open => match n {
                    Ok(0) | Err(_) => err_open = false,
                    Ok(n) => on_output(Stream::Stderr, &eb[..n]),
                },
            }
        }
        child.wait().await
    };
    let kill_group = || {
        if let Some(pid) = pid {
            // SAFETY: signalling a process group we created; a stale id only yields ESRCH.
            unsafe {
                libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
            }
        }
    };
    let status = tokio::select! {
        status = async {
            match timeout {
                Some(limit) => tokio::time::timeout(limit, run).await.map_err(|_| LocalError::Timeout(limit)),
                None => Ok(run.await),
            }
        } => status,
        _ = cancel.cancelled() => Err(LocalError::Interrupted),
        _ = async {
            match stdin {
                Stdin::Stream(stream) => stream.abandoned().await,
                _ => std::future::pending().await,
            }
        } => Err(LocalError::Abandoned),
    };
    let status = match status {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(LocalError::Spawn(e)),
        Err(e) => {
            kill_group();
            return Err(e);
        }
    };
    let sent = match feeder {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(ExecOutcome {
        code: status.code().map(|c| c as u32),
        signal: status.signal().map(|s| format!("signal {s}")),
        sent,
    })
}

enum Source {
    Empty,
    Bytes(Vec<u8>),
    File(std::path::PathBuf),
    Stream(std::sync::Arc<dyn crate::ssh::StdinStream>),
}

/// Writes the command's stdin, hashing it; a command that exits without reading it all is
/// not an error here.
async fn feed(mut pipe: tokio::process::ChildStdin, source: Source) -> Option<(u64, String)> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut total = 0u64;
    match source {
        Source::Empty => return None,
        Source::Bytes(b) => {
            hasher.update(&b);
            total = b.len() as u64;
            let _ = pipe.write_all(&b).await;
        }
        Source::File(path) => {
            let mut file = tokio::fs::File::open(&path).await.ok()?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = file.read(&mut buf).await.ok()?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                total += n as u64;
                if pipe.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
        Source::Stream(stream) => {
            let mut broken = false;
            while let Some(chunk) = stream.next().await {
                hasher.update(&chunk);
                total += chunk.len() as u64;
                // Keep draining after a broken pipe, so the producer never waits on this host.
                if !broken && pipe.write_all(&chunk).await.is_err() {
                    broken = true;
                }
            }
        }
    }
    drop(pipe);
    Some((total, crate::hex::encode(&hasher.finalize())))
}
