//! An image's own signatures under a signature policy: every signature attached to the
//! digest the reference resolved to is checked, and the image passes when at least one
//! satisfies the policy (as cosign, or Notation, decides). The report names each
//! signature: those that count as `ok` subjects, the others (with why) as `rejected`
//! subjects when none counts, else as warnings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sigstore_trust_root::{TrustedRoot, SIGSTORE_PRODUCTION_TRUSTED_ROOT};

use crate::approval::{CertificateRoots, IdentitySpec, ImageSigners};
use crate::error::{Error, Result};
use crate::fsio::read_input;
use crate::hash::Digest;
use crate::oci::document::Descriptor;
use crate::oci::referrers::{cosign_signature_tag, discover, Attached, Discovery, Place};
use crate::oci::{Connection, ImageRef};
use crate::report::{Report, Subject, Verdict};
use crate::sign::bundle::BUNDLE_MEDIA_TYPE;
use crate::sign::cosign::{
    decode_base64, names_repository, verify_simple_signing, CosignKey, Refusal as CosignRefusal,
    SIGNATURE_ANNOTATION, SIMPLE_SIGNING,
};
use crate::sign::fulcio::{
    check_signer, read_signer, read_signer_der, seconds, CertificateAnchors, SignerCertificate,
    SignerRules, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION,
};
use crate::sign::keyless::{
    verify_json_digest, IdentityRule, IssuerRule, KeylessFailure, KeylessPolicy,
};
use crate::sign::notation::policy::{Action, Enforcement, Statement, TrustPolicy};
use crate::sign::notation::{
    check_target, read_named_store, verify_cose, verify_jws, Anchors, Examined, Refusal,
    StoreError, TargetArtifact,
};
use crate::sign::rekor::{
    read_trusted_root, verify_set, LoggedSigner, RekorLogs, BUNDLE_ANNOTATION,
};
use crate::sign::x509::pem_certificates;
use crate::sign::{
    verify_certified_bundle_of_digest, verify_key_bundle_of_digest, DetachedFailure,
    COSIGN_SIGN_PREDICATE,
};

/// A loaded image signature policy.
#[derive(Debug)]
pub enum Policy {
    Key(KeyPolicy),
    Certificate(CertificatePolicy),
    Notation(NotationPolicy),
}

impl Policy {
    /// Reads what the policy names: a malformed key, trust policy or trust store is an
    /// input error naming the file.
    pub fn load(signers: &ImageSigners, reference: &ImageRef) -> Result<Policy> {
        match signers {
            ImageSigners::CosignKey {
                key,
                repository,
                trusted_root,
            } => KeyPolicy::load(
                key,
                repository.as_deref(),
                trusted_root.as_deref(),
                reference,
            )
            .map(Policy::Key),
            ImageSigners::CosignCertificate {
                identity,
                issuer,
                roots,
                repository,
                attestation_type,
            } => CertificatePolicy::load(
                identity,
                issuer.as_ref(),
                roots,
                repository.as_deref(),
                attestation_type.as_deref(),
                reference,
            )
            .map(Policy::Certificate),
            ImageSigners::Notation {
                trust_policy,
                trust_store,
            } => NotationPolicy::load(trust_policy, trust_store, reference).map(Policy::Notation),
        }
    }

    /// The policy in words, for a report's approval line.
    pub fn describe(&self) -> String {
        match self {
            Policy::Key(policy) => policy.describe(),
            Policy::Certificate(policy) => policy.describe(),
            Policy::Notation(policy) => policy.describe(),
        }
    }
}

/// The artifact type of a Notation signature.
pub const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";

/// A loaded Notation trust policy: the statement that applies to the reference, and the
/// certificates of the stores it names.
#[derive(Debug)]
pub struct NotationPolicy {
    policy_file: PathBuf,
    statement: Statement,
    enforcement: Enforcement,
    anchors: Anchors,
}

impl NotationPolicy {
    /// Reads the trust policy, chooses its statement for `reference`'s repository (an image
    /// layout has none: only the `*` statement applies) and reads the stores it names from
    /// `trust_store`. A malformed document, a reference no statement covers, the level
    /// `skip` and a missing or malformed store are input errors naming the file.
    pub fn load(
        trust_policy: &Path,
        trust_store: &Path,
        reference: &ImageRef,
    ) -> Result<NotationPolicy> {
        let document = TrustPolicy::parse(&read_input(trust_policy)?)
            .map_err(|e| Error::input(trust_policy, e))?;
        let repository = match reference {
            ImageRef::Registry(image) => Some(format!("{}/{}", image.host, image.repository)),
            ImageRef::Layout(_) => None,
        };
        let shown = repository
            .clone()
            .unwrap_or_else(|| "an image layout (which names no repository)".to_string());
        let statement = document
            .applicable(repository.as_deref())
            .ok_or_else(|| {
                Error::input(
                    trust_policy,
                    format!(
                        "no trust policy statement applies to {shown}: none has it in its registryScopes, and none has the scope '*'"
                    ),
                )
            })?
            .clone();
        let Some(enforcement) = statement.enforcement else {
            return Err(Error::input(
                trust_policy,
                format!(
                    "the statement {:?}, which applies to {shown}, has the level skip: it verifies nothing, and vouch refuses it (unlike Notation, which passes the image unchecked)",
                    statement.name
                ),
            ));
        };
        let mut anchors = Anchors::default();
        for store in &statement.stores {
            let certificates = read_named_store(trust_store, store)
                .map_err(|StoreError::Bad { path, detail }| Error::input(path, detail))?;
            match store.kind.as_str() {
                "ca" => anchors.ca.extend(certificates),
                "signingAuthority" => anchors.signing_authority.extend(certificates),
                _ => {
                    anchors.tsa.extend(certificates);
                    anchors.timestamps = Some(statement.verify_timestamp);
                }
            }
        }
        Ok(NotationPolicy {
            policy_file: trust_policy.to_path_buf(),
            statement,
            enforcement,
            anchors,
        })
    }

