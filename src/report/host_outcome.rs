//! How a host's part of a run ended, typed from the SSH layer up to the summary and the history.
//!
//! A failure keeps the text the user reads (the task's message, which points at the recipe
//! line), and beside it what broke underneath when it was not the task itself: the host could
//! not be reached, refused rigs, dropped the connection, or let a command run past its timeout.
//! Decisions that depend on that, such as whether the host can still take its history line,
//! match on the [`Fault`], never on the wording of the message.

/// The word for how a host ended, in the summary's STATUS column and the history's `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStatus {
    Ok,
    Failed,
    /// Never started (Ctrl-C before its turn).
    Skipped,
    Interrupted,
}

impl HostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Ok => "ok",
            HostStatus::Failed => "failed",
            HostStatus::Skipped => "skipped",
            HostStatus::Interrupted => "interrupted",
        }
    }
}

/// What broke under a failed step, when it was not the step's own doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No connection: the name did not resolve, nothing answered, or the handshake failed.
    Unreachable,
    /// The host answered but rigs or the host said no: its key is unknown, changed or revoked,
    /// or no login worked.
    Refused,
    /// The connection broke while a command ran.
    ConnectionLost,
    /// A command ran past its timeout; the connection still works.
    TimedOut,
}

impl Fault {
    /// Whether the host's connection is unusable, so nothing more can run there.
    pub fn connection_gone(self) -> bool {
        !matches!(self, Fault::TimedOut)
    }
}

/// How a host ended: the summary's STATUS and ERROR, the history's `result` and `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOutcome {
    /// Every step it was given ran to its end.
    Ok,
    /// A step failed: the message for the user, and what broke under it when rigs knows.
    Failed {
        message: String,
        fault: Option<Fault>,
    },
    /// Ctrl-C stopped it, with what the step said as it stopped.
    Interrupted(String),
    /// It never started; why, once the scheduler knows.
    Skipped(Option<String>),
}

impl HostOutcome {
    pub fn status(&self) -> HostStatus {
        match self {
            HostOutcome::Ok => HostStatus::Ok,
            HostOutcome::Failed { .. } => HostStatus::Failed,
            HostOutcome::Interrupted(_) => HostStatus::Interrupted,
            HostOutcome::Skipped(_) => HostStatus::Skipped,
        }
    }

    /// The text of the ERROR cell and of the history's `error` field.
    pub fn error(&self) -> Option<&str> {
        match self {
            HostOutcome::Ok | HostOutcome::Skipped(None) => None,
            HostOutcome::Failed { message, .. } => Some(message),
            HostOutcome::Interrupted(message) | HostOutcome::Skipped(Some(message)) => {
                Some(message)
            }
        }
    }

    /// Whether the host's connection was found unusable, so nothing more can run there.
    pub fn connection_gone(&self) -> bool {
        matches!(
            self,
            HostOutcome::Failed { fault: Some(f), .. } if f.connection_gone()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_connection_stops_more_work_on_the_host() {
        let failed = |fault| HostOutcome::Failed {
            message: "m".into(),
            fault,
        };
        assert!(failed(Some(Fault::Unreachable)).connection_gone());
        assert!(failed(Some(Fault::Refused)).connection_gone());
        assert!(failed(Some(Fault::ConnectionLost)).connection_gone());
        assert!(!failed(Some(Fault::TimedOut)).connection_gone());
        // A task whose own message speaks of connections is still a task failure.
        let task = HostOutcome::Failed {
            message: "no connection to 127.0.0.1:8080".into(),
            fault: None,
        };
        assert!(!task.connection_gone());
        assert!(!HostOutcome::Interrupted("interrupted".into()).connection_gone());
    }

    #[test]
    fn status_and_error_follow_the_outcome() {
        assert_eq!(HostOutcome::Ok.status(), HostStatus::Ok);
        assert_eq!(HostOutcome::Ok.error(), None);
        let interrupted = HostOutcome::Interrupted("interrupted".into());
        assert_eq!(interrupted.error(), Some("interrupted"));
        assert_eq!(interrupted.status(), HostStatus::Interrupted);
        assert_eq!(HostOutcome::Skipped(None).error(), None);
        let skipped = HostOutcome::Skipped(Some("not started: interrupted".into()));
        assert_eq!(skipped.status(), HostStatus::Skipped);
        assert_eq!(skipped.error(), Some("not started: interrupted"));
    }
}
