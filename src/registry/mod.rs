//! A model registry that speaks MLflow's REST API: MLflow's own tracking server, and Azure ML
//! workspaces (whose `azureml://` tracking URIs map to an HTTPS endpoint of the same API).
//!
//! reqwest is async; as in `oci::registry`, tokio stays inside this file: the client owns a
//! small runtime and every call blocks on it. Every body vouch reads is read up to a limit
//! and one byte more, never buffered without bound, and every request has a deadline.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Tag names vouch writes on a model version.
pub mod tags {
    /// Where the approval's bytes are stored (an `mlflow-artifacts:/` URI).
    pub const APPROVAL_URI: &str = "vouch.approval_uri";
    /// `manifest` or `signature`.
    pub const APPROVAL_KIND: &str = "vouch.approval_kind";
    /// `sha256:HEX` of the stored approval's bytes.
    pub const APPROVAL_SHA256: &str = "vouch.approval_sha256";
    /// The OMS root digest of the approved model.
    pub const ROOT_DIGEST: &str = "vouch.root_digest";
    /// The manifest digest: the pin that binds every file's name and boundaries.
    pub const MANIFEST_DIGEST: &str = "vouch.manifest_digest";
    /// When `vouch promote` last checked this version (RFC 3339, UTC).
    pub const VERIFIED_AT: &str = "vouch.verified_at";
    /// What that check found: `verified`, or `failed: WHY`.
    pub const RESULT: &str = "vouch.result";
    /// The vouch version that made the check.
    pub const VERSION: &str = "vouch.version";
}

/// The most a JSON answer or a stored approval may hold.
const MAX_BODY_BYTES: u64 = 64 << 20;

/// The deadline of one request.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The slowest a streamed file may arrive, past [`TIMEOUT`]: 1 MiB/s, as for OCI blobs.
const MIN_RATE: u64 = 1 << 20;

/// The most files and directories a model's listing may name, and how deep it may go.
const MAX_LISTED: usize = 100_000;
const MAX_LISTED_DEPTH: usize = 64;

/// How long `bytes` take at [`MIN_RATE`].
fn transfer_time(bytes: u64) -> Duration {
    Duration::from_secs_f64(bytes as f64 / MIN_RATE as f64)
}

/// A model version named the way MLflow names it: `models:/NAME/VERSION` or
/// `models:/NAME@ALIAS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelUri {
    pub name: String,
    pub target: Target,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Version(String),
    Alias(String),
}

impl ModelUri {
    pub fn parse(text: &str) -> Result<ModelUri> {
        let bad = |why: &str| {
            Error::Usage(format!(
                "{text}: {why} (expected models:/NAME/VERSION or models:/NAME@ALIAS)"
            ))
        };
        let rest = text
            .strip_prefix("models:/")
            .ok_or_else(|| bad("not a models:/ URI"))?;
        if let Some((name, alias)) = rest.rsplit_once('@') {
            if name.is_empty() || alias.is_empty() || alias.contains('/') {
                return Err(bad("an empty name or alias"));
            }
            return Ok(ModelUri {
                name: name.to_string(),
                target: Target::Alias(alias.to_string()),
            });
        }
        let (name, version) = rest.rsplit_once('/').ok_or_else(|| bad("no version"))?;
        if name.is_empty() || version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the version is not a number"));
        }
        Ok(ModelUri {
            name: name.to_string(),
            target: Target::Version(version.to_string()),
        })
    }
}

impl fmt::Display for ModelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Version(v) => write!(f, "models:/{}/{v}", self.name),
            Target::Alias(a) => write!(f, "models:/{}@{a}", self.name),
        }
    }
}

/// The HTTP(S) endpoint of a tracking URI. `azureml://HOST/PATH` maps to `https://HOST/PATH`,
/// as Azure's MLflow plugin maps it (the workspace's MLflow endpoint, e.g.
/// `azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/S/resourceGroups/G/providers/Microsoft.MachineLearningServices/workspaces/W`).
pub fn tracking_endpoint(uri: &str) -> Result<Url> {
    let bad = |why: String| Error::Usage(format!("tracking URI {uri}: {why}"));
    let mapped = match uri.strip_prefix("azureml://") {
        Some(rest) => format!("https://{rest}"),
        None => uri.to_string(),
    };
    let mut url = Url::parse(&mapped).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(
            "vouch reaches a tracking server over http(s):// or azureml://".to_string(),
        ));
    }
    // Endpoints are joined below the path: keep one trailing slash.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    Ok(url)
}

