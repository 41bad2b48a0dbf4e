//! known_hosts, read once per invocation and shared by every connection.
//!
//! russh's own helpers re-read the file for each host and stop at the first line they cannot parse;
//! with hundreds of hosts both are wrong. This reader follows OpenSSH's format: comma-separated
//! patterns with `*`, `?` and `!` negation, hashed `|1|salt|hash` names, `[host]:port` for
//! non-standard ports, and `@revoked` lines. Malformed lines are skipped as OpenSSH does.
//! `@cert-authority` lines are skipped: host certificates are not trusted yet. Host names are
//! matched without regard to case, as OpenSSH does: it lowercases the name it looks up (and
//! hashes), and the patterns it compares it with.
//!
//! Under `accept-new`, connections to many hosts learn keys at the same time, in this process and
//! in other rigs runs. [`KnownHosts::learn`] therefore decides under a lock on the file, against
//! what the file holds at that moment: a name that gained a different key meanwhile is refused,
//! never given a second trusted key.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::{Algorithm, PublicKey};
use sha1::Sha1;

/// The system-wide known_hosts file OpenSSH reads, read as well unless `--global-known-hosts`
/// (`RIGS_GLOBAL_KNOWN_HOSTS`) names another one.
pub const GLOBAL_KNOWN_HOSTS: &str = "/etc/ssh/ssh_known_hosts";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    Unknown,
    Changed { file: PathBuf, line: usize },
    Revoked,
}

enum Names {
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    Patterns(Vec<(bool, String)>),
}

