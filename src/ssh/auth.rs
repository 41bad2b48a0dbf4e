//! Logging in on a new connection: agent identities first, then identity files, then a
//! password, as OpenSSH orders them, collecting what was tried for the error when none works.

use std::path::Path;

use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::PrivateKeyWithHashAlg;
use russh::MethodKind;

use super::client::Client;
use super::target::{ConnectOptions, Target};
use super::SshError;
use crate::secret::Secret;

/// Agent identities first, then identity files, then a password, as OpenSSH orders them.
pub(super) async fn authenticate(
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
            Err(e) => {
                notes.push(e.to_string());
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
