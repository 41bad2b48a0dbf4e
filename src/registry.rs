//! A small client for the registry HTTP API v2: enough to give an image a new tag without moving
//! a single layer (promotion by manifest, seed 000).
//!
//! The manifest is fetched with every manifest media type a registry may hold (Docker schema 2,
//! OCI, and the lists/indexes that point at per-platform manifests), then put back unchanged
//! under the new tag, so the digest stays the same. Authentication follows the registry's
//! `WWW-Authenticate` answer: HTTP basic, or a bearer token fetched from its token service.
//! Registries on loopback (an address in 127.0.0.0/8, `::1`, or `localhost`) are spoken to over
//! plain HTTP, as Docker does; the host part is parsed as an address, so `127.example.com` is
//! not loopback.
//!
//! The token service is whatever `realm` the registry names, so the credentials go there only
//! when it is safe ([`realm_allowed`]): over https, or to a loopback realm of a loopback
//! registry. Anything else (plain HTTP to another machine) fails, naming the realm, before a
//! byte of the credentials is sent.

use std::sync::Arc;
use std::time::Duration;

use crate::secret::Secret;

const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

pub struct Credentials {
    pub user: String,
    pub password: Secret,
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    credentials: Option<Credentials>,
    authorization: Option<String>,
}

/// Status, lower-cased headers and body of a response.
type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// What a copy did.
pub struct Copied {
    pub digest: String,
    pub media_type: String,
}

