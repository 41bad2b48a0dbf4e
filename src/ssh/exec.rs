//! Running one command on a [`Session`]: a fresh channel, its input written while its output is
//! read, rigs' markers taken out of its stderr, and the command stopped on the host when it runs
//! out of time or Ctrl-C is pressed.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use russh::ChannelMsg;

use super::{markers, Session, SshError, StdinStream};
use crate::cancel::Cancel;

/// Which of a command's output streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What a remote command gets besides its command line.
#[derive(Default, Clone, Copy)]
pub struct ExecInput<'a> {
    /// The line actually sent, when it differs from the command shown to the user (sudo).
    pub wrapped: Option<&'a str>,
    pub stdin: Stdin<'a>,
    /// The command runs under sudo with rigs' prompt: stdin waits until sudo lets it through.
    pub sudo: bool,
    /// Answer to sudo's prompt (once; a second prompt means the password was wrong).
    pub sudo_password: Option<&'a [u8]>,
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The exit code; `None` when the command was killed by a signal.
    pub code: Option<u32>,
    pub signal: Option<String>,
    /// What was written to its stdin: byte count and SHA-256 (hex).
    pub sent: Option<(u64, String)>,
}

/// Where a command's standard input comes from.
#[derive(Clone, Copy, Default)]
pub enum Stdin<'a> {
    #[default]
    Empty,
    Bytes(&'a [u8]),
    /// Streamed from a file in chunks: memory stays constant whatever its size.
    File(&'a Path),
    /// Buffers produced elsewhere, as they come (an image fanned out to many hosts).
    Stream(&'a Arc<dyn StdinStream>),
}

/// Writes `stdin` to the channel, hashing what it sends.
async fn write_stdin<S>(
    write: &russh::ChannelWriteHalf<S>,
    stdin: Stdin<'_>,
) -> std::io::Result<Option<(u64, String)>>
where
    S: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    use sha2::Digest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut hasher = sha2::Sha256::new();
    let mut total = 0u64;
    match stdin {
        Stdin::Empty => return Ok(None),
        Stdin::Bytes(bytes) => {
            hasher.update(bytes);
            total = bytes.len() as u64;
            write.data(bytes).await.map_err(std::io::Error::other)?;
        }
        Stdin::File(path) => {
            let mut file = tokio::fs::File::open(path).await?;
            let mut sink = write.make_writer();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                total += n as u64;
                sink.write_all(&buf[..n]).await?;
            }
            sink.flush().await?;
        }
        Stdin::Stream(stream) => {
            // The producer hashes what it streams; hashing it again here would double the
            // controller's CPU per byte.
            let mut sink = write.make_writer();
            while let Some(chunk) = stream.next().await {
                total += chunk.len() as u64;
                if let Err(e) = sink.write_all(&chunk).await {
                    // Let the producer know at once that this host takes no more.
                    stream.close().await;
                    return Err(e);
                }
            }
            sink.flush().await?;
            return Ok(Some((total, String::new())));
        }
    }
    Ok(Some((total, crate::hex::encode(&hasher.finalize()))))
}

