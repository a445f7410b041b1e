//! The one rule set that turns approval settings, as the command line's flags or a
//! `vouch.toml` target's keys gave them, into an [`Approval`] or [`ImageApproval`].

use std::path::PathBuf;

use super::setting::{RuleError, Setting};
use super::trust::TrustParts;
use super::{
    Approval, CertificateRoots, IdentitySpec, ImageApproval, ImageSigners, Locator, Pin,
    RegistryLocator,
};
use crate::hash::{Algorithm, Digest};
use crate::model::oms::Serialization;
use crate::oci::document::parse_digest;
use crate::registry::ModelUri;

/// A model's approval settings exactly as given, none checked yet.
#[derive(Clone, Debug, Default)]
pub struct ApprovalParts {
    pub manifest: Option<PathBuf>,
    pub signature: Option<PathBuf>,
    /// A pinned OMS root digest, as written (`sha256:HEX`).
    pub digest: Option<String>,
    /// A pinned manifest digest, as written (`sha256:HEX`).
    pub manifest_digest: Option<String>,
    /// A sha256sum/b3sum check list.
    pub check: Option<PathBuf>,
    pub algorithm: Option<Algorithm>,
    pub shard_size: Option<u64>,
    pub allow_symlinks: bool,
    pub trust: TrustParts,
    /// The model version whose kept approval this is: `models:/NAME/VERSION` or
    /// `models:/NAME@ALIAS`, as written.
    pub registry: Option<String>,
    /// The tracking server of `registry`, when not `MLFLOW_TRACKING_URI`.
    pub tracking_uri: Option<String>,
}

/// An image's approval settings exactly as given, none checked yet.
#[derive(Clone, Debug, Default)]
pub struct ImageApprovalParts {
    /// The approved digest of what the reference resolves to, as written.
    pub digest: Option<String>,
    pub manifest: Option<PathBuf>,
    pub signature: Option<PathBuf>,
    pub trust: TrustParts,
    /// The repository an image signature must name, as written (`HOST/PATH`).
    pub signed_repository: Option<String>,
    /// Notation's trust policy document and trust store directory.
    pub trust_policy: Option<PathBuf>,
    pub trust_store: Option<PathBuf>,
    /// The predicate type of the cosign attestations that count (instead of signatures).
    pub attestation_type: Option<String>,
}