impl Client {
    pub fn new(registry: &str, credentials: Option<Credentials>) -> Client {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::WebPki)
            .unversioned_rustls_crypto_provider(provider)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            // A redirect may lead anywhere, plain HTTP included: credentials do not follow it.
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        Client {
            agent,
            base: base_url(registry),
            credentials,
            authorization: None,
        }
    }

    /// Tags `repo:from` as `repo:to` in the registry. Works for single manifests and lists.
    pub fn copy_tag(&mut self, repo: &str, from: &str, to: &str) -> Result<Copied, String> {
        let scope = format!("repository:{repo}:pull,push");
        let url = format!("{}/v2/{repo}/manifests/{from}", self.base);
        let (status, headers, body) = self.send("GET", &url, &scope, None)?;
        if status == 404 {
            return Err(format!(
                "{repo}:{from} is not in the registry {}",
                self.base
            ));
        }
        if status != 200 {
            return Err(format!("GET {url}: HTTP {status}: {}", short(&body)));
        }
        let media_type = header(&headers, "content-type").unwrap_or_default();
        let digest = header(&headers, "docker-content-digest").unwrap_or_else(|| {
            use sha2::Digest;
            format!(
                "sha256:{}",
                crate::hex::encode(&sha2::Sha256::digest(&body))
            )
        });
        let url = format!("{}/v2/{repo}/manifests/{to}", self.base);
        let (status, headers, response) =
            self.send("PUT", &url, &scope, Some((&media_type, &body)))?;
        if !(200..300).contains(&status) {
            return Err(format!("PUT {url}: HTTP {status}: {}", short(&response)));
        }
        let put_digest =
            header(&headers, "docker-content-digest").unwrap_or_else(|| digest.clone());
        if put_digest != digest {
            return Err(format!(
                "the registry stored {put_digest} under {to}, expected {digest}"
            ));
        }
        Ok(Copied { digest, media_type })
    }

    /// One request, answering one authentication challenge if the registry asks.
    fn send(
        &mut self,
        method: &str,
        url: &str,
        scope: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Reply, String> {
        for attempt in 0..2 {
            let mut request = ureq::http::Request::builder()
                .method(method)
                .uri(url)
                .header("Accept", MANIFEST_TYPES);
            if let Some(auth) = &self.authorization {
                request = request.header("Authorization", auth);
            }
            if let Some((content_type, _)) = body {
                request = request.header("Content-Type", content_type);
            }
            let request = request
                .body(body.map(|(_, b)| b.to_vec()).unwrap_or_default())
                .map_err(|e| e.to_string())?;
            let mut response = self
                .agent
                .run(request)
                .map_err(|e| format!("{method} {url}: {e}"))?;
            let status = response.status().as_u16();
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        v.to_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            let bytes = response
                .body_mut()
                .read_to_vec()
                .map_err(|e| format!("{method} {url}: {e}"))?;
            if status == 401 && attempt == 0 {
                let challenge = header(&headers, "www-authenticate").unwrap_or_default();
                self.authorization = Some(self.answer(&challenge, scope)?);
                continue;
            }
            if status == 401 {
                return Err(format!(
                    "{method} {url}: the registry refused the credentials (HTTP 401)"
                ));
            }
            return Ok((status, headers, bytes));
        }
        unreachable!("the loop returns on its second pass")
    }

    fn basic(&self) -> Result<String, String> {
        let c = self
            .credentials
            .as_ref()
            .ok_or("the registry wants a login: pass a user and password")?;
        let pair = format!("{}:{}", c.user, c.password.expose());
        Ok(format!(
            "Basic {}",
            data_encoding::BASE64.encode(pair.as_bytes())
        ))
    }

    fn answer(&self, challenge: &str, scope: &str) -> Result<String, String> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => self.basic(),
            "bearer" => {
                let params = parse_params(params);
                let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let realm = get("realm").ok_or("bearer challenge without a realm")?;
                let mut url = format!(
                    "{realm}?scope={}",
                    encode(&get("scope").unwrap_or_else(|| scope.to_string()))
                );
                if let Some(service) = get("service") {
                    url.push_str(&format!("&service={}", encode(&service)));
                }
                let mut request = self.agent.get(&url);
                if self.credentials.is_some() {
                    if !realm_allowed(&realm, &self.base) {
                        return Err(format!(
                            "the registry {} sends its login to the token service {realm}, which \
                             is not https: rigs sends credentials only over https (or to a \
                             loopback token service of a loopback registry)",
                            self.base
                        ));
                    }
                    request = request.header("Authorization", &self.basic()?);
                }
                let mut response = request
                    .call()
                    .map_err(|e| format!("token from {realm}: {e}"))?;
                let status = response.status().as_u16();
                let text = response
                    .body_mut()
                    .read_to_string()
                    .map_err(|e| e.to_string())?;
                if status != 200 {
                    return Err(format!(
                        "token from {realm}: HTTP {status}: {}",
                        short(text.as_bytes())
                    ));
                }
                let json: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| format!("token from {realm}: {e}"))?;
                let token = json["token"]
                    .as_str()
                    .or(json["access_token"].as_str())
                    .ok_or("the token service sent no token")?;
                Ok(format!("Bearer {token}"))
            }
            other => Err(format!(
                "the registry asks for `{other}` authentication, which rigs does not speak"
            )),
        }
    }
}

fn base_url(registry: &str) -> String {
    if registry.starts_with("http://") || registry.starts_with("https://") {
        return registry.trim_end_matches('/').to_string();
    }
    let local = is_loopback(registry_host(registry));
    format!(
        "{}://{}",
        if local { "http" } else { "https" },
        registry.trim_end_matches('/')
    )
}

