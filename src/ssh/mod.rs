//! The SSH client: one russh connection per host, host keys verified, every command a new channel.
//!
//! [`Session::connect`] opens the TCP connection (with `TCP_NODELAY` and re-armed `TCP_QUICKACK`,
//! see [`socket`]), checks the host key against [`KnownHosts`], and authenticates with the agent and
//! identity files. [`Session::exec`] runs one command on a fresh channel, streaming its output to a
//! callback, so a task that runs ten commands costs one handshake.

mod auth;
mod client;
mod error;
mod exec;
mod key_cache;
mod known_hosts;
pub mod markers;
pub mod pool;
mod session;
mod socket;
mod stdin_stream;
mod target;

pub use error::SshError;
pub use exec::{ExecInput, ExecOutcome, Stdin, Stream};
pub use key_cache::{KeyCache, KeyError};
pub use known_hosts::{KnownHosts, Verdict, GLOBAL_KNOWN_HOSTS};
pub use pool::{Pool, SshOverrides};
pub use session::Session;
pub use stdin_stream::{StdinStream, StreamFuture};
pub use target::{ConnectOptions, Target};
