//! The settings an approval is given by, and why a set of them is refused. Errors name
//! settings, not flags or keys: the command line spells them as flags (`--shard-size`), a
//! drift config as keys (`shard_size`), each adding its own context.

use crate::error::Hint;

/// One approval setting, whether given by flag or by `vouch.toml` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Manifest,
    Signature,
    Digest,
    ManifestDigest,
    Check,
    Registry,
    TrackingUri,
    Algo,
    ShardSize,
    AllowSymlinks,
    Key,
    CertificateChain,
    AllowPartialChain,
    Identity,
    IdentityRegexp,
    Issuer,
    IssuerRegexp,
    TrustedRoot,
    /// The repository an image signature must name.
    SignedRepository,
    /// Notation's trust policy document.
    TrustPolicy,
    /// Notation's trust store directory.
    TrustStore,
    AttestationType,
    /// Not an approval setting, but named by hints: paths left out of the model.
    IgnorePaths,
    /// Not an approval setting, but named by hints: plain HTTP to a registry.
    Insecure,
}

/// The settings that say who signed: they go with a signature.
const TRUST_SETTINGS: [Setting; 8] = [
    Setting::Key,
    Setting::CertificateChain,
    Setting::AllowPartialChain,
    Setting::Identity,
    Setting::IdentityRegexp,
    Setting::Issuer,
    Setting::IssuerRegexp,
    Setting::TrustedRoot,
];

impl Setting {
    /// The name as a `vouch.toml` key.
    pub fn key(self) -> &'static str {
        match self {
            Setting::Manifest => "manifest",
            Setting::Signature => "signature",
            Setting::Digest => "digest",
            Setting::ManifestDigest => "manifest_digest",
            Setting::Check => "check",
            Setting::Registry => "registry",
            Setting::TrackingUri => "tracking_uri",
            Setting::Algo => "algo",
            Setting::ShardSize => "shard_size",
            Setting::AllowSymlinks => "allow_symlinks",
            Setting::Key => "key",
            Setting::CertificateChain => "certificate_chain",
            Setting::AllowPartialChain => "allow_partial_chain",
            Setting::Identity => "identity",
            Setting::IdentityRegexp => "identity_regexp",
            Setting::Issuer => "issuer",
            Setting::IssuerRegexp => "issuer_regexp",
            Setting::TrustedRoot => "trusted_root",
            Setting::SignedRepository => "signed_repository",
            Setting::TrustPolicy => "trust_policy",
            Setting::TrustStore => "trust_store",
            Setting::AttestationType => "attestation_type",
            Setting::IgnorePaths => "ignore_paths",
            Setting::Insecure => "insecure",
        }
    }

    /// The name as a command-line flag.
    pub fn flag(self) -> String {
        format!("--{}", self.key().replace('_', "-"))
    }
}

/// How settings are written where the user wrote them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spelling {
    /// `--shard-size`
    Flag,
    /// `shard_size`
    Key,
}

impl Spelling {
    pub fn name(self, setting: Setting) -> String {
        match self {
            Spelling::Flag => setting.flag(),
            Spelling::Key => setting.key().to_string(),
        }
    }

    /// A switch turned on: `--allow-symlinks`, `allow_symlinks = true`.
    fn on(self, setting: Setting) -> String {
        match self {
            Spelling::Flag => setting.flag(),
            Spelling::Key => format!("{} = true", setting.key()),
        }
    }

    /// A setting given a value: `pass --algo sha512`, `set algo = "sha512"`.
    fn set(self, setting: Setting, value: &str) -> String {
        match self {
            Spelling::Flag => format!("pass {} {value}", setting.flag()),
            Spelling::Key => format!("set {} = \"{value}\"", setting.key()),
        }
    }

    /// What gets past an error, in the words of where the user gave the settings.
    pub fn hint(self, hint: Hint) -> String {
        let name = |setting| self.name(setting);
        match hint {
            Hint::LeaveOut { or_allow_symlinks } => {
                let mut text = format!("leave them out with {}", name(Setting::IgnorePaths));
                if or_allow_symlinks {
                    text.push_str(&format!(
                        ", or hash links that stay inside the model with {}",
                        self.on(Setting::AllowSymlinks)
                    ));
                }
                text
            }
            Hint::CheckSignature => format!(
                "{} {} (with {}, {} or {}/{})",
                match self {
                    Spelling::Flag => "pass it with",
                    Spelling::Key => "give it as",
                },
                name(Setting::Signature),
                name(Setting::Key),
                name(Setting::CertificateChain),
                name(Setting::Identity),
                name(Setting::Issuer)
            ),
            Hint::Algorithm(algorithm) => self.set(Setting::Algo, algorithm),
            // A drift run reads credentials from Docker's config.json only.
            Hint::GiveCredentials => match self {
                Spelling::Flag => "give --username with --password-stdin".to_string(),
                Spelling::Key => {
                    "log in so that Docker's config.json holds credentials for the registry"
                        .to_string()
                }
            },
            Hint::PlainHttpWithCredentials => match self {
                Spelling::Flag => "drop --insecure or the credentials".to_string(),
                Spelling::Key => {
                    "drop insecure, or the registry's credentials from Docker's config.json"
                        .to_string()
                }
            },
            Hint::OnePin => format!(
                "leave out {} or the reference's @digest, or give the same digest in both",
                name(Setting::Digest)
            ),
            Hint::IdentityPattern => format!(
                "give {} a regular expression the whole identity must match",
                name(Setting::IdentityRegexp)
            ),
        }
    }