impl Names {
    fn matches(&self, name: &str) -> bool {
        match self {
            Names::Hashed { salt, hash } => {
                let Ok(mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.chain_update(name.as_bytes()).verify_slice(hash).is_ok()
            }
            Names::Patterns(patterns) => {
                let mut matched = false;
                for (negated, pattern) in patterns {
                    if crate::glob::matches(pattern, name) {
                        if *negated {
                            return false;
                        }
                        matched = true;
                    }
                }
                matched
            }
        }
    }
}

struct Entry {
    names: Names,
    key: PublicKey,
    revoked: bool,
    file: PathBuf,
    line: usize,
}

pub struct KnownHosts {
    /// Where new keys are recorded (the user's file).
    path: PathBuf,
    entries: RwLock<Vec<Entry>>,
    write: Mutex<()>,
}

impl KnownHosts {
    /// Reads the user's file (missing is fine) and then the system-wide ones.
    pub fn load(path: PathBuf, system: &[&Path]) -> KnownHosts {
        let mut entries = Vec::new();
        read_into(&path, &mut entries);
        for s in system {
            read_into(s, &mut entries);
        }
        KnownHosts {
            path,
            entries: RwLock::new(entries),
            write: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The name OpenSSH looks up: `host` in lowercase, or `[host]:port` when the port is not 22.
    pub fn lookup_name(host: &str, port: u16) -> String {
        let host = host.to_ascii_lowercase();
        if port == 22 {
            host
        } else {
            format!("[{host}]:{port}")
        }
    }

    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = Self::lookup_name(host, port);
        let entries = self.entries.read().expect("known_hosts lock");
        verdict(entries.iter(), &name, key)
    }

    /// Key algorithms recorded for this host, so the handshake asks for a key we can verify.
    pub fn algorithms_for(&self, host: &str, port: u16) -> Vec<Algorithm> {
        let name = Self::lookup_name(host, port);
        let entries = self.entries.read().expect("known_hosts lock");
        let mut algs: Vec<Algorithm> = Vec::new();
        for e in entries
            .iter()
            .filter(|e| !e.revoked && e.names.matches(&name))
        {
            let alg = e.key.algorithm();
            if !algs.contains(&alg) {
                algs.push(alg);
            }
        }
        algs
    }

    /// Appends `key` for `host` to the user's file (accept-new), unless the file has meanwhile
    /// come to know the name: with this key that is fine, with another one (a parallel
    /// connection, or another rigs run, learned first) the key is refused as a changed one.
    pub fn learn(&self, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
        let _guard = self.write.lock().expect("known_hosts write lock");
        let name = Self::lookup_name(host, port);
        if let Some(parent) = self.path.parent() {
            if !parent.as_os_str().is_empty() && !parent.exists() {
                std::fs::create_dir_all(parent)?;
                set_mode(parent, 0o700);
            }
        }
        let openssh = key
            .to_openssh()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)?;
        // Held until `file` is closed: other rigs runs learn one at a time, and each sees what
        // the others wrote.
        lock_exclusive(&file)?;
        let mut existing = Vec::new();
        file.read_to_end(&mut existing)?;
        let mut on_disk = Vec::new();
        for (index, line) in String::from_utf8_lossy(&existing).lines().enumerate() {
            on_disk.extend(parse_line(line, &self.path, index + 1));
        }
        let seen = {
            let entries = self.entries.read().expect("known_hosts lock");
            verdict(entries.iter().chain(&on_disk), &name, key)
        };
        match seen {
            Verdict::Unknown => {}
            Verdict::Known => return Ok(()),
            Verdict::Changed { file, line } => {
                return Err(std::io::Error::other(format!(
                    "HOST KEY CHANGED for {name} while connecting: {}:{line} now holds another \
                     key for it (learned meanwhile by a parallel connection or run), so this \
                     one is refused. This may be an attack (man in the middle)",
                    file.display()
                )))
            }
            Verdict::Revoked => {
                return Err(std::io::Error::other(format!(
                    "the key {name} offered is revoked in {}",
                    self.path.display()
                )))
            }
        }
        let needs_newline = !existing.is_empty() && !existing.ends_with(b"\n");
        let line_no =
            existing.iter().filter(|b| **b == b'\n').count() + usize::from(needs_newline) + 1;
        let line = format!(
            "{}{name} {openssh}\n",
            if needs_newline { "\n" } else { "" }
        );
        file.write_all(line.as_bytes())?;
        self.entries.write().expect("known_hosts lock").push(Entry {
            names: Names::Patterns(vec![(false, name)]),
            key: key.clone(),
            revoked: false,
            file: self.path.clone(),
            line: line_no,
        });
        Ok(())
    }
}

/// What `entries` say about `key` for `name` (already lowercase).
fn verdict<'a>(entries: impl Iterator<Item = &'a Entry>, name: &str, key: &PublicKey) -> Verdict {
    let mut first_mismatch: Option<&Entry> = None;
    let mut known = false;
    for e in entries.filter(|e| e.names.matches(name)) {
        if e.key.key_data() == key.key_data() {
            if e.revoked {
                return Verdict::Revoked;
            }
            known = true;
        } else if !e.revoked && first_mismatch.is_none() {
            first_mismatch = Some(e);
        }
    }
    if known {
        return Verdict::Known;
    }
    match first_mismatch {
        Some(e) => Verdict::Changed {
            file: e.file.clone(),
            line: e.line,
        },
        None => Verdict::Unknown,
    }
}

