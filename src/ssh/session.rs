//! One authenticated SSH connection and the commands run over it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::ssh_key::{HashAlg, PublicKey};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, MethodKind, Preferred};

use super::known_hosts::{KnownHosts, Verdict};
use super::markers;
use super::socket::QuickAckStream;
use super::SshError;
use crate::cancel::Cancel;
use crate::secret::Secret;

/// Which of a command's output streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What a remote command gets besides its command line.
#[derive(Default, Clone, Copy)]
pub struct ExecInput<'a> {
    /// The line actually sent, when it differs from the command shown to the user (sudo).
    pub wrapped: Option<&'a str>,
    pub stdin: Stdin<'a>,
    /// The command runs under sudo with rigs' prompt: stdin waits until sudo lets it through.
    pub sudo: bool,
    /// Answer to sudo's prompt (once; a second prompt means the password was wrong).
    pub sudo_password: Option<&'a [u8]>,
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The exit code; `None` when the command was killed by a signal.
    pub code: Option<u32>,
    pub signal: Option<String>,
    /// What was written to its stdin: byte count and SHA-256 (hex).
    pub sent: Option<(u64, String)>,
}

/// Where a command's standard input comes from.
#[derive(Clone, Copy, Default)]
pub enum Stdin<'a> {
    #[default]
    Empty,
    Bytes(&'a [u8]),
    /// Streamed from a file in chunks: memory stays constant whatever its size.
    File(&'a Path),
    /// Buffers produced elsewhere, as they come (an image fanned out to many hosts).
    Stream(&'a Arc<StreamInput>),
}

/// Standard input that another thread produces: buffers arrive on a bounded channel, so a
/// producer feeding many hosts is held back by a slow one only as far as that channel holds.
pub struct StreamInput {
    rx: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Arc<[u8]>>>,
    /// Bytes written to the channel so far (for progress).
    pub sent: std::sync::atomic::AtomicU64,
    /// Flip the byte at this offset, as a faulty link would (fault injection for tests).
    corrupt_at: Option<u64>,
    /// Set when the producer gave up on this host: its command is stopped, not waited for.
    abandoned: std::sync::atomic::AtomicBool,
    abandon: tokio::sync::Notify,
}

impl StreamInput {
    pub fn new(
        rx: tokio::sync::mpsc::Receiver<Arc<[u8]>>,
        corrupt_at: Option<u64>,
    ) -> Arc<StreamInput> {
        Arc::new(StreamInput {
            rx: tokio::sync::Mutex::new(rx),
            sent: std::sync::atomic::AtomicU64::new(0),
            corrupt_at,
            abandoned: std::sync::atomic::AtomicBool::new(false),
            abandon: tokio::sync::Notify::new(),
        })
    }

    /// Gives up on the host (it took nothing for too long): the command reading this stream is
    /// stopped on the host and ends with an error instead of waiting for a host that may never
    /// read again.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
        self.abandon.notify_waiters();
    }

    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Returns once [`StreamInput::abandon`] was called.
    pub async fn abandoned(&self) {
        loop {
            let notified = self.abandon.notified();
            if self.is_abandoned() {
                return;
            }
            notified.await;
        }
    }

    /// Refuses further buffers: the producer sees this host as gone.
    pub async fn close(&self) {
        self.rx.lock().await.close();
    }

    /// [`StreamInput::close`] from a thread outside the runtime; drops what is still queued.
    pub fn close_blocking(&self) {
        let mut rx = self.rx.blocking_lock();
        rx.close();
        while rx.try_recv().is_ok() {}
    }

    /// The next buffer, with the fault (if any) applied; `None` at the end.
    pub async fn next(&self) -> Option<Arc<[u8]>> {
        let chunk = self.rx.lock().await.recv().await?;
        let start = self.sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        match self.corrupt_at {
            Some(at) if at >= start && at < start + chunk.len() as u64 => {
                let mut copy = chunk.to_vec();
                copy[(at - start) as usize] ^= 0x01;
                Some(copy.into())
            }
            _ => Some(chunk),
        }
    }
}

/// Writes `stdin` to the channel, hashing what it sends.
async fn write_stdin<S>(
    write: &russh::ChannelWriteHalf<S>,
    stdin: Stdin<'_>,
) -> std::io::Result<Option<(u64, String)>>
where
    S: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    use sha2::Digest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut hasher = sha2::Sha256::new();
    let mut total = 0u64;
    match stdin {
        Stdin::Empty => return Ok(None),
        Stdin::Bytes(bytes) => {
            hasher.update(bytes);
            total = bytes.len() as u64;
            write.data(bytes).await.map_err(std::io::Error::other)?;
        }
        Stdin::File(path) => {
            let mut file = tokio::fs::File::open(path).await?;
            let mut sink = write.make_writer();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                total += n as u64;
                sink.write_all(&buf[..n]).await?;
            }
            sink.flush().await?;
        }
        Stdin::Stream(stream) => {
            // The producer hashes what it streams; hashing it again here would double the
            // controller's CPU per byte.
            let mut sink = write.make_writer();
            while let Some(chunk) = stream.next().await {
                total += chunk.len() as u64;
                if let Err(e) = sink.write_all(&chunk).await {
                    // Let the producer know at once that this host takes no more.
                    stream.close().await;
                    return Err(e);
                }
            }
            sink.flush().await?;
            return Ok(Some((total, String::new())));
        }
    }
    Ok(Some((total, hex(&hasher.finalize()))))
}

