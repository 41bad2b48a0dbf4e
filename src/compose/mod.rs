//! Docker Compose projects, as rigs deploys them.
//!
//! A compose project is a `compose.yaml` (plus optional override files) and the files it refers
//! to: `env_file`s, `configs` and `secrets` files. rigs uploads these into a revision folder on each
//! host and runs the host's own `docker compose` there, so a deploy can be pinned, repeated and
//! rolled back per revision.
//!
//! The controller reads the compose files itself instead of asking Docker Compose: deploying must
//! not require Compose (or Docker) on the machine rigs runs from. It reads only what it needs to
//! know which files to upload and which services exist, and it refuses what it cannot carry
//! faithfully (paths leaving the project, interpolated paths, `include:`). Everything else
//! (interpolation, schema, merging of override files) is left to the host's Compose, which
//! validates the project after upload.
//!
//! This module is a leaf: plain functions over files and strings, no SSH and no recipe engine, so
//! both the recipe functions and `rigs bundle create` can use it.

pub mod env_file;
pub mod interpolate;
pub mod plugin;
pub mod project_files;
pub mod ps;
