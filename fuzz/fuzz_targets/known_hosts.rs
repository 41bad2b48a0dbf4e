//! known_hosts files. Whatever the file holds, loading and lookups never fail, and a line that
//! OpenSSH reads as "this host has this key" makes rigs know that key for that host, whatever
//! other lines say (unless one revokes the key). After `learn` succeeds the key is known, in
//! this process and to the next run that reads the file.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rigs::ssh::{KnownHosts, Verdict};
use rigs_fuzz::{KEYS, NEW_KEY};
use russh::keys::{parse_public_key_base64, PublicKey};

fn dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir"))
        .path()
}

fn keys() -> &'static [PublicKey] {
    static K: OnceLock<Vec<PublicKey>> = OnceLock::new();
    K.get_or_init(|| {
        KEYS.iter()
            .map(|(_, b64)| parse_public_key_base64(b64).expect("a test key"))
            .collect()
    })
}

/// A host name OpenSSH and rigs both take at face value: no pattern characters, no case.
fn plain_host(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
}

/// `host` or `[host]:port` (port not 22) from a known_hosts name field.
fn host_port(field: &str) -> Option<(String, u16)> {
    if let Some(rest) = field.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        let port: u16 = port.parse().ok().filter(|p| *p != 22)?;
        return (plain_host(host) && port.to_string() == rest.split_once("]:")?.1)
            .then(|| (host.to_string(), port));
    }
    plain_host(field).then(|| (field.to_string(), 22))
}

/// The (host, port, key index) a line states in the plainest form: `NAME TYPE BASE64 [comment]`.
fn stated(line: &[u8]) -> Option<(String, u16, usize)> {
    let line = std::str::from_utf8(line).ok()?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = line.split([' ', '\t']).filter(|f| !f.is_empty());
    let (host, port) = host_port(fields.next()?)?;
    let (kind, b64) = (fields.next()?, fields.next()?);
    let key = KEYS.iter().position(|k| *k == (kind, b64))?;
    Some((host, port, key))
}

fuzz_target!(|data: &[u8]| {
    let path = dir().join("known_hosts");
    std::fs::write(&path, data).expect("writing known_hosts");
    let kh = KnownHosts::load(path.clone(), &[]);
    let keys = keys();

    let mut learnable = None;
    for (n, line) in data.split(|b| *b == b'\n').enumerate().take(64) {
        if let Some((host, port, key)) = stated(line) {
            let verdict = kh.check(&host, port, &keys[key]);
            assert!(
                matches!(verdict, Verdict::Known | Verdict::Revoked),
                "line {} says {host}:{port} has key {key}, but rigs finds it {verdict:?}",
                n + 1
            );
            assert!(!kh.algorithms_for(&host, port).is_empty() || verdict == Verdict::Revoked);
            learnable.get_or_insert((format!("new-{host}"), port));
        }
        // Every name field, as a host to look up: exercises the pattern matching.
        let text = String::from_utf8_lossy(line);
        if let Some(first) = text.split_whitespace().next() {
            for name in first.split(',').take(4) {
                let name = name.trim_start_matches(['!', '@']);
                let _ = kh.check(name, 22, &keys[0]);
                let _ = kh.algorithms_for(name, 2222);
            }
        }
    }

    let (host, port) = learnable.unwrap_or_else(|| ("fuzz-new-host".to_string(), 22));
    let key = parse_public_key_base64(NEW_KEY).expect("a test key");
    if kh.learn(&host, port, &key).is_ok() {
        assert_eq!(
            kh.check(&host, port, &key),
            Verdict::Known,
            "learned {host}:{port}"
        );
        let again = KnownHosts::load(path, &[]);
        assert_eq!(
            again.check(&host, port, &key),
            Verdict::Known,
            "{host}:{port} was learned, but the file read again does not know it"
        );
    }
});
