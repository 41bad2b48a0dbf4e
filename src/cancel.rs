//! Ctrl-C as a value every layer can watch.
//!
//! The scheduler stops starting hosts, running remote commands close their channels, and the Rhai
//! engine's progress hook ends a script, all from one [`Cancel`] flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

#[derive(Clone)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Cancel {
    fn default() -> Self {
        let (tx, _rx) = watch::channel(false);
        Cancel {
            flag: Arc::new(AtomicBool::new(false)),
            tx: Arc::new(tx),
        }
    }
}

impl Cancel {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.tx.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once [`Cancel::cancel`] has been called (at once if it already was).
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
}
