//! A registry reached through `oci-client` (the distribution API, the bearer-token flow,
//! TLS by rustls, trusting the system's roots or those `SSL_CERT_FILE` names).
//!
//! oci-client is async; tokio stays inside this file. The registry owns a small runtime,
//! and every call blocks on it, so the rest of vouch stays synchronous: a blob is handed
//! out as a plain [`Read`] that pulls the HTTP body chunk by chunk.

use std::future::Future;
use std::io::{self, Read};
use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol, LayerDescriptor, SizedStream};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};

use super::auth::Credentials;
use super::document::{Descriptor, MANIFEST_MEDIA_TYPES};
use super::reference::RegistryRef;
use super::store::{within_document_limit, Fetched, Store, Unavailable};
use super::Connection;
use crate::error::{error_chain, Error, Result};

/// The first pause between attempts; it doubles after each failure.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);

pub struct Registry {
    runtime: tokio::runtime::Runtime,
    client: oci_client::Client,
    image: Reference,
    auth: RegistryAuth,
    /// Where the credentials came from, for messages (`--username`, a config.json).
    credentials_from: Option<String>,
    retries: u32,
    warnings: Vec<String>,
    /// Why TLS failed, when a registry on this machine is reached over plain HTTP instead.
    tls_failure: Option<String>,
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
    ) -> Result<Registry> {
        let target = format!("registry {}", reference.host);
        let remote = |message: String| Error::Remote {
            target: target.clone(),
            message,
        };
        let client = |protocol| {
            oci_client::Client::try_from(ClientConfig {
                protocol,
                platform_resolver: None,
                read_timeout: Some(connection.timeout),
                connect_timeout: Some(connection.timeout),
                user_agent: concat!("vouch/", env!("CARGO_PKG_VERSION")),
                ..ClientConfig::default()
            })
            .map_err(|e| {
                remote(format!(
                    "cannot set up the HTTP client: {}",
                    error_chain(&e)
                ))
            })
        };
        let client_first = client(if connection.insecure {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vouch-oci")
            .enable_all()
            .build()
            .map_err(|e| remote(format!("cannot start the network runtime: {e}")))?;
        let image = match (&reference.tag, &reference.digest) {
            (Some(tag), _) => Reference::with_tag(
                reference.host.clone(),
                reference.repository.clone(),
                tag.clone(),
            ),
            (None, Some(digest)) => Reference::with_digest(
                reference.host.clone(),
                reference.repository.clone(),
                digest.prefixed(),
            ),
            (None, None) => unreachable!("a registry reference names a tag or a digest"),
        };
        let auth = match credentials {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => RegistryAuth::Basic(username, password),
        };
        let mut registry = Registry {
            runtime,
            client: client_first,
            image,
            auth,
            credentials_from,
            retries: connection.retries,
            warnings,
            tls_failure: None,
        };
        // A registry on this machine may speak plain HTTP: TLS is tried once, and only a
        // failure to talk TLS at all (not an HTTP answer) falls back to plain HTTP.
        // A probe that succeeded has authenticated already; any other failure is retried
        // and reported by the call below.
        let mut authenticated = false;
        if !connection.insecure && is_loopback(&reference.host) {
            let probe = registry.runtime.block_on(registry.client.auth(
                &registry.image,
                &registry.auth,
                RegistryOperation::Pull,
            ));
            match probe {
                Ok(_) => authenticated = true,
                Err(OciDistributionError::RequestError(e)) => {
                    registry.tls_failure = Some(error_chain(&e));
                    registry.client = client(ClientProtocol::Http)?;
                }
                Err(_) => {}
            }
        }
        if authenticated {
            return Ok(registry);
        }
        registry
            .call(|| {
                registry
                    .client
                    .auth(&registry.image, &registry.auth, RegistryOperation::Pull)
            })
            .map_err(|failure| match failure {
                Unavailable::Missing(m) | Unavailable::Failed(m) | Unavailable::Refused(m) => {
                    remote(m)
                }
                Unavailable::Changed { expected, actual } => {
                    remote(format!("unexpected digest {actual} (expected {expected})"))
                }
            })?;
        Ok(registry)
    }

    /// Runs one registry call, retrying what may pass (network errors, timeouts, 5xx,
    /// 429) with a doubling pause, at most `retries` more times.
    fn call<T, F, Fut>(&self, operation: F) -> Result<T, Unavailable>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
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
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        let mut delay = FIRST_RETRY_DELAY;
        let mut attempt = 1;
        loop {
            match self.runtime.block_on(operation()) {
                Ok(value) => return Ok(value),
                Err(error) => match self.classify(&error) {
                    Problem::Transient(_) if attempt <= self.retries => {
                        std::thread::sleep(delay);
                        delay *= 2;
                        attempt += 1;
                    }
                    Problem::Transient(message) => {
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

    fn classify(&self, error: &OciDistributionError) -> Problem {
        use OciDistributionError as E;
        match error {
            E::RequestError(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                let message = format!("{what}: {}", error_chain(e));
                if e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() {
                    Problem::Transient(message)
                } else {
                    Problem::Final(Unavailable::Failed(message))
                }
            }
            E::ServerError { code, url, message } => match code {
                404 => Problem::Final(Unavailable::Missing(format!(
                    "the registry does not have it (HTTP 404 at {url})"
                ))),
                401 | 403 => Problem::Final(self.denied(&format!("HTTP {code} at {url}"))),
                429 | 500.. => {
                    Problem::Transient(format!("HTTP {code} at {url}: {}", message.trim()))
                }
                _ => Problem::Final(Unavailable::Failed(format!(
                    "HTTP {code} at {url}: {}",
                    message.trim()
                ))),
            },
            E::RegistryError { envelope, url } => {
                let message = envelope
                    .errors
                    .iter()
                    .map(|e| format!("{:?}: {}", e.code, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let any = |wanted: &[OciErrorCode]| codes.iter().any(|c| wanted.contains(c));
                if any(&[
                    OciErrorCode::BlobUnknown,
                    OciErrorCode::ManifestUnknown,
                    OciErrorCode::ManifestBlobUnknown,
                    OciErrorCode::NameUnknown,
                    OciErrorCode::NotFound,
                ]) {
                    Problem::Final(Unavailable::Missing(format!(
                        "the registry does not have it ({message})"
                    )))
                } else if any(&[OciErrorCode::Unauthorized, OciErrorCode::Denied]) {
                    Problem::Final(self.denied(&message))
                } else if any(&[OciErrorCode::Toomanyrequests]) {
                    Problem::Transient(message)
                } else {
                    Problem::Final(Unavailable::Failed(format!("{message} ({url})")))
                }
            }
            E::UnauthorizedError { url } => {
                Problem::Final(self.denied(&format!("HTTP 401 at {url}")))
            }
            E::AuthenticationFailure(reason) => Problem::Final(self.denied(reason.trim())),
            E::DigestError(oci_client::errors::DigestError::VerificationError {
                expected,
                actual,
            }) => Problem::Final(Unavailable::Changed {
                expected: expected.clone(),
                actual: actual.clone(),
            }),
            other => Problem::Final(Unavailable::Failed(error_chain(other))),
        }
    }

    fn denied(&self, detail: &str) -> Unavailable {
        Unavailable::Failed(match &self.credentials_from {
            Some(source) => format!(
                "the registry refused the credentials from {source} for {}: {detail}",
                self.image.repository()
            ),
            None => format!(
                "the registry refused anonymous access to {} ({detail}); give --username with --password-stdin, or log in so that Docker's config.json holds credentials",
                self.image.repository()
            ),
        })
    }

    fn by_digest(&self, digest: String) -> Reference {
        Reference::with_digest(
            self.image.registry().to_string(),
            self.image.repository().to_string(),
            digest,
        )
    }

    fn pull_manifest(&self, reference: &Reference) -> Result<Vec<u8>, Unavailable> {
        let (bytes, _) = self.call(|| {
            self.client
                .pull_manifest_raw(reference, &self.auth, &MANIFEST_MEDIA_TYPES)
        })?;
        within_document_limit(bytes.to_vec(), "the manifest the registry served")
    }
}

enum Problem {
    /// Worth another try.
    Transient(String),
    Final(Unavailable),
}

impl Store for Registry {
    fn root(&self) -> Result<Fetched, Unavailable> {
        // A digest in the reference is already the pin the caller checks.
        let bytes = self.pull_manifest(&self.image)?;
        Ok(Fetched {
            bytes,
            media_type: None,
            recorded: None,
        })
    }

    fn manifest(&self, descriptor: &Descriptor) -> Result<Vec<u8>, Unavailable> {
        self.pull_manifest(&self.by_digest(descriptor.digest.prefixed()))
    }

    fn blob(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + Send + '_>, Unavailable> {
        let digest = descriptor.digest.prefixed();
        // No `urls`: a descriptor's foreign URLs are never followed.
        let layer = LayerDescriptor {
            digest: &digest,
            urls: &None,
        };
        let stream = self.call(|| self.client.pull_blob_stream(&self.image, &layer))?;
        Ok(Box::new(BodyReader {
            runtime: &self.runtime,
            stream,
            chunk: bytes::Bytes::new(),
            done: false,
        }))
    }

    fn attempts(&self) -> u32 {
        self.retries + 1
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

/// An HTTP body as a blocking reader.
struct BodyReader<'a> {
    runtime: &'a tokio::runtime::Runtime,
    stream: SizedStream,
    chunk: bytes::Bytes,
    /// The body has ended; the stream is not polled again.
    done: bool,
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.runtime.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.chunk = chunk,
                // oci-client checks the digest itself at the end of the body; vouch has
                // computed its own from the same bytes and reports the difference as a verdict.
                Some(Err(e)) if is_digest_mismatch(&e) => self.done = true,
                Some(Err(e)) => return Err(io::Error::new(e.kind(), error_chain(&e))),
                None => self.done = true,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

fn is_digest_mismatch(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<oci_client::errors::DigestError>())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
