//! A registry reached over the distribution API with reqwest (the bearer-token flow, TLS by
//! rustls, trusting the system's roots or those `SSL_CERT_FILE` names).
//!
//! reqwest is async; tokio stays inside this file. The registry owns a small runtime, and
//! every call blocks on it, so the rest of vouch stays synchronous: a blob is handed out as a
//! plain [`Read`] that pulls the HTTP body chunk by chunk.
//!
//! A registry may be hostile. Every body vouch parses (a manifest, an index, a token) is read
//! up to its limit and one byte more, never buffered whole; every request and every blob has
//! a deadline (the timeout plus its size at the minimum rate), not just a read timeout; and
//! credentials go only over TLS, or over plain HTTP to this machine.

use std::future::Future;
use std::io::{self, BufRead, Read};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};

use super::auth::Credentials;
use super::document::{
    parse_digest, Descriptor, Document, MANIFEST_MEDIA_TYPES, MAX_DOCUMENT_BYTES, OCI_INDEX,
};
use super::reference::RegistryRef;
use super::store::{within_document_limit, Fetched, Sink, Store, Unavailable};
use super::Connection;
use crate::error::{error_chain, Error, Hint, Result};
use crate::hash::{Algorithm, Digest};

/// The first pause between attempts; it doubles after each failure, with up to half of it
/// again added at random so that clients refused together do not return together.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);

/// The longest pause a registry's `Retry-After` is honoured for (the timeout caps it too).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The most a token response may hold.
const MAX_TOKEN_BYTES: u64 = 1 << 20;

/// The header in which a registry names the digest of the manifest it serves.
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// The most of an error body quoted in a message.
const MAX_ERROR_BYTES: u64 = 4 << 10;

/// What a client of the registry does: read, or read and write (a signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Pull,
    PullPush,
}

pub struct Registry {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    /// `https://HOST` or, for a registry on this machine without TLS, `http://HOST`.
    base: Url,
    repository: String,
    /// The tag or digest the reference names.
    reference: String,
    /// What goes in the Authorization header of requests to the registry (a bearer token
    /// is fetched again when the registry no longer takes it).
    authorization: std::sync::Mutex<Option<HeaderValue>>,
    credentials: Credentials,
    /// Where the credentials came from, for messages (`--username`, a config.json).
    credentials_from: Option<String>,
    retries: u32,
    timeout: Duration,
    min_rate: u64,
    warnings: Vec<String>,
    /// Warnings learnt while talking to the registry (where credentials went).
    notes: std::sync::Mutex<Vec<String>>,
    /// Why TLS failed, when a registry on this machine is reached over plain HTTP instead.
    tls_failure: Option<String>,
    /// Set when the registry refused a request made without credentials.
    refused_anonymous: AtomicBool,
    /// What the token is asked for: `pull`, or `pull,push` to write.
    actions: &'static str,
    /// The host as the reference names it, for messages.
    host: String,
}

/// Whether a registry host is this machine, where plain HTTP is allowed without `--insecure`
/// (after TLS was tried).
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.split(':').next().unwrap_or(host),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why one request failed.
enum Failure {
    Request(reqwest::Error),
    Status {
        code: StatusCode,
        url: String,
        message: String,
        /// How long the registry asked to be left alone (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// The request did not finish within its deadline.
    Deadline(String),
    Final(Unavailable),
}

impl From<reqwest::Error> for Failure {
    fn from(error: reqwest::Error) -> Failure {
        Failure::Request(error)
    }
}

/// The time a transfer of `bytes` may take: `timeout`, plus the bytes at `min_rate`.
pub fn deadline_for(bytes: u64, timeout: Duration, min_rate: u64) -> Duration {
    timeout + Duration::from_secs_f64(bytes as f64 / min_rate.max(1) as f64)
}

/// The pause a `Retry-After` header asks for: delay-seconds, or an HTTP date (a date in the
/// past is no pause); `None` when it is neither.
fn retry_after(response: &reqwest::Response, now: std::time::SystemTime) -> Option<Duration> {
    let text = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    parse_retry_after(text, now)
}

fn parse_retry_after(text: &str, now: std::time::SystemTime) -> Option<Duration> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(text)
        .ok()?;
    let now = jiff::Timestamp::try_from(now).ok()?;
    Some(at.duration_since(now).try_into().unwrap_or(Duration::ZERO))
}

