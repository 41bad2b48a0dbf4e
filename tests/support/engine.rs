//! The two Docker engines every Docker test runs on, and the macro that runs a test on both.
//!
//! - [`Engine::Classic`]: Debian bookworm's `docker.io` 20.10 with its own image store (graph
//!   drivers), as installed on the system by `tests/run.sh`.
//! - [`Engine::Modern`]: Debian trixie's `docker.io` 26.1 with containerd 1.7 and the containerd
//!   image store, as Docker 29 sets up by default. `tests/run.sh` unpacks it into a folder of its
//!   own ([`modern_root`]) and installs nothing on the system; bookworm's `runc` runs its
//!   containers, and the dockerd starts a containerd of its own from that folder.
//!
//! Each engine comes with its own CLI: the lab's own `docker` commands, the hosts' sessions and
//! rigs on the controller all use the client that matches the engine they talk to. Only the
//! modern engine's client comes with the Compose v2 plugin, so a classic host doubles as a
//! machine where `docker compose` does not exist.

use std::path::{Path, PathBuf};

/// Where `tests/run.sh` unpacks the modern engine unless `RIGS_DOCKER_MODERN` names a folder.
const MODERN_ROOT: &str = "/var/cache/rigs-tests/docker-modern";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Classic,
    Modern,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Classic => "classic",
            Engine::Modern => "modern",
        }
    }

    /// The daemon binary.
    pub fn dockerd(self) -> PathBuf {
        match self {
            Engine::Classic => PathBuf::from("/usr/sbin/dockerd"),
            Engine::Modern => modern_root().join("usr/sbin/dockerd"),
        }
    }

    /// The client that matches the daemon.
    pub fn docker(self) -> PathBuf {
        match self {
            Engine::Classic => PathBuf::from("/usr/bin/docker"),
            Engine::Modern => modern_root().join("usr/bin/docker"),
        }
    }

    /// `PATH` for the daemon, or `None` to keep the tests' own. The modern dockerd finds its
    /// `containerd`, the shims and `docker-proxy` first in the unpacked folder, and bookworm's
    /// `runc` and `docker-init` after it.
    pub fn daemon_path(self) -> Option<String> {
        match self {
            Engine::Classic => None,
            Engine::Modern => {
                let root = modern_root();
                Some(format!(
                    "{}:{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    root.join("usr/bin").display(),
                    root.join("usr/sbin").display()
                ))
            }
        }
    }

    /// The Compose v2 CLI plugin that ships with the engine's client, if it has one: Debian's
    /// bookworm `docker.io` has none, so `docker compose` there is "not a docker command".
    pub fn compose_plugin(self) -> Option<PathBuf> {
        match self {
            Engine::Classic => None,
            Engine::Modern => {
                Some(modern_root().join("usr/libexec/docker/cli-plugins/docker-compose"))
            }
        }
    }

    /// The daemon.json of an engine of this kind.
    pub fn daemon_json(self) -> &'static str {
        match self {
            Engine::Classic => "{}\n",
            Engine::Modern => "{\"features\": {\"containerd-snapshotter\": true}}\n",
        }
    }

    /// Panics with the way to install it when this engine is not on the machine.
    #[track_caller]
    pub fn assert_installed(self) {
        let hint = match self {
            Engine::Classic => "run tests/run.sh, which installs docker.io".to_string(),
            Engine::Modern => format!(
                "run tests/run.sh as root, which unpacks Debian trixie's Docker into {MODERN_ROOT} \
                 (or set RIGS_DOCKER_MODERN to a folder holding it)"
            ),
        };
        for tool in [self.dockerd(), self.docker()] {
            assert!(
                tool.exists(),
                "{} is missing for the {} engine: {hint}",
                tool.display(),
                self.name()
            );
        }
        if self == Engine::Modern {
            let containerd = modern_root().join("usr/bin/containerd");
            assert!(
                containerd.exists(),
                "{} is missing: {hint}",
                containerd.display()
            );
            let compose = self.compose_plugin().unwrap();
            assert!(compose.exists(), "{} is missing: {hint}", compose.display());
            assert!(
                Path::new("/usr/sbin/runc").exists(),
                "/usr/sbin/runc is missing: run tests/run.sh, which installs docker.io"
            );
        }
    }
}

/// The folder the modern engine is unpacked in.
pub fn modern_root() -> PathBuf {
    std::env::var_os("RIGS_DOCKER_MODERN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(MODERN_ROOT))
}

/// Runs the test body `fn NAME(engine: Engine)` on both engines, as `NAME::classic` and
/// `NAME::modern`. Attributes after `classic:` or `modern:` go on that test only, e.g. an
/// `#[ignore = "modern engine: why"]` while the product catches up.
///
/// With `fleets`, the body is `fn NAME(controller: Engine, hosts: Engine)` and two more tests run
/// mixed fleets: `NAME::modern_controller_classic_hosts` and `NAME::classic_controller_modern_hosts`
/// (attributes after `modern_to_classic:` and `classic_to_modern:`).
macro_rules! on_engines {
    (fleets $name:ident
        $(, classic: #[$c:meta])*
        $(, modern: #[$m:meta])*
        $(, modern_to_classic: #[$mc:meta])*
        $(, classic_to_modern: #[$cm:meta])* $(,)?) => {
        mod $name {
            use crate::harness::Engine;

            #[test]
            $(#[$c])*
            fn classic() {
                super::$name(Engine::Classic, Engine::Classic)
            }

            #[test]
            $(#[$m])*
            fn modern() {
                super::$name(Engine::Modern, Engine::Modern)
            }

            #[test]
            $(#[$mc])*
            fn modern_controller_classic_hosts() {
                super::$name(Engine::Modern, Engine::Classic)
            }

            #[test]
            $(#[$cm])*
            fn classic_controller_modern_hosts() {
                super::$name(Engine::Classic, Engine::Modern)
            }
        }
    };
    ($name:ident $(, classic: #[$c:meta])* $(, modern: #[$m:meta])* $(,)?) => {
        mod $name {
            use crate::harness::Engine;

            #[test]
            $(#[$c])*
            fn classic() {
                super::$name(Engine::Classic)
            }

            #[test]
            $(#[$m])*
            fn modern() {
                super::$name(Engine::Modern)
            }
        }
    };
}
pub(crate) use on_engines;
