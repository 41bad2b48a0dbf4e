//! Runs the real `rigs` binary against files written into a temporary folder.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// rigs' `PATH`: the system's folders, not the developer's.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The system-wide known_hosts file of every project (empty unless a test writes it), which rigs
/// reads instead of the machine's `/etc/ssh/ssh_known_hosts`.
pub const GLOBAL_KNOWN_HOSTS: &str = "global_known_hosts";

#[derive(Clone)]
pub struct Project {
    dir: PathBuf,
    /// Keeps the folder alive while any clone of the builder lives.
    _temp: std::rc::Rc<tempfile::TempDir>,
    args: Vec<String>,
    /// Variables the test set (`Some`) or took away from the harness' defaults (`None`).
    env: BTreeMap<String, Option<String>>,
    stdin: Option<String>,
    timeout: Duration,
    /// Run in a new session, without a controlling terminal (see `without_terminal`).
    detached: bool,
}

#[derive(Debug)]
pub struct RunOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    #[track_caller]
    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        );
    }
}

impl Project {
    pub fn new() -> Project {
        let temp = tempfile::Builder::new()
            .prefix("rigs-test-")
            .tempdir()
            .expect("temp dir");
        let dir = temp.path().to_path_buf();
        for sub in ["recipes", "inventory", "home"] {
            std::fs::create_dir_all(dir.join(sub)).expect("project folders");
        }
        std::fs::write(dir.join(GLOBAL_KNOWN_HOSTS), "").expect("global known_hosts");
        Project {
            dir,
            _temp: std::rc::Rc::new(temp),
            args: Vec::new(),
            env: BTreeMap::new(),
            stdin: None,
            timeout: Duration::from_secs(60),
            detached: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn file(self, rel: &str, text: &str) -> Project {
        let path = self.dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    pub fn recipe(self, name: &str, text: &str) -> Project {
        self.file(&format!("recipes/{name}"), text)
    }

    pub fn inventory(self, name: &str, text: &str) -> Project {
        self.file(&format!("inventory/{name}"), text)
    }

    pub fn env(mut self, key: &str, value: &str) -> Project {
        self.env.insert(key.to_string(), Some(value.to_string()));
        self
    }

    /// Leaves `key` out of rigs' environment even where the harness sets it (`NO_COLOR`).
    pub fn env_remove(mut self, key: &str) -> Project {
        self.env.insert(key.to_string(), None);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Project
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    pub fn stdin(mut self, text: &str) -> Project {
        self.stdin = Some(text.to_string());
        self
    }

    pub fn timeout(mut self, secs: u64) -> Project {
        self.timeout = Duration::from_secs(secs);
        self
    }

    /// Runs rigs with no controlling terminal even when the tests run in one, so a prompt can
    /// only fail, never wait for a person.
    pub fn without_terminal(mut self) -> Project {
        self.detached = true;
        self
    }

    /// The `rigs` command line with the project's arguments and environment, stdout and stderr
    /// piped; tests that need other plumbing (both streams into one file) replace them.
    ///
    /// rigs starts from an empty environment: a developer's exported `RIGS_PASSWORD`,
    /// `DOCKER_HOST`, `USER` or any name a recipe's `secret()` could fall back to never reaches
    /// it. It gets a system `PATH`, `HOME` (the project's `home` folder), `NO_COLOR=1`,
    /// `RIGS_GLOBAL_KNOWN_HOSTS` (the project's empty `global_known_hosts`, instead of
    /// `/etc/ssh/ssh_known_hosts`), and what the test set with [`Project::env`].
    pub fn command(&self) -> Command {
        let mut cmd = if self.detached {
            let mut c = Command::new("setsid");
            c.arg("-w").arg(env!("CARGO_BIN_EXE_rigs"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_rigs"))
        };
        cmd.args(&self.args).current_dir(&self.dir).env_clear();
        for (key, value) in self.environment() {
            cmd.env(key, value);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    }

    /// Everything rigs finds in its environment: the harness' defaults, then the test's own.
    pub fn environment(&self) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = [
            ("PATH", SYSTEM_PATH.to_string()),
            ("HOME", self.dir.join("home").display().to_string()),
            ("NO_COLOR", "1".to_string()),
            (
                "RIGS_GLOBAL_KNOWN_HOSTS",
                self.dir.join(GLOBAL_KNOWN_HOSTS).display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (key, value) in &self.env {
            match value {
                Some(v) => vars.insert(key.clone(), v.clone()),
                None => vars.remove(key),
            };
        }
        vars
    }

    /// Runs rigs on a pseudo-terminal (through `script`), typing `typed` into it: for prompts
    /// that read the terminal, not stdin. Output from the terminal lands in `stdout`.
    pub fn run_in_terminal(self, typed: &str) -> RunOutput {
        let line = self.shell_line();
        let mut child = self
            .terminal(&line)
            .spawn()
            .expect("start script (util-linux)");
        let mut stdin = child.stdin.take().unwrap();
        let typed = typed.to_string();
        // Type only after the prompt had time to appear, as a person would.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            let _ = stdin.write_all(typed.as_bytes());
            std::thread::sleep(Duration::from_secs(30));
        });
        let out = child.wait_with_output().expect("wait for script");
        RunOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs rigs on a pseudo-terminal, types `typed` once `prompt` has shown on it, and then runs
    /// the shell line `after` on the same terminal, to see the state rigs left it in. The output
    /// (terminal and `after` together) lands in `stdout`, with rigs' exit status as `rc=N`. The
    /// shell survives a Ctrl-C typed for rigs (`trap : INT`, which rigs does not inherit).
    pub fn run_in_terminal_at_prompt(self, prompt: &str, typed: &str, after: &str) -> RunOutput {
        use std::io::Read;
        let line = format!("trap : INT; {}; echo \"rc=$?\"; {after}", self.shell_line());
        let mut child = self
            .terminal(&line)
            .spawn()
            .expect("start script (util-linux)");
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let stderr = drain(child.stderr.take().unwrap());
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watchdog = {
            let (done, pid, timeout) = (done.clone(), child.id(), self.timeout);
            std::thread::spawn(move || {
                let started = Instant::now();
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    if started.elapsed() > timeout {
                        let _ = Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .status();
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                false
            })
        };
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stdout.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if stdin.is_some() && String::from_utf8_lossy(&seen).contains(prompt) {
                let mut input = stdin.take().unwrap();
                input.write_all(typed.as_bytes()).unwrap();
                // Keep the terminal's input open until the shell line is done.
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(30));
                    drop(input);
                });
            }
        }
        let status = child.wait().expect("wait for script");
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(
            !watchdog.join().unwrap(),
            "ran longer than {:?}: {}",
            self.timeout,
            String::from_utf8_lossy(&seen)
        );
        RunOutput {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&seen).into_owned(),
            stderr: stderr.join().unwrap(),
        }
    }

    /// The rigs command line with this project's arguments, quoted for `sh`.
    fn shell_line(&self) -> String {
        let quote = |a: &str| format!("'{}'", a.replace('\'', "'\\''"));
        let mut line = quote(env!("CARGO_BIN_EXE_rigs"));
        for a in &self.args {
            line.push(' ');
            line.push_str(&quote(a));
        }
        line
    }

    /// `script` running the shell line `line` on a new pseudo-terminal, in this project's folder
    /// and environment, with its input, output and errors piped.
    fn terminal(&self, line: &str) -> Command {
        let mut script = Command::new("script");
        script
            .args(["-qec", line, "/dev/null"])
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.environment());
        // A person's terminal sends Ctrl-C to a program that has not ignored it; a suite started
        // in the background (`cmd &`, nohup) would otherwise hand its ignored SIGINT down.
        // SAFETY: `signal` is async-signal-safe, as pre_exec requires.
        unsafe {
            use std::os::unix::process::CommandExt;
            script.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGQUIT, libc::SIG_DFL);
                Ok(())
            });
        }
        script
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        script
    }

    /// Starts rigs and returns once its stdout has shown `needle` `count` times (the rest of
    /// stdout is drained in the background). Panics, with stderr, if rigs ends before.
    pub fn spawn_until(&self, needle: &str, count: usize) -> Child {
        use std::io::Read;
        let mut child = self.spawn();
        let mut stdout = child.stdout.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while seen.matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "`{needle}` did not appear {count} times: {seen}"
            );
            let n = stdout.read(&mut buf).unwrap_or(0);
            if n == 0 {
                let mut stderr = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                panic!("rigs ended before `{needle}` appeared {count} times:\n{seen}\n{stderr}");
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        child
    }

    /// Starts rigs and returns at once, for tests that signal it. The project must outlive the
    /// child, since dropping it removes the folder.
    pub fn spawn(&self) -> Child {
        self.command().spawn().expect("start rigs")
    }

    pub fn run(self) -> RunOutput {
        let mut child = self.command().spawn().expect("start rigs");
        if let Some(text) = &self.stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let stdout = drain(child.stdout.take().unwrap());
        let stderr = drain(child.stderr.take().unwrap());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for rigs") {
                break status;
            }
            if started.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "rigs {:?} ran longer than {:?}\n--- stderr ---\n{}",
                    self.args,
                    self.timeout,
                    stderr.join().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        RunOutput {
            code: status.code().unwrap_or(-1),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
