//! ssh_config text, read as `-F FILE` is, then asked about hosts the way host selection asks.
//! The first line of the input is a host name to look up; the rest is the file.
//!
//! Inputs with `Include` are passed over: it reads other files from anywhere on this machine
//! (`Include /dev/zero` would), which is the user's own doing, not something a config can be
//! made safe against. The unit tests cover `Include`.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rigs::inventory::selection::{select, Overrides};
use rigs::inventory::ssh_config::SshConfig;
use rigs::inventory::Inventory;

fuzz_target!(|data: &[u8]| {
    if data.windows(7).any(|w| w.eq_ignore_ascii_case(b"include")) {
        return;
    }
    let (name, text) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b""[..], data),
    };
    let name = String::from_utf8_lossy(name);
    let config = match SshConfig::read(&mut &text[..], Path::new("fuzz_config")) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for n in [&*name, "web-1", "10.0.0.1", ""] {
        let host = config.query(n);
        let _ = format!("{host:?}");
    }
    // As a host on the command line: its ProxyJump chain is followed through the config.
    let overrides = Overrides {
        hosts: vec![name.into_owned()],
        ..Overrides::default()
    };
    match select(&Inventory::default(), None, &overrides, &config) {
        Ok(hosts) => {
            for h in &hosts {
                let _ = h.destination();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
