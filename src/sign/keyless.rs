//! Sigstore keyless signatures, verified by the sigstore-verify crate: the Fulcio certificate
//! chain to the trusted root, its SCT, the Rekor inclusion proof, checkpoint and signed entry
//! timestamp, the certificate's validity at the logged time, and the signer's identity and
//! OIDC issuer, each matched exactly or against a whole-string pattern.

use std::io::Read;

use regex::Regex;
use sigstore_trust_root::{TrustedRoot, SIGSTORE_PRODUCTION_TRUSTED_ROOT};
use sigstore_types::{Artifact, Sha256Hash};
use sigstore_verify::{Error as SigstoreError, VerificationPolicy, VerificationResult, Verifier};

use super::bundle::Bundle;
use super::Rejection;
use crate::json::JsonError;

/// Why a keyless policy cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeylessError {
    #[error("the signer's identity pattern is not a valid regular expression: {0}")]
    Pattern(#[from] regex::Error),
    #[error("the issuer pattern is not valid: {0}")]
    IssuerPattern(regex::Error),
    #[error("not a Sigstore trusted root: {0}")]
    TrustedRootSyntax(String),
    /// The trusted root has a key given twice, or in two spellings.
    #[error("{0}")]
    TrustedRootAmbiguous(JsonError),
    #[error("unusable trusted root: {0}")]
    UnusableTrustedRoot(String),
}

/// Who the signer must be.
#[derive(Debug)]
pub enum IdentityRule {
    /// `--identity`: this exact subject (e-mail address or URI).
    Exact(String),
    /// `--identity-regexp`: a pattern the whole subject must match.
    Pattern(Regex),
}

impl IdentityRule {
    /// A pattern anchored at both ends, so `.*@example.com` cannot match a longer identity.
    pub fn pattern(text: &str) -> Result<IdentityRule, KeylessError> {
        Ok(IdentityRule::Pattern(Regex::new(&format!("^(?:{text})$"))?))
    }
}

/// Which OIDC issuer the signer's certificate must name.
#[derive(Debug)]
pub enum IssuerRule {
    /// `--issuer`: this exact issuer URL.
    Exact(String),
    /// `--issuer-regexp`: a pattern the whole issuer must match.
    Pattern(Regex),
}

impl IssuerRule {
    /// A pattern anchored at both ends, as [`IdentityRule::pattern`].
    pub fn pattern(text: &str) -> Result<IssuerRule, KeylessError> {
        Regex::new(&format!("^(?:{text})$"))
            .map(IssuerRule::Pattern)
            .map_err(KeylessError::IssuerPattern)
    }
}

pub struct KeylessPolicy {
    identity: IdentityRule,
    issuer: IssuerRule,
    verifier: Verifier,
}

impl std::fmt::Debug for KeylessPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeylessPolicy")
            .field("identity", &self.identity)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl KeylessPolicy {
    /// `trusted_root` is the text of a trusted_root.json; without one, the Sigstore
    /// public-good root that ships with the Sigstore crates is used.
    pub fn new(
        identity: IdentityRule,
        issuer: IssuerRule,
        trusted_root: Option<&str>,
    ) -> Result<KeylessPolicy, KeylessError> {
        // Read as the crate reads it (TrustedRoot::from_json is serde over these types), by
        // the strict reader, so that no duplicate or case-variant key goes unnoticed.
        let text = trusted_root.unwrap_or(SIGSTORE_PRODUCTION_TRUSTED_ROOT);
        let root: TrustedRoot = crate::json::from_slice(text.as_bytes()).map_err(|e| match e {
            JsonError::Malformed(m) => KeylessError::TrustedRootSyntax(m),
            ambiguous => KeylessError::TrustedRootAmbiguous(ambiguous),
        })?;
        let verifier =
            Verifier::new(&root).map_err(|e| KeylessError::UnusableTrustedRoot(e.to_string()))?;
        Ok(KeylessPolicy {
            identity,
            issuer,
            verifier,
        })
    }

    fn sigstore_policy(&self) -> VerificationPolicy {
        let policy = match &self.issuer {
            IssuerRule::Exact(issuer) => {
                VerificationPolicy::any_identity().require_issuer(issuer.clone())
            }
            IssuerRule::Pattern(_) => VerificationPolicy::any_identity(),
        };
        match &self.identity {
            IdentityRule::Exact(identity) => policy.require_identity(identity.as_str()),
            IdentityRule::Pattern(_) => policy,
        }
    }

    fn check(
        &self,
        result: Result<VerificationResult, SigstoreError>,
    ) -> Result<KeylessSigner, KeylessFailure> {
        let result = result.map_err(|e| match e {
            SigstoreError::ArtifactMismatch(m) => KeylessFailure::ArtifactMismatch(m),
            other => KeylessFailure::Rejected(Rejection(reason(&other))),
        })?;
        let identity = result
            .identity()
            .map(|i| i.as_str().to_string())
            .unwrap_or_default();
        if let IdentityRule::Pattern(pattern) = &self.identity {
            if !pattern.is_match(&identity) {
                return Err(KeylessFailure::Rejected(Rejection(format!(
                    "identity mismatch: signed by {identity}, which does not match {}",
                    pattern.as_str()
                ))));
            }
        }
        let issuer = result.issuer().unwrap_or_default().to_string();
        if let IssuerRule::Pattern(pattern) = &self.issuer {
            if !pattern.is_match(&issuer) {
                return Err(KeylessFailure::Rejected(Rejection(format!(
                    "issuer mismatch: the certificate names the OIDC issuer {issuer}, which does not match {}",
                    pattern.as_str()
                ))));
            }
        }
        Ok(KeylessSigner {
            identity,
            issuer,
            logged_at: result.integrated_time().map(|t| t.to_string()),
        })
    }
}

