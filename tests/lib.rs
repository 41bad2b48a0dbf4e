//! Integration tests: one binary, one module per feature. Everything runs the real `rigs`
//! binary against real OpenSSH servers on loopback (see `support`).

#[path = "support/mod.rs"]
mod harness;

mod bundle_compose;
mod check;
mod cli;
mod compose;
mod docker;
mod examples;
mod files;
mod health;
mod history;
mod host_keys;
mod import;
mod init;
mod interrupt;
mod inventory_errors;
mod lab;
mod locks;
mod output;
mod output_integrity;
mod recipes;
mod releases;
mod secrets;
mod ship;
mod ship_images;
mod ssh_exec;
mod ssh_setups;
mod sudo_and_passwords;
mod trust;