    /// The policy in words, for a report's approval line.
    pub fn describe(&self) -> String {
        format!(
            "a Notation signature under the trust policy {} (statement {:?}, level {})",
            self.policy_file.display(),
            self.statement.name,
            self.statement.level
        )
    }
}

/// A loaded cosign key policy.
#[derive(Debug)]
pub struct KeyPolicy {
    key: CosignKey,
    key_file: PathBuf,
    /// The repository a signature must name; `None`: not checked.
    repository: Option<String>,
    /// The logs whose signed entry timestamps are checked, where a signature has one.
    rekor: RekorLogs,
    /// The trusted root a bundle's log entries are checked against (`None`: the shipped
    /// public-good one).
    trusted_root: Option<TrustedRoot>,
}

/// The name of the subject that says why no signature counts.
pub const NO_SIGNATURE_SUBJECT: &str = "image signature";

impl KeyPolicy {
    /// Reads the key (a malformed one is an input error naming the file); the repository is
    /// the one given, else `reference`'s (an image layout has none).
    fn load(
        key: &Path,
        repository: Option<&str>,
        trusted_root: Option<&Path>,
        reference: &ImageRef,
    ) -> Result<KeyPolicy> {
        let parsed = CosignKey::from_pem(&read_input(key)?)
            .map_err(|e| Error::input(key, format!("not a cosign public key: {e}")))?;
        let repository = signed_repository(repository, reference);
        let root = load_trusted_root(trusted_root)?;
        let rekor = RekorLogs::of(&root);
        Ok(KeyPolicy {
            trusted_root: trusted_root.map(|_| root),
            ..KeyPolicy::new(parsed, key, repository, rekor)
        })
    }

    pub fn new(
        key: CosignKey,
        key_file: &Path,
        repository: Option<String>,
        rekor: RekorLogs,
    ) -> KeyPolicy {
        KeyPolicy {
            key,
            key_file: key_file.to_path_buf(),
            repository,
            rekor,
            trusted_root: None,
        }
    }

    /// The policy in words, for a report's approval line.
    pub fn describe(&self) -> String {
        let mut text = format!("a cosign signature by the key {}", self.key_file.display());
        if let Some(repository) = &self.repository {
            text.push_str(&format!(" naming {repository}"));
        }
        text
    }
}

/// The repository a signature must name: the one given, else `reference`'s (an image
/// layout has none).
fn signed_repository(given: Option<&str>, reference: &ImageRef) -> Option<String> {
    given.map(str::to_string).or_else(|| match reference {
        ImageRef::Registry(image) => Some(format!("{}/{}", image.host, image.repository)),
        ImageRef::Layout(_) => None,
    })
}

/// The trusted root at `path`, else the shipped public-good one; a malformed one is an
/// input error naming the file.
fn load_trusted_root(path: Option<&Path>) -> Result<TrustedRoot> {
    let text = trusted_root_text(path)?;
    read_trusted_root(&text).map_err(|e| Error::input(trusted_root_name(path), e))
}

/// The text of the trusted root at `path`, else of the shipped public-good one.
fn trusted_root_text(path: Option<&Path>) -> Result<String> {
    match path {
        Some(path) => String::from_utf8(read_input(path)?)
            .map_err(|_| Error::input(path, "is not UTF-8 JSON")),
        None => Ok(SIGSTORE_PRODUCTION_TRUSTED_ROOT.to_string()),
    }
}

fn trusted_root_name(path: Option<&Path>) -> &Path {
    path.unwrap_or(Path::new("<built-in trusted root>"))
}

/// A loaded cosign certificate policy: who must have signed, and what the signer's
/// certificate must chain to.
#[derive(Debug)]
pub struct CertificatePolicy {
    rules: SignerRules,
    anchors: CertificateAnchors,
    /// The same signer and trusted root, for Sigstore bundle referrers (keyless only).
    bundles: Option<Box<KeylessPolicy>>,
    /// `--attestation-type`: attestations of this predicate type count, not signatures.
    attestation: Option<String>,
    /// The trusted root or certificate files, for the report.
    source: String,
    repository: Option<String>,
}

