//! known_hosts, read once per invocation and shared by every connection.
//!
//! russh's own helpers re-read the file for each host and stop at the first line they cannot parse;
//! with hundreds of hosts both are wrong. This reader follows OpenSSH's format: comma-separated
//! patterns with `*`, `?` and `!` negation, hashed `|1|salt|hash` names, `[host]:port` for
//! non-standard ports, and `@revoked` lines. Malformed lines are skipped as OpenSSH does.
//! `@cert-authority` lines are skipped: host certificates are not trusted yet.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::{Algorithm, PublicKey};
use sha1::Sha1;

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

    /// The name OpenSSH looks up: `host`, or `[host]:port` when the port is not 22.
    pub fn lookup_name(host: &str, port: u16) -> String {
        if port == 22 {
            host.to_string()
        } else {
            format!("[{host}]:{port}")
        }
    }

    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = Self::lookup_name(host, port);
        let entries = self.entries.read().expect("known_hosts lock");
        let mut first_mismatch: Option<&Entry> = None;
        let mut known = false;
        for e in entries.iter().filter(|e| e.names.matches(&name)) {
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

    /// Appends `key` for `host` to the user's file (accept-new).
    pub fn learn(&self, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
        let _guard = self.write.lock().expect("known_hosts write lock");
        let name = Self::lookup_name(host, port);
        if self.check(host, port, key) == Verdict::Known {
            return Ok(());
        }
        if let Some(parent) = self.path.parent() {
            if !parent.as_os_str().is_empty() && !parent.exists() {
                std::fs::create_dir_all(parent)?;
                set_mode(parent, 0o700);
            }
        }
        let openssh = key
            .to_openssh()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let existing = std::fs::read(&self.path).unwrap_or_default();
        let needs_newline = !existing.is_empty() && !existing.ends_with(b"\n");
        let line_no =
            existing.iter().filter(|b| **b == b'\n').count() + usize::from(needs_newline) + 1;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
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

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

fn read_into(path: &Path, entries: &mut Vec<Entry>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for (index, line) in text.lines().enumerate() {
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
                .map(|p| match p.strip_prefix('!') {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, p.to_string()),
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
}