/// A pause of `delay` plus up to half of it again, at random.
fn jittered(delay: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    delay + delay.mul_f64((random % 1000) as f64 / 2000.0)
}

/// Reads at most `limit + 1` bytes of a body: a longer one is cut there, and the caller,
/// seeing more than `limit`, refuses it.
async fn read_limited(response: reqwest::Response, limit: u64) -> Result<Vec<u8>, Failure> {
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = (limit + 1).saturating_sub(body.len() as u64) as usize;
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() as u64 > limit {
            break;
        }
    }
    Ok(body)
}

/// Runs `future` within `deadline`, naming `what` when it does not finish.
async fn within<T>(
    deadline: Duration,
    what: &str,
    future: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(deadline, future).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Deadline(format!(
            "{what} did not arrive within its deadline of {:.0} s",
            deadline.as_secs_f64()
        ))),
    }
}

/// A bearer challenge: where to ask for a token, and for which service.
struct Challenge {
    realm: String,
    service: Option<String>,
}

/// The `realm` and `service` of a `Bearer` WWW-Authenticate header (`None` for another scheme).
fn bearer_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value.to_string()),
            "service" => service = Some(value.to_string()),
            _ => {}
        }
        rest = remainder.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        realm: realm?,
        service,
    })
}

impl Registry {
    /// Sets up a client for the registry of `reference` and authenticates (anonymously,
    /// or with `credentials`), so an unreachable registry or refused credentials are known
    /// before anything is verified.
    pub fn connect(
        reference: &RegistryRef,
        connection: &Connection,
        credentials: Credentials,
        credentials_from: Option<String>,
        warnings: Vec<String>,
        access: Access,
    ) -> Result<Registry> {
        let target = format!("registry {}", reference.host);
        let remote = |message: String| Error::Remote {
            target: target.clone(),
            message,
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connection.timeout)
            .read_timeout(connection.timeout)
            .build()
            .map_err(|e| {
                remote(format!(
                    "cannot set up the HTTP client: {}",
                    error_chain(&e)
                ))
            })?;
        // One network thread receives every transfer; the blobs are hashed on the callers'
        // threads. A second one only moved the body task between the two (more switches, and
        // 10 MiB more resident for a 1 GiB blob).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vouch-oci")
            .enable_all()
            .build()
            .map_err(|e| remote(format!("cannot start the network runtime: {e}")))?;
        let base = |scheme: &str| {
            let host = match reference.host.as_str() {
                "docker.io" => "index.docker.io",
                host => host,
            };
            Url::parse(&format!("{scheme}://{host}"))
                .map_err(|e| remote(format!("not a registry address: {e}")))
        };
        let loopback = is_loopback(&reference.host);
        if connection.insecure && !loopback && credentials != Credentials::Anonymous {
            return Err(remote(format!(
                "credentials from {} go only over TLS, or over plain HTTP to this machine",
                credentials_from
                    .as_deref()
                    .unwrap_or("the Docker configuration")
            ))
            .with_hint(Hint::PlainHttpWithCredentials));
        }
        let mut registry = Registry {
            runtime,
            http,
            base: base(if connection.insecure { "http" } else { "https" })?,
            repository: reference.repository.clone(),
            reference: match (&reference.tag, &reference.digest) {
                (Some(tag), _) => tag.clone(),
                (None, Some(digest)) => digest.prefixed(),
                (None, None) => unreachable!("a registry reference names a tag or a digest"),
            },
            authorization: Default::default(),
            credentials,
            credentials_from,
            retries: connection.retries,
            timeout: connection.timeout,
            min_rate: connection.min_rate,
            warnings,
            notes: Default::default(),
            tls_failure: None,
            refused_anonymous: AtomicBool::new(false),
            actions: match access {
                Access::Pull => "pull",
                Access::PullPush => "pull,push",
            },
            host: reference.host.clone(),
        };
        // A registry on this machine may speak plain HTTP: TLS is tried once, and only a
        // failure to talk TLS at all (not an HTTP answer) falls back to plain HTTP.
        // Any other failure is retried and reported by the call below.
        let mut authorization = None;
        if !connection.insecure && loopback {
            match registry.runtime.block_on(registry.authenticate()) {
                Ok(found) => authorization = Some(found),
                Err(Failure::Request(e)) => {
                    registry.tls_failure = Some(error_chain(&e));
                    registry.base = base("http")?;
                }
                Err(_) => {}
            }
        }
        let authorization = match authorization {
            Some(found) => found,
            None => registry
                .call(|| registry.authenticate())
                .map_err(|failure| {
                    let error = match failure {
                        Unavailable::Missing(m)
                        | Unavailable::Failed(m)
                        | Unavailable::Refused(m) => remote(m),
                        Unavailable::Changed { expected, actual } => {
                            remote(format!("unexpected digest {actual} (expected {expected})"))
                        }
                    };
                    match registry.hint() {
                        Some(hint) => error.with_hint(hint),
                        None => error,
                    }
                })?,
        };
        registry.authorization = std::sync::Mutex::new(authorization);
        Ok(registry)
    }

