//! Image references: `docker://HOST[:PORT]/REPO(:TAG|@DIGEST)` for a registry and
//! `oci:DIR[:TAG|@DIGEST]` for an OCI image layout on disk, as skopeo writes them; and a bare
//! `HOST[:PORT]/REPO(:TAG|@DIGEST)` as cosign, crane and oras accept it.
//!
//! A bare reference must be told apart from a relative path: it is one only when its first
//! component names a host explicitly (it holds a `.` or a `:PORT`, is `localhost`, or is a
//! `[v6]` address), a repository follows, and no file or directory of that name exists (an
//! existing path stays a path; a path that looks like a reference is written `./…`).

use std::fmt;
use std::path::PathBuf;

use super::document::{parse_digest, OciDigestError};
use crate::hash::Digest;

/// What `vouch oci` verifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    Registry(RegistryRef),
    Layout(LayoutRef),
}

/// An image in a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryRef {
    /// `host`, `host:port` or `[v6addr]:port`.
    pub host: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// An image in an OCI image layout directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutRef {
    pub dir: PathBuf,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Why a text is not an image reference: the problem, and the forms expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("'{text}': {problem}; expected docker://HOST[:PORT]/REPO:TAG or docker://HOST[:PORT]/REPO@sha256:HEX")]
    Registry {
        text: String,
        problem: ReferenceProblem,
    },
    #[error("'{text}': {problem}; expected oci:DIR, oci:DIR:TAG or oci:DIR@sha256:HEX")]
    Layout {
        text: String,
        problem: ReferenceProblem,
    },
    #[error("'{text}': {problem}; expected HOST[:PORT]/REPO:TAG or HOST[:PORT]/REPO@sha256:HEX (write ./{text} for a path)")]
    Bare {
        text: String,
        problem: ReferenceProblem,
    },
    #[error("'{0}' is not an image reference: write docker://HOST[:PORT]/REPO:TAG or HOST.NAME[:PORT]/REPO:TAG (a registry) or oci:DIR[:TAG] (an OCI image layout)")]
    Neither(String),
}

/// The part of a reference that breaks a rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceProblem {
    #[error("no repository after the registry host")]
    NoRepository,
    #[error("name a tag (:TAG) or a digest (@sha256:HEX); vouch does not assume :latest")]
    Unpinned,
    #[error("the layout directory is empty")]
    NoDirectory,
    #[error("registry host '{0}' has an unclosed '['")]
    UnclosedBracket(String),
    #[error("'{0}' is not an IPv6 address")]
    NotIpv6(String),
    #[error("'{0}' is not a registry host name")]
    Host(String),
    #[error("'{0}' is not a port number")]
    Port(String),
    #[error("repository '{repository}' {rule}")]
    Repository {
        repository: String,
        rule: &'static str,
    },
    #[error("'{0}' is not a tag (letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-')")]
    Tag(String),
    #[error(transparent)]
    Digest(#[from] OciDigestError),
}

/// How a registry reference and an image-layout reference begin.
const REGISTRY_PREFIX: &str = "docker://";
const LAYOUT_PREFIX: &str = "oci:";

impl ImageRef {
    /// Whether `text` is written as an image reference (well formed or not) rather than a path:
    /// `docker://…`, `oci:…`, or a bare reference with an explicit host that is not a path on
    /// disk (the rule in the module's documentation).
    pub fn is_reference(text: &str) -> bool {
        text.starts_with(REGISTRY_PREFIX)
            || text.starts_with(LAYOUT_PREFIX)
            || (looks_bare(text) && std::fs::symlink_metadata(text).is_err())
    }

    /// Parses a reference; the error says what is wrong and what was expected.
    pub fn parse(text: &str) -> Result<ImageRef, ReferenceError> {
        if let Some(rest) = text.strip_prefix(REGISTRY_PREFIX) {
            parse_registry(rest)
                .map(ImageRef::Registry)
                .map_err(|problem| ReferenceError::Registry {
                    text: text.to_string(),
                    problem,
                })
        } else if let Some(rest) = text.strip_prefix(LAYOUT_PREFIX) {
            parse_layout(rest)
                .map(ImageRef::Layout)
                .map_err(|problem| ReferenceError::Layout {
                    text: text.to_string(),
                    problem,
                })
        } else if looks_bare(text) {
            parse_registry(text)
                .map(ImageRef::Registry)
                .map_err(|problem| ReferenceError::Bare {
                    text: text.to_string(),
                    problem,
                })
        } else {
            Err(ReferenceError::Neither(text.to_string()))
        }
    }