impl ApprovalParts {
    /// The approval these settings give: exactly one of a manifest, a signature (with
    /// exactly one kind of trust), a pinned root or manifest digest (sha256), a check list
    /// or a registry version (whose kept approval is a signature when trust is given, else
    /// a manifest). Serialization settings go with a pin (all of them) or a check list (all
    /// but the shard size), trust settings only with a signature or a registry version.
    pub fn approval(&self) -> Result<Approval, RuleError> {
        let given: Vec<Setting> = [
            (Setting::Manifest, self.manifest.is_some()),
            (Setting::Signature, self.signature.is_some()),
            (Setting::Digest, self.digest.is_some()),
            (Setting::ManifestDigest, self.manifest_digest.is_some()),
            (Setting::Check, self.check.is_some()),
            (Setting::Registry, self.registry.is_some()),
        ]
        .into_iter()
        .filter_map(|(setting, is_given)| is_given.then_some(setting))
        .collect();
        match given.len() {
            0 => return Err(RuleError::NoApproval),
            1 => {}
            _ => return Err(RuleError::MoreThanOne(given)),
        }
        if self.signature.is_none() && self.registry.is_none() && self.trust.is_given() {
            return Err(RuleError::TrustWithoutSignature);
        }
        if self.registry.is_none() && self.tracking_uri.is_some() {
            return Err(RuleError::TrackingUriWithoutRegistry);
        }
        if let Some(text) = &self.registry {
            self.refuse_serialization(Setting::Registry)?;
            let kept = Locator::Registry(RegistryLocator {
                model: ModelUri::parse(text).map_err(|e| RuleError::ModelUri(e.to_string()))?,
                tracking_uri: self.tracking_uri.clone(),
            });
            return Ok(match self.trust.is_given() {
                true => Approval::Signature {
                    bundle: kept,
                    trust: self.trust.spec()?,
                },
                false => Approval::Manifest(kept),
            });
        }
        if let Some(manifest) = &self.manifest {
            self.refuse_serialization(Setting::Manifest)?;
            return Ok(Approval::Manifest(Locator::File(manifest.clone())));
        }
        if let Some(bundle) = &self.signature {
            self.refuse_serialization(Setting::Signature)?;
            return Ok(Approval::Signature {
                bundle: Locator::File(bundle.clone()),
                trust: self.trust.spec()?,
            });
        }
        let algorithm = self.algorithm.unwrap_or(Algorithm::Sha256);
        if let Some(list) = &self.check {
            if self.shard_size.is_some() {
                return Err(RuleError::ShardSizeWithCheckList);
            }
            return Ok(Approval::CheckList {
                list: Locator::File(list.clone()),
                algorithm,
                allow_symlinks: self.allow_symlinks,
            });
        }
        let pin = match (&self.digest, &self.manifest_digest) {
            (Some(text), _) => Pin::Root(sha256_pin(Setting::Digest, text)?),
            (None, Some(text)) => Pin::Manifest(sha256_pin(Setting::ManifestDigest, text)?),
            (None, None) => return Err(RuleError::NoApproval),
        };
        let serialization = Serialization::new(algorithm, self.shard_size, self.allow_symlinks)
            .map_err(RuleError::Serialization)?;
        Ok(Approval::Pinned { pin, serialization })
    }

    /// A manifest or signature records its own serialization: settings that would change
    /// it are refused rather than silently ignored.
    fn refuse_serialization(&self, approval: Setting) -> Result<(), RuleError> {
        let given: Vec<Setting> = [
            (Setting::Algo, self.algorithm.is_some()),
            (Setting::ShardSize, self.shard_size.is_some()),
            (Setting::AllowSymlinks, self.allow_symlinks),
        ]
        .into_iter()
        .filter_map(|(setting, is_given)| is_given.then_some(setting))
        .collect();
        if given.is_empty() {
            return Ok(());
        }
        Err(RuleError::OwnSerialization { approval, given })
    }
}

impl ImageApprovalParts {
    /// The approval these settings give: an optional pinned digest (an OCI digest), at
    /// most one of a manifest and a signature (with exactly one kind of trust) for the
    /// files of a model artifact, and, when trust is given without a signature, the policy
    /// for the image's own signatures: cosign's key policy (a key), cosign's certificate
    /// policy (an identity: keyless, or a private PKI's chain), with the repository they
    /// must name, or Notation's trust policy.
    pub fn approval(&self) -> Result<ImageApproval, RuleError> {
        if self.manifest.is_some() && self.signature.is_some() {
            return Err(RuleError::MoreThanOne(vec![
                Setting::Manifest,
                Setting::Signature,
            ]));
        }
        let trust = &self.trust;
        if let Some(notation) = self.notation()? {
            if self.attestation_type.is_some() {
                return Err(RuleError::AttestationTypeWithoutKeyless);
            }
            if self.signed_repository.is_some() {
                return Err(RuleError::SignedRepositoryWithoutKey);
            }
            return Ok(ImageApproval {
                signers: Some(notation),
                ..self.without_signers()?
            });
        }
        let repository = || {
            self.signed_repository
                .as_deref()
                .map(signed_repository)
                .transpose()
        };
        let signers = match (&self.signature, &trust.key) {
            (Some(_), _) => None,
            (None, _) if !trust.is_given() => None,
            (None, Some(key))
                if trust.certificate_chain.is_empty()
                    && !trust.allow_partial_chain
                    && trust.identity.is_none()
                    && trust.identity_regexp.is_none()
                    && trust.issuer.is_none()
                    && trust.issuer_regexp.is_none() =>
            {
                Some(ImageSigners::CosignKey {
                    key: key.clone(),
                    repository: repository()?,
                    trusted_root: trust.trusted_root.clone(),
                })
            }
            (None, Some(_)) => return Err(RuleError::ImageTrust),
            // A trusted root alone names no signer: it only serves the policies that do.
            (None, None) if !trust.names_a_certificate_signer() => {
                return Err(RuleError::ImageTrust)
            }
            (None, None) => Some(image_certificate(trust, repository()?)?),
        };
        let keyless = matches!(
            &signers,
            Some(ImageSigners::CosignCertificate {
                roots: CertificateRoots::TrustedRoot(_),
                ..
            })
        );
        let signers = match (signers, &self.attestation_type) {
            (_, Some(_)) if !keyless => return Err(RuleError::AttestationTypeWithoutKeyless),
            (
                Some(ImageSigners::CosignCertificate {
                    identity,
                    issuer,
                    roots,
                    repository,
                    ..
                }),
                Some(predicate),
            ) => Some(ImageSigners::CosignCertificate {
                identity,
                issuer,
                roots,
                repository,
                attestation_type: Some(predicate.clone()),
            }),
            (signers, _) => signers,
        };
        if self.signed_repository.is_some() && signers.is_none() {
            return Err(RuleError::SignedRepositoryWithoutKey);
        }
        Ok(ImageApproval {
            signers,
            ..self.without_signers()?
        })
    }

