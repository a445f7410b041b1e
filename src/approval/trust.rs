//! Who must have signed an approval: the trust settings as given (by flag or config key),
//! checked into one [`TrustSpec`], and loaded into the policy signatures are verified under.

use std::path::PathBuf;

use super::setting::{RuleError, Setting};
use crate::error::{Error, Hint, Result};
use crate::fsio::read_input;
use crate::sign::keyless::{IdentityRule, IssuerRule, KeylessPolicy};
use crate::sign::keys::PublicKey;
use crate::sign::x509::pem_certificates;
use crate::sign::{DetachedPolicy, SignerPolicy};

/// Where trust comes from, as named on the command line or in a drift config; loading it
/// reads the keys, certificates or trusted root.
#[derive(Clone, Debug)]
pub enum TrustSpec {
    /// A public key file (PEM).
    Key(PathBuf),
    /// Trusted certificate files (PEM), and whether one that is not a self-signed root may
    /// end a chain.
    CertificateChain {
        paths: Vec<PathBuf>,
        allow_partial: bool,
    },
    /// A Sigstore identity and OIDC issuer, each exact or a whole-string pattern.
    Keyless {
        identity: IdentitySpec,
        issuer: IdentitySpec,
        trusted_root: Option<PathBuf>,
    },
}

/// A value a certificate field must have: exactly this text, or matching this pattern as a
/// whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentitySpec {
    Exact(String),
    Pattern(String),
}

/// Trust settings as the user gave them, by flag or config key, before they are checked.
#[derive(Clone, Debug, Default)]
pub struct TrustParts {
    pub key: Option<PathBuf>,
    pub certificate_chain: Vec<PathBuf>,
    /// Let a trusted intermediate end a certificate chain.
    pub allow_partial_chain: bool,
    pub identity: Option<String>,
    pub identity_regexp: Option<String>,
    pub issuer: Option<String>,
    /// A pattern the whole OIDC issuer must match.
    pub issuer_regexp: Option<String>,
    pub trusted_root: Option<PathBuf>,
}

impl TrustParts {
    fn keyless(&self) -> bool {
        self.identity.is_some()
            || self.identity_regexp.is_some()
            || self.issuer.is_some()
            || self.issuer_regexp.is_some()
            || self.trusted_root.is_some()
    }

    /// Whether a setting names who signed a certificate or which certificates to trust
    /// (a trusted root alone does neither).
    pub fn names_a_certificate_signer(&self) -> bool {
        self.identity.is_some()
            || self.identity_regexp.is_some()
            || self.issuer.is_some()
            || self.issuer_regexp.is_some()
            || !self.certificate_chain.is_empty()
            || self.allow_partial_chain
    }

    /// The trust settings given, in order.
    pub fn given(&self) -> Vec<Setting> {
        [
            (Setting::Key, self.key.is_some()),
            (
                Setting::CertificateChain,
                !self.certificate_chain.is_empty(),
            ),
            (Setting::AllowPartialChain, self.allow_partial_chain),
            (Setting::Identity, self.identity.is_some()),
            (Setting::IdentityRegexp, self.identity_regexp.is_some()),
            (Setting::Issuer, self.issuer.is_some()),
            (Setting::IssuerRegexp, self.issuer_regexp.is_some()),
            (Setting::TrustedRoot, self.trusted_root.is_some()),
        ]
        .into_iter()
        .filter_map(|(setting, given)| given.then_some(setting))
        .collect()
    }

    /// Whether any trust setting was given.
    pub fn is_given(&self) -> bool {
        self.key.is_some()
            || !self.certificate_chain.is_empty()
            || self.allow_partial_chain
            || self.keyless()
    }

