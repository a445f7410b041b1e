//! Registry credentials: given on the command line, or found in Docker's `config.json`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fsio::read_input;

/// Who vouch is to the registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <password>)"),
        }
    }
}

/// Credentials for `host` and where they came from, with warnings about entries vouch
/// cannot use.
pub struct Found {
    pub credentials: Credentials,
    pub source: Option<PathBuf>,
    pub warnings: Vec<String>,
}

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
    let Some(entry) = entry else {
        let warnings = helper
            .map(|helper| {
                vec![format!(
                    "{}: credentials for {host} may be held by the credential helper docker-credential-{helper}, which vouch does not run; give vouch the credentials itself",
                    path.display()
                )]
            })
            .unwrap_or_default();
        return Ok(anonymous(warnings));
    };
    let credentials = if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
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
        let what = if entry.identitytoken.is_some() {
            "an identity token, which vouch cannot exchange"
        } else {
            "no username and password"
        };
        return Ok(anonymous(vec![format!(
            "{}: the entry for {host} holds {what}; going on anonymously (give vouch the credentials itself)",
            path.display()
        )]));
    };
    Ok(Found {
        credentials,
        source: Some(path.to_path_buf()),
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
        assert_eq!(found.source.as_deref(), Some(path.as_path()));
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
    fn helpers_and_tokens_are_named_in_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            r#"{"auths":{"tok.example":{"identitytoken":"x"}},"credsStore":"desktop"}"#,
        );
        let helper = from_docker_config(&path, "reg.example").unwrap();
        assert!(helper.warnings[0].contains("docker-credential-desktop"));
        let token = from_docker_config(&path, "tok.example").unwrap();
        assert_eq!(token.credentials, Credentials::Anonymous);
        assert!(token.warnings[0].contains("identity token"));
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