    /// Notation's policy, when a trust policy or store is given: both, and no other
    /// signature policy or trust setting beside them.
    fn notation(&self) -> Result<Option<ImageSigners>, RuleError> {
        match (&self.trust_policy, &self.trust_store) {
            (None, None) => Ok(None),
            (Some(trust_policy), Some(trust_store)) => {
                let mut given = vec![Setting::TrustPolicy];
                given.extend(self.trust.given());
                if self.signature.is_some() {
                    given.push(Setting::Signature);
                }
                if given.len() > 1 {
                    return Err(RuleError::MoreThanOne(given));
                }
                Ok(Some(ImageSigners::Notation {
                    trust_policy: trust_policy.clone(),
                    trust_store: trust_store.clone(),
                }))
            }
            _ => Err(RuleError::TrustPolicyAndStore),
        }
    }

    /// The pin and the files' approval, without an image signature policy.
    fn without_signers(&self) -> Result<ImageApproval, RuleError> {
        let pinned = self
            .digest
            .as_deref()
            .map(|text| {
                parse_digest(text).map_err(|message| RuleError::Digest {
                    setting: Setting::Digest,
                    message: message.to_string(),
                })
            })
            .transpose()?;
        let files = match (&self.manifest, &self.signature) {
            (Some(manifest), _) => Some(Approval::Manifest(Locator::File(manifest.clone()))),
            (None, Some(bundle)) => Some(Approval::Signature {
                bundle: Locator::File(bundle.clone()),
                trust: self.trust.spec()?,
            }),
            (None, None) => None,
        };
        Ok(ImageApproval {
            pinned,
            files,
            signers: None,
        })
    }
}

