//! Private keys, loaded once per invocation however many hosts use them.
//!
//! A key may be encrypted: its passphrase comes from `RIGS_KEY_PASSPHRASE`, or from the person at
//! the terminal, asked before parallel output begins ([`KeyCache::preload`]). Whether asking
//! makes sense is decided on [`KeyError`]'s variant, not on the wording of the error.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use russh::keys::PrivateKey;

use crate::secret::Secret;

/// Why a private key file cannot be used.
#[derive(Debug, Clone)]
pub enum KeyError {
    /// The key is encrypted and no passphrase was at hand.
    Encrypted { path: PathBuf },
    /// The passphrase did not decrypt it: one typed at the terminal, or `RIGS_KEY_PASSPHRASE`
    /// (`from_env`).
    WrongPassphrase {
        path: PathBuf,
        from_env: bool,
        message: String,
    },
    /// The file is not a key that can be read.
    Unreadable { path: PathBuf, message: String },
}

impl KeyError {
    /// Whether a (different) passphrase could open the key.
    pub fn wants_passphrase(&self) -> bool {
        !matches!(self, KeyError::Unreadable { .. })
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Encrypted { path } => write!(
                f,
                "{} is encrypted: set RIGS_KEY_PASSPHRASE, run on a terminal to be asked, or load it into ssh-agent",
                path.display()
            ),
            KeyError::WrongPassphrase {
                path,
                from_env: true,
                message,
            } => write!(
                f,
                "{}: cannot decrypt with RIGS_KEY_PASSPHRASE: {message}",
                path.display()
            ),
            KeyError::WrongPassphrase { path, message, .. } => {
                write!(f, "{}: cannot decrypt the key: {message}", path.display())
            }
            KeyError::Unreadable { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for KeyError {}

type KeySlot = Arc<OnceLock<Result<Arc<PrivateKey>, KeyError>>>;

/// Private keys loaded once per invocation, however many hosts use them.
#[derive(Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<PathBuf, KeySlot>>,
}

impl KeyCache {
    pub(super) fn get(&self, path: &Path) -> Result<Arc<PrivateKey>, KeyError> {
        let cell = self.slot(path);
        cell.get_or_init(|| load_key(path, None)).clone()
    }

    fn slot(&self, path: &Path) -> KeySlot {
        self.keys
            .lock()
            .expect("key cache lock")
            .entry(path.to_path_buf())
            .or_default()
            .clone()
    }

    /// Loads keys before any connection starts, so that a passphrase is asked once per key,
    /// on the terminal, before parallel output begins. `ask` returns the passphrase for a path
    /// (`None` when nobody can be asked).
    pub fn preload<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a Path>,
        ask: impl Fn(&Path, usize) -> Option<Secret>,
    ) {
        for path in paths {
            if !path.is_file() {
                continue;
            }
            let cell = self.slot(path);
            cell.get_or_init(|| {
                let mut result = load_key(path, None);
                let mut attempt = 0;
                while result.as_ref().is_err_and(KeyError::wants_passphrase) && attempt < 3 {
                    let Some(pass) = ask(path, attempt) else {
                        break;
                    };
                    result = load_key(path, Some(&pass));
                    attempt += 1;
                }
                result
            });
        }
    }
}

/// The key at `path`, decrypted with `passphrase`, else with `RIGS_KEY_PASSPHRASE` if it is
/// encrypted and that is set.
fn load_key(path: &Path, passphrase: Option<&Secret>) -> Result<Arc<PrivateKey>, KeyError> {
    let wrong = |from_env: bool| {
        move |e: russh::keys::Error| KeyError::WrongPassphrase {
            path: path.to_path_buf(),
            from_env,
            message: e.to_string(),
        }
    };
    if let Some(pass) = passphrase {
        return russh::keys::load_secret_key(path, Some(pass.expose()))
            .map(Arc::new)
            .map_err(wrong(false));
    }
    match russh::keys::load_secret_key(path, None) {
        Ok(k) => Ok(Arc::new(k)),
        Err(russh::keys::Error::KeyIsEncrypted) => match std::env::var("RIGS_KEY_PASSPHRASE") {
            Ok(pass) => russh::keys::load_secret_key(path, Some(&pass))
                .map(Arc::new)
                .map_err(wrong(true)),
            Err(_) => Err(KeyError::Encrypted {
                path: path.to_path_buf(),
            }),
        },
        Err(e) => Err(KeyError::Unreadable {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_encrypted_key_asks_for_a_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not a key\n").unwrap();
        let e = load_key(&junk, None).unwrap_err();
        assert!(matches!(e, KeyError::Unreadable { .. }), "{e:?}");
        assert!(!e.wants_passphrase());
        assert!(
            e.to_string().starts_with(&format!("{}: ", junk.display())),
            "{e}"
        );

        let key = dir.path().join("id_ed25519");
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "right", "-C", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(made.success());
        if std::env::var_os("RIGS_KEY_PASSPHRASE").is_none() {
            let e = load_key(&key, None).unwrap_err();
            assert!(matches!(e, KeyError::Encrypted { .. }), "{e:?}");
            assert!(e.wants_passphrase());
            assert!(e.to_string().ends_with(" is encrypted: set RIGS_KEY_PASSPHRASE, run on a terminal to be asked, or load it into ssh-agent"), "{e}");
        }
        let e = load_key(&key, Some(&Secret::new("wrong"))).unwrap_err();
        assert!(
            matches!(
                e,
                KeyError::WrongPassphrase {
                    from_env: false,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.wants_passphrase());
        assert!(load_key(&key, Some(&Secret::new("right"))).is_ok());
    }
}