    /// The digest the reference itself names, if any.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            ImageRef::Registry(r) => r.digest.as_ref(),
            ImageRef::Layout(l) => l.digest.as_ref(),
        }
    }

    /// The tag the reference names, if any.
    pub fn tag(&self) -> Option<&str> {
        match self {
            ImageRef::Registry(r) => r.tag.as_deref(),
            ImageRef::Layout(l) => l.tag.as_deref(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (tag, digest) = (self.tag(), self.digest());
        match self {
            ImageRef::Registry(r) => write!(f, "docker://{}/{}", r.host, r.repository)?,
            ImageRef::Layout(l) => write!(f, "oci:{}", l.dir.display())?,
        }
        if let Some(tag) = tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn parse_registry(rest: &str) -> Result<RegistryRef, ReferenceProblem> {
    let (host, path) = rest.split_once('/').ok_or(ReferenceProblem::NoRepository)?;
    check_host(host)?;
    let (name, digest) = split_digest(path)?;
    let (repository, tag) = match name.rsplit_once(':') {
        Some((repository, tag)) => (repository, Some(tag)),
        None => (name, None),
    };
    check_repository(repository)?;
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if tag.is_none() && digest.is_none() {
        return Err(ReferenceProblem::Unpinned);
    }
    Ok(RegistryRef {
        host: host.to_string(),
        repository: repository.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

/// Whether `text` begins with an explicit registry host and a `/`: a first component holding
/// a `.` or a `:`, `localhost`, or a `[v6]` address (as Docker tells a host from a namespace).
fn looks_bare(text: &str) -> bool {
    // Another scheme's URI (`hf://ORG/NAME`, `models:/…`) is no bare image reference.
    if text.contains(":/") {
        return false;
    }
    match text.split_once('/') {
        Some((host, rest)) => {
            !rest.is_empty()
                && (host.contains('.')
                    || host.contains(':')
                    || host.starts_with('[')
                    || host == "localhost")
                && !host.starts_with('.')
        }
        None => false,
    }
}

fn parse_layout(rest: &str) -> Result<LayoutRef, ReferenceProblem> {
    let (path, digest) = split_digest(rest)?;
    let (dir, tag) = match (digest.is_some(), path.split_once(':')) {
        (false, Some((dir, tag))) => (dir, Some(tag)),
        _ => (path, None),
    };
    if dir.is_empty() {
        return Err(ReferenceProblem::NoDirectory);
    }
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    Ok(LayoutRef {
        dir: PathBuf::from(dir),
        tag: tag.map(str::to_string),
        digest,
    })
}

/// Splits `NAME@ALGORITHM:HEX` into the name and the parsed digest.
fn split_digest(text: &str) -> Result<(&str, Option<Digest>), ReferenceProblem> {
    match text.rsplit_once('@') {
        Some((name, digest)) => Ok((name, Some(parse_digest(digest)?))),
        None => Ok((text, None)),
    }
}

fn check_host(host: &str) -> Result<(), ReferenceProblem> {
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (address, after) = v6
            .split_once(']')
            .ok_or_else(|| ReferenceProblem::UnclosedBracket(host.to_string()))?;
        address
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| ReferenceProblem::NotIpv6(address.to_string()))?;
        (None, after.strip_prefix(':'))
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(ReferenceProblem::Host(host.to_string()));
        }
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(ReferenceProblem::Port(port.to_string()));
        }
    }
    Ok(())
}

/// Repository names as the distribution spec defines them: lower-case components of
/// letters and digits, joined by `.`, `_`, `__` or runs of `-`, separated by `/`.
fn check_repository(repository: &str) -> Result<(), ReferenceProblem> {
    let bad = |rule: &'static str| {
        Err(ReferenceProblem::Repository {
            repository: repository.to_string(),
            rule,
        })
    };
    if repository.is_empty() {
        return bad("is empty");
    }
    for component in repository.split('/') {
        let bytes = component.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return bad("has an empty path component");
        };
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return bad("has a component that does not start and end with a letter or digit");
        }
        for separator in component.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            let valid = separator.is_empty()
                || separator == "."
                || separator == "_"
                || separator == "__"
                || separator.bytes().all(|b| b == b'-');
            if !valid {
                return bad("may only hold lower-case letters, digits and the separators '.', '_', '__' and '-'");
            }
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), ReferenceProblem> {
    let bytes = tag.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b));
    if valid {
        Ok(())
    } else {
        Err(ReferenceProblem::Tag(tag.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn registry_references() {
        let r = ImageRef::parse("docker://127.0.0.1:5000/team/app:v1.2").unwrap();
        assert_eq!(
            r,
            ImageRef::Registry(RegistryRef {
                host: "127.0.0.1:5000".into(),
                repository: "team/app".into(),
                tag: Some("v1.2".into()),
                digest: None,
            })
        );
        assert_eq!(r.to_string(), "docker://127.0.0.1:5000/team/app:v1.2");
        let pinned = ImageRef::parse(&format!("docker://ghcr.io/a/b-c__d@{DIGEST}")).unwrap();
        assert_eq!(pinned.digest().unwrap().to_string(), DIGEST);
        assert_eq!(pinned.tag(), None);
        let both = ImageRef::parse(&format!("docker://[::1]:5000/app:v1@{DIGEST}")).unwrap();
        assert_eq!(both.tag(), Some("v1"));
        assert!(both.digest().is_some());
    }

    #[test]
    fn malformed_registry_references_say_why() {
        for (text, why) in [
            ("docker://host", "no repository"),
            ("docker://host/app", "name a tag"),
            ("docker://host/App:v1", "lower-case"),
            ("docker://host/a//b:v1", "empty path component"),
            ("docker://host/a-:v1", "start and end"),
            ("docker://host:99999/a:v1", "port"),
            ("docker://ho_st/a:v1", "host name"),
            ("docker://host/a:-v1", "not a tag"),
            ("docker://host/a@sha256:abc", "64 hex digits"),
            ("docker://host/a@md5:abc", "sha256 or sha512"),
            ("registry/app:v1", "not an image reference"),
            ("app:v1", "not an image reference"),
            ("./reg.example/app:v1", "not an image reference"),
            ("reg.example/app", "name a tag"),
            ("reg.example/app", "write ./reg.example/app for a path"),
            ("localhost:99999/a:v1", "port"),
        ] {
            let err = ImageRef::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn bare_references_name_their_host() {
        for (text, host, repository) in [
            (
                "registry.example.com/team/app:v1",
                "registry.example.com",
                "team/app",
            ),
            ("localhost:5000/x:y", "localhost:5000", "x"),
            ("localhost/x:y", "localhost", "x"),
            ("[::1]:5000/a/b:v1", "[::1]:5000", "a/b"),
        ] {
            match ImageRef::parse(text).unwrap() {
                ImageRef::Registry(r) => {
                    assert_eq!((r.host.as_str(), r.repository.as_str()), (host, repository))
                }
                other => panic!("{text}: {other:?}"),
            }
            assert!(ImageRef::is_reference(text), "{text}");
        }
        for other in ["hf://acme/tiny", "hf://acme/tiny@main", "models:/m/1"] {
            assert!(!ImageRef::is_reference(other), "{other}");
        }
        let pinned = ImageRef::parse(&format!("127.0.0.1:5000/repo@{DIGEST}")).unwrap();
        assert_eq!(
            pinned.to_string(),
            format!("docker://127.0.0.1:5000/repo@{DIGEST}")
        );
        // Without an explicit host it is a path, as it is once it exists on disk.
        for path in [
            "models/app:v1",
            "app:v1",
            "./reg.example/app:v1",
            "reg.example",
        ] {
            assert!(!ImageRef::is_reference(path), "{path}");
        }
        // A directory named like a bare reference stays a path (made in the working
        // directory, since the rule is about relative paths).
        let dir = tempfile::Builder::new()
            .prefix("vouch-ref.example")
            .tempdir_in(".")
            .unwrap();
        let name = dir.path().file_name().unwrap().to_str().unwrap();
        let existing = format!("{name}/repo:v1");
        assert!(ImageRef::is_reference(&existing));
        std::fs::create_dir(dir.path().join("repo:v1")).unwrap();
        assert!(!ImageRef::is_reference(&existing));
    }

    #[test]
    fn layout_references() {
        assert_eq!(
            ImageRef::parse("oci:/tmp/layout:v1").unwrap(),
            ImageRef::Layout(LayoutRef {
                dir: "/tmp/layout".into(),
                tag: Some("v1".into()),
                digest: None,
            })
        );
        let plain = ImageRef::parse("oci:images/app").unwrap();
        assert_eq!((plain.tag(), plain.digest()), (None, None));
        let by_digest = ImageRef::parse(&format!("oci:images/app@{DIGEST}")).unwrap();
        assert_eq!(by_digest.to_string(), format!("oci:images/app@{DIGEST}"));
        assert_eq!(
            ImageRef::parse("oci:"),
            Err(ReferenceError::Layout {
                text: "oci:".into(),
                problem: ReferenceProblem::NoDirectory
            })
        );
        assert!(matches!(
            ImageRef::parse("oci:dir:bad/tag"),
            Err(ReferenceError::Layout {
                problem: ReferenceProblem::Tag(_),
                ..
            })
        ));
    }
}