impl CertificatePolicy {
    /// Reads the trusted root (or the shipped one) or the PKI's certificate files, and
    /// compiles the identity and issuer patterns; a malformed file is an input error
    /// naming it, a bad pattern a usage error.
    fn load(
        identity: &IdentitySpec,
        issuer: Option<&IdentitySpec>,
        roots: &CertificateRoots,
        repository: Option<&str>,
        attestation: Option<&str>,
        reference: &ImageRef,
    ) -> Result<CertificatePolicy> {
        let rules = SignerRules {
            identity: identity.identity_rule()?,
            issuer: issuer.map(IdentitySpec::issuer_rule).transpose()?,
        };
        let mut bundles = None;
        let (anchors, source) = match roots {
            CertificateRoots::TrustedRoot(path) => {
                let path = path.as_deref();
                if let Some(issuer) = issuer {
                    let text = trusted_root_text(path)?;
                    bundles = Some(Box::new(
                        KeylessPolicy::new(
                            identity.identity_rule()?,
                            issuer.issuer_rule()?,
                            Some(&text),
                        )
                        .map_err(|e| Error::input(trusted_root_name(path), e.to_string()))?,
                    ));
                }
                (
                    CertificateAnchors::fulcio(&load_trusted_root(path)?),
                    match path {
                        Some(path) => format!("the trusted root {}", path.display()),
                        None => "the shipped Sigstore public-good trusted root".to_string(),
                    },
                )
            }
            CertificateRoots::Chain {
                paths,
                allow_partial,
            } => {
                let mut certificates = Vec::new();
                for path in paths {
                    certificates.extend(
                        pem_certificates(&read_input(path)?)
                            .map_err(|e| Error::input(path, e.to_string()))?,
                    );
                }
                let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                (
                    CertificateAnchors::Pki {
                        certificates,
                        allow_partial: *allow_partial,
                    },
                    format!("the certificates of {}", shown.join(", ")),
                )
            }
        };
        Ok(CertificatePolicy {
            bundles,
            attestation: attestation.map(str::to_string),
            ..CertificatePolicy::new(
                rules,
                anchors,
                source,
                signed_repository(repository, reference),
            )
        })
    }

    /// The signer's certificate this policy trusted, in words: its names, its issuer, and
    /// what it chained to.
    fn signed_by(&self, signer: &SignerCertificate) -> String {
        let issuer = signer
            .issuer
            .as_deref()
            .map(|i| format!(" from {i}"))
            .unwrap_or_default();
        format!(
            "a certificate for {}{issuer}, chained to {}",
            signer.names.join(", "),
            self.source
        )
    }

    /// A policy without a Sigstore verifier: under Fulcio anchors no bundle referrer counts
    /// (a private PKI's still do).
    pub fn new(
        rules: SignerRules,
        anchors: CertificateAnchors,
        source: String,
        repository: Option<String>,
    ) -> CertificatePolicy {
        CertificatePolicy {
            rules,
            anchors,
            bundles: None,
            attestation: None,
            source,
            repository,
        }
    }

    /// The policy in words, for a report's approval line.
    pub fn describe(&self) -> String {
        let identity = match &self.rules.identity {
            IdentityRule::Exact(identity) => identity.clone(),
            IdentityRule::Pattern(pattern) => format!("an identity matching {}", pattern.as_str()),
        };
        let issuer = match &self.rules.issuer {
            Some(IssuerRule::Exact(issuer)) => format!(" from {issuer}"),
            Some(IssuerRule::Pattern(pattern)) => {
                format!(" from an issuer matching {}", pattern.as_str())
            }
            None => String::new(),
        };
        let what = match &self.attestation {
            Some(predicate) => format!("a cosign attestation of {predicate}"),
            None => "a cosign signature".to_string(),
        };
        let mut text = format!(
            "{what} by a certificate for {identity}{issuer}, chained to {}",
            self.source
        );
        if let CertificateAnchors::Pki { .. } = self.anchors {
            text.push_str(" (a private PKI: no transparency log required)");
        }
        if let Some(repository) = &self.repository {
            text.push_str(&format!(" naming {repository}"));
        }
        text
    }
}

/// Finds the signatures of `resolved` (what `reference` resolved to) in the repository or
/// layout of `reference` and adds what [`judge`] or [`judge_notation`] makes of them to
/// `report`.
pub fn check_signatures(
    reference: &ImageRef,
    connection: &Connection,
    resolved: &Descriptor,
    policy: &Policy,
    report: &mut Report,
) -> Result<()> {
    let discovery = discover(reference, connection, &resolved.digest)?;
    let repository = match policy {
        Policy::Key(policy) => {
            judge(&discovery, &resolved.digest, policy, report);
            &policy.repository
        }
        Policy::Certificate(policy) => {
            judge_certified(
                &discovery,
                &resolved.digest,
                policy,
                SystemTime::now(),
                report,
            );
            &policy.repository
        }
        Policy::Notation(policy) => {
            judge_notation(&discovery, resolved, policy, SystemTime::now(), report);
            return Ok(());
        }
    };
    if repository.is_none() {
        report.warnings.push(
            "an image layout names no repository, so the repository a signature names \
             (critical.identity.docker-reference) was not checked; give it with --signed-repository \
             (signed_repository in vouch.toml) to check it"
                .to_string(),
        );
    }
    Ok(())
}

/// Why a signature does not count.
enum Refused {
    /// It was checked and refused.
    Rejected(String),
    /// It could not be read.
    Unreadable(String),
}

