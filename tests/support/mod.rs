//! The test harness: real OpenSSH servers on loopback and a builder that runs the real binary.
//!
//! Nothing here mocks SSH. [`SshLab`] starts `sshd` processes with their own host keys, config
//! and log, and kills them by PID when dropped; [`Project`] writes recipes and inventories into a
//! temporary folder and runs `rigs` there with a private HOME, so the developer's own `~/.ssh`
//! is never read.
#![allow(dead_code)]

mod project;
mod sshd;

pub use project::{Project, RunOutput};
pub use sshd::{unused_port, SshLab};
