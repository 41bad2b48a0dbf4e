//! Standard input that another part of the program produces while the command runs.
//!
//! The SSH layer only drains such a source into the command's channel (and the local runner
//! into its pipe); what produces the buffers, and when it gives up on a host, is the producer's
//! business (image shipping implements it: `ship::StreamInput`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A future a [`StdinStream`] returns, borrowing the stream.
pub type StreamFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Buffers for a command's standard input, as they come.
pub trait StdinStream: Send + Sync {
    /// The next buffer; `None` at the end of the input.
    fn next(&self) -> StreamFuture<'_, Option<Arc<[u8]>>>;
    /// Refuses further buffers: the command stopped reading, and the producer should know.
    fn close(&self) -> StreamFuture<'_, ()>;
    /// Resolves once the producer gave up on this command: it is then stopped, not waited for.
    fn abandoned(&self) -> StreamFuture<'_, ()>;
}