/// Waits for an exclusive `flock` on `file`; it is released when the file is closed.
fn lock_exclusive(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: the descriptor is open for as long as `file` lives.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

fn read_into(path: &Path, entries: &mut Vec<Entry>) {
    // Bytes, not text: a line that is not UTF-8 (a comment in Latin-1) costs that line alone, as
    // in OpenSSH and as `learn` reads the file, not every key the file holds.
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    for (index, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
        if let Some(entry) = parse_line(line, path, index + 1) {
            entries.push(entry);
        }
    }
}

fn parse_line(line: &str, file: &Path, line_no: usize) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let mut revoked = false;
    if let Some(marker) = first.strip_prefix('@') {
        match marker {
            "revoked" => revoked = true,
            _ => return None,
        }
        first = fields.next()?;
    }
    let _key_type = fields.next()?;
    let key_b64 = fields.next()?;
    let key = russh::keys::parse_public_key_base64(key_b64).ok()?;
    let names = if let Some(hashed) = first.strip_prefix("|1|") {
        let (salt, hash) = hashed.split_once('|')?;
        Names::Hashed {
            salt: BASE64.decode(salt.as_bytes()).ok()?,
            hash: BASE64.decode(hash.as_bytes()).ok()?,
        }
    } else {
        Names::Patterns(
            first
                .split(',')
                .filter(|p| !p.is_empty())
                // OpenSSH compares patterns in lowercase, with the lowercased name.
                .map(|p| match p.strip_prefix('!') {
                    Some(rest) => (true, rest.to_ascii_lowercase()),
                    None => (false, p.to_ascii_lowercase()),
                })
                .collect(),
        )
    };
    Some(Entry {
        names,
        key,
        revoked,
        file: file.to_path_buf(),
        line: line_no,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    fn store(text: &str) -> (tempfile::TempDir, KnownHosts) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, text).unwrap();
        let kh = KnownHosts::load(path, &[]);
        (dir, kh)
    }

    #[test]
    fn plain_ports_and_changes() {
        let (_d, kh) = store(&format!(
            "# comment\nnot a valid line\nweb-1,10.0.0.1 ssh-ed25519 {KEY_A}\n[web-2]:2222 ssh-ed25519 {KEY_A}\n"
        ));
        assert_eq!(kh.check("web-1", 22, &key(KEY_A)), Verdict::Known);
        assert_eq!(kh.check("10.0.0.1", 22, &key(KEY_A)), Verdict::Known);
        assert_eq!(kh.check("web-2", 2222, &key(KEY_A)), Verdict::Known);
        assert_eq!(kh.check("web-2", 22, &key(KEY_A)), Verdict::Unknown);
        assert!(matches!(
            kh.check("web-1", 22, &key(KEY_B)),
            Verdict::Changed { line: 3, .. }
        ));
    }

    #[test]
    fn a_line_that_is_not_utf8_costs_only_that_line() {
        // Found by fuzz/fuzz_targets/known_hosts.rs: the whole file was ignored.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let mut text = b"# Jos\xe9's laptop\n".to_vec();
        text.extend_from_slice(format!("web-1 ssh-ed25519 {KEY_A}\n").as_bytes());
        text.extend_from_slice(b"bad\xff line\n");
        std::fs::write(&path, &text).unwrap();
        let kh = KnownHosts::load(path.clone(), &[]);
        assert_eq!(kh.check("web-1", 22, &key(KEY_A)), Verdict::Known);
        assert!(matches!(
            kh.check("web-1", 22, &key(KEY_B)),
            Verdict::Changed { line: 2, .. }
        ));
        // What `learn` adds to such a file is known to the next run too.
        kh.learn("web-2", 22, &key(KEY_B)).unwrap();
        let again = KnownHosts::load(path, &[]);
        assert_eq!(again.check("web-2", 22, &key(KEY_B)), Verdict::Known);
    }

    #[test]
    fn wildcards_negation_revoked() {
        let (_d, kh) = store(&format!(
            "*.example.com,!bad.example.com ssh-ed25519 {KEY_A}\n@revoked * ssh-ed25519 {KEY_B}\n"
        ));
        assert_eq!(kh.check("a.example.com", 22, &key(KEY_A)), Verdict::Known);
        assert_eq!(
            kh.check("bad.example.com", 22, &key(KEY_A)),
            Verdict::Unknown
        );
        assert_eq!(kh.check("a.example.com", 22, &key(KEY_B)), Verdict::Revoked);
    }

    #[test]
    fn hashed_names() {
        // `ssh-keygen -H` output for "[127.0.0.1]:2222" with a fixed salt.
        let salt = [7u8; 20];
        let mac = Hmac::<Sha1>::new_from_slice(&salt)
            .unwrap()
            .chain_update(b"[127.0.0.1]:2222");
        let hash = mac.finalize().into_bytes();
        let line = format!(
            "|1|{}|{} ssh-ed25519 {KEY_A}\n",
            BASE64.encode(&salt),
            BASE64.encode(&hash)
        );
        let (_d, kh) = store(&line);
        assert_eq!(kh.check("127.0.0.1", 2222, &key(KEY_A)), Verdict::Known);
        assert_eq!(kh.check("127.0.0.1", 22, &key(KEY_A)), Verdict::Unknown);
    }

    #[test]
    fn learn_appends_and_remembers() {
        let (d, kh) = store("");
        kh.learn("h", 2200, &key(KEY_A)).unwrap();
        assert_eq!(kh.check("h", 2200, &key(KEY_A)), Verdict::Known);
        let again = KnownHosts::load(d.path().join("known_hosts"), &[]);
        assert_eq!(again.check("h", 2200, &key(KEY_A)), Verdict::Known);
    }

    #[test]
    fn a_second_key_learned_for_a_name_is_refused_as_changed() {
        // Two connections to one name both found it unknown; the first one learns its key.
        let (d, kh) = store("");
        assert_eq!(kh.check("h", 2200, &key(KEY_A)), Verdict::Unknown);
        assert_eq!(kh.check("h", 2200, &key(KEY_B)), Verdict::Unknown);
        kh.learn("h", 2200, &key(KEY_A)).unwrap();
        let refused = kh.learn("h", 2200, &key(KEY_B)).unwrap_err().to_string();
        assert!(
            refused.contains("HOST KEY CHANGED for [h]:2200"),
            "{refused}"
        );
        assert!(refused.contains("known_hosts:1"), "{refused}");
        // Learning the same key again changes nothing.
        kh.learn("h", 2200, &key(KEY_A)).unwrap();
        let text = std::fs::read_to_string(d.path().join("known_hosts")).unwrap();
        assert_eq!(text, format!("[h]:2200 ssh-ed25519 {KEY_A}\n"));

        // Another rigs run loaded the file before this one learned a key, and learns another.
        let (d, this_run) = store("");
        let other_run = KnownHosts::load(d.path().join("known_hosts"), &[]);
        this_run.learn("g", 22, &key(KEY_A)).unwrap();
        assert!(other_run.learn("g", 22, &key(KEY_B)).is_err());
        other_run.learn("g", 22, &key(KEY_A)).unwrap();
        let text = std::fs::read_to_string(d.path().join("known_hosts")).unwrap();
        assert_eq!(text, format!("g ssh-ed25519 {KEY_A}\n"));
    }

    #[test]
    fn host_names_match_in_any_case() {
        let salt = [9u8; 20];
        let hash = Hmac::<Sha1>::new_from_slice(&salt)
            .unwrap()
            .chain_update(b"db-1.example.com")
            .finalize()
            .into_bytes();
        let (d, kh) = store(&format!(
            "Web-1,*.Example.COM ssh-ed25519 {KEY_A}\n|1|{}|{} ssh-ed25519 {KEY_A}\n",
            BASE64.encode(&salt),
            BASE64.encode(&hash)
        ));
        for name in [
            "web-1",
            "WEB-1",
            "Web-1",
            "app.example.com",
            "App.EXAMPLE.com",
        ] {
            assert_eq!(kh.check(name, 22, &key(KEY_A)), Verdict::Known, "{name}");
            assert!(
                matches!(kh.check(name, 22, &key(KEY_B)), Verdict::Changed { .. }),
                "{name}: another key is a changed one, not an unknown host to learn"
            );
        }
        assert_eq!(
            kh.check("DB-1.example.com", 22, &key(KEY_A)),
            Verdict::Known
        );
        assert_eq!(kh.algorithms_for("WEB-1", 22), vec![key(KEY_A).algorithm()]);
        // New names are written in lowercase, as OpenSSH writes (and hashes) them.
        kh.learn("New-Host", 2200, &key(KEY_B)).unwrap();
        let text = std::fs::read_to_string(d.path().join("known_hosts")).unwrap();
        assert!(
            text.ends_with(&format!("\n[new-host]:2200 ssh-ed25519 {KEY_B}\n")),
            "{text}"
        );
        assert!(kh.learn("NEW-HOST", 2200, &key(KEY_A)).is_err());
    }
}
