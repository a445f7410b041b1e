//! Package URLs (purl): the ones vouch derives for Hugging Face models and OCI images, as
//! the purl specification writes them, and the check of one given for an SBOM.

use std::path::Path;

use crate::hash::Digest;
use crate::oci::ImageRef;

/// Percent-encodes a purl component: everything but unreserved characters and the colon,
/// which the purl specification says is never encoded.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `pkg:huggingface/NS/NAME@REVISION`, as the purl specification writes Hugging Face
/// models (the revision lower-cased).
pub fn huggingface(namespace: Option<&str>, name: &str, revision: &str) -> String {
    let mut purl = "pkg:huggingface/".to_string();
    if let Some(ns) = namespace {
        purl.push_str(&segment(ns));
        purl.push('/');
    }
    purl.push_str(&segment(name));
    purl.push('@');
    purl.push_str(&segment(&revision.to_ascii_lowercase()));
    purl
}

/// The package URL of an OCI image, as the purl specification's `oci` type builds it:
/// `pkg:oci/NAME@DIGEST?arch=…&repository_url=…&tag=…`, NAME the lower-cased last segment
/// of the repository, DIGEST what the reference resolves to, qualifiers sorted by key.
/// `arch` is given when the image was chosen from an index for its platform.
pub fn oci(reference: &ImageRef, digest: &Digest, arch: Option<&str>) -> String {
    let (name, repository_url) = match reference {
        ImageRef::Registry(image) => (
            image
                .repository
                .rsplit('/')
                .next()
                .unwrap_or(&image.repository)
                .to_string(),
            Some(format!("{}/{}", image.host, image.repository)),
        ),
        ImageRef::Layout(layout) => (layout_name(&layout.dir), None),
    };
    let qualifiers: Vec<String> = [
        ("arch", arch.map(str::to_string)),
        ("repository_url", repository_url),
        ("tag", reference.tag().map(str::to_string)),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|v| format!("{key}={}", segment(&v))))
    .collect();
    let mut purl = format!(
        "pkg:oci/{}@{}",
        segment(&name.to_lowercase()),
        segment(&digest.prefixed())
    );
    if !qualifiers.is_empty() {
        purl.push('?');
        purl.push_str(&qualifiers.join("&"));
    }
    purl
}

/// The name of an image layout's directory.
pub fn layout_name(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    dir.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".to_string())
}

/// Why a package URL given for an SBOM is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PurlError {
    #[error("'{0}' is not a package URL (it must start with 'pkg:')")]
    NoScheme(String),
    #[error("'{0}' has no type and name (pkg:TYPE/NAME)")]
    NoTypeAndName(String),
    #[error("'{0}' is not a package URL (pkg:TYPE/NAME)")]
    Invalid(String),
}

/// Checks a package URL given for an SBOM: `pkg:TYPE/NAME...`.
pub fn check(purl: &str) -> Result<(), PurlError> {
    let rest = purl
        .strip_prefix("pkg:")
        .ok_or_else(|| PurlError::NoScheme(purl.to_string()))?;
    let (kind, name) = rest
        .split_once('/')
        .ok_or_else(|| PurlError::NoTypeAndName(purl.to_string()))?;
    let valid_type = kind.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-".contains(c));
    if !valid_type || name.is_empty() {
        return Err(PurlError::Invalid(purl.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Algorithm;

    #[test]
    fn purls_follow_the_oci_type_of_the_purl_specification() {
        let digest = Algorithm::Sha256.digest(b"manifest");
        let hex = digest.hex();
        let registry = ImageRef::parse("docker://127.0.0.1:5000/team/models/tiny:v1").unwrap();
        assert_eq!(
            oci(&registry, &digest, Some("amd64")),
            format!(
                "pkg:oci/tiny@sha256:{hex}?arch=amd64&repository_url=127.0.0.1:5000%2Fteam%2Fmodels%2Ftiny&tag=v1"
            )
        );
        let pinned = ImageRef::parse(&format!("docker://ghcr.io/debian@sha256:{hex}")).unwrap();
        assert_eq!(
            oci(&pinned, &digest, None),
            format!("pkg:oci/debian@sha256:{hex}?repository_url=ghcr.io%2Fdebian")
        );
        let layout = ImageRef::parse("oci:/tmp/App Image:latest").unwrap();
        assert_eq!(
            oci(&layout, &digest, None),
            format!("pkg:oci/app%20image@sha256:{hex}?tag=latest")
        );
    }

    #[test]
    fn purls_are_checked() {
        assert!(check("pkg:huggingface/org/model@abc").is_ok());
        assert!(check("huggingface/org/model").is_err());
        assert!(check("pkg:/model").is_err());
        assert!(check("pkg:huggingface").is_err());
    }
}