    /// The trust named: exactly one of a key, certificates, or an identity with its issuer
    /// (a trusted root only with an identity).
    pub fn spec(&self) -> Result<TrustSpec, RuleError> {
        let chosen = [
            self.key.is_some(),
            !self.certificate_chain.is_empty(),
            self.keyless(),
        ];
        if chosen.iter().filter(|&&c| c).count() != 1 {
            return Err(RuleError::NotOneTrust);
        }
        if self.allow_partial_chain && self.certificate_chain.is_empty() {
            return Err(RuleError::AllowPartialChainWithoutChain);
        }
        if let Some(path) = &self.key {
            return Ok(TrustSpec::Key(path.clone()));
        }
        if !self.certificate_chain.is_empty() {
            return Ok(TrustSpec::CertificateChain {
                paths: self.certificate_chain.clone(),
                allow_partial: self.allow_partial_chain,
            });
        }
        let identity = match (&self.identity, &self.identity_regexp) {
            (Some(identity), None) => IdentitySpec::Exact(identity.clone()),
            (None, Some(pattern)) => IdentitySpec::Pattern(pattern.clone()),
            _ => return Err(RuleError::IdentityAndPattern),
        };
        let issuer = match (&self.issuer, &self.issuer_regexp) {
            (Some(issuer), None) => IdentitySpec::Exact(issuer.clone()),
            (None, Some(pattern)) => IdentitySpec::Pattern(pattern.clone()),
            (None, None) => return Err(RuleError::NoIssuer),
            (Some(_), Some(_)) => return Err(RuleError::IssuerAndPattern),
        };
        Ok(TrustSpec::Keyless {
            identity,
            issuer,
            trusted_root: self.trusted_root.clone(),
        })
    }
}

impl TrustSpec {
    pub fn load(&self) -> Result<SignerPolicy> {
        match self {
            TrustSpec::Key(path) => Ok(SignerPolicy::Key(load_key(path)?)),
            TrustSpec::CertificateChain {
                paths,
                allow_partial,
            } => {
                let mut anchors = Vec::new();
                for path in paths {
                    anchors.extend(
                        pem_certificates(&read_input(path)?)
                            .map_err(|e| Error::input(path, e.to_string()))?,
                    );
                }
                Ok(SignerPolicy::CertificateChain {
                    anchors,
                    source: paths[0].clone(),
                    allow_partial: *allow_partial,
                })
            }
            TrustSpec::Keyless {
                identity,
                issuer,
                trusted_root,
            } => Ok(SignerPolicy::Keyless(Box::new(load_keyless(
                identity,
                issuer,
                trusted_root.as_deref(),
            )?))),
        }
    }

    /// The policy a detached Sigstore bundle is verified under: a key or an identity; an
    /// error for certificates.
    pub fn load_detached(&self) -> Result<DetachedPolicy> {
        match self {
            TrustSpec::Key(path) => Ok(DetachedPolicy::Key(load_key(path)?)),
            TrustSpec::Keyless {
                identity,
                issuer,
                trusted_root,
            } => Ok(DetachedPolicy::Keyless(Box::new(load_keyless(
                identity,
                issuer,
                trusted_root.as_deref(),
            )?))),
            TrustSpec::CertificateChain { .. } => Err(Error::Usage(
                "a detached Sigstore bundle is verified with --key, or with --identity and --issuer"
                    .into(),
            )),
        }
    }
}

impl IdentitySpec {
    /// The rule a signer's identity must satisfy; a bad pattern is a usage error.
    pub fn identity_rule(&self) -> Result<IdentityRule> {
        match self {
            IdentitySpec::Exact(identity) => Ok(IdentityRule::Exact(identity.clone())),
            IdentitySpec::Pattern(pattern) => IdentityRule::pattern(pattern)
                .map_err(|e| Error::Usage(e.to_string()).with_hint(Hint::IdentityPattern)),
        }
    }

    /// The rule a signer's OIDC issuer must satisfy; a bad pattern is a usage error.
    pub fn issuer_rule(&self) -> Result<IssuerRule> {
        match self {
            IdentitySpec::Exact(issuer) => Ok(IssuerRule::Exact(issuer.clone())),
            IdentitySpec::Pattern(pattern) => {
                IssuerRule::pattern(pattern).map_err(|e| Error::Usage(e.to_string()))
            }
        }
    }
}

/// The keyless policy of a [`TrustSpec::Keyless`].
fn load_keyless(
    identity: &IdentitySpec,
    issuer: &IdentitySpec,
    trusted_root: Option<&std::path::Path>,
) -> Result<KeylessPolicy> {
    let identity = identity.identity_rule()?;
    let issuer = issuer.issuer_rule()?;
    let root = match trusted_root {
        Some(path) => Some(
            String::from_utf8(read_input(path)?)
                .map_err(|_| Error::input(path, "is not UTF-8 JSON"))?,
        ),
        None => None,
    };
    KeylessPolicy::new(identity, issuer, root.as_deref()).map_err(|e| {
        Error::input(
            trusted_root.unwrap_or(std::path::Path::new("<built-in trusted root>")),
            e.to_string(),
        )
    })
}

/// The public key in the PEM file at `path`.
fn load_key(path: &std::path::Path) -> Result<PublicKey> {
    PublicKey::from_pem(&read_input(path)?).map_err(|e| Error::input(path, e.to_string()))
}
