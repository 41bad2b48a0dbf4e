//! What the hosts of one compressed copy share: its outcome, and how far the producer got.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use crate::ship::compress::Choices;

/// The outcome of one compressed copy, filled in by the producer before its end frame is sent.
#[derive(Default)]
pub struct Group {
    state: Mutex<GroupState>,
    /// Archive bytes read into this copy so far, before compression...
    pub read: AtomicU64,
    /// ...and what they became: together an estimate of the compression ratio.
    pub written: AtomicU64,
}

/// The outcome of one compressed copy, as its hosts read it.
#[derive(Default, Clone)]
pub struct GroupState {
    /// SHA-256 of all payload bytes, once complete.
    pub sha256: Option<String>,
    /// How the archive's bytes travelled.
    pub choices: Choices,
    /// Why the stream could not be completed (the source failed).
    pub error: Option<String>,
    /// Hosts dropped for not keeping up, and why.
    pub dropped: HashMap<String, String>,
}

impl Group {
    /// A copy of the outcome so far.
    pub fn state(&self) -> GroupState {
        self.state.lock().expect("group lock").clone()
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut GroupState)) {
        f(&mut self.state.lock().expect("group lock"));
    }
}