/// Both ciphers are AEADs OpenSSH offers by default; with AES instructions in the CPU, AES-GCM
/// costs both ends a fraction of ChaCha20-Poly1305's CPU, which bulk transfers (images) feel.
fn cipher_order() -> Vec<russh::cipher::Name> {
    use russh::cipher;
    #[cfg(target_arch = "x86_64")]
    let aes = std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(target_arch = "aarch64")]
    let aes = std::arch::is_aarch64_feature_detected!("aes");
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let aes = false;
    let mut order = vec![cipher::CHACHA20_POLY1305, cipher::AES_256_GCM];
    if aes {
        order.swap(0, 1);
    }
    order.extend([
        cipher::AES_256_CTR,
        cipher::AES_192_CTR,
        cipher::AES_128_CTR,
    ]);
    order
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Settings shared by every connection of one invocation.
pub struct ConnectOptions {
    pub keys: Arc<KeyCache>,
    /// Tried after the host's own identities: `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` if present.
    pub default_identities: Vec<PathBuf>,
    pub use_agent: bool,
    /// Offered when keys fail and the server accepts passwords (`--ask-pass`, `RIGS_PASSWORD`).
    pub password: Option<Secret>,
}

type KeySlot = Arc<OnceLock<Result<Arc<PrivateKey>, String>>>;

/// Private keys loaded once per invocation, however many hosts use them.
#[derive(Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<PathBuf, KeySlot>>,
}