    /// Asks the registry how to authenticate (`GET /v2/`) and does it: the Authorization
    /// header for its requests, if any.
    async fn authenticate(&self) -> Result<Option<HeaderValue>, Failure> {
        let url = self.url("v2/");
        let what = format!("the answer of {url}");
        let response = within(self.timeout, &what, async {
            Ok(self.http.get(url.clone()).send().await?)
        })
        .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            // Nothing to authenticate, or a failure to report once a document is asked for.
            return Ok(None);
        }
        let header = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        match bearer_challenge(header) {
            Some(challenge) => self.token(&challenge).await.map(Some),
            None => {
                if let Credentials::IdentityToken(_) = self.credentials {
                    self.note(format!(
                        "{} gave an identity token, which only a token service takes, and {} asks for a user name and password",
                        self.credentials_source(),
                        self.base.host_str().unwrap_or_default()
                    ));
                }
                Ok(self.basic())
            }
        }
    }

    /// `Basic` and the credentials, if there are any.
    fn basic(&self) -> Option<HeaderValue> {
        match &self.credentials {
            Credentials::Anonymous | Credentials::IdentityToken(_) => None,
            Credentials::Basic { username, password } => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
                value.set_sensitive(true);
                Some(value)
            }
        }
    }

    /// Fetches a pull token for the repository from the challenge's realm, sending the
    /// credentials there only over TLS (or to this machine over plain HTTP when the registry
    /// itself is reached so).
    async fn token(&self, challenge: &Challenge) -> Result<HeaderValue, Failure> {
        let refuse = |message: String| Failure::Final(Unavailable::Failed(message));
        let realm = Url::parse(&challenge.realm).map_err(|e| {
            refuse(format!(
                "the registry's token realm {} is not a URL: {e}",
                challenge.realm
            ))
        })?;
        let basic = self.basic();
        let identity_token = match &self.credentials {
            Credentials::IdentityToken(token) => Some(token),
            _ => None,
        };
        if basic.is_some() || identity_token.is_some() {
            let plain_to_this_machine = realm.scheme() == "http"
                && self.base.scheme() == "http"
                && realm.host_str().is_some_and(is_loopback);
            if realm.scheme() != "https" && !plain_to_this_machine {
                return Err(refuse(format!(
                    "the registry's token realm {realm} is not HTTPS: the credentials from {} go only over TLS (or over plain HTTP to this machine)",
                    self.credentials_source()
                )));
            }
            if realm.host_str() != self.base.host_str() {
                self.note(format!(
                    "the credentials from {} were sent to {}, the token service the registry {} named",
                    self.credentials_source(),
                    realm.host_str().unwrap_or_default(),
                    self.base.host_str().unwrap_or_default()
                ));
            }
        }
        let scope = format!("repository:{}:{}", self.repository, self.actions);
        let request = if let Some(refresh_token) = identity_token {
            // The OAuth2 refresh-token grant of the distribution token spec, as docker and
            // containers/image send an identity token.
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", refresh_token)
                .append_pair("client_id", "vouch")
                .append_pair("scope", &scope);
            if let Some(service) = &challenge.service {
                form.append_pair("service", service);
            }
            let body = form.finish();
            self.http
                .post(realm.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
        } else {
            let mut token_url = realm.clone();
            {
                let mut query = token_url.query_pairs_mut();
                query.append_pair("scope", &scope);
                if let Some(service) = &challenge.service {
                    query.append_pair("service", service);
                }
            }
            let mut request = self.http.get(token_url);
            if let Some(basic) = basic {
                request = request.header(AUTHORIZATION, basic);
            }
            request
        };
        let what = format!("the token from {realm}");
        let deadline = deadline_for(MAX_TOKEN_BYTES, self.timeout, self.min_rate);
        let body = within(deadline, &what, async {
            let response = request.send().await?;
            let status = response.status();
            if !status.is_success() {
                let retry_after = retry_after(&response, std::time::SystemTime::now());
                let text = read_limited(response, MAX_ERROR_BYTES).await?;
                return Err(Failure::Status {
                    code: status,
                    url: realm.to_string(),
                    message: String::from_utf8_lossy(&text).into_owned(),
                    retry_after,
                });
            }
            read_limited(response, MAX_TOKEN_BYTES).await
        })
        .await?;
        if body.len() as u64 > MAX_TOKEN_BYTES {
            return Err(refuse(format!(
                "the token response of {realm} is more than the {MAX_TOKEN_BYTES} bytes a token may have"
            )));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token = serde_json::from_slice::<Token>(&body)
            .ok()
            .and_then(|t| t.token.or(t.access_token))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refuse(format!("the token response of {realm} holds no token")))?;
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| refuse(format!("the token from {realm} is not a header value")))?;
        value.set_sensitive(true);
        Ok(value)
    }

    fn credentials_source(&self) -> &str {
        self.credentials_from
            .as_deref()
            .unwrap_or("the Docker configuration")
    }

    /// Adds a warning for the report (once).
    fn note(&self, warning: String) {
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if !notes.contains(&warning) {
            notes.push(warning);
        }
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("a path joins a registry URL")
    }

    /// Runs one registry call, retrying what may pass (network errors, timeouts, 5xx,
    /// 429) with a doubling pause, at most `retries` more times.
    fn call<T, F, Fut>(&self, operation: F) -> Result<T, Unavailable>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.call_with_retries(operation)
            .map_err(|failure| match (failure, &self.tls_failure) {
                (Unavailable::Failed(message), Some(tls)) => Unavailable::Failed(format!(
                    "{message} (over plain HTTP, after HTTPS failed: {tls})"
                )),
                (failure, _) => failure,
            })
    }

    fn call_with_retries<T, F, Fut>(&self, operation: F) -> Result<T, Unavailable>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut delay = FIRST_RETRY_DELAY;
        let mut attempt = 1;
        loop {
            match self.runtime.block_on(operation()) {
                Ok(value) => return Ok(value),
                Err(error) => match self.classify(error) {
                    Problem::Transient(_, asked) if attempt <= self.retries => {
                        // The registry's own pause, capped; else the doubling one.
                        let pause = match asked {
                            Some(asked) => asked.min(MAX_RETRY_AFTER).min(self.timeout),
                            None => jittered(delay),
                        };
                        std::thread::sleep(pause);
                        delay *= 2;
                        attempt += 1;
                    }
                    Problem::Transient(message, _) => {
                        let tries = match attempt {
                            1 => "1 attempt".to_string(),
                            n => format!("{n} attempts"),
                        };
                        return Err(Unavailable::Failed(format!(
                            "{message} (gave up after {tries})"
                        )));
                    }
                    Problem::Final(failure) => return Err(failure),
                },
            }
        }
    }

    fn classify(&self, failure: Failure) -> Problem {
        match failure {
            Failure::Request(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                let message = format!("{what}: {}", error_chain(&e));
                if e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() {
                    Problem::Transient(message, None)
                } else {
                    Problem::Final(Unavailable::Failed(message))
                }
            }
            Failure::Status {
                code,
                url,
                message,
                retry_after,
            } => match code.as_u16() {
                404 => Problem::Final(Unavailable::Missing(format!(
                    "the registry does not have it (HTTP 404 at {url})"
                ))),
                401 | 403 => Problem::Final(self.denied(&format!("HTTP {code} at {url}"))),
                429 | 503 => Problem::Transient(
                    format!("HTTP {code} at {url}: {}", message.trim()),
                    retry_after,
                ),
                500.. => {
                    Problem::Transient(format!("HTTP {code} at {url}: {}", message.trim()), None)
                }
                _ => Problem::Final(Unavailable::Failed(format!(
                    "HTTP {code} at {url}: {}",
                    message.trim()
                ))),
            },
            Failure::Deadline(message) => Problem::Final(Unavailable::Failed(format!(
                "{message} (at the minimum rate of {} bytes per second, after the {} s timeout)",
                self.min_rate,
                self.timeout.as_secs()
            ))),
            Failure::Final(unavailable) => Problem::Final(unavailable),
        }
    }

    fn denied(&self, detail: &str) -> Unavailable {
        Unavailable::Failed(match &self.credentials_from {
            Some(source) => format!(
                "the registry refused the credentials from {source} for {}: {detail}",
                self.repository
            ),
            None => {
                self.refused_anonymous.store(true, Ordering::Relaxed);
                format!(
                    "the registry refused anonymous access to {} ({detail}); give credentials, or log in so that Docker's config.json holds them",
                    self.repository
                )
            }
        })
    }

    /// A GET of `path` at the registry, with its credentials; the status checked. A bearer
    /// token the registry refuses (it expired) is fetched again, once.
    async fn get(&self, path: &str, accept: &str) -> Result<reqwest::Response, Failure> {
        let accept = HeaderValue::from_str(accept).expect("media types are header values");
        self.send(
            reqwest::Method::GET,
            self.url(path),
            Some((ACCEPT, accept)),
            None,
        )
        .await
    }

    /// A request to `url` with one extra header and maybe a body; the status checked. The
    /// credentials go only to the registry itself (an upload location elsewhere gets none);
    /// a bearer token the registry refuses (it expired) is fetched again, once.
    async fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        header: Option<(reqwest::header::HeaderName, HeaderValue)>,
        body: Option<bytes::Bytes>,
    ) -> Result<reqwest::Response, Failure> {
        let same_origin = url.origin() == self.base.origin();
        let send = |authorization: Option<HeaderValue>| {
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some((name, value)) = &header {
                request = request.header(name.clone(), value.clone());
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            match authorization.filter(|_| same_origin) {
                Some(value) => request.header(AUTHORIZATION, value),
                None => request,
            }
            .send()
        };
        let current = self.current_authorization();
        let mut response = send(current.clone()).await?;
        let is_bearer = current
            .as_ref()
            .is_some_and(|v| v.as_bytes().starts_with(b"Bearer "));
        if response.status() == StatusCode::UNAUTHORIZED && is_bearer && same_origin {
            let renewed = self.authenticate().await?;
            *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = renewed.clone();
            response = send(renewed).await?;
        }
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry_after(&response, std::time::SystemTime::now());
        let text = read_limited(response, MAX_ERROR_BYTES).await?;
        Err(Failure::Status {
            code: status,
            url: url.to_string(),
            message: String::from_utf8_lossy(&text).into_owned(),
            retry_after,
        })
    }

    fn current_authorization(&self) -> Option<HeaderValue> {
        self.authorization
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The manifest or index `reference` (a tag or a digest) names, bounded in size and
    /// time; bytes that do not hash to the digest asked for, or to the digest the registry
    /// says it served (`Docker-Content-Digest`), are [`Unavailable::Changed`].
    ///
    /// Also returns the media type of the response's Content-Type (its parameters left
    /// out) when it is one of the manifest and index types asked for: it stands for the
    /// document's own `mediaType` when it has none.
    fn pull_manifest(&self, reference: &str) -> Result<(Vec<u8>, Option<String>), Unavailable> {
        let path = format!("v2/{}/manifests/{reference}", self.repository);
        let accept = MANIFEST_MEDIA_TYPES.join(", ");
        let what = format!("the manifest {reference}");
        let deadline = deadline_for(MAX_DOCUMENT_BYTES, self.timeout, self.min_rate);
        let (bytes, served_as, content_type) = self.call(|| {
            within(deadline, &what, async {
                let response = self.get(&path, &accept).await?;
                let header = |name| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_string)
                };
                let served_as = header(DOCKER_CONTENT_DIGEST);
                // Only a manifest or index type it was asked for is a claim about the
                // document (not `application/json` or `application/octet-stream`).
                let content_type = header(reqwest::header::CONTENT_TYPE.as_str())
                    .as_deref()
                    .map(media_type_of)
                    .filter(|m| MANIFEST_MEDIA_TYPES.contains(&m.as_str()));
                Ok((
                    read_limited(response, MAX_DOCUMENT_BYTES).await?,
                    served_as,
                    content_type,
                ))
            })
        })?;
        let bytes = within_document_limit(
            bytes,
            &format!("the manifest {reference} the registry served"),
        )?;
        let asked = reference.contains(':').then_some(reference);
        for expected in asked.into_iter().chain(served_as.as_deref()) {
            let digest = parse_digest(expected).map_err(|e| {
                Unavailable::Failed(format!(
                    "the registry served the manifest {reference} as {e}"
                ))
            })?;
            let actual = digest.algorithm.digest(&bytes);
            if actual != digest {
                return Err(Unavailable::Changed {
                    expected: digest.prefixed(),
                    actual: actual.prefixed(),
                });
            }
        }
        Ok((bytes, content_type))
    }
}