/// One signature found, and what the policy made of it.
struct Judged {
    name: String,
    outcome: std::result::Result<String, Refused>,
}

/// Checks every signature `discovery` holds against `policy` and the `resolved` digest,
/// and adds one subject per signature (or, when one counts, warnings for the others) to
/// `report`, and a rejected subject when none counts.
pub fn judge(discovery: &Discovery, resolved: &Digest, policy: &KeyPolicy, report: &mut Report) {
    judge_cosign(discovery, resolved, Cosign::Key(policy), report);
}

/// As [`judge`], under a certificate policy; a private PKI's certificates are judged at
/// `now`.
pub fn judge_certified(
    discovery: &Discovery,
    resolved: &Digest,
    policy: &CertificatePolicy,
    now: SystemTime,
    report: &mut Report,
) {
    judge_cosign(
        discovery,
        resolved,
        Cosign::Certificate(policy, now),
        report,
    );
}

/// A cosign policy: a key, or a certificate's signer (with the time a private PKI is
/// judged at).
#[derive(Clone, Copy)]
enum Cosign<'a> {
    Key(&'a KeyPolicy),
    Certificate(&'a CertificatePolicy, SystemTime),
}

impl Cosign<'_> {
    /// The predicate type an attestation must have to count, when attestations (not
    /// signatures) are what counts.
    fn attestation(&self) -> Option<&str> {
        match self {
            Cosign::Key(_) => None,
            Cosign::Certificate(policy, _) => policy.attestation.as_deref(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Cosign::Key(policy) => policy.describe(),
            Cosign::Certificate(policy, _) => policy.describe(),
        }
    }
}

fn judge_cosign(discovery: &Discovery, resolved: &Digest, policy: Cosign, report: &mut Report) {
    let judged = discovery
        .attached
        .iter()
        .flat_map(|attached| judge_attached(attached, resolved, policy))
        .collect();
    conclude(judged, discovery, resolved, &policy.describe(), report);
}

/// As [`judge`], under a Notation trust policy at time `now`: a signature counts when its
/// envelope holds under the statement's level and names `resolved` (digest, size and
/// media type); what the level only logs is said in its subject and in a warning.
pub fn judge_notation(
    discovery: &Discovery,
    resolved: &Descriptor,
    policy: &NotationPolicy,
    now: SystemTime,
    report: &mut Report,
) {
    let target = TargetArtifact {
        media_type: resolved.media_type.clone(),
        digest: resolved.digest.prefixed(),
        size: resolved.size,
    };
    let (judged, logged): (Vec<Judged>, Vec<Vec<Refusal>>) = discovery
        .attached
        .iter()
        .map(|attached| judge_notation_attached(attached, &target, policy, now))
        .unzip();
    for (j, logged) in judged.iter().zip(&logged) {
        if !logged.is_empty() {
            report.warnings.push(format!(
                "{} counted although Notation's level {} only logged that {}",
                j.name,
                policy.statement.level,
                join(logged, "; ")
            ));
        }
    }
    // When every signature that counts failed a validation the level only logs, the
    // approval line says which, so that no summary says "verified" over it alone.
    let mut description = policy.describe();
    let counted: Vec<&Vec<Refusal>> = judged
        .iter()
        .zip(&logged)
        .filter(|(j, _)| j.outcome.is_ok())
        .map(|(_, l)| l)
        .collect();
    if let Some(first) = counted
        .first()
        .filter(|_| counted.iter().all(|l| !l.is_empty()))
    {
        let failed: Vec<&str> = first.iter().map(Refusal::validation).collect();
        description.push_str(&format!(
            "; the signature that counted did NOT pass {}, which this level only logs",
            failed.join(" and ")
        ));
    }
    conclude(judged, discovery, &resolved.digest, &description, report);
}

/// Where a counted Notation signature's message says what failed and was only logged.
const LOGGED: &str = "; NOT verified, only logged at this level: ";

fn join(refusals: &[Refusal], separator: &str) -> String {
    refusals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(separator)
}

/// One attached artifact under a Notation policy.
fn judge_notation_attached(
    attached: &Attached,
    target: &TargetArtifact,
    policy: &NotationPolicy,
    now: SystemTime,
) -> (Judged, Vec<Refusal>) {
    let places: Vec<String> = attached.found.iter().map(ToString::to_string).collect();
    let kind = attached
        .artifact_type
        .as_deref()
        .unwrap_or("untyped artifact");
    if kind != NOTATION_SIGNATURE {
        let judged = Judged {
            name: format!("attached artifact {} ({kind})", attached.digest),
            outcome: Err(Refused::Rejected(format!(
                "found by the {}; a Notation trust policy counts only Notation signatures ({NOTATION_SIGNATURE})",
                places.join(" and ")
            ))),
        };
        return (judged, Vec::new());
    }
    let name = format!("Notation signature {}", attached.digest);
    let outcome = match attached.layers.as_slice() {
        [layer] => match (layer.descriptor.media_type.as_str(), &layer.bytes) {
            (_, Err(why)) => Err(Refused::Unreadable(why.clone())),
            ("application/jose+json", Ok(envelope)) => {
                judge_envelope(verify_jws, envelope, target, policy, now)
                    .map_err(Refused::Rejected)
            }
            ("application/cose", Ok(envelope)) => {
                judge_envelope(verify_cose, envelope, target, policy, now)
                    .map_err(Refused::Rejected)
            }
            (other, Ok(_)) => Err(Refused::Rejected(format!(
                "integrity: its layer is {other:?}, not a JWS (application/jose+json) or COSE (application/cose) envelope"
            ))),
        },
        layers => Err(Refused::Rejected(format!(
            "integrity: a Notation signature has one layer, its envelope; this one has {}",
            layers.len()
        ))),
    };
    let (outcome, logged) = match outcome {
        Ok((text, logged)) => (Ok(text), logged),
        Err(refused) => (Err(refused), Vec::new()),
    };
    (Judged { name, outcome }, logged)
}

/// An envelope (JWS or COSE, as `verify` reads) under the policy: the reason it is
/// refused, or what held and the failures that were only logged.
fn judge_envelope(
    verify: fn(&[u8], &Anchors, SystemTime) -> std::result::Result<Examined, Refusal>,
    envelope: &[u8],
    target: &TargetArtifact,
    policy: &NotationPolicy,
    now: SystemTime,
) -> std::result::Result<(String, Vec<Refusal>), String> {
    let mut examined = verify(envelope, &policy.anchors, now).map_err(|r| r.to_string())?;
    if examined.authenticity.is_none() {
        examined.authenticity = policy.statement.identities.admit(&examined.subject).err();
    }
    let logged = examined
        .decide(&policy.enforcement)
        .map_err(|r| r.to_string())?;
    check_target(&examined, target).map_err(|r| r.to_string())?;
    let mut held = vec!["integrity", "its target"];
    let checks = [
        (
            "authenticity",
            &examined.authenticity,
            policy.enforcement.authenticity,
        ),
        ("expiry", &examined.expiry, policy.enforcement.expiry),
        (
            "the authentic timestamp",
            &examined.authentic_timestamp,
            policy.enforcement.authentic_timestamp,
        ),
        (
            "revocation",
            &examined.revocation,
            policy.enforcement.revocation,
        ),
    ];
    for (what, failure, action) in checks {
        if failure.is_none() && action != Action::Skip {
            held.push(what);
        }
    }
    let mut text = format!(
        "signed by {} ({}); under statement {:?} (level {}) these hold: {}",
        examined.subject,
        examined.signing_scheme,
        policy.statement.name,
        policy.statement.level,
        held.join(", ")
    );
    if examined.revocation.is_none() && policy.enforcement.revocation != Action::Skip {
        text.push_str(" (no certificate names an OCSP or CRL endpoint)");
    }
    if policy.enforcement.revocation == Action::Skip {
        text.push_str("; revocation is skipped by the policy");
    }
    if !logged.is_empty() {
        text.push_str(LOGGED);
        text.push_str(&join(&logged, "; "));
    }
    Ok((text, logged))
}

/// Adds one subject per judged signature (or, when one counts, warnings for the others)
/// to `report`, and a rejected subject when none counts; `description` is the policy's.
fn conclude(
    mut judged: Vec<Judged>,
    discovery: &Discovery,
    resolved: &Digest,
    description: &str,
    report: &mut Report,
) {
    judged.extend(discovery.unreadable.iter().map(|message| Judged {
        name: "attached artifact".to_string(),
        outcome: Err(Refused::Unreadable(message.clone())),
    }));
    report.approval = match report.approval.as_str() {
        "" => description.to_string(),
        before => format!("{before}, {description}"),
    };
    if judged.iter().any(|j| j.outcome.is_ok()) {
        for Judged { name, outcome } in judged {
            match outcome {
                Ok(message) => report
                    .subjects
                    .push(Subject::new(name, Verdict::Ok).message(message)),
                Err(Refused::Rejected(why) | Refused::Unreadable(why)) => report
                    .warnings
                    .push(format!("{name} was not counted: {why}")),
            }
        }
        return;
    }
    let mut unreadable = false;
    let found = judged.len();
    for Judged { name, outcome } in judged {
        let subject = match outcome {
            Err(Refused::Rejected(why)) => Subject::new(name, Verdict::Rejected).message(why),
            Err(Refused::Unreadable(why)) => {
                unreadable = true;
                Subject::new(name, Verdict::Unreadable).message(why)
            }
            Ok(_) => unreachable!("no signature counts here"),
        };
        report.subjects.push(subject);
    }
    let why = if found == 0 {
        format!(
            "no signature of {resolved} was found (looked for the cosign tag {} and OCI referrers)",
            cosign_signature_tag(resolved)
        )
    } else {
        format!("{found} signature(s) of {resolved} found; none satisfies the policy")
    };
    // Only what could not be read may stand between the image and a signature that counts.
    let verdict = if unreadable {
        Verdict::Unreadable
    } else {
        Verdict::Rejected
    };
    report.subjects.push(
        Subject::new(NO_SIGNATURE_SUBJECT, verdict)
            .expected(description)
            .message(why),
    );
}

/// The signatures one attached manifest holds, judged.
fn judge_attached(attached: &Attached, resolved: &Digest, policy: Cosign) -> Vec<Judged> {
    let legacy = attached.found.iter().find_map(|place| match place {
        Place::LegacyTag(tag) => Some(tag.as_str()),
        _ => None,
    });
    match legacy {
        Some(tag) if tag.ends_with(".sig") => attached
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let name = format!(
                    "cosign signature {tag} layer {} ({})",
                    i + 1,
                    layer.descriptor.digest
                );
                let outcome = match &layer.bytes {
                    Err(why) => Err(Refused::Unreadable(why.clone())),
                    Ok(_) if policy.attestation().is_some() => Err(Refused::Rejected(format!(
                        "a signature, not an attestation of {}",
                        policy.attestation().unwrap_or_default()
                    ))),
                    Ok(payload) => match policy {
                        Cosign::Key(policy) => judge_layer(
                            &layer.descriptor.annotations,
                            &layer.descriptor.media_type,
                            payload,
                            resolved,
                            policy,
                        ),
                        Cosign::Certificate(policy, now) => judge_certified_layer(
                            &layer.descriptor.annotations,
                            &layer.descriptor.media_type,
                            payload,
                            resolved,
                            policy,
                            now,
                        ),
                    }
                    .map_err(Refused::Rejected),
                };
                Judged { name, outcome }
            })
            .collect(),
        // cosign attestations are not signatures of the image.
        Some(_) => Vec::new(),
        None => {
            let kind = attached
                .artifact_type
                .as_deref()
                .unwrap_or("untyped artifact");
            let places: Vec<String> = attached.found.iter().map(ToString::to_string).collect();
            let found = format!("found by the {}", places.join(" and "));
            let name = format!("referrer {} ({kind})", attached.digest);
            let outcome = match (kind, attached.layers.as_slice()) {
                (BUNDLE_MEDIA_TYPE, [layer]) => match &layer.bytes {
                    Err(why) => Err(Refused::Unreadable(why.clone())),
                    Ok(bytes) => judge_bundle(bytes, resolved, policy)
                        .map(|text| format!("{text}; {found}"))
                        .map_err(|why| Refused::Rejected(format!("{why}; {found}"))),
                },
                (BUNDLE_MEDIA_TYPE, layers) => Err(Refused::Rejected(format!(
                    "malformed: a Sigstore bundle referrer has one layer, the bundle; this one has {}; {found}",
                    layers.len()
                ))),
                _ => Err(Refused::Rejected(format!(
                    "{found}; not a signature: a cosign policy counts legacy .sig signatures and Sigstore bundle referrers"
                ))),
            };
            vec![Judged { name, outcome }]
        }
    }
}