impl Session {
    /// Runs `command` on a new channel, passing output chunks to `on_output` as they arrive.
    /// Standard input is written concurrently with reading output, so neither side can stall
    /// the other. A command that times out or is interrupted is killed on the host, with its
    /// children, before this returns.
    pub async fn exec(
        &self,
        command: &str,
        input: ExecInput<'_>,
        timeout: Option<Duration>,
        cancel: &Cancel,
        mut on_output: impl FnMut(Stream, &[u8]),
    ) -> Result<ExecOutcome, SshError> {
        let lost = || {
            if self.handle.is_closed() {
                SshError::ConnectionLost {
                    command: command.to_string(),
                }
            } else {
                SshError::Channel {
                    command: command.to_string(),
                    message: "the server closed the channel".into(),
                }
            }
        };
        // The timeout and Ctrl-C count from here: a host that stopped answering never confirms
        // the channel, and waiting for that would outlast both.
        let deadline = timeout.map(|limit| tokio::time::Instant::now() + limit);
        let timed_out = || SshError::CommandTimeout {
            command: command.to_string(),
            after: timeout.unwrap_or_default(),
        };
        let open = async {
            let channel = self.handle.channel_open_session().await.map_err(|e| match e {
                russh::Error::ChannelOpenFailure(reason) => SshError::Channel {
                    command: command.to_string(),
                    message: format!("the server refused a new session channel ({reason:?}); is MaxSessions too low?"),
                },
                _ => lost(),
            })?;
            // The remote shell reports its PID first. sshd starts each session in a new process
            // group led by that shell, so the PID is all it takes to stop the command and its
            // children.
            let wrapped = format!(
                "{}{}",
                markers::pid_report(),
                input.wrapped.unwrap_or(command)
            );
            channel.exec(true, wrapped).await.map_err(|_| lost())?;
            Ok::<_, SshError>(channel)
        };
        let opened = async {
            match deadline {
                Some(at) => tokio::time::timeout_at(at, open)
                    .await
                    .unwrap_or_else(|_| Err(timed_out())),
                None => open.await,
            }
        };
        let channel = tokio::select! {
            opened = opened => opened?,
            _ = cancel.cancelled() => return Err(SshError::Interrupted),
        };
        let (mut read, write) = channel.split();
        let streamed = matches!(input.stdin, Stdin::Stream(_));

        let pid = AtomicU32::new(0);
        let go = tokio::sync::Notify::new();
        if !input.sudo {
            go.notify_one();
        }
        let writer = async {
            go.notified().await;
            let sent = write_stdin(&write, input.stdin).await.map_err(|_| lost())?;
            write.eof().await.map_err(|_| lost())?;
            Ok::<_, SshError>(sent)
        };
        let run = async {
            tokio::pin!(writer);
            let mut writer_done = false;
            let mut sent = None;
            let mut filter = markers::StderrFilter::new(input.sudo);
            let mut signals = Vec::new();
            let mut prompts = 0;
            let mut code = None;
            let mut signal = None;
            let mut writer_error = None;
            loop {
                let message = tokio::select! {
                    result = &mut writer, if !writer_done => {
                        writer_done = true;
                        match result {
                            Ok(s) => sent = s,
                            // A streamed input ends when the command stops reading; how the
                            // command ended says why.
                            Err(e) if streamed => writer_error = Some(e),
                            Err(e) => return Err(e),
                        }
                        continue;
                    }
                    message = read.wait() => message,
                };
                match message {
                    Some(ChannelMsg::Data { data }) => on_output(Stream::Stdout, &data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        filter.feed(
                            &data,
                            |bytes| on_output(Stream::Stderr, bytes),
                            |s| signals.push(s),
                        );
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => code = Some(exit_status),
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        signal = Some(format!("{signal_name:?}"))
                    }
                    Some(ChannelMsg::Failure) => {
                        return Err(SshError::Channel {
                            command: command.to_string(),
                            message: "the server refused to run it".into(),
                        })
                    }
                    Some(_) => {}
                    None => break,
                }
                for s in signals.drain(..) {
                    match s {
                        markers::Signal::Pid(p) => pid.store(p, Ordering::Relaxed),
                        // A command not run through sudo by rigs cannot ask for the password,
                        // whatever it prints; nor can one that sudo already let through (the
                        // filter reports sudo's signals only until then).
                        markers::Signal::SudoPrompt if !input.sudo => {}
                        markers::Signal::SudoPrompt => {
                            prompts += 1;
                            match input.sudo_password {
                                Some(password) if prompts == 1 => {
                                    let mut line = password.to_vec();
                                    line.push(b'\n');
                                    write.data(&line[..]).await.map_err(|_| lost())?;
                                }
                                Some(_) => {
                                    return Err(SshError::SudoPassword {
                                        command: command.to_string(),
                                    })
                                }
                                None => {
                                    return Err(SshError::SudoNeedsPassword {
                                        command: command.to_string(),
                                    })
                                }
                            }
                        }
                        markers::Signal::SudoOk => go.notify_one(),
                    }
                }
            }
            filter.flush(|bytes| on_output(Stream::Stderr, bytes));
            if let (Some(e), None, None) = (writer_error, code, &signal) {
                return Err(e);
            }
            if code.is_none() && signal.is_none() {
                return Err(SshError::ConnectionLost {
                    command: command.to_string(),
                });
            }
            Ok(ExecOutcome { code, signal, sent })
        };
        let timed = async {
            match deadline {
                Some(at) => tokio::time::timeout_at(at, run)
                    .await
                    .unwrap_or_else(|_| Err(timed_out())),
                None => run.await,
            }
        };
        let abandoned = async {
            match input.stdin {
                Stdin::Stream(stream) => stream.abandoned().await,
                _ => std::future::pending().await,
            }
        };
        let mut given_up = false;
        let result = tokio::select! {
            result = timed => result,
            _ = cancel.cancelled() => Err(SshError::Interrupted),
            _ = abandoned => {
                given_up = true;
                Err(SshError::Channel {
                    command: command.to_string(),
                    message: "rigs stopped it: the host took no more input".into(),
                })
            }
        };
        if given_up
            || matches!(
                result,
                Err(SshError::CommandTimeout { .. }
                    | SshError::Interrupted
                    | SshError::SudoPassword { .. }
                    | SshError::SudoNeedsPassword { .. })
            )
        {
            self.kill(pid.load(Ordering::Relaxed)).await;
            let _ = write.close().await;
        }
        result
    }

    /// Stops a remote command's process group (best effort, bounded in time).
    async fn kill(&self, pid: u32) {
        if pid <= 1 {
            return;
        }
        let stop = async {
            let channel = self.handle.channel_open_session().await.ok()?;
            let line =
                format!("kill -TERM -- -{pid} 2>/dev/null || kill -TERM {pid} 2>/dev/null; exit 0");
            channel.exec(true, line).await.ok()?;
            let mut channel = channel;
            while channel.wait().await.is_some() {}
            Some(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), stop).await;
    }
}