/// cosign's certificate policy for an image, whose signatures name `repository`: an
/// identity, and either a private PKI's certificates (`--certificate-chain`, an issuer
/// optional) or a trusted root's Fulcio CAs (an issuer required; no chain settings).
fn image_certificate(
    trust: &TrustParts,
    repository: Option<String>,
) -> Result<ImageSigners, RuleError> {
    let identity = match (&trust.identity, &trust.identity_regexp) {
        (Some(identity), None) => IdentitySpec::Exact(identity.clone()),
        (None, Some(pattern)) => IdentitySpec::Pattern(pattern.clone()),
        (Some(_), Some(_)) => return Err(RuleError::IdentityAndPattern),
        (None, None) => return Err(RuleError::NoIdentity),
    };
    let issuer = match (&trust.issuer, &trust.issuer_regexp) {
        (Some(issuer), None) => Some(IdentitySpec::Exact(issuer.clone())),
        (None, Some(pattern)) => Some(IdentitySpec::Pattern(pattern.clone())),
        (None, None) => None,
        (Some(_), Some(_)) => return Err(RuleError::IssuerAndPattern),
    };
    let roots = if trust.certificate_chain.is_empty() {
        if trust.allow_partial_chain {
            return Err(RuleError::AllowPartialChainWithoutChain);
        }
        if issuer.is_none() {
            return Err(RuleError::NoIssuer);
        }
        CertificateRoots::TrustedRoot(trust.trusted_root.clone())
    } else {
        if trust.trusted_root.is_some() {
            return Err(RuleError::MoreThanOne(vec![
                Setting::CertificateChain,
                Setting::TrustedRoot,
            ]));
        }
        CertificateRoots::Chain {
            paths: trust.certificate_chain.clone(),
            allow_partial: trust.allow_partial_chain,
        }
    };
    Ok(ImageSigners::CosignCertificate {
        identity,
        issuer,
        roots,
        repository,
        attestation_type: None,
    })
}

/// A repository as a signature names it: `HOST[:PORT]/PATH`, no scheme, tag or digest.
/// A repository a cosign signature names (`critical.identity.docker-reference`):
/// `HOST[:PORT]/PATH`, without a scheme, tag or digest. Verifying and signing read it alike.
pub fn signed_repository(text: &str) -> Result<String, RuleError> {
    let refused = || RuleError::SignedRepository(text.to_string());
    let (host, path) = text.split_once('/').ok_or_else(refused)?;
    let well_formed = !host.is_empty()
        && !path.is_empty()
        && !text.contains("://")
        && !text.contains('@')
        && !path.contains(':')
        && !path.split('/').any(str::is_empty)
        && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        return Err(refused());
    }
    Ok(text.to_string())
}