/// One legacy signature layer: the signature with the key over the payload naming the
/// resolved digest (and the repository), then its Rekor SET when it carries one.
fn judge_layer(
    annotations: &BTreeMap<String, String>,
    media_type: &str,
    payload: &[u8],
    resolved: &Digest,
    policy: &KeyPolicy,
) -> std::result::Result<String, String> {
    let signature = annotations.get(SIGNATURE_ANNOTATION).map(String::as_str);
    let signed = verify_simple_signing(
        media_type,
        payload,
        signature,
        &policy.key,
        resolved,
        policy.repository.as_deref(),
    )
    .map_err(|refusal| refusal.to_string())?;
    let mut text = format!("signed by the key {}", policy.key_file.display());
    if let Some(named) = signed.docker_reference {
        text.push_str(&format!("; names {named}"));
    }
    match annotations.get(BUNDLE_ANNOTATION) {
        None => text.push_str("; no Rekor entry"),
        Some(bundle) => {
            // The signature decoded: verify_simple_signing has just checked it.
            let signature = signature.and_then(decode_base64).unwrap_or_default();
            let logged = verify_set(
                bundle,
                &policy.rekor,
                payload,
                &signature,
                LoggedSigner::Key(&policy.key),
            )
            .map_err(|refusal| refusal.to_string())?;
            let time = format_time(logged.integrated_time);
            text.push_str(&format!(
                "; logged in Rekor at index {} on {time}",
                logged.log_index
            ));
        }
    }
    Ok(text)
}

