//! What approves a target: the kinds of approval, where each is read from, the trust a
//! signature is checked under, the rules that turn settings (flags or `vouch.toml` keys)
//! into an [`Approval`], and its resolution into what a target must match.

pub mod kept;
pub mod locator;
pub mod resolve;
pub mod rules;
pub mod setting;
pub mod trust;

use std::path::PathBuf;

use crate::hash::{Algorithm, Digest};
use crate::model::oms::Serialization;
pub use locator::{Locator, RegistryLocator};
pub use resolve::{resolve, Refusal, Resolution, Resolved};
pub use trust::{IdentitySpec, TrustParts, TrustSpec};

/// What a model is checked against.
#[derive(Clone, Debug)]
pub enum Approval {
    /// An unsigned OMS statement.
    Manifest(Locator),
    /// An OMS signature bundle, and who must have signed it.
    Signature { bundle: Locator, trust: TrustSpec },
    /// A pinned digest of the model, and the serialization it was made with.
    Pinned {
        pin: Pin,
        serialization: Serialization,
    },
    /// A sha256sum/b3sum list whose names are relative to the model root.
    CheckList {
        list: Locator,
        algorithm: Algorithm,
        allow_symlinks: bool,
    },
}

/// What an image or model artifact is checked against, besides every blob's descriptor.
#[derive(Clone, Debug, Default)]
pub struct ImageApproval {
    /// The approved digest of the manifest or index the reference resolves to.
    pub pinned: Option<Digest>,
    /// What the files of a model artifact must match, one layer per file: an
    /// [`Approval::Manifest`] or an [`Approval::Signature`] (whose statement is used as a
    /// manifest once the signature has been checked); the rules admit no other kind.
    pub files: Option<Approval>,
    /// Who must have signed the image: at least one signature attached to the digest the
    /// reference resolves to must satisfy this policy.
    pub signers: Option<ImageSigners>,
}

/// An image signature policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSigners {
    /// cosign's key policy (`cosign verify --key`): a public key file (PEM), the
    /// repository (`HOST/PATH`) a signature must name (without one, the reference's own; an
    /// image layout names none, so it is then not checked), and the trusted root whose
    /// Rekor keys check signed entry timestamps (without one, the shipped public-good root).
    CosignKey {
        key: PathBuf,
        repository: Option<String>,
        trusted_root: Option<PathBuf>,
    },
    /// cosign's certificate policy (`cosign verify --certificate-identity …`): the signer's
    /// identity (a subject alternative name) and OIDC issuer (required with a trusted root,
    /// optional with a private PKI), the certificates it must chain to, and the repository
    /// a signature must name (as for a key).
    CosignCertificate {
        identity: IdentitySpec,
        issuer: Option<IdentitySpec>,
        roots: CertificateRoots,
        repository: Option<String>,
        /// `--attestation-type`: attestations of this predicate type count, not signatures
        /// (keyless only).
        attestation_type: Option<String>,
    },
    /// Notation's trust policy (`notation verify`): a `trustpolicy.json` and the trust
    /// store directory its `ca:`/`signingAuthority:`/`tsa:` names are read from.
    Notation {
        trust_policy: PathBuf,
        trust_store: PathBuf,
    },
}

/// What a cosign signer's certificate must chain to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateRoots {
    /// A trusted_root.json's Fulcio CAs and Rekor logs (keyless; without a file, the shipped
    /// public-good root): a signed entry timestamp is required.
    TrustedRoot(Option<PathBuf>),
    /// A private PKI's certificate files (roots, and intermediates, PEM); no log.
    Chain {
        paths: Vec<PathBuf>,
        allow_partial: bool,
    },
}

/// A digest that pins a whole model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// The OMS root digest (`vouch digest`): it binds the resources' contents but not their
    /// names or where one file ends and the next begins.
    Root(Digest),
    /// The manifest digest (`vouch digest --manifest-digest`): it binds every resource's
    /// name and digest and the serialization (see [`crate::manifest::digest`]).
    Manifest(Digest),
}

/// The warning of a report that checked a root digest only.
pub const ROOT_DIGEST_BINDS_NO_NAMES: &str = "a root digest binds the files' contents, not their names or boundaries: \
     a renamed, moved or split file still matches it; pin the manifest digest (vouch digest --manifest-digest) \
     or verify against a manifest or signature to bind them";

impl Pin {
    pub fn digest(&self) -> &Digest {
        match self {
            Pin::Root(digest) | Pin::Manifest(digest) => digest,
        }
    }

    /// `root digest` or `manifest digest`, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Pin::Root(_) => "root digest",
            Pin::Manifest(_) => "manifest digest",
        }
    }
}
