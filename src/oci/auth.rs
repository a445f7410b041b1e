//! Registry credentials: given on the command line, or found in Docker's `config.json`,
//! either in its `auths` or from the credential helper it names (`credHelpers` for the host,
//! else `credsStore`), run as Docker runs it: `docker-credential-NAME get`, the server URL on
//! stdin, `{"ServerURL","Username","Secret"}` on stdout.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fsio::read_input;

/// Who vouch is to the registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (Docker's "identity token", from `docker login` against a
    /// registry whose token service issues them): exchanged at the token realm for a pull
    /// token, never sent to the registry itself.
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <password>)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<token>)"),
        }
    }
}

/// Credentials for `host` and where they came from (a config.json, or a helper), with
/// warnings about entries vouch cannot use.
pub struct Found {
    pub credentials: Credentials,
    pub source: Option<String>,
    pub warnings: Vec<String>,
}

/// How long a credential helper may take before it is killed.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The most a credential helper may print.
const MAX_HELPER_OUTPUT: u64 = 1 << 20;

/// The Docker client configuration: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// Looks `host` up in the Docker configuration at `path` (absent: anonymous).
pub fn from_docker_config(path: &Path, host: &str) -> Result<Found> {
    let anonymous = |warnings| Found {
        credentials: Credentials::Anonymous,
        source: None,
        warnings,
    };
    if !path.exists() {
        return Ok(anonymous(Vec::new()));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Config {
        #[serde(default)]
        auths: std::collections::BTreeMap<String, Entry>,
        #[serde(default)]
        creds_store: Option<String>,
        #[serde(default)]
        cred_helpers: std::collections::BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        auth: Option<String>,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
        #[serde(default)]
        identitytoken: Option<String>,
    }
    let bytes = read_input(path)?;
    let config: Config = serde_json::from_slice(&bytes)
        .map_err(|e| Error::input(path, format!("malformed Docker configuration: {e}")))?;
    let wanted = registry_key(host);
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| registry_key(key) == wanted)
        .map(|(_, entry)| entry);
    let helper = config
        .cred_helpers
        .iter()
        .find(|(key, _)| registry_key(key) == wanted)
        .map(|(_, helper)| helper)
        .or(config.creds_store.as_ref());
    // As Docker does: a helper for the host, else the store, else the file's own entry.
    if let Some(helper) = helper {
        return from_helper(path, helper, host, HELPER_TIMEOUT);
    }
    let Some(entry) = entry else {
        return Ok(anonymous(Vec::new()));
    };
    // `docker login` keeps an identity token beside `auth` holding the user name alone
    // ("USER:"); the token is what docker uses then.
    let credentials = if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty())
    {
        Credentials::IdentityToken(token.to_string())
    } else if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                Error::input(
                    path,
                    format!("auths.{host}.auth is not base64 of USERNAME:PASSWORD"),
                )
            })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            Error::input(
                path,
                format!("auths.{host}.auth does not hold USERNAME:PASSWORD"),
            )
        })?;
        Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }
    } else if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        }
    } else {
        return Ok(anonymous(vec![format!(
            "{}: the entry for {host} holds no username and password; going on anonymously (give vouch the credentials itself)",
            path.display()
        )]));
    };
    Ok(Found {
        credentials,
        source: Some(path.display().to_string()),
        warnings: Vec::new(),
    })
}

/// The server URL a helper is asked about: Docker Hub's is its v1 index URL.
fn server_url(host: &str) -> String {
    match registry_key(host).as_str() {
        "index.docker.io" => "https://index.docker.io/v1/".to_string(),
        other => other.to_string(),
    }
}

/// Runs `docker-credential-NAME get` for `host`, killed after `timeout`. A helper that is
/// missing, fails, times out or prints what is not its JSON answer is an operational error
/// naming it; its "credentials not found" answer is anonymous access.
fn from_helper(config: &Path, name: &str, host: &str, timeout: Duration) -> Result<Found> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::input(
            config,
            format!("'{name}' is not a credential helper name"),
        ));
    }
    let program = format!("docker-credential-{name}");
    let fail = |message: String| Error::Remote {
        target: format!(
            "credential helper {program} (named in {})",
            config.display()
        ),
        message,
    };
    // The URL goes in through a file, not a pipe: a helper that exits without reading it
    // must not kill vouch with SIGPIPE.
    let url = server_url(host);
    let input = tempfile::tempfile()
        .and_then(|mut file| {
            file.write_all(url.as_bytes())?;
            file.seek(std::io::SeekFrom::Start(0))?;
            Ok(file)
        })
        .map_err(|e| fail(format!("cannot write its input: {e}")))?;
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::from(input))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => fail("not found on PATH".to_string()),
            _ => fail(format!("cannot run it: {e}")),
        })?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(MAX_HELPER_OUTPUT).read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "gave no answer for {url} within {} s",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(fail(format!("cannot wait for it: {e}"))),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        let said = String::from_utf8_lossy(if stdout.is_empty() { &stderr } else { &stdout })
            .trim()
            .to_string();
        if said.contains("credentials not found") {
            return Ok(Found {
                credentials: Credentials::Anonymous,
                source: None,
                warnings: Vec::new(),
            });
        }
        return Err(fail(format!("failed for {url} ({status}): {said}")));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let answer: Answer = crate::json::from_slice(&stdout).map_err(|e| {
        fail(format!(
            "printed what is not its JSON answer for {url}: {e}"
        ))
    })?;
    let source = format!("{program} (named in {})", config.display());
    // Docker's helpers answer an identity token with this user name.
    let credentials = if answer.username == "<token>" {
        Credentials::IdentityToken(answer.secret)
    } else {
        Credentials::Basic {
            username: answer.username,
            password: answer.secret,
        }
    };
    Ok(Found {
        credentials,
        source: Some(source),
        warnings: Vec::new(),
    })
}