/// A keyless signer that checked out.
#[derive(Debug)]
pub struct KeylessSigner {
    pub identity: String,
    pub issuer: String,
    pub logged_at: Option<String>,
}

impl KeylessSigner {
    pub fn describe(&self) -> String {
        let logged = self
            .logged_at
            .as_ref()
            .map(|t| format!(", logged at {t}"))
            .unwrap_or_default();
        format!(
            "Sigstore identity {} from {}{logged}",
            self.identity, self.issuer
        )
    }
}

/// Why a keyless verification failed.
#[derive(Debug)]
pub enum KeylessFailure {
    /// Everything about the signature holds, but it covers other bytes than the artifact.
    ArtifactMismatch(String),
    /// The signature, its certificate, its log entry or its signer was refused.
    Rejected(Rejection),
}

/// Verifies a keyless OMS bundle whose statement's subject is `subject_sha256`.
pub fn verify_digest(
    bundle: &Bundle,
    subject_sha256: &str,
    policy: &KeylessPolicy,
) -> Result<KeylessSigner, Rejection> {
    let parsed = sigstore_types::Bundle::from_json(&bundle.normalized_json).map_err(|e| {
        Rejection(format!(
            "the bundle does not follow the Sigstore format: {e}"
        ))
    })?;
    let digest = Sha256Hash::from_hex(subject_sha256)
        .map_err(|e| Rejection(format!("the subject digest is not a sha256 digest: {e}")))?;
    let result = policy.verifier.verify(
        Artifact::Digest(digest.into()),
        &parsed,
        &policy.sigstore_policy(),
    );
    policy.check(result).map_err(|failure| match failure {
        KeylessFailure::ArtifactMismatch(m) => {
            Rejection(format!("the signed statement does not match itself: {m}"))
        }
        KeylessFailure::Rejected(rejection) => rejection,
    })
}

/// Verifies a Sigstore bundle (JSON) whose statement's subject, or whose message digest,
/// must be `subject_sha256` (hex): an image's bundle v0.3 referrer.
pub fn verify_json_digest(
    bundle_json: &str,
    subject_sha256: &str,
    policy: &KeylessPolicy,
) -> Result<KeylessSigner, KeylessFailure> {
    let parsed = sigstore_types::Bundle::from_json(bundle_json).map_err(|e| {
        KeylessFailure::Rejected(Rejection(format!(
            "malformed: the bundle does not follow the Sigstore format: {e}"
        )))
    })?;
    let digest = Sha256Hash::from_hex(subject_sha256).map_err(|e| {
        KeylessFailure::Rejected(Rejection(format!(
            "the subject digest is not a sha256 digest: {e}"
        )))
    })?;
    let result = policy.verifier.verify(
        Artifact::Digest(digest.into()),
        &parsed,
        &policy.sigstore_policy(),
    );
    policy.check(result)
}

/// Verifies a detached Sigstore bundle (a message signature or a DSSE attestation, as cosign
/// and sigstore-python write them) over the bytes `artifact` yields.
pub fn verify_detached(
    bundle_json: &str,
    artifact: impl Read,
    policy: &KeylessPolicy,
) -> Result<KeylessSigner, KeylessFailure> {
    let parsed = sigstore_types::Bundle::from_json(bundle_json).map_err(|e| {
        KeylessFailure::Rejected(Rejection(format!(
            "the bundle does not follow the Sigstore format: {e}"
        )))
    })?;
    let result = policy
        .verifier
        .verify_reader(artifact, &parsed, &policy.sigstore_policy());
    policy.check(result)
}

/// A reason a user can act on, naming which check failed.
pub(super) fn reason(error: &SigstoreError) -> String {
    match error {
        SigstoreError::IdentityMismatch { .. } | SigstoreError::IssuerMismatch { .. } => {
            error.to_string()
        }
        SigstoreError::SignatureInvalid(_) => {
            format!("{error} (the payload was altered, or another key signed it)")
        }
        SigstoreError::Certificate(e) => format!("certificate: {e}"),
        SigstoreError::TransparencyLog(e) => format!("transparency log proof: {e}"),
        SigstoreError::Timestamp(e) => format!("timestamp: {e}"),
        other => other.to_string(),
    }
}