/// How requests are authorized, from MLflow's environment variables.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    #[default]
    None,
    /// `MLFLOW_TRACKING_TOKEN` (on Azure ML, an Entra ID access token).
    Bearer(String),
    /// `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD`.
    Basic(String, String),
}

impl Auth {
    pub fn from_env() -> Auth {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(token) = var("MLFLOW_TRACKING_TOKEN") {
            return Auth::Bearer(token);
        }
        match (
            var("MLFLOW_TRACKING_USERNAME"),
            var("MLFLOW_TRACKING_PASSWORD"),
        ) {
            (Some(user), Some(password)) => Auth::Basic(user, password),
            _ => Auth::None,
        }
    }

    fn header(&self) -> Option<HeaderValue> {
        let text = match self {
            Auth::None => return None,
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::Basic(user, password) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
        };
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// A model version as the registry describes it.
#[derive(Clone, Debug)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    /// Where the version's files are (`mlflow-artifacts:/...`, `models:/m-...`, a path).
    pub source: String,
    pub storage_location: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub aliases: Vec<String>,
}

impl ModelVersion {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// `models:/NAME/VERSION`.
    pub fn uri(&self) -> String {
        format!("models:/{}/{}", self.name, self.version)
    }
}

#[derive(Deserialize)]
struct WireTag {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct WireVersion {
    name: String,
    version: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    storage_location: Option<String>,
    #[serde(default)]
    tags: Vec<WireTag>,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
struct VersionAnswer {
    model_version: WireVersion,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct FileInfo {
    path: String,
    #[serde(default)]
    is_dir: bool,
    /// MLflow writes its int64 fields as numbers; proto3's JSON mapping writes them as strings.
    #[serde(default)]
    file_size: Option<WireSize>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireSize {
    Number(u64),
    Text(String),
}

impl WireSize {
    fn bytes(&self) -> Option<u64> {
        match self {
            WireSize::Number(n) => Some(*n),
            WireSize::Text(text) => text.parse().ok(),
        }
    }
}

/// A file the artifact store lists: its path below the listed directory, and its size when
/// the store gives one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub size: Option<u64>,
}

#[derive(Deserialize)]
struct ListAnswer {
    #[serde(default)]
    files: Vec<FileInfo>,
}

/// A client of one tracking server.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: Url,
    authorization: Option<HeaderValue>,
}

impl Client {
    /// A client of the tracking server `uri` names, or `MLFLOW_TRACKING_URI` when it is
    /// `None`, with credentials from MLflow's environment variables.
    pub fn connect(uri: Option<&str>) -> Result<Client> {
        let uri = match uri {
            Some(uri) => uri.to_string(),
            None => std::env::var("MLFLOW_TRACKING_URI")
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::Usage(
                        "no tracking server: give --tracking-uri or set MLFLOW_TRACKING_URI"
                            .to_string(),
                    )
                })?,
        };
        Client::new(tracking_endpoint(&uri)?, Auth::from_env())
    }