    /// `a, b and c` (or `a, b or c` with `last` = "or").
    fn list(self, settings: &[Setting], last: &str) -> String {
        let names: Vec<String> = settings.iter().map(|s| self.name(*s)).collect();
        match names.split_last() {
            None => String::new(),
            Some((only, [])) => only.clone(),
            Some((tail, init)) => format!("{} {last} {tail}", init.join(", ")),
        }
    }
}

/// Why approval settings were refused. `Display` spells settings as keys; the command line
/// uses [`RuleError::spelled`] with [`Spelling::Flag`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.spelled(Spelling::Key))]
pub enum RuleError {
    /// No approval setting at all.
    NoApproval,
    /// More than one kind of approval: each named.
    MoreThanOne(Vec<Setting>),
    /// Serialization settings beside a manifest or signature, which record their own.
    OwnSerialization {
        approval: Setting,
        given: Vec<Setting>,
    },
    /// A shard size beside a check list of whole-file digests.
    ShardSizeWithCheckList,
    /// Trust settings without the signature they would check.
    TrustWithoutSignature,
    /// A signature without exactly one kind of trust.
    NotOneTrust,
    /// Trust settings that make no image signature policy (a key beside certificate
    /// settings), on an image without an OMS signature.
    ImageTrust,
    /// Certificate settings without the identity they must name.
    NoIdentity,
    /// An attestation type without a keyless policy to check attestations under.
    AttestationTypeWithoutKeyless,
    /// A signed repository without an image signature policy.
    SignedRepositoryWithoutKey,
    /// A Notation trust policy without its trust store, or the other way round.
    TrustPolicyAndStore,
    /// A signed repository that is not `HOST/PATH`.
    SignedRepository(String),
    AllowPartialChainWithoutChain,
    IdentityAndPattern,
    IssuerAndPattern,
    NoIssuer,
    /// A digest that does not parse; `message` says why.
    Digest {
        setting: Setting,
        message: String,
    },
    /// A model's pinned digest in another algorithm than sha256.
    NotSha256(Setting),
    /// A tracking server without the registry version it would be asked about.
    TrackingUriWithoutRegistry,
    /// A registry version that is no `models:/` URI; the message says why.
    ModelUri(String),
    /// Serialization settings that cannot go together.
    Serialization(crate::model::oms::SerializationError),
}