/// One legacy signature layer under a certificate policy: the signer's certificate (and
/// intermediates) from its annotations, the signature with the certificate's key over the
/// payload naming the resolved digest (and the repository); then, for Fulcio, the Rekor
/// SET logging this signature and certificate, at whose integrated time the chain is
/// judged; for a private PKI, the chain judged `now`; then the signer's identity and issuer.
fn judge_certified_layer(
    annotations: &BTreeMap<String, String>,
    media_type: &str,
    payload: &[u8],
    resolved: &Digest,
    policy: &CertificatePolicy,
    now: SystemTime,
) -> std::result::Result<String, String> {
    if media_type != SIMPLE_SIGNING {
        return Err(CosignRefusal::NotSimpleSigning(media_type.to_string()).to_string());
    }
    let certificate = annotations.get(CERTIFICATE_ANNOTATION).ok_or_else(|| {
        format!("the layer has no {CERTIFICATE_ANNOTATION} annotation: it is not signed by a certificate")
    })?;
    let signer = read_signer(certificate).map_err(|e| e.to_string())?;
    let intermediates = match annotations.get(CHAIN_ANNOTATION) {
        None => Vec::new(),
        Some(chain) => pem_certificates(chain.as_bytes())
            .map_err(|e| format!("malformed: its {CHAIN_ANNOTATION} annotation: {e}"))?,
    };
    let signature = annotations.get(SIGNATURE_ANNOTATION).map(String::as_str);
    let signed = verify_simple_signing(
        media_type,
        payload,
        signature,
        &signer.key,
        resolved,
        policy.repository.as_deref(),
    )
    .map_err(|refusal| match refusal {
        CosignRefusal::WrongKey => "the signature does not verify with its certificate's key (changed payload, or another signer)".to_string(),
        other => other.to_string(),
    })?;
    let mut text = String::new();
    let (at, what) = match &policy.anchors {
        CertificateAnchors::Fulcio { rekor, .. } => {
            let bundle = annotations.get(BUNDLE_ANNOTATION).ok_or_else(|| {
                format!(
                    "no SET: the layer has no Rekor entry ({BUNDLE_ANNOTATION}), and a Fulcio certificate \
                     is judged at the time the log vouches for (cosign refuses it too, unless told \
                     --insecure-ignore-tlog)"
                )
            })?;
            let signature = signature.and_then(decode_base64).unwrap_or_default();
            let logged = verify_set(
                bundle,
                rekor,
                payload,
                &signature,
                LoggedSigner::Certificate(&signer.der),
            )
            .map_err(|refusal| refusal.to_string())?;
            let time = format_time(logged.integrated_time);
            text.push_str(&format!(
                "; logged in Rekor at index {} on {time}",
                logged.log_index
            ));
            (
                logged.integrated_time,
                format!("the Rekor entry's integrated time {time}"),
            )
        }
        CertificateAnchors::Pki { .. } => {
            if annotations.contains_key(BUNDLE_ANNOTATION) {
                text.push_str("; its Rekor entry was not checked (a private PKI names no log)");
            }
            let at = seconds(now);
            (at, format!("the time of this check {}", format_time(at)))
        }
    };
    check_signer(
        &signer,
        &intermediates,
        &policy.anchors,
        at,
        &what,
        &policy.rules,
    )
    .map_err(|refusal| refusal.to_string())?;
    let mut head = format!("signed by {}", policy.signed_by(&signer));
    if let Some(named) = signed.docker_reference {
        head.push_str(&format!("; names {named}"));
    }
    Ok(head + &text)
}