/// The media type of a Content-Type value: `type/subtype`, its parameters left out.
fn media_type_of(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

enum Problem {
    /// Worth another try, after the pause the registry asked for, if it did.
    Transient(String, Option<Duration>),
    Final(Unavailable),
}

impl Store for Registry {
    fn root(&self) -> Result<Fetched, Unavailable> {
        // A digest in the reference is already the pin the caller checks.
        // Served as the Content-Type says: a document without a mediaType takes it, and
        // one whose mediaType says otherwise is refused when it is parsed.
        let (bytes, media_type) = self.pull_manifest(&self.reference)?;
        Ok(Fetched {
            bytes,
            media_type,
            recorded: None,
        })
    }

    fn manifest(&self, descriptor: &Descriptor) -> Result<Vec<u8>, Unavailable> {
        self.pull_manifest(&descriptor.digest.prefixed())
            .map(|(bytes, _)| bytes)
    }

    fn blob(&self, descriptor: &Descriptor) -> Result<Box<dyn BufRead + Send + '_>, Unavailable> {
        // Only the registry's own blob URL: a descriptor's foreign `urls` are never followed,
        // and reqwest drops the credentials on a redirect to another host, port or scheme.
        let digest = descriptor.digest.prefixed();
        let path = format!("v2/{}/blobs/{digest}", self.repository);
        let deadline = deadline_for(descriptor.size, self.timeout, self.min_rate);
        let started = Instant::now();
        let what = format!("the blob {digest}");
        let response = self.call(|| within(deadline, &what, self.get(&path, "*/*")))?;
        let late = format!(
            "the blob {digest} ({} bytes) did not arrive within its deadline of {:.0} s (the {} s timeout plus its size at the minimum rate of {} bytes per second)",
            descriptor.size,
            deadline.as_secs_f64(),
            self.timeout.as_secs(),
            self.min_rate
        );
        Ok(Box::new(BodyReader::start(
            &self.runtime,
            response,
            started + deadline,
            late,
        )))
    }

    fn tagged(&self, tag: &str) -> Result<Option<Vec<u8>>, Unavailable> {
        match self.pull_manifest(tag) {
            Ok((bytes, _)) => Ok(Some(bytes)),
            Err(Unavailable::Missing(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn referrers(&self, subject: &Digest) -> Result<Option<Vec<Descriptor>>, Unavailable> {
        let digest = subject.prefixed();
        let path = format!("v2/{}/referrers/{digest}", self.repository);
        let what = format!("the referrers of {digest}");
        let deadline = deadline_for(MAX_DOCUMENT_BYTES, self.timeout, self.min_rate);
        let bytes = match self.call(|| {
            within(deadline, &what, async {
                let response = self.get(&path, OCI_INDEX).await?;
                read_limited(response, MAX_DOCUMENT_BYTES).await
            })
        }) {
            Ok(bytes) => bytes,
            // A registry without the API (docker-registry 2.8) has no such route.
            Err(Unavailable::Missing(_)) => return Ok(None),
            Err(other) => return Err(other),
        };
        let bytes = within_document_limit(bytes, &format!("the referrers list of {digest}"))?;
        match Document::parse(&bytes, Some(OCI_INDEX)) {
            Ok(Document::Index(index)) => Ok(Some(index.manifests)),
            Ok(Document::Manifest(_)) => Err(Unavailable::Refused(format!(
                "the registry served a manifest, not an index, as the referrers of {digest}"
            ))),
            Err(e) => Err(Unavailable::Refused(format!(
                "the referrers list of {digest} the registry served: {e}"
            ))),
        }
    }

    fn attempts(&self) -> u32 {
        self.retries + 1
    }

    fn hint(&self) -> Option<Hint> {
        self.refused_anonymous
            .load(Ordering::Relaxed)
            .then_some(Hint::GiveCredentials)
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = self.warnings.clone();
        warnings.extend(
            self.notes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        warnings
    }
}

/// Writing, as the distribution API has it: a blob is uploaded in one `POST` of
/// `/v2/NAME/blobs/uploads/` and one `PUT` of the location it answers (`?digest=`), unless a
/// `HEAD` finds it already there; a manifest is a `PUT` of `/v2/NAME/manifests/TAG`.
impl Sink for Registry {
    fn has_blob(&self, digest: &Digest) -> Result<bool, Unavailable> {
        let url = self.url(&format!(
            "v2/{}/blobs/{}",
            self.repository,
            digest.prefixed()
        ));
        let what = format!("the answer about the blob {digest}");
        match self.call(|| {
            within(self.timeout, &what, async {
                self.send(reqwest::Method::HEAD, url.clone(), None, None)
                    .await
                    .map(|_| ())
            })
        }) {
            Ok(()) => Ok(true),
            Err(Unavailable::Missing(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Unavailable> {
        let start = self.url(&format!("v2/{}/blobs/uploads/", self.repository));
        let body = bytes::Bytes::copy_from_slice(bytes);
        let deadline = deadline_for(bytes.len() as u64, self.timeout, self.min_rate);
        let what = format!("the upload of the blob {digest}");
        self.call(|| {
            within(deadline, &what, async {
                let started = self
                    .send(reqwest::Method::POST, start.clone(), None, Some(bytes::Bytes::new()))
                    .await?;
                let location = started
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|h| h.to_str().ok())
                    .ok_or_else(|| {
                        Failure::Final(Unavailable::Failed(format!(
                            "the registry started an upload at {start} but named no Location to send it to"
                        )))
                    })?;
                let mut url = self.base.join(location).map_err(|e| {
                    Failure::Final(Unavailable::Failed(format!(
                        "the registry's upload location {location} is not a URL: {e}"
                    )))
                })?;
                url.query_pairs_mut()
                    .append_pair("digest", &digest.prefixed());
                let octets = HeaderValue::from_static("application/octet-stream");
                self.send(
                    reqwest::Method::PUT,
                    url,
                    Some((reqwest::header::CONTENT_TYPE, octets)),
                    Some(body.clone()),
                )
                .await
                .map(|_| ())
            })
        })
    }

    fn put_manifest(
        &self,
        tag: Option<&str>,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), Unavailable> {
        let digest = Algorithm::Sha256.digest(bytes).prefixed();
        let tag = tag.unwrap_or(&digest);
        let url = self.url(&format!("v2/{}/manifests/{tag}", self.repository));
        let body = bytes::Bytes::copy_from_slice(bytes);
        let content_type = HeaderValue::from_str(media_type)
            .map_err(|_| Unavailable::Failed(format!("{media_type} is not a header value")))?;
        let deadline = deadline_for(bytes.len() as u64, self.timeout, self.min_rate);
        let what = format!("the answer to the manifest {tag}");
        let stored_as = self.call(|| {
            within(deadline, &what, async {
                let response = self
                    .send(
                        reqwest::Method::PUT,
                        url.clone(),
                        Some((reqwest::header::CONTENT_TYPE, content_type.clone())),
                        Some(body.clone()),
                    )
                    .await?;
                Ok(response
                    .headers()
                    .get(DOCKER_CONTENT_DIGEST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string))
            })
        })?;
        // A registry that says it stored other bytes did not store these.
        if let Some(stored_as) = stored_as {
            let sent = Algorithm::Sha256.digest(bytes);
            if stored_as != sent.prefixed() {
                return Err(Unavailable::Changed {
                    expected: sent.prefixed(),
                    actual: stored_as,
                });
            }
        }
        Ok(())
    }

    fn location(&self, tag: &str) -> String {
        format!("{}/{}:{tag}", self.host, self.repository)
    }
}

/// How many chunks of a body the network runtime reads ahead of the reader: the transfer
/// goes on while the reader hashes, and memory stays bounded (hyper's chunks are at most a
/// few hundred KiB).
const READ_AHEAD_CHUNKS: usize = 32;

/// What the network runtime hands the reader: a chunk, the end of the body, or why the
/// transfer failed.
type Handed = io::Result<Option<bytes::Bytes>>;

/// An HTTP body as a blocking reader, read ahead by a task on the network runtime that gives
/// up at the deadline.
struct BodyReader {
    chunks: tokio::sync::mpsc::Receiver<Handed>,
    chunk: bytes::Bytes,
    done: bool,
    task: tokio::task::JoinHandle<()>,
}

impl BodyReader {
    fn start(
        runtime: &tokio::runtime::Runtime,
        mut response: reqwest::Response,
        deadline: Instant,
        late: String,
    ) -> BodyReader {
        let (sender, chunks) = tokio::sync::mpsc::channel::<Handed>(READ_AHEAD_CHUNKS);
        let task = runtime.spawn(async move {
            let transfer = async {
                loop {
                    let handed = match response.chunk().await {
                        Ok(Some(chunk)) => Ok(Some(chunk)),
                        Ok(None) => Ok(None),
                        Err(e) => Err(io::Error::other(error_chain(&e))),
                    };
                    let last = !matches!(handed, Ok(Some(_)));
                    // A send fails only when the reader is gone: nothing more to do.
                    if sender.send(handed).await.is_err() || last {
                        return;
                    }
                }
            };
            if tokio::time::timeout_at(deadline.into(), transfer)
                .await
                .is_err()
            {
                let _ = sender
                    .send(Err(io::Error::new(io::ErrorKind::TimedOut, late)))
                    .await;
            }
        });
        BodyReader {
            chunks,
            chunk: bytes::Bytes::new(),
            done: false,
            task,
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let chunk = self.fill_buf()?;
        let n = buf.len().min(chunk.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The chunks are handed on as the network delivered them, not copied.
impl BufRead for BodyReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.chunk.is_empty() && !self.done {
            match self.chunks.blocking_recv() {
                Some(Ok(Some(chunk))) => self.chunk = chunk,
                Some(Ok(None)) => self.done = true,
                Some(Err(e)) => return Err(e),
                // The task ended without saying the body was complete: never a clean end.
                None => {
                    return Err(io::Error::other(
                        "the transfer stopped before the body ended",
                    ))
                }
            }
        }
        Ok(&self.chunk)
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.chunk.len());
        bytes::Buf::advance(&mut self.chunk, amount);
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::document::Document;

    #[test]
    fn a_manifest_without_a_media_type_takes_the_content_type_it_was_served_as() {
        let served = media_type_of("application/vnd.oci.image.manifest.v1+json; charset=utf-8");
        assert_eq!(served, "application/vnd.oci.image.manifest.v1+json");
        let config = r#"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}"#;
        let untyped = format!(r#"{{"schemaVersion":2,"config":{config},"layers":[]}}"#);
        assert!(matches!(
            Document::parse(untyped.as_bytes(), Some(&served)),
            Ok(Document::Manifest(_))
        ));
        // A document whose mediaType contradicts the Content-Type is refused.
        let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let refused = Document::parse(index.as_bytes(), Some(&served)).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("but it was referred to as application/vnd.oci.image.manifest.v1+json"),
            "{refused}"
        );
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "registry.example",
            "10.0.0.1:5000",
            "[2001:db8::1]:443",
            "localhost.example",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn bearer_challenges_are_parsed_and_other_schemes_are_not() {
        let challenge = bearer_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#,
        )
        .unwrap();
        assert_eq!(challenge.realm, "https://auth.example/token");
        assert_eq!(challenge.service.as_deref(), Some("registry.example"));
        let bare = bearer_challenge("bearer realm=https://auth.example/t, service=s").unwrap();
        assert_eq!(bare.realm, "https://auth.example/t");
        assert_eq!(bare.service.as_deref(), Some("s"));
        assert!(bearer_challenge(r#"Basic realm="registry""#).is_none());
        assert!(bearer_challenge(r#"Bearer service="no realm""#).is_none());
        assert!(bearer_challenge(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date_and_jitter_stays_within_half() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        let delay = Duration::from_millis(400);
        for _ in 0..100 {
            let pause = jittered(delay);
            assert!(pause >= delay && pause <= delay + delay / 2, "{pause:?}");
        }
    }

    #[test]
    fn a_deadline_is_the_timeout_plus_the_size_at_the_minimum_rate() {
        let timeout = Duration::from_secs(30);
        assert_eq!(deadline_for(0, timeout, 1 << 20), timeout);
        assert_eq!(
            deadline_for(10 << 20, timeout, 1 << 20),
            Duration::from_secs(40)
        );
        assert_eq!(deadline_for(5, timeout, 0), Duration::from_secs(35));
    }
}