/// The registry a `config.json` key names: `https://index.docker.io/v1/` and
/// `registry.example:5000` alike become a bare `host[:port]`; Docker Hub's names are one.
fn registry_key(key: &str) -> String {
    let bare = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = bare.split('/').next().unwrap_or(bare).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" => "index.docker.io".to_string(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("config.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn finds_base64_and_split_credentials_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            // "alice:s3:cret" in base64; a password may hold colons.
            r#"{"auths":{"https://reg.example:5000/v2/":{"auth":"YWxpY2U6czM6Y3JldA=="},
                "other.example":{"username":"bob","password":"pw"},
                "https://index.docker.io/v1/":{"auth":"Y2Fyb2w6aHVi"}}}"#,
        );
        let found = from_docker_config(&path, "reg.example:5000").unwrap();
        assert_eq!(
            found.credentials,
            Credentials::Basic {
                username: "alice".into(),
                password: "s3:cret".into()
            }
        );
        assert_eq!(found.source, Some(path.display().to_string()));
        let bob = from_docker_config(&path, "other.example").unwrap();
        assert!(
            matches!(bob.credentials, Credentials::Basic { username, .. } if username == "bob")
        );
        let hub = from_docker_config(&path, "docker.io").unwrap();
        assert!(
            matches!(hub.credentials, Credentials::Basic { username, .. } if username == "carol")
        );
        let none = from_docker_config(&path, "reg.example").unwrap();
        assert_eq!(none.credentials, Credentials::Anonymous);
        assert!(none.warnings.is_empty());
    }

    #[test]
    fn identity_tokens_are_kept_and_bad_helper_names_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            r#"{"auths":{"tok.example":{"identitytoken":"x"}}}"#,
        );
        let token = from_docker_config(&path, "tok.example").unwrap();
        assert_eq!(token.credentials, Credentials::IdentityToken("x".into()));
        assert!(token.warnings.is_empty());
        // As `docker login` writes it: the user name alone in `auth`, and the token.
        let path = config(
            dir.path(),
            r#"{"auths":{"tok.example":{"auth":"dm91Y2g6","identitytoken":"y"}}}"#,
        );
        let token = from_docker_config(&path, "tok.example").unwrap();
        assert_eq!(token.credentials, Credentials::IdentityToken("y".into()));
        let path = config(
            dir.path(),
            r#"{"credHelpers":{"reg.example":"../../bin/sh"}}"#,
        );
        let err = from_docker_config(&path, "reg.example").err().unwrap();
        assert_eq!(err.exit_status(), 2);
        assert!(
            err.to_string().contains("not a credential helper name"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_helper_is_an_operational_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(dir.path(), "{}");
        // `docker-credential-` + "vouch-absent-helper" is on no PATH.
        let err = from_helper(&path, "vouch-absent-helper", "reg.example", HELPER_TIMEOUT)
            .err()
            .unwrap();
        assert_eq!(err.exit_status(), 3);
        assert!(
            err.to_string()
                .contains("docker-credential-vouch-absent-helper"),
            "{err}"
        );
        assert!(err.to_string().contains("not found on PATH"), "{err}");
    }

    #[test]
    fn hub_is_asked_by_its_index_url() {
        assert_eq!(server_url("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_url("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn a_malformed_config_is_an_input_error_and_a_missing_one_is_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(dir.path(), r#"{"auths":{"reg.example":{"auth":"%%%"}}}"#);
        let err = from_docker_config(&path, "reg.example").err().unwrap();
        assert_eq!(err.exit_status(), 2);
        assert!(err.to_string().contains("base64"), "{err}");
        let broken = config(dir.path(), "{");
        assert_eq!(
            from_docker_config(&broken, "x")
                .err()
                .unwrap()
                .exit_status(),
            2
        );
        let absent = from_docker_config(&dir.path().join("nope.json"), "x").unwrap();
        assert_eq!(absent.credentials, Credentials::Anonymous);
    }
}