/// A model's pinned digest given as `setting`: `sha256:HEX`.
fn sha256_pin(setting: Setting, text: &str) -> Result<Digest, RuleError> {
    let digest = Digest::from_prefixed(text).map_err(|message| RuleError::Digest {
        setting,
        message: message.to_string(),
    })?;
    if digest.algorithm != Algorithm::Sha256 {
        return Err(RuleError::NotSha256(setting));
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::{IdentitySpec, TrustSpec};

    fn sha256() -> String {
        format!("sha256:{}", "ab".repeat(32))
    }

    fn keyed() -> TrustParts {
        TrustParts {
            key: Some("pub.pem".into()),
            ..TrustParts::default()
        }
    }

    #[test]
    fn exactly_one_kind_of_approval() {
        assert_eq!(
            ApprovalParts::default().approval().unwrap_err(),
            RuleError::NoApproval
        );
        let two = ApprovalParts {
            manifest: Some("m.json".into()),
            check: Some("SUMS".into()),
            ..ApprovalParts::default()
        };
        assert_eq!(
            two.approval().unwrap_err(),
            RuleError::MoreThanOne(vec![Setting::Manifest, Setting::Check])
        );
        let one = ApprovalParts {
            check: Some("SUMS".into()),
            algorithm: Some(Algorithm::Blake3),
            allow_symlinks: true,
            ..ApprovalParts::default()
        };
        assert!(matches!(
            one.approval().unwrap(),
            Approval::CheckList {
                algorithm: Algorithm::Blake3,
                allow_symlinks: true,
                ..
            }
        ));
    }

    #[test]
    fn serialization_settings_go_with_a_pin_or_a_check_list_only() {
        for (approval, parts) in [
            (
                Setting::Signature,
                ApprovalParts {
                    signature: Some("model.sig".into()),
                    trust: keyed(),
                    ..ApprovalParts::default()
                },
            ),
            (
                Setting::Manifest,
                ApprovalParts {
                    manifest: Some("m.json".into()),
                    ..ApprovalParts::default()
                },
            ),
        ] {
            assert!(parts.approval().is_ok());
            for (setting, with) in [
                (
                    Setting::Algo,
                    ApprovalParts {
                        algorithm: Some(Algorithm::Sha256),
                        ..parts.clone()
                    },
                ),
                (
                    Setting::ShardSize,
                    ApprovalParts {
                        shard_size: Some(1 << 20),
                        ..parts.clone()
                    },
                ),
                (
                    Setting::AllowSymlinks,
                    ApprovalParts {
                        allow_symlinks: true,
                        ..parts.clone()
                    },
                ),
            ] {
                assert_eq!(
                    with.approval().unwrap_err(),
                    RuleError::OwnSerialization {
                        approval,
                        given: vec![setting]
                    }
                );
            }
        }
        let sharded_list = ApprovalParts {
            check: Some("SUMS".into()),
            shard_size: Some(4096),
            ..ApprovalParts::default()
        };
        assert_eq!(
            sharded_list.approval().unwrap_err(),
            RuleError::ShardSizeWithCheckList
        );
        let sharded_pin = ApprovalParts {
            manifest_digest: Some(sha256()),
            shard_size: Some(4096),
            allow_symlinks: true,
            ..ApprovalParts::default()
        };
        let Approval::Pinned { pin, serialization } = sharded_pin.approval().unwrap() else {
            panic!("a pin")
        };
        assert!(matches!(pin, Pin::Manifest(_)));
        assert!(serialization.allow_symlinks);
        let blake3_shards = ApprovalParts {
            algorithm: Some(Algorithm::Blake3),
            ..sharded_pin
        };
        assert!(matches!(
            blake3_shards.approval().unwrap_err(),
            RuleError::Serialization(_)
        ));
    }

    #[test]
    fn a_pin_is_sha256_hex() {
        let pin = |digest: &str| {
            ApprovalParts {
                digest: Some(digest.into()),
                ..ApprovalParts::default()
            }
            .approval()
        };
        assert!(matches!(
            pin(&sha256()).unwrap(),
            Approval::Pinned {
                pin: Pin::Root(_),
                ..
            }
        ));
        assert!(matches!(
            pin("ab12").unwrap_err(),
            RuleError::Digest {
                setting: Setting::Digest,
                ..
            }
        ));
        assert_eq!(
            pin(&format!("blake3:{}", "ab".repeat(32))).unwrap_err(),
            RuleError::NotSha256(Setting::Digest)
        );
    }

    #[test]
    fn trust_goes_with_a_signature_and_is_one_kind() {
        let pinned_with_key = ApprovalParts {
            digest: Some(sha256()),
            trust: keyed(),
            ..ApprovalParts::default()
        };
        assert_eq!(
            pinned_with_key.approval().unwrap_err(),
            RuleError::TrustWithoutSignature
        );
        let signed = |trust: TrustParts| {
            ApprovalParts {
                signature: Some("model.sig".into()),
                trust,
                ..ApprovalParts::default()
            }
            .approval()
        };
        assert_eq!(
            signed(TrustParts::default()).unwrap_err(),
            RuleError::NotOneTrust
        );
        assert_eq!(
            signed(TrustParts {
                issuer: Some("https://issuer.example".into()),
                ..keyed()
            })
            .unwrap_err(),
            RuleError::NotOneTrust
        );
        assert_eq!(
            signed(TrustParts {
                identity: Some("a@example.com".into()),
                ..TrustParts::default()
            })
            .unwrap_err(),
            RuleError::NoIssuer
        );
        assert_eq!(
            signed(TrustParts {
                identity: Some("a@example.com".into()),
                issuer: Some("https://issuer.example".into()),
                issuer_regexp: Some("https://.*".into()),
                ..TrustParts::default()
            })
            .unwrap_err(),
            RuleError::IssuerAndPattern
        );
        let Approval::Signature { trust, .. } = signed(TrustParts {
            identity: Some("a@example.com".into()),
            issuer_regexp: Some("https://.*".into()),
            ..TrustParts::default()
        })
        .unwrap() else {
            panic!("a signature")
        };
        assert!(matches!(
            trust,
            TrustSpec::Keyless { issuer: IdentitySpec::Pattern(p), .. } if p == "https://.*"
        ));
        assert_eq!(
            signed(TrustParts {
                allow_partial_chain: true,
                ..keyed()
            })
            .unwrap_err(),
            RuleError::AllowPartialChainWithoutChain
        );
        let Approval::Signature { trust, .. } = signed(keyed()).unwrap() else {
            panic!("a signature")
        };
        assert!(matches!(trust, TrustSpec::Key(path) if path == std::path::Path::new("pub.pem")));
    }

    #[test]
    fn a_registry_version_keeps_a_manifest_or_with_trust_a_signature() {
        let kept = |trust: TrustParts| ApprovalParts {
            registry: Some("models:/fraud@production".into()),
            tracking_uri: Some("http://127.0.0.1:5000".into()),
            trust,
            ..ApprovalParts::default()
        };
        let Approval::Manifest(Locator::Registry(locator)) =
            kept(TrustParts::default()).approval().unwrap()
        else {
            panic!("a manifest kept in the registry")
        };
        assert_eq!(locator.model.to_string(), "models:/fraud@production");
        assert_eq!(
            locator.tracking_uri.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert!(matches!(
            kept(keyed()).approval().unwrap(),
            Approval::Signature {
                bundle: Locator::Registry(_),
                trust: TrustSpec::Key(_)
            }
        ));
        let two = ApprovalParts {
            manifest: Some("m.json".into()),
            ..kept(TrustParts::default())
        };
        assert_eq!(
            two.approval().unwrap_err(),
            RuleError::MoreThanOne(vec![Setting::Manifest, Setting::Registry])
        );
        let sharded = ApprovalParts {
            shard_size: Some(4096),
            ..kept(TrustParts::default())
        };
        assert!(matches!(
            sharded.approval().unwrap_err(),
            RuleError::OwnSerialization {
                approval: Setting::Registry,
                ..
            }
        ));
        let stray = ApprovalParts {
            tracking_uri: Some("http://127.0.0.1:5000".into()),
            manifest: Some("m.json".into()),
            ..ApprovalParts::default()
        };
        assert_eq!(
            stray.approval().unwrap_err(),
            RuleError::TrackingUriWithoutRegistry
        );
        let bad = ApprovalParts {
            registry: Some("fraud/3".into()),
            ..ApprovalParts::default()
        };
        let error = bad.approval().unwrap_err();
        assert!(matches!(error, RuleError::ModelUri(_)), "{error:?}");
        assert!(
            error.to_string().starts_with("registry: fraud/3"),
            "{error}"
        );
    }

    #[test]
    fn an_image_takes_a_pin_and_a_manifest_or_a_signature() {
        let signed = ImageApprovalParts {
            digest: Some(sha256()),
            signature: Some("model.sig".into()),
            trust: keyed(),
            ..ImageApprovalParts::default()
        };
        let approval = signed.approval().unwrap();
        assert_eq!(approval.pinned.unwrap().prefixed(), sha256());
        assert!(matches!(approval.files, Some(Approval::Signature { .. })));
        let both = ImageApprovalParts {
            manifest: Some("m.json".into()),
            ..signed.clone()
        };
        assert_eq!(
            both.approval().unwrap_err(),
            RuleError::MoreThanOne(vec![Setting::Manifest, Setting::Signature])
        );
        let no_trust = ImageApprovalParts {
            trust: TrustParts::default(),
            ..signed.clone()
        };
        assert_eq!(no_trust.approval().unwrap_err(), RuleError::NotOneTrust);
        assert!(approval.signers.is_none(), "the key is the OMS signature's");
        let bad_pin = ImageApprovalParts {
            digest: Some("md5:00".into()),
            ..signed
        };
        assert!(matches!(
            bad_pin.approval().unwrap_err(),
            RuleError::Digest {
                setting: Setting::Digest,
                ..
            }
        ));
        let nothing = ImageApprovalParts::default().approval().unwrap();
        assert!(nothing.pinned.is_none() && nothing.files.is_none() && nothing.signers.is_none());
    }

    #[test]
    fn a_key_without_a_signature_is_the_images_cosign_key_policy() {
        let keyed_image = ImageApprovalParts {
            manifest: Some("m.json".into()),
            trust: keyed(),
            ..ImageApprovalParts::default()
        };
        let approval = keyed_image.approval().unwrap();
        assert!(matches!(approval.files, Some(Approval::Manifest(_))));
        assert_eq!(
            approval.signers,
            Some(ImageSigners::CosignKey {
                key: "pub.pem".into(),
                repository: None,
                trusted_root: None,
            })
        );
        let named = ImageApprovalParts {
            signed_repository: Some("127.0.0.1:5000/team/app".into()),
            ..keyed_image.clone()
        };
        assert_eq!(
            named.approval().unwrap().signers,
            Some(ImageSigners::CosignKey {
                key: "pub.pem".into(),
                repository: Some("127.0.0.1:5000/team/app".into()),
                trusted_root: None,
            })
        );
        for bad in [
            "app",
            "docker://h/app",
            "h/app:v1",
            "h/app@sha256:00",
            "h//app",
            "/app",
        ] {
            let parts = ImageApprovalParts {
                signed_repository: Some(bad.into()),
                ..keyed_image.clone()
            };
            assert_eq!(
                parts.approval().unwrap_err(),
                RuleError::SignedRepository(bad.into()),
                "{bad}"
            );
        }
        let rooted = ImageApprovalParts {
            trust: TrustParts {
                trusted_root: Some("root.json".into()),
                ..keyed()
            },
            ..ImageApprovalParts::default()
        };
        assert!(matches!(
            rooted.approval().unwrap().signers,
            Some(ImageSigners::CosignKey {
                trusted_root: Some(_),
                ..
            })
        ));
        let unkeyed = ImageApprovalParts {
            signed_repository: Some("h/app".into()),
            ..ImageApprovalParts::default()
        };
        assert_eq!(
            unkeyed.approval().unwrap_err(),
            RuleError::SignedRepositoryWithoutKey
        );
        let parts = ImageApprovalParts {
            trust: TrustParts {
                issuer: Some("https://issuer.example".into()),
                ..keyed()
            },
            ..ImageApprovalParts::default()
        };
        assert_eq!(parts.approval().unwrap_err(), RuleError::ImageTrust);
    }

    #[test]
    fn an_identity_without_a_signature_is_the_images_cosign_certificate_policy() {
        let image = |trust: TrustParts| {
            ImageApprovalParts {
                trust,
                signed_repository: Some("h/app".into()),
                ..ImageApprovalParts::default()
            }
            .approval()
            .map(|a| a.signers)
        };
        let identity = || TrustParts {
            identity: Some("a@example.com".into()),
            ..TrustParts::default()
        };
        // Keyless: an issuer is required; the trusted root is optional.
        assert_eq!(
            image(TrustParts {
                issuer_regexp: Some("https://.*".into()),
                trusted_root: Some("root.json".into()),
                ..identity()
            })
            .unwrap(),
            Some(ImageSigners::CosignCertificate {
                identity: IdentitySpec::Exact("a@example.com".into()),
                issuer: Some(IdentitySpec::Pattern("https://.*".into())),
                roots: CertificateRoots::TrustedRoot(Some("root.json".into())),
                repository: Some("h/app".into()),
                attestation_type: None,
            })
        );
        assert_eq!(image(identity()).unwrap_err(), RuleError::NoIssuer);
        // A private PKI: the chain, an issuer optional, no trusted root.
        let chained = || TrustParts {
            certificate_chain: vec!["roots.pem".into(), "intermediates.pem".into()],
            allow_partial_chain: true,
            ..identity()
        };
        assert_eq!(
            image(chained()).unwrap(),
            Some(ImageSigners::CosignCertificate {
                identity: IdentitySpec::Exact("a@example.com".into()),
                issuer: None,
                roots: CertificateRoots::Chain {
                    paths: vec!["roots.pem".into(), "intermediates.pem".into()],
                    allow_partial: true,
                },
                repository: Some("h/app".into()),
                attestation_type: None,
            })
        );
        assert_eq!(
            image(TrustParts {
                trusted_root: Some("root.json".into()),
                ..chained()
            })
            .unwrap_err(),
            RuleError::MoreThanOne(vec![Setting::CertificateChain, Setting::TrustedRoot])
        );
        // Each rule of the identity and the issuer.
        for (trust, error) in [
            (
                TrustParts {
                    certificate_chain: vec!["roots.pem".into()],
                    ..TrustParts::default()
                },
                RuleError::NoIdentity,
            ),
            (
                TrustParts {
                    issuer: Some("https://issuer.example".into()),
                    ..TrustParts::default()
                },
                RuleError::NoIdentity,
            ),
            (
                TrustParts {
                    identity_regexp: Some(".*".into()),
                    issuer: Some("https://issuer.example".into()),
                    ..identity()
                },
                RuleError::IdentityAndPattern,
            ),
            (
                TrustParts {
                    issuer: Some("https://issuer.example".into()),
                    issuer_regexp: Some(".*".into()),
                    ..identity()
                },
                RuleError::IssuerAndPattern,
            ),
            (
                TrustParts {
                    issuer: Some("https://issuer.example".into()),
                    allow_partial_chain: true,
                    ..identity()
                },
                RuleError::AllowPartialChainWithoutChain,
            ),
            (
                TrustParts {
                    identity: Some("a@example.com".into()),
                    ..keyed()
                },
                RuleError::ImageTrust,
            ),
            (
                TrustParts {
                    trusted_root: Some("root.json".into()),
                    ..TrustParts::default()
                },
                RuleError::ImageTrust,
            ),
        ] {
            assert_eq!(image(trust.clone()).unwrap_err(), error, "{trust:?}");
        }
    }

    #[test]
    fn a_trust_policy_and_store_are_notations_policy_and_no_other_beside_it() {
        let notation = ImageApprovalParts {
            digest: Some(sha256()),
            manifest: Some("m.json".into()),
            trust_policy: Some("trustpolicy.json".into()),
            trust_store: Some("store".into()),
            ..ImageApprovalParts::default()
        };
        let approval = notation.approval().unwrap();
        assert_eq!(
            approval.signers,
            Some(ImageSigners::Notation {
                trust_policy: "trustpolicy.json".into(),
                trust_store: "store".into(),
            })
        );
        assert!(approval.pinned.is_some());
        assert!(matches!(approval.files, Some(Approval::Manifest(_))));
        let alone = ImageApprovalParts {
            trust_store: None,
            ..notation.clone()
        };
        assert_eq!(
            alone.approval().unwrap_err(),
            RuleError::TrustPolicyAndStore
        );
        let keyed = ImageApprovalParts {
            trust: keyed(),
            ..notation.clone()
        };
        assert_eq!(
            keyed.approval().unwrap_err(),
            RuleError::MoreThanOne(vec![Setting::TrustPolicy, Setting::Key])
        );
        let named = ImageApprovalParts {
            signed_repository: Some("h/app".into()),
            ..notation
        };
        assert_eq!(
            named.approval().unwrap_err(),
            RuleError::SignedRepositoryWithoutKey
        );
    }
}
