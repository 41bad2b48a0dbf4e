//! The SSH client: one russh connection per host, host keys verified, every command a new channel.
//!
//! [`Session::connect`] opens the TCP connection (with `TCP_NODELAY` and re-armed `TCP_QUICKACK`,
//! see [`socket`]), checks the host key against [`KnownHosts`], and authenticates with the agent and
//! identity files. [`Session::exec`] runs one command on a fresh channel, streaming its output to a
//! callback, so a task that runs ten commands costs one handshake.

mod error;
mod known_hosts;
pub mod markers;
mod session;
mod socket;

pub use error::SshError;
pub use known_hosts::{KnownHosts, Verdict, GLOBAL_KNOWN_HOSTS};
pub use session::{
    hex, ConnectOptions, ExecInput, ExecOutcome, KeyCache, Session, Stdin, Stream, StreamInput,
    Target,
};