/// The host part of a registry name: `127.0.0.1:5000` and `[::1]:5000/ns` give `127.0.0.1` and
/// `::1`.
fn registry_host(registry: &str) -> &str {
    let authority = registry.split('/').next().unwrap_or(registry);
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    // A bare IPv6 address has colons of its own and no port.
    if authority.parse::<std::net::Ipv6Addr>().is_ok() {
        return authority;
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Whether `host` (no port, no brackets) is this machine: an address in 127.0.0.0/8, `::1`, or
/// the name `localhost`. Names are not compared by prefix: `127.example.com` is somebody's.
fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the registry at `base` (a URL) may have its credentials sent to the token service at
/// `realm`: an https realm, wherever it is, or a plain-HTTP one on loopback when the registry
/// is on loopback too (a test registry and its token service on one machine).
fn realm_allowed(realm: &str, base: &str) -> bool {
    let Some((scheme, host)) = url_host(realm) else {
        return false;
    };
    match scheme.as_str() {
        "https" => true,
        "http" => is_loopback(&host) && url_host(base).is_some_and(|(_, h)| is_loopback(&h)),
        _ => false,
    }
}

/// The lower-cased scheme and the host (no port, no brackets) of an absolute URL.
fn url_host(url: &str) -> Option<(String, String)> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((scheme, host.to_string()))
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn short(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)])
        .trim()
        .to_string()
}

/// `realm="https://auth",service="registry",scope="repository:a:pull"` as pairs.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.push((key, value.to_string()));
        rest = next.trim_start_matches(',').trim();
    }
    out
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parameters() {
        let p = parse_params(
            r#"realm="https://auth.example.com/token",service="registry.example.com",scope="repository:app:pull,push""#,
        );
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.example.com/token".into())
        );
        assert_eq!(p[1], ("service".into(), "registry.example.com".into()));
        assert_eq!(p[2], ("scope".into(), "repository:app:pull,push".into()));
    }

    #[test]
    fn local_registries_use_http() {
        assert_eq!(base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(base_url("127.8.9.10"), "http://127.8.9.10");
        assert_eq!(base_url("localhost:5000"), "http://localhost:5000");
        assert_eq!(base_url("[::1]:5000"), "http://[::1]:5000");
        assert_eq!(
            base_url("registry.example.com"),
            "https://registry.example.com"
        );
        assert_eq!(base_url("http://10.0.0.5:5000/"), "http://10.0.0.5:5000");
    }

    #[test]
    fn loopback_is_an_address_not_a_prefix() {
        for local in ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "::1"] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "127.evil.com",
            "127.0.0.1.evil.com",
            "localhost.evil.com",
            "128.0.0.1",
            "10.0.0.5",
            "::2",
            "",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
        assert_eq!(registry_host("127.evil.com:5000"), "127.evil.com");
        assert_eq!(registry_host("[::1]:5000/ns"), "::1");
        assert_eq!(registry_host("::1"), "::1");
        assert_eq!(registry_host("localhost"), "localhost");
        assert_eq!(base_url("127.evil.com:5000"), "https://127.evil.com:5000");
        assert_eq!(base_url("localhost.evil.com"), "https://localhost.evil.com");
    }

    #[test]
    fn credentials_go_only_to_https_or_loopback_realms() {
        let remote = "https://registry.example.com";
        let local = "http://127.0.0.1:5000";
        assert!(realm_allowed("https://auth.example.com/token", remote));
        assert!(realm_allowed(
            "HTTPS://auth.elsewhere.net:8443/token",
            remote
        ));
        assert!(realm_allowed("https://auth.example.com/token", local));
        assert!(realm_allowed("http://127.0.0.1:5001/token", local));
        assert!(realm_allowed(
            "http://[::1]:5001/token",
            "http://localhost:5000"
        ));
        // Plain HTTP to another machine, whichever registry asks.
        assert!(!realm_allowed("http://auth.example.com/token", remote));
        assert!(!realm_allowed("http://10.0.0.9/token", local));
        assert!(!realm_allowed("http://127.evil.com/token", local));
        // A loopback realm of a remote registry would be the controller's own service.
        assert!(!realm_allowed("http://127.0.0.1:5001/token", remote));
        assert!(!realm_allowed(
            "http://127.0.0.1:5001/token",
            "http://10.0.0.5:5000"
        ));
        // Not a URL rigs can judge.
        assert!(!realm_allowed("/token", remote));
        assert!(!realm_allowed("ftp://auth.example.com/token", remote));
        assert!(!realm_allowed("", remote));
    }
}