impl RuleError {
    /// The message, with settings written as `spelling` does.
    pub fn spelled(&self, spelling: Spelling) -> String {
        let name = |setting| spelling.name(setting);
        match self {
            RuleError::NoApproval => format!(
                "no approval source: give {}, {} (with {}, {} or {} and {}), {}, {}, {} or {}",
                name(Setting::Manifest),
                name(Setting::Signature),
                name(Setting::Key),
                name(Setting::CertificateChain),
                name(Setting::Identity),
                name(Setting::Issuer),
                name(Setting::Digest),
                name(Setting::ManifestDigest),
                name(Setting::Check),
                name(Setting::Registry),
            ),
            RuleError::MoreThanOne(given) => format!(
                "{} each approve on their own; give one",
                spelling.list(given, "and")
            ),
            RuleError::OwnSerialization { approval, given } => format!(
                "a manifest or signature records its own serialization; {} go with {}, {} or {}, not with {} \
                 (given: {})",
                spelling.list(&[Setting::Algo, Setting::ShardSize, Setting::AllowSymlinks], "and"),
                name(Setting::Digest),
                name(Setting::ManifestDigest),
                name(Setting::Check),
                name(*approval),
                spelling.list(given, "and"),
            ),
            RuleError::ShardSizeWithCheckList => format!(
                "a check list holds whole-file digests; {} goes with {} or {}",
                name(Setting::ShardSize),
                name(Setting::Digest),
                name(Setting::ManifestDigest),
            ),
            RuleError::TrustWithoutSignature => format!(
                "{} go with {}",
                spelling.list(&TRUST_SETTINGS, "and"),
                name(Setting::Signature)
            ),
            RuleError::NotOneTrust => format!(
                "{} needs exactly one of: {} PUBLIC.pem; {} ROOT.pem; {} (or {}) with {}",
                name(Setting::Signature),
                name(Setting::Key),
                name(Setting::CertificateChain),
                name(Setting::Identity),
                name(Setting::IdentityRegexp),
                name(Setting::Issuer),
            ),
            RuleError::ImageTrust => format!(
                "an image's own signatures are checked with one of: {} PUBLIC.pem (cosign's key policy; {} \
                 beside it gives the Rekor keys); {} (or {}) with {} (or {}) (cosign keyless, against {} or \
                 the shipped public-good root); {} ROOTS.pem with {} (a private PKI); {} with {} (Notation)",
                name(Setting::Key),
                name(Setting::TrustedRoot),
                name(Setting::Identity),
                name(Setting::IdentityRegexp),
                name(Setting::Issuer),
                name(Setting::IssuerRegexp),
                name(Setting::TrustedRoot),
                name(Setting::CertificateChain),
                name(Setting::Identity),
                name(Setting::TrustPolicy),
                name(Setting::TrustStore),
            ),
            RuleError::AttestationTypeWithoutKeyless => format!(
                "{} goes with a keyless policy ({} or {} with {} or {}, without {} or {}): \
                 vouch checks cosign attestations as Sigstore bundles",
                name(Setting::AttestationType),
                name(Setting::Identity),
                name(Setting::IdentityRegexp),
                name(Setting::Issuer),
                name(Setting::IssuerRegexp),
                name(Setting::CertificateChain),
                name(Setting::Signature),
            ),
            RuleError::NoIdentity => format!(
                "a certificate's signer is named by {} or {} (its e-mail address or URI)",
                name(Setting::Identity),
                name(Setting::IdentityRegexp)
            ),
            RuleError::SignedRepositoryWithoutKey => format!(
                "{} goes with {} or {} (a cosign policy, without {}): the repository an image signature must name",
                name(Setting::SignedRepository),
                name(Setting::Key),
                name(Setting::Identity),
                name(Setting::Signature)
            ),
            RuleError::TrustPolicyAndStore => format!(
                "{} and {} go together: Notation's trust policy names stores of the trust store",
                name(Setting::TrustPolicy),
                name(Setting::TrustStore)
            ),
            RuleError::SignedRepository(given) => format!(
                "{} '{given}': write HOST[:PORT]/PATH, without a scheme, tag or digest",
                name(Setting::SignedRepository)
            ),
            RuleError::AllowPartialChainWithoutChain => format!(
                "{} goes with {}",
                name(Setting::AllowPartialChain),
                name(Setting::CertificateChain)
            ),
            RuleError::IdentityAndPattern => format!(
                "keyless verification needs {} or {}, not both",
                name(Setting::Identity),
                name(Setting::IdentityRegexp)
            ),
            RuleError::IssuerAndPattern => format!(
                "keyless verification needs {} or {}, not both",
                name(Setting::Issuer),
                name(Setting::IssuerRegexp)
            ),
            RuleError::NoIssuer => format!(
                "keyless verification needs {} or {} (the signer's OIDC issuer)",
                name(Setting::Issuer),
                name(Setting::IssuerRegexp)
            ),
            RuleError::Digest { setting, message } => format!("{}: {message}", name(*setting)),
            RuleError::TrackingUriWithoutRegistry => format!(
                "{} goes with {}",
                name(Setting::TrackingUri),
                name(Setting::Registry)
            ),
            RuleError::ModelUri(message) => format!("{}: {message}", name(Setting::Registry)),
            RuleError::NotSha256(setting) => {
                format!("{}: a model's pinned digest is sha256:HEX", name(*setting))
            }
            RuleError::Serialization(message) => format!(
                "{}/{}: {message}",
                name(Setting::Algo),
                name(Setting::ShardSize)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_spelled_as_flags_or_keys() {
        let error = RuleError::ShardSizeWithCheckList;
        assert_eq!(
            error.spelled(Spelling::Flag),
            "a check list holds whole-file digests; --shard-size goes with --digest or --manifest-digest"
        );
        assert_eq!(
            error.to_string(),
            "a check list holds whole-file digests; shard_size goes with digest or manifest_digest"
        );
        let error = RuleError::OwnSerialization {
            approval: Setting::Signature,
            given: vec![Setting::Algo, Setting::AllowSymlinks],
        };
        assert!(
            error
                .spelled(Spelling::Flag)
                .ends_with("not with --signature (given: --algo and --allow-symlinks)"),
            "{}",
            error.spelled(Spelling::Flag)
        );
        assert!(error.to_string().contains(
            "algo, shard_size and allow_symlinks go with digest, manifest_digest or check"
        ));
    }
}