/// Seconds since the epoch as an RFC 3339 time (the number itself when out of range).
fn format_time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

/// A Sigstore bundle referrer, verified under the cosign `policy` with the resolved digest
/// as the statement's subject (or the message digest): under a keyless policy by
/// sigstore-verify (chain, log proofs, signer), under a key by the key (and its log entries,
/// when it has them). Then it counts if it is a signature (a message signature, or a
/// statement of cosign's sign predicate), not if it is an attestation of another predicate;
/// with `--attestation-type`, only a statement of that predicate counts.
fn judge_bundle(
    bytes: &[u8],
    resolved: &Digest,
    policy: Cosign,
) -> std::result::Result<String, String> {
    let json = std::str::from_utf8(bytes).map_err(|_| "malformed: the bundle is not UTF-8 JSON")?;
    if resolved.algorithm != crate::hash::Algorithm::Sha256 {
        return Err(format!(
            "the image's digest {resolved} is not sha256, which a Sigstore bundle names"
        ));
    }
    let other_digest = || {
        format!(
            "other digest: the bundle's statement does not name the image's digest {resolved} as its subject"
        )
    };
    let (signer, repository, attestation) = match policy {
        Cosign::Key(policy) => {
            let signer = verify_key_bundle_of_digest(
                json,
                &resolved.hex(),
                &policy.key,
                policy.trusted_root.as_ref(),
            )
            .map_err(detached_refusal(&other_digest))?;
            (signer, policy.repository.as_deref(), None)
        }
        Cosign::Certificate(policy, now) => {
            let signer = match (&policy.anchors, policy.bundles.as_deref()) {
                (CertificateAnchors::Fulcio { .. }, Some(keyless)) => {
                    verify_json_digest(json, &resolved.hex(), keyless)
                        .map_err(|e| match e {
                            KeylessFailure::ArtifactMismatch(_) => other_digest(),
                            KeylessFailure::Rejected(rejection) => rejection.0,
                        })?
                        .describe()
                }
                (CertificateAnchors::Pki { .. }, _) => {
                    verify_certified_bundle_of_digest(json, &resolved.hex(), |leaf, chain| {
                        certified_signer(leaf, chain, policy, now)
                    })
                    .map_err(detached_refusal(&other_digest))?
                }
                // A Fulcio policy without its Sigstore verifier (no issuer) checks no bundle.
                (CertificateAnchors::Fulcio { .. }, None) => {
                    return Err(
                        "a Sigstore bundle is checked under a keyless policy with an issuer"
                            .to_string(),
                    )
                }
            };
            (
                signer,
                policy.repository.as_deref(),
                policy.attestation.as_deref(),
            )
        }
    };
    classify_bundle(json, &signer, resolved, repository, attestation)
}

