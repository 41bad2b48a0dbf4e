//! One streamed, verified `docker load` on the host, with progress while it runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{last_line, Delivery};
use crate::report::Total;
use crate::ship::fanout::GroupState;
use crate::ship::remote::{self, LoadReply};
use crate::ship::{Compression, HostCommand, HostOutput, ShipError, StreamInput, Ticket};

/// One streamed load, as [`Delivery::stream_load`] runs it.
pub(super) struct Load<'a> {
    pub compression: Compression,
    /// What the output shows for the command.
    pub display: String,
    /// What the progress line is about.
    pub what: String,
    /// Bytes to send, as far as known at each moment.
    pub total: Box<dyn Fn() -> Option<Total> + Send + Sync>,
    /// Key of the part file, for a resumable stream.
    pub resume: Option<&'a str>,
    /// References whose images to print after loading, in this order.
    pub check: Vec<&'a str>,
}

/// How one streamed load ended.
pub(super) struct Streamed {
    pub reply: LoadReply,
    /// The exit code of the load.
    pub code: i64,
    /// The last line of its stderr that says something.
    pub last_line: String,
    pub sent: u64,
    pub took: Duration,
}

impl Delivery<'_> {
    /// Runs the verified load with `ticket`'s stream on stdin, showing progress meanwhile.
    pub(super) fn stream_load(&self, ticket: Ticket, load: Load) -> Result<Streamed, ShipError> {
        let Load {
            compression,
            display,
            what,
            total,
            resume,
            check,
        } = load;
        let stream = StreamInput::for_host(ticket.rx, &self.host);
        let done = AtomicBool::new(false);
        let started = Instant::now();
        let result = std::thread::scope(|threads| {
            threads.spawn(|| {
                self.to.progress(&what, 0, total());
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    self.to
                        .progress(&what, stream.sent.load(Ordering::Relaxed), total());
                    // A host dropped from the stream may never read again: its load is stopped
                    // rather than waited for.
                    if !stream.is_abandoned()
                        && ticket.group.state().dropped.contains_key(&self.host)
                    {
                        stream.abandon();
                    }
                }
            });
            let result = self.to.run(HostCommand {
                display: Some(display),
                stdin: Some(stream.clone()),
                ..HostCommand::shown(&remote::load_command_checking(compression, resume, &check))
            });
            // Whatever happened, this host takes no more: the producer must not wait for it.
            stream.close_blocking();
            done.store(true, Ordering::Relaxed);
            result
        });
        let sent = stream.sent.load(Ordering::Relaxed);
        self.to.transferred(sent);
        let output = match result {
            // The caller says why from the stream's state (see `stream_failure`).
            Err(ShipError::Failed(_)) if stream.is_abandoned() => HostOutput {
                code: -1,
                ..HostOutput::default()
            },
            other => other?,
        };
        Ok(Streamed {
            reply: LoadReply::parse(&output),
            code: output.code,
            last_line: last_line(&output.stderr).to_string(),
            sent,
            took: started.elapsed(),
        })
    }
}

/// Why a streamed load failed, in the user's terms; `None` when docker itself refused it.
pub(super) fn stream_failure(reply: &LoadReply, state: &GroupState, host: &str) -> Option<String> {
    if let Some(reason) = state.dropped.get(host) {
        return Some(format!("{reason}; nothing was loaded"));
    }
    if let Some(e) = &state.error {
        return Some(format!("{e}; nothing was loaded"));
    }
    if let LoadReply::Mismatch { received } = reply {
        return Some(format!(
            "the stream arrived corrupted: rigs sent SHA-256 {}, the host received {received}; nothing was loaded",
            state.sha256.as_deref().unwrap_or("(unfinished)")
        ));
    }
    None
}