    pub fn new(base: Url, auth: Auth) -> Result<Client> {
        let remote = |message: String| Error::Remote {
            target: base.to_string(),
            message,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| remote(format!("cannot start the HTTP runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| remote(format!("cannot make an HTTP client: {e}")))?;
        if auth.header().is_some() && base.scheme() == "http" && !is_loopback(&base) {
            return Err(Error::Usage(format!(
                "{base}: credentials go only over https (or plain http to this machine)"
            )));
        }
        Ok(Client {
            runtime,
            http,
            authorization: auth.header(),
            base,
        })
    }

    pub fn endpoint(&self) -> &Url {
        &self.base
    }

    fn remote(&self, message: String) -> Error {
        Error::Remote {
            target: self.base.to_string(),
            message,
        }
    }

    /// One request: the status and the body (up to the limit; a longer body is refused).
    fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| self.remote(format!("bad endpoint {path}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self.http.request(method, url.clone());
        if let Some(value) = &self.authorization {
            request = request.header(AUTHORIZATION, value.clone());
        }
        if let Some((bytes, content_type)) = body {
            request = request.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let work = async {
            let mut response = request.send().await?;
            let status = response.status();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > MAX_BODY_BYTES {
                    break;
                }
            }
            Ok::<_, reqwest::Error>((status, body))
        };
        let (status, body) = self
            .runtime
            .block_on(async { tokio::time::timeout(TIMEOUT, work).await })
            .map_err(|_| self.remote(format!("{url}: no answer within {TIMEOUT:?}")))?
            .map_err(|e| self.remote(format!("cannot reach the tracking server: {}", chain(&e))))?;
        if body.len() as u64 > MAX_BODY_BYTES {
            return Err(self.remote(format!("{url}: the answer is over {MAX_BODY_BYTES} bytes")));
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.remote(format!(
                "the tracking server refused the credentials ({status}){}",
                match self.authorization {
                    None => "; set MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/_PASSWORD",
                    Some(_) => "",
                }
            )));
        }
        Ok((status, body))
    }

    /// A JSON call of the MLflow API; `what` names the thing asked for, so that an unknown
    /// one is a usage error (exit 2) naming it.
    fn call<T: for<'de> Deserialize<'de>>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
        what: &str,
    ) -> Result<T> {
        let body = body.map(|v| (v.to_string().into_bytes(), "application/json"));
        let (status, bytes) = self.request(method, path, query, body)?;
        if !status.is_success() {
            let error: Option<WireError> = serde_json::from_slice(&bytes).ok();
            let (code, message) = match &error {
                Some(e) => (e.error_code.as_str(), e.message.as_str()),
                None => ("", ""),
            };
            if status == StatusCode::NOT_FOUND
                || code == "RESOURCE_DOES_NOT_EXIST"
                || (code == "INVALID_PARAMETER_VALUE" && message.contains("not found"))
            {
                return Err(Error::Usage(format!(
                    "{what}: not in the registry at {} ({})",
                    self.base,
                    if message.is_empty() {
                        status.as_str()
                    } else {
                        message
                    }
                )));
            }
            return Err(self.remote(format!(
                "{path}: {status} {}",
                if message.is_empty() {
                    String::from_utf8_lossy(&bytes[..bytes.len().min(400)]).into_owned()
                } else {
                    format!("{code}: {message}")
                }
            )));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| self.remote(format!("{path}: not the answer MLflow gives: {e}")))
    }

    /// The version a `models:/` URI names, an alias resolved.
    pub fn resolve(&self, uri: &ModelUri) -> Result<ModelVersion> {
        let what = uri.to_string();
        let answer: VersionAnswer = match &uri.target {
            Target::Version(version) => self.call(
                Method::GET,
                "api/2.0/mlflow/model-versions/get",
                &[("name", &uri.name), ("version", version)],
                None,
                &what,
            )?,
            Target::Alias(alias) => self.call(
                Method::GET,
                "api/2.0/mlflow/registered-models/alias",
                &[("name", &uri.name), ("alias", alias)],
                None,
                &what,
            )?,
        };
        let wire = answer.model_version;
        Ok(ModelVersion {
            name: wire.name,
            version: wire.version,
            source: wire.source,
            storage_location: wire.storage_location.filter(|s| !s.is_empty()),
            tags: wire.tags.into_iter().map(|t| (t.key, t.value)).collect(),
            aliases: wire.aliases,
        })
    }

    pub fn set_tag(&self, version: &ModelVersion, key: &str, value: &str) -> Result<()> {
        let _: serde_json::Value = self.call(
            Method::POST,
            "api/2.0/mlflow/model-versions/set-tag",
            &[],
            Some(serde_json::json!({
                "name": version.name, "version": version.version, "key": key, "value": value
            })),
            &version.uri(),
        )?;
        Ok(())
    }

    /// Points `alias` of the version's model at the version.
    pub fn set_alias(&self, version: &ModelVersion, alias: &str) -> Result<()> {
        let _: serde_json::Value = self.call(
            Method::POST,
            "api/2.0/mlflow/registered-models/alias",
            &[],
            Some(serde_json::json!({
                "name": version.name, "alias": alias, "version": version.version
            })),
            &version.uri(),
        )?;
        Ok(())
    }

    /// Stores `bytes` at an `mlflow-artifacts:/PATH` URI through the tracking server's
    /// artifact proxy.
    pub fn upload(&self, uri: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.artifact_path(uri)?;
        let (status, body) = self.request(
            Method::PUT,
            &format!("api/2.0/mlflow-artifacts/artifacts/{path}"),
            &[],
            Some((bytes, "application/octet-stream")),
        )?;
        if !status.is_success() {
            return Err(self.remote(format!(
                "cannot store {uri}: {status} {}",
                String::from_utf8_lossy(&body[..body.len().min(400)])
            )));
        }
        Ok(())
    }

    /// The bytes at an `mlflow-artifacts:/PATH` URI, through the artifact proxy.
    pub fn download(&self, uri: &str) -> Result<Vec<u8>> {
        let path = self.artifact_path(uri)?;
        let (status, body) = self.request(
            Method::GET,
            &format!("api/2.0/mlflow-artifacts/artifacts/{path}"),
            &[],
            None,
        )?;
        if status == StatusCode::NOT_FOUND {
            return Err(self.remote(format!("{uri}: not in the artifact store")));
        }
        if !status.is_success() {
            return Err(self.remote(format!("cannot read {uri}: {status}")));
        }
        Ok(body)
    }

    /// Streams the bytes at an `mlflow-artifacts:/PATH` URI through the artifact proxy into
    /// `sink`, chunk by chunk, never holding the whole file. The transfer may take
    /// [`TIMEOUT`] plus its bytes at [`MIN_RATE`], and never brings more than the `listed`
    /// size: a store that sends more is not sending the file it listed. Returns the number of
    /// bytes.
    pub fn stream(
        &self,
        uri: &str,
        listed: Option<u64>,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<u64> {
        let path = self.artifact_path(uri)?;
        let mut url = self
            .base
            .join("api/2.0/mlflow-artifacts/artifacts/")
            .map_err(|e| self.remote(format!("bad endpoint: {e}")))?;
        // Each name component percent-encoded: a stored name holding `?`, `#` or `%` names
        // that file, never a query or another one.
        url.path_segments_mut()
            .map_err(|()| self.remote("the endpoint cannot take a path".to_string()))?
            .pop_if_empty()
            .extend(path.split('/'));
        let mut request = self.http.get(url);
        if let Some(value) = &self.authorization {
            request = request.header(AUTHORIZATION, value.clone());
        }
        let late = || self.remote(format!("{uri}: no answer within {TIMEOUT:?}"));
        let broke = |e: reqwest::Error| {
            self.remote(format!(
                "cannot read {uri} from the tracking server: {}",
                chain(&e)
            ))
        };
        self.runtime.block_on(async {
            let mut response = tokio::time::timeout(TIMEOUT, request.send())
                .await
                .map_err(|_| late())?
                .map_err(|e| {
                    self.remote(format!("cannot reach the tracking server: {}", chain(&e)))
                })?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(self.remote(format!(
                    "the tracking server refused the credentials ({status})"
                )));
            }
            if status == StatusCode::NOT_FOUND {
                return Err(self.remote(format!("{uri}: not in the artifact store")));
            }
            if !status.is_success() {
                return Err(self.remote(format!("cannot read {uri}: {status}")));
            }
            let started = tokio::time::Instant::now();
            let mut total = 0u64;
            loop {
                // The deadline grows with what has come, and with what is still to come when
                // the size is known.
                let allowed = TIMEOUT + transfer_time(listed.unwrap_or(total).max(total));
                let chunk = tokio::time::timeout_at(started + allowed, response.chunk())
                    .await
                    .map_err(|_| {
                        self.remote(format!(
                            "{uri}: {total} bytes came in {:.0} s, slower than {MIN_RATE} bytes per second after the first {TIMEOUT:?}",
                            started.elapsed().as_secs_f64()
                        ))
                    })?
                    .map_err(broke)?;
                let Some(chunk) = chunk else {
                    return Ok(total);
                };
                total += chunk.len() as u64;
                if let Some(size) = listed.filter(|&size| total > size) {
                    return Err(self.remote(format!(
                        "{uri}: the store sent more than the {size} bytes its listing gives; it was not read further"
                    )));
                }
                sink(&chunk);
            }
        })
    }

    /// The files below an `mlflow-artifacts:/PATH` directory, as paths relative to it, with
    /// their sizes; at most [`MAX_LISTED`] entries, [`MAX_LISTED_DEPTH`] directories deep.
    pub fn list(&self, uri: &str) -> Result<Vec<Listed>> {
        let root = self.artifact_path(uri)?;
        let mut files = Vec::new();
        let mut pending = vec![(String::new(), 0usize)];
        let mut entries = 0usize;
        while let Some((dir, depth)) = pending.pop() {
            let full = match dir.as_str() {
                "" => root.clone(),
                _ => format!("{root}/{dir}"),
            };
            let answer: ListAnswer = self.call(
                Method::GET,
                "api/2.0/mlflow-artifacts/artifacts",
                &[("path", &full)],
                None,
                uri,
            )?;
            entries += answer.files.len();
            if entries > MAX_LISTED {
                return Err(self.remote(format!(
                    "{uri}: the store lists more than {MAX_LISTED} files and directories; no model has that many"
                )));
            }
            for file in answer.files {
                if file.path.is_empty() || file.path.split('/').any(|p| p == ".." || p == ".") {
                    return Err(
                        self.remote(format!("{uri}: the store lists a bad name {:?}", file.path))
                    );
                }
                let relative = match dir.as_str() {
                    "" => file.path.clone(),
                    _ => format!("{dir}/{}", file.path),
                };
                if !file.is_dir {
                    let size = file.file_size.as_ref().and_then(WireSize::bytes);
                    files.push(Listed {
                        path: relative,
                        size,
                    });
                } else if depth + 1 >= MAX_LISTED_DEPTH {
                    return Err(self.remote(format!(
                        "{uri}: the store lists directories more than {MAX_LISTED_DEPTH} deep ({relative})"
                    )));
                } else {
                    pending.push((relative, depth + 1));
                }
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The path below the artifact proxy of an `mlflow-artifacts:` URI.
    fn artifact_path(&self, uri: &str) -> Result<String> {
        let rest = uri
            .strip_prefix("mlflow-artifacts:")
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{uri}: vouch reads a registry's artifacts through the tracking server's \
                     artifact proxy (mlflow-artifacts:/ URIs; start the server with --serve-artifacts)"
                ))
            })?;
        // mlflow-artifacts://HOST:PORT/PATH names a server too; only the path is used.
        let rest = match rest.strip_prefix("//") {
            Some(authority) => authority.split_once('/').map(|(_, p)| p).unwrap_or(""),
            None => rest,
        };
        let path = rest.trim_start_matches('/').trim_end_matches('/');
        if path.split('/').any(|p| p == ".." || p == ".") {
            return Err(self.remote(format!("{uri}: a bad path")));
        }
        Ok(path.to_string())
    }
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_uris() {
        let v = ModelUri::parse("models:/fraud/3").unwrap();
        assert_eq!(v.target, Target::Version("3".into()));
        let a = ModelUri::parse("models:/team/fraud@champion").unwrap();
        assert_eq!(a.name, "team/fraud");
        assert_eq!(a.target, Target::Alias("champion".into()));
        for bad in [
            "fraud/3",
            "models:/fraud",
            "models:/fraud/x",
            "models:/@a",
            "models:/f@",
        ] {
            assert!(
                matches!(ModelUri::parse(bad), Err(Error::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn azureml_maps_to_https() {
        let url = tracking_endpoint(
            "azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/S/resourceGroups/G/providers/Microsoft.MachineLearningServices/workspaces/W",
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/S/resourceGroups/G/providers/Microsoft.MachineLearningServices/workspaces/W/"
        );
        assert_eq!(
            url.join("api/2.0/mlflow/model-versions/get").unwrap().path(),
            "/mlflow/v1.0/subscriptions/S/resourceGroups/G/providers/Microsoft.MachineLearningServices/workspaces/W/api/2.0/mlflow/model-versions/get"
        );
        assert!(tracking_endpoint("file:///tmp/mlruns").is_err());
    }
}