impl KeyCache {
    fn get(&self, path: &Path) -> Result<Arc<PrivateKey>, String> {
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
                while result
                    .as_ref()
                    .is_err_and(|e| e.contains("encrypted") || e.contains("decrypt"))
                    && attempt < 3
                {
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

fn load_key(path: &Path, passphrase: Option<&Secret>) -> Result<Arc<PrivateKey>, String> {
    if let Some(pass) = passphrase {
        return russh::keys::load_secret_key(path, Some(pass.expose()))
            .map(Arc::new)
            .map_err(|e| format!("{}: cannot decrypt the key: {e}", path.display()));
    }
    match russh::keys::load_secret_key(path, None) {
        Ok(k) => Ok(Arc::new(k)),
        Err(russh::keys::Error::KeyIsEncrypted) => match std::env::var("RIGS_KEY_PASSPHRASE") {
            Ok(pass) => russh::keys::load_secret_key(path, Some(&pass))
                .map(Arc::new)
                .map_err(|e| format!("{}: cannot decrypt with RIGS_KEY_PASSPHRASE: {e}", path.display())),
            Err(_) => Err(format!(
                "{} is encrypted: set RIGS_KEY_PASSPHRASE, run on a terminal to be asked, or load it into ssh-agent",
                path.display()
            )),
        },
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Where to connect, as whom, and how to trust the server.
pub struct Target {
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identities: Vec<PathBuf>,
    /// Offer only `identities`: no agent keys, no default key files.
    pub identities_only: bool,
    pub known_hosts: Arc<KnownHosts>,
    pub accept_new: bool,
    pub connect_timeout: Duration,
    pub keepalive: Option<Duration>,
}

impl Target {
    pub fn destination(&self) -> String {
        format!(
            "{}@{}",
            self.user,
            KnownHosts::lookup_name(&self.address, self.port)
        )
    }
}

struct Client {
    address: String,
    port: u16,
    known_hosts: Arc<KnownHosts>,
    accept_new: bool,
    rejection: Arc<Mutex<Option<SshError>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key: PublicKey = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::from(cert.public_key().clone()),
        };
        let host = KnownHosts::lookup_name(&self.address, self.port);
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let rejection = match self.known_hosts.check(&self.address, self.port, &key) {
            Verdict::Known => return Ok(true),
            Verdict::Unknown if self.accept_new => {
                return match self.known_hosts.learn(&self.address, self.port, &key) {
                    Ok(()) => Ok(true),
                    Err(source) => {
                        *self.rejection.lock().expect("rejection lock") =
                            Some(SshError::KnownHostsWrite {
                                path: self.known_hosts.path().to_path_buf(),
                                source,
                            });
                        Ok(false)
                    }
                };
            }
            Verdict::Unknown => SshError::HostKeyUnknown {
                host,
                fingerprint,
                key_type: key.algorithm().to_string(),
                known_hosts: self.known_hosts.path().to_path_buf(),
            },
            Verdict::Changed { file, line } => SshError::HostKeyChanged {
                host,
                fingerprint,
                known_hosts: file,
                line,
            },
            Verdict::Revoked => SshError::HostKeyRevoked { host, fingerprint },
        };
        *self.rejection.lock().expect("rejection lock") = Some(rejection);
        Ok(false)
    }
}

/// An authenticated connection. Cloning shares it.
#[derive(Clone)]
pub struct Session {
    handle: Arc<client::Handle<Client>>,
    /// How authentication succeeded, for verbose output.
    pub auth_method: String,
    /// The jump host's session this one tunnels through, kept alive with it.
    _via: Option<Box<Session>>,
}

impl Session {
    /// Connects to `target`, directly or through `via` (a jump host's session, which must stay
    /// open as long as this one).
    pub async fn connect(
        target: &Target,
        options: &ConnectOptions,
        via: Option<&Session>,
    ) -> Result<Session, SshError> {
        let destination = target.destination();
        let deadline = target.connect_timeout;
        match tokio::time::timeout(
            deadline,
            Self::connect_inner(target, options, via, &destination),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(SshError::ConnectTimeout {
                destination,
                after: deadline,
            }),
        }
    }

    async fn connect_inner(
        target: &Target,
        options: &ConnectOptions,
        via: Option<&Session>,
        destination: &str,
    ) -> Result<Session, SshError> {
        let mut preferred = Preferred::default();
        let known_algs = target
            .known_hosts
            .algorithms_for(&target.address, target.port);
        if !known_algs.is_empty() {
            // Ask for a key type we can verify first, as OpenSSH does.
            let mut order = known_algs;
            for alg in Preferred::default().key.iter() {
                if !order.contains(alg) {
                    order.push(alg.clone());
                }
            }
            preferred.key = order.into();
        }
        preferred.cipher = cipher_order().into();
        let config = Arc::new(client::Config {
            nodelay: true,
            preferred,
            keepalive_interval: target.keepalive,
            keepalive_max: 3,
            ..Default::default()
        });
        let rejection = Arc::new(Mutex::new(None));
        let handler = Client {
            address: target.address.clone(),
            port: target.port,
            known_hosts: target.known_hosts.clone(),
            accept_new: target.accept_new,
            rejection: rejection.clone(),
        };
        let connected = match via {
            None => {
                let addr = format!("{}:{}", bracket(&target.address), target.port);
                let tcp = tokio::net::TcpStream::connect(&addr)
                    .await
                    .map_err(|source| {
                        if source.kind() == std::io::ErrorKind::Other
                            && source.to_string().contains("lookup")
                        {
                            SshError::Resolve {
                                host: target.address.clone(),
                            }
                        } else {
                            SshError::Connect {
                                destination: destination.to_string(),
                                source,
                            }
                        }
                    })?;
                client::connect_stream(config, QuickAckStream::new(tcp), handler).await
            }
            Some(jump) => {
                let channel = jump
                    .handle
                    .channel_open_direct_tcpip(
                        target.address.clone(),
                        target.port as u32,
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| SshError::Connect {
                        destination: destination.to_string(),
                        source: std::io::Error::other(format!(
                            "the jump host could not open a tunnel: {e}"
                        )),
                    })?;
                client::connect_stream(config, channel.into_stream(), handler).await
            }
        };
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => {
                if let Some(rejected) = rejection.lock().expect("rejection lock").take() {
                    return Err(rejected);
                }
                return Err(SshError::Handshake {
                    destination: destination.to_string(),
                    message: e.to_string(),
                });
            }
        };
        let auth_method = authenticate(&mut handle, target, options, destination).await?;
        Ok(Session {
            handle: Arc::new(handle),
            auth_method,
            _via: via.map(|v| Box::new(v.clone())),
        })
    }

    /// Runs `command` on a new channel, passing output chunks to `on_output` as they arrive.
    /// Standard input is written concurrently with reading output, so neither side can stall
    /// the other. A command that times out or is interrupted is killed on the host, with its
    /// children, before this returns.
    pub async fn exec(
        &self,
        command: &str,
        input: ExecInput<'_>,
        timeout: Option<Duration>,
        cancel: &Cancel,
        mut on_output: impl FnMut(Stream, &[u8]),
    ) -> Result<ExecOutcome, SshError> {
        let lost = || {
            if self.handle.is_closed() {
                SshError::ConnectionLost {
                    command: command.to_string(),
                }
            } else {
                SshError::Channel {
                    command: command.to_string(),
                    message: "the server closed the channel".into(),
                }
            }
        };
        // The timeout and Ctrl-C count from here: a host that stopped answering never confirms
        // the channel, and waiting for that would outlast both.
        let deadline = timeout.map(|limit| tokio::time::Instant::now() + limit);
        let timed_out = || SshError::CommandTimeout {
            command: command.to_string(),
            after: timeout.unwrap_or_default(),
        };
        let open = async {
            let channel = self.handle.channel_open_session().await.map_err(|e| match e {
                russh::Error::ChannelOpenFailure(reason) => SshError::Channel {
                    command: command.to_string(),
                    message: format!("the server refused a new session channel ({reason:?}); is MaxSessions too low?"),
                },
                _ => lost(),
            })?;
            // The remote shell reports its PID first. sshd starts each session in a new process
            // group led by that shell, so the PID is all it takes to stop the command and its
            // children.
            let wrapped = format!(
                "printf '\\036rigs-pid %s\\n' \"$$\" >&2; {}",
                input.wrapped.unwrap_or(command)
            );
            channel.exec(true, wrapped).await.map_err(|_| lost())?;
            Ok::<_, SshError>(channel)
        };
        let opened = async {
            match deadline {
                Some(at) => tokio::time::timeout_at(at, open)
                    .await
                    .unwrap_or_else(|_| Err(timed_out())),
                None => open.await,
            }
        };
        let channel = tokio::select! {
            opened = opened => opened?,
            _ = cancel.cancelled() => return Err(SshError::Interrupted),
        };
        let (mut read, write) = channel.split();
        let streamed = matches!(input.stdin, Stdin::Stream(_));

        let pid = AtomicU32::new(0);
        let go = tokio::sync::Notify::new();
        if !input.sudo {
            go.notify_one();
        }
        let writer = async {
            go.notified().await;
            let sent = write_stdin(&write, input.stdin).await.map_err(|_| lost())?;
            write.eof().await.map_err(|_| lost())?;
            Ok::<_, SshError>(sent)
        };
        let run = async {
            tokio::pin!(writer);
            let mut writer_done = false;
            let mut sent = None;
            let mut filter = markers::StderrFilter::new(input.sudo);
            let mut signals = Vec::new();
            let mut prompts = 0;
            let mut code = None;
            let mut signal = None;
            let mut writer_error = None;
            loop {
                let message = tokio::select! {
                    result = &mut writer, if !writer_done => {
                        writer_done = true;
                        match result {
                            Ok(s) => sent = s,
                            // A streamed input ends when the command stops reading; how the
                            // command ended says why.
                            Err(e) if streamed => writer_error = Some(e),
                            Err(e) => return Err(e),
                        }
                        continue;
                    }
                    message = read.wait() => message,
                };
                match message {
                    Some(ChannelMsg::Data { data }) => on_output(Stream::Stdout, &data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        filter.feed(
                            &data,
                            |bytes| on_output(Stream::Stderr, bytes),
                            |s| signals.push(s),
                        );
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => code = Some(exit_status),
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        signal = Some(format!("{signal_name:?}"))
                    }
                    Some(ChannelMsg::Failure) => {
                        return Err(SshError::Channel {
                            command: command.to_string(),
                            message: "the server refused to run it".into(),
                        })
                    }
                    Some(_) => {}
                    None => break,
                }
                for s in signals.drain(..) {
                    match s {
                        markers::Signal::Pid(p) => pid.store(p, Ordering::Relaxed),
                        // A command not run through sudo by rigs cannot ask for the password,
                        // whatever it prints; nor can one that sudo already let through (the
                        // filter reports sudo's signals only until then).
                        markers::Signal::SudoPrompt if !input.sudo => {}
                        markers::Signal::SudoPrompt => {
                            prompts += 1;
                            match input.sudo_password {
                                Some(password) if prompts == 1 => {
                                    let mut line = password.to_vec();
                                    line.push(b'\n');
                                    write.data(&line[..]).await.map_err(|_| lost())?;
                                }
                                Some(_) => {
                                    return Err(SshError::SudoPassword {
                                        command: command.to_string(),
                                    })
                                }
                                None => {
                                    return Err(SshError::SudoNeedsPassword {
                                        command: command.to_string(),
                                    })
                                }
                            }
                        }
                        markers::Signal::SudoOk => go.notify_one(),
                    }
                }
            }
            filter.flush(|bytes| on_output(Stream::Stderr, bytes));
            if let (Some(e), None, None) = (writer_error, code, &signal) {
                return Err(e);
            }
            if code.is_none() && signal.is_none() {
                return Err(SshError::ConnectionLost {
                    command: command.to_string(),
                });
            }
            Ok(ExecOutcome { code, signal, sent })
        };
        let timed = async {
            match deadline {
                Some(at) => tokio::time::timeout_at(at, run)
                    .await
                    .unwrap_or_else(|_| Err(timed_out())),
                None => run.await,
            }
        };
        let abandoned = async {
            match input.stdin {
                Stdin::Stream(stream) => stream.abandoned().await,
                _ => std::future::pending().await,
            }
        };
        let mut given_up = false;
        let result = tokio::select! {
            result = timed => result,
            _ = cancel.cancelled() => Err(SshError::Interrupted),
            _ = abandoned => {
                given_up = true;
                Err(SshError::Channel {
                    command: command.to_string(),
                    message: "rigs stopped it: the host took no more input".into(),
                })
            }
        };
        if given_up
            || matches!(
                result,
                Err(SshError::CommandTimeout { .. }
                    | SshError::Interrupted
                    | SshError::SudoPassword { .. }
                    | SshError::SudoNeedsPassword { .. })
            )
        {
            self.kill(pid.load(Ordering::Relaxed)).await;
            let _ = write.close().await;
        }
        result
    }

    /// Stops a remote command's process group (best effort, bounded in time).
    async fn kill(&self, pid: u32) {
        if pid <= 1 {
            return;
        }
        let stop = async {
            let channel = self.handle.channel_open_session().await.ok()?;
            let line =
                format!("kill -TERM -- -{pid} 2>/dev/null || kill -TERM {pid} 2>/dev/null; exit 0");
            channel.exec(true, line).await.ok()?;
            let mut channel = channel;
            while channel.wait().await.is_some() {}
            Some(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), stop).await;
    }

    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

fn bracket(address: &str) -> String {
    if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    }
}

/// Agent identities first, then identity files, then a password, as OpenSSH orders them.
async fn authenticate(
    handle: &mut client::Handle<Client>,
    target: &Target,
    options: &ConnectOptions,
    destination: &str,
) -> Result<String, SshError> {
    let mut tried: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let handshake = |e: russh::Error| SshError::Handshake {
        destination: destination.to_string(),
        message: e.to_string(),
    };
    let user = target.user.as_str();
    let mut server_methods: Option<Vec<MethodKind>> = None;

    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(handshake)?
        .flatten();

    if options.use_agent && !target.identities_only && std::env::var_os("SSH_AUTH_SOCK").is_some() {
        match russh::keys::agent::client::AgentClient::connect_env().await {
            Ok(mut agent) => match agent.request_identities().await {
                Ok(identities) => {
                    for identity in identities {
                        let russh::keys::agent::AgentIdentity::PublicKey { key, comment } =
                            identity
                        else {
                            continue;
                        };
                        let label = if comment.is_empty() {
                            "agent key".to_string()
                        } else {
                            format!("agent key {comment}")
                        };
                        let hash = if key.algorithm().is_rsa() {
                            rsa_hash
                        } else {
                            None
                        };
                        match handle
                            .authenticate_publickey_with(user, key, hash, &mut agent)
                            .await
                        {
                            Ok(AuthResult::Success) => return Ok(label),
                            Ok(AuthResult::Failure {
                                remaining_methods, ..
                            }) => {
                                server_methods = Some(remaining_methods.to_vec());
                                tried.push(label);
                            }
                            Err(e) => notes.push(format!("agent could not sign with {label}: {e}")),
                        }
                    }
                }
                Err(e) => notes.push(format!("ssh-agent did not list keys: {e}")),
            },
            Err(e) => notes.push(format!("cannot reach ssh-agent at $SSH_AUTH_SOCK: {e}")),
        }
    }

    let mut seen: Vec<&Path> = Vec::new();
    let explicit = target.identities.iter().map(|p| (p, true));
    let defaults = options
        .default_identities
        .iter()
        .filter(|_| !target.identities_only)
        .map(|p| (p, false));
    for (path, required) in explicit.chain(defaults) {
        if seen.contains(&path.as_path()) {
            continue;
        }
        seen.push(path);
        if !required && !path.exists() {
            continue;
        }
        let key = match options.keys.get(path) {
            Ok(k) => k,
            Err(message) => {
                notes.push(message);
                continue;
            }
        };
        if server_methods
            .as_ref()
            .is_some_and(|m| !m.contains(&MethodKind::PublicKey))
        {
            break;
        }
        let hash = if key.algorithm().is_rsa() {
            rsa_hash
        } else {
            None
        };
        let with_hash = PrivateKeyWithHashAlg::new(key, hash);
        match handle
            .authenticate_publickey(user, with_hash)
            .await
            .map_err(handshake)?
        {
            AuthResult::Success => return Ok(format!("key {}", path.display())),
            AuthResult::Failure {
                remaining_methods, ..
            } => {
                server_methods = Some(remaining_methods.to_vec());
                tried.push(path.display().to_string());
            }
        }
    }

    if let Some(password) = &options.password {
        if server_methods.is_none() {
            // Nothing was tried yet: ask the server which methods it takes.
            if let AuthResult::Failure {
                remaining_methods, ..
            } = handle.authenticate_none(user).await.map_err(handshake)?
            {
                server_methods = Some(remaining_methods.to_vec());
            } else {
                return Ok("no authentication".into());
            }
        }
        let methods = server_methods.clone().unwrap_or_default();
        if methods.contains(&MethodKind::Password) {
            match handle
                .authenticate_password(user, password.expose())
                .await
                .map_err(handshake)?
            {
                AuthResult::Success => return Ok("password".into()),
                AuthResult::Failure { .. } => tried.push("password".into()),
            }
        } else if methods.contains(&MethodKind::KeyboardInteractive) {
            if keyboard_interactive(handle, user, password)
                .await
                .map_err(handshake)?
            {
                return Ok("keyboard-interactive password".into());
            }
            tried.push("keyboard-interactive password".into());
        } else {
            notes.push("the server does not accept passwords".into());
        }
    } else if server_methods.as_ref().is_some_and(|m| {
        m.contains(&MethodKind::Password) || m.contains(&MethodKind::KeyboardInteractive)
    }) {
        notes.push("the server accepts a password: pass --ask-pass or set RIGS_PASSWORD".into());
    }
    Err(SshError::Auth {
        destination: destination.to_string(),
        tried,
        notes,
    })
}

/// Answers every hidden prompt with the password; gives up after a few rounds so a server that
/// keeps asking cannot hang the host.
async fn keyboard_interactive(
    handle: &mut client::Handle<Client>,
    user: &str,
    password: &Secret,
) -> Result<bool, russh::Error> {
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await?;
    for _ in 0..4 {
        match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(false),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts
                    .iter()
                    .map(|p| {
                        if p.echo {
                            String::new()
                        } else {
                            password.expose().to_string()
                        }
                    })
                    .collect();
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(false)
}