/// Why a bundle checked against a digest does not count, in words.
fn detached_refusal(other_digest: &dyn Fn() -> String) -> impl Fn(DetachedFailure) -> String + '_ {
    move |failure| match failure {
        DetachedFailure::ArtifactMismatch(_) => other_digest(),
        DetachedFailure::Rejected(rejection) => rejection.0,
        DetachedFailure::Malformed(m) => format!("malformed: the bundle {m}"),
        DetachedFailure::Unreadable(e) => e.to_string(),
    }
}

/// A private PKI's signer of a bundle: the leaf chains (through the bundle's intermediates)
/// to the given certificates at `now`, and names the identity and issuer the policy asks.
fn certified_signer(
    leaf: &[u8],
    chain: &[Vec<u8>],
    policy: &CertificatePolicy,
    now: SystemTime,
) -> std::result::Result<String, String> {
    let signer = read_signer_der(leaf.to_vec()).map_err(|e| e.to_string())?;
    let at = seconds(now);
    let what = format!("the time of this check {}", format_time(at));
    check_signer(&signer, chain, &policy.anchors, at, &what, &policy.rules)
        .map_err(|refusal| refusal.to_string())?;
    Ok(format!(
        "{} (no log read: a private PKI names none)",
        policy.signed_by(&signer)
    ))
}

/// Whether a verified bundle by `signer` counts: a signature (a message signature, or a
/// statement of cosign's sign predicate) does, an attestation of another predicate does
/// not; with `attestation` (`--attestation-type`), only a statement of that predicate does.
/// A statement must name `repository` (when one is expected) as its subject.
fn classify_bundle(
    json: &str,
    signer: &str,
    resolved: &Digest,
    repository: Option<&str>,
    attestation: Option<&str>,
) -> std::result::Result<String, String> {
    let mut text = format!("a Sigstore bundle by {signer}");
    let statement = statement_of(json)?;
    match (repository, &statement) {
        (None, _) => {}
        (
            Some(repository),
            Some(BundleStatement {
                subject_name: Some(name),
                ..
            }),
        ) if names_repository(name, repository) => {
            text.push_str(&format!("; names {name}"));
        }
        (Some(repository), Some(BundleStatement { subject_name, .. })) => {
            return Err(format!(
                "other repository: the statement's subject is {}, not the repository {repository}",
                subject_name.as_deref().unwrap_or("unnamed")
            ))
        }
        (Some(_), None) => text.push_str("; names no repository (a message signature)"),
    }
    let predicate = statement.map(|s| s.predicate_type);
    match (predicate.as_deref(), attestation) {
        (None, None) => Ok(format!("{text}; a message signature of {resolved}")),
        (Some(COSIGN_SIGN_PREDICATE), None) => Ok(format!(
            "{text}; its statement ({COSIGN_SIGN_PREDICATE}) names {resolved}"
        )),
        (Some(predicate), Some(wanted)) if predicate == wanted => Ok(format!(
            "{text}; its attestation ({predicate}) names {resolved}"
        )),
        (Some(predicate), None) => Err(format!(
            "an attestation (predicate {predicate}), not a signature: only signatures count \
             without --attestation-type (its bundle by {signer} checked out)"
        )),
        (found, Some(wanted)) => Err(format!(
            "not an attestation of {wanted}: it is {}",
            match found {
                None => "a message signature".to_string(),
                Some(COSIGN_SIGN_PREDICATE) => format!("a signature ({COSIGN_SIGN_PREDICATE})"),
                Some(other) => format!("an attestation of {other}"),
            }
        )),
    }
}

/// What a (verified) bundle's content says, read strictly (a key given twice binds no one
/// value): the predicate type and subject name of its DSSE statement, or `None` for a
/// message signature. A bundle holding both kinds of content, or neither, is malformed: the
/// verifier and this reader must not see different ones.
fn statement_of(json: &str) -> std::result::Result<Option<BundleStatement>, String> {
    let malformed = |why: &str| format!("malformed: the bundle's statement {why}");
    let value =
        crate::json::value_of_go_structs(json.as_bytes()).map_err(|e| malformed(&e.to_string()))?;
    let envelope = match (value.get("dsseEnvelope"), value.get("messageSignature")) {
        (Some(envelope), None) => envelope,
        (None, Some(_)) => return Ok(None),
        _ => {
            return Err(
                "malformed: the bundle holds both or neither of a message signature and a DSSE envelope"
                    .to_string(),
            )
        }
    };
    let payload = envelope
        .get("payload")
        .and_then(|p| p.as_str())
        .and_then(decode_base64)
        .ok_or_else(|| malformed("is not base64"))?;
    let statement =
        crate::json::value_of_go_structs(&payload).map_err(|e| malformed(&e.to_string()))?;
    let predicate_type = statement
        .get("predicateType")
        .and_then(|p| p.as_str())
        .ok_or_else(|| malformed("has no predicateType"))?
        .to_string();
    let subject_name = statement
        .pointer("/subject/0/name")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    Ok(Some(BundleStatement {
        predicate_type,
        subject_name,
    }))
}

/// A bundle's DSSE statement, as far as the image's policy reads it.
struct BundleStatement {
    predicate_type: String,
    /// The name of its first subject (cosign writes the repository signed for).
    subject_name: Option<String>,
}
