//! Notation's trust-policy document (`trustpolicy.json`, version 1.0) read and checked as
//! the Notary Project's trust-store-trust-policy specification and notation-go define it:
//! the statements, their registry scopes, verification level (with `override`), trust
//! stores and trusted identities, and the choice of the statement for a repository.
//!
//! The `skip` level is refused where it would apply: it verifies nothing, and vouch never
//! passes an image no signature was checked for (a deliberate departure from Notation).

use std::collections::BTreeMap;

use serde::Deserialize;
use x509_cert::der::asn1::{Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use x509_cert::der::Tag;
use x509_cert::der::Tagged;
use x509_cert::name::Name;

/// What a failed validation does, as a level (and its `override`) says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The signature is refused.
    Enforce,
    /// The failure is reported; the signature may still count.
    Log,
    /// Not checked (revocation only).
    Skip,
}

/// The validations a level sets an action for; integrity is always enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enforcement {
    pub authenticity: Action,
    pub authentic_timestamp: Action,
    pub expiry: Action,
    pub revocation: Action,
}

/// A trust store a statement names: `ca:NAME`, `signingAuthority:NAME` or `tsa:NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreName {
    /// `ca`, `signingAuthority` or `tsa`: the directory under `x509/`.
    pub kind: String,
    pub name: String,
}

/// Who may have signed: anyone the stores vouch for, or a certificate whose subject holds
/// every attribute of one of these distinguished names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identities {
    Any,
    /// Each as written, and its attributes (type as written, value unescaped).
    Subjects(Vec<(String, BTreeMap<String, String>)>),
}

/// When an RFC 3161 timestamp is checked (`verifyTimestamp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyTimestamp {
    Always,
    AfterCertExpiry,
}

/// One checked statement of the document.
#[derive(Clone, Debug)]
pub struct Statement {
    pub name: String,
    /// `None`: the global scope `*`.
    pub scopes: Option<Vec<String>>,
    /// `strict`, `permissive` or `audit`, with `(custom)` when overridden.
    pub level: String,
    /// `None` for `skip`.
    pub enforcement: Option<Enforcement>,
    pub stores: Vec<StoreName>,
    pub identities: Identities,
    pub verify_timestamp: VerifyTimestamp,
}

/// A checked trust-policy document.
#[derive(Clone, Debug)]
pub struct TrustPolicy {
    pub statements: Vec<Statement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocument {
    version: Option<String>,
    #[serde(default)]
    trust_policies: Vec<RawStatement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatement {
    #[serde(default)]
    name: String,
    #[serde(default)]
    registry_scopes: Vec<String>,
    #[serde(default)]
    signature_verification: RawVerification,
    #[serde(default)]
    trust_stores: Vec<String>,
    #[serde(default)]
    trusted_identities: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawVerification {
    #[serde(default)]
    level: String,
    #[serde(default)]
    r#override: BTreeMap<String, String>,
    verify_timestamp: Option<String>,
}

const WILDCARD: &str = "*";

impl TrustPolicy {
    /// Reads and checks a document; the error says what is wrong, in words.
    pub fn parse(bytes: &[u8]) -> Result<TrustPolicy, String> {
        let raw: RawDocument = crate::json::from_slice(bytes)
            .map_err(|e| format!("not a Notation trust policy document: {e}"))?;
        match raw.version.as_deref() {
            None | Some("") => return Err("the trust policy document has no version".into()),
            Some("1.0") => {}
            Some(other) => {
                return Err(format!(
                    "the trust policy document has version {other:?}; vouch reads version \"1.0\""
                ))
            }
        }
        if raw.trust_policies.is_empty() {
            return Err("the trust policy document has no trust policy statements".into());
        }
        let mut statements = Vec::new();
        for raw in &raw.trust_policies {
            statements.push(statement(raw)?);
        }
        let mut names = BTreeMap::new();
        let mut scopes: BTreeMap<&str, &str> = BTreeMap::new();
        for (raw, statement) in raw.trust_policies.iter().zip(&statements) {
            if names.insert(statement.name.as_str(), ()).is_some() {
                return Err(format!(
                    "two trust policy statements are named {:?}; names must be unique",
                    statement.name
                ));
            }
            for scope in &raw.registry_scopes {
                if let Some(before) = scopes.insert(scope, &statement.name) {
                    return Err(format!(
                        "the registry scope {scope:?} is given more than once (statements {before:?} and {:?}); a scope belongs to one statement, once",
                        statement.name
                    ));
                }
            }
        }
        Ok(TrustPolicy { statements })
    }

    /// The statement for `repository` (`HOST/PATH`; `None`: an image layout, which names
    /// none): the one whose scopes hold it exactly, else the global one.
    pub fn applicable(&self, repository: Option<&str>) -> Option<&Statement> {
        let exact = repository.and_then(|repository| {
            self.statements.iter().find(|s| {
                s.scopes
                    .as_ref()
                    .is_some_and(|scopes| scopes.iter().any(|x| x == repository))
            })
        });
        exact.or_else(|| self.statements.iter().find(|s| s.scopes.is_none()))
    }
}

fn statement(raw: &RawStatement) -> Result<Statement, String> {
    if raw.name.is_empty() {
        return Err("a trust policy statement has no name".into());
    }
    let name = &raw.name;
    let bad = |what: String| format!("trust policy statement {name:?}: {what}");
    // Registry scopes: `*` alone, or repositories HOST/PATH.
    let scopes = match raw.registry_scopes.as_slice() {
        [] => return Err(bad("it has no registry scopes".into())),
        [only] if only == WILDCARD => None,
        many => {
            if many.iter().any(|s| s == WILDCARD) {
                return Err(bad(
                    "the wildcard registry scope '*' cannot go with other scopes".into(),
                ));
            }
            for scope in many {
                check_scope(scope).map_err(|why| bad(format!("registry scope {scope:?} {why}")))?;
            }
            Some(many.to_vec())
        }
    };
    let verification = &raw.signature_verification;
    let base = match verification.level.as_str() {
        "" => return Err(bad("signatureVerification has no level".into())),
        "strict" => Enforcement {
            authenticity: Action::Enforce,
            authentic_timestamp: Action::Enforce,
            expiry: Action::Enforce,
            revocation: Action::Enforce,
        },
        "permissive" => Enforcement {
            authenticity: Action::Enforce,
            authentic_timestamp: Action::Log,
            expiry: Action::Log,
            revocation: Action::Log,
        },
        "audit" => Enforcement {
            authenticity: Action::Log,
            authentic_timestamp: Action::Log,
            expiry: Action::Log,
            revocation: Action::Log,
        },
        "skip" => {
            if !verification.r#override.is_empty() {
                return Err(bad("the level skip cannot be overridden".into()));
            }
            if !raw.trust_stores.is_empty() || !raw.trusted_identities.is_empty() {
                return Err(bad(
                    "the level skip goes without trust stores and trusted identities".into(),
                ));
            }
            return Ok(Statement {
                name: name.clone(),
                scopes,
                level: "skip".into(),
                enforcement: None,
                stores: Vec::new(),
                identities: Identities::Any,
                verify_timestamp: VerifyTimestamp::Always,
            });
        }
        other => {
            return Err(bad(format!(
                "unknown signatureVerification level {other:?} (strict, permissive, audit or skip)"
            )))
        }
    };
    let mut enforcement = base;
    for (key, value) in &verification.r#override {
        let action = match value.as_str() {
            "enforce" => Action::Enforce,
            "log" => Action::Log,
            "skip" => Action::Skip,
            other => {
                return Err(bad(format!(
                    "override {key:?}: unknown action {other:?} (enforce, log or skip)"
                )))
            }
        };
        if action == Action::Skip && key != "revocation" {
            return Err(bad(format!(
                "override {key:?}: only revocation may be skipped"
            )));
        }
        match key.as_str() {
            "integrity" => return Err(bad("integrity cannot be overridden".into())),
            "authenticity" => enforcement.authenticity = action,
            "authenticTimestamp" => enforcement.authentic_timestamp = action,
            "expiry" => enforcement.expiry = action,
            "revocation" => enforcement.revocation = action,
            other => {
                return Err(bad(format!(
                    "override of unknown validation {other:?} (authenticity, authenticTimestamp, expiry or revocation)"
                )))
            }
        }
    }
    let level = if verification.r#override.is_empty() {
        verification.level.clone()
    } else {
        format!("{} (overridden)", verification.level)
    };
    let verify_timestamp = match verification.verify_timestamp.as_deref() {
        None | Some("always") => VerifyTimestamp::Always,
        Some("afterCertExpiry") => VerifyTimestamp::AfterCertExpiry,
        Some(other) => {
            return Err(bad(format!(
                "unknown verifyTimestamp {other:?} (always or afterCertExpiry)"
            )))
        }
    };
    if raw.trust_stores.is_empty() {
        return Err(bad("it names no trust stores".into()));
    }
    if raw.trusted_identities.is_empty() {
        return Err(bad("it names no trusted identities".into()));
    }
    let mut stores = Vec::new();
    for text in &raw.trust_stores {
        let (kind, store) = text.split_once(':').ok_or_else(|| {
            bad(format!(
                "trust store {text:?} is not TYPE:NAME (ca, signingAuthority or tsa)"
            ))
        })?;
        if !["ca", "signingAuthority", "tsa"].contains(&kind) {
            return Err(bad(format!(
                "trust store {text:?} has the unknown type {kind:?} (ca, signingAuthority or tsa)"
            )));
        }
        let named = !store.is_empty()
            && store
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !named {
            return Err(bad(format!(
                "trust store {text:?}: a store name is made of a-z, A-Z, 0-9, '_', '.' and '-'"
            )));
        }
        stores.push(StoreName {
            kind: kind.to_string(),
            name: store.to_string(),
        });
    }
    let identities = match raw.trusted_identities.as_slice() {
        [only] if only == WILDCARD => Identities::Any,
        many => {
            if many.iter().any(|s| s == WILDCARD) {
                return Err(bad(
                    "the wildcard trusted identity '*' cannot go with other identities".into(),
                ));
            }
            let mut parsed: Vec<(String, BTreeMap<String, String>)> = Vec::new();
            for identity in many {
                let (prefix, value) = identity.split_once(':').ok_or_else(|| {
                    bad(format!(
                        "trusted identity {identity:?} is not x509.subject: DN (no ':')"
                    ))
                })?;
                if prefix != "x509.subject" {
                    return Err(bad(format!(
                        "trusted identity {identity:?}: vouch matches x509.subject identities only"
                    )));
                }
                let dn = parse_dn(value)
                    .map_err(|why| bad(format!("trusted identity {identity:?}: {why}")))?;
                for field in ["C", "ST", "O"] {
                    if !dn.contains_key(field) {
                        return Err(bad(format!(
                            "trusted identity {identity:?} has no {field}: it must name C, ST and O at least"
                        )));
                    }
                }
                parsed.push((identity.clone(), dn));
            }
            for (i, (a, dn1)) in parsed.iter().enumerate() {
                for (j, (b, dn2)) in parsed.iter().enumerate() {
                    if i != j && is_subset(dn1, dn2) {
                        return Err(bad(format!(
                            "the trusted identities {a:?} and {b:?} overlap (a certificate matching the second matches the first)"
                        )));
                    }
                }
            }
            Identities::Subjects(parsed)
        }
    };
    Ok(Statement {
        name: name.clone(),
        scopes,
        level,
        enforcement: Some(enforcement),
        stores,
        identities,
        verify_timestamp,
    })
}

/// A registry scope: a fully qualified repository `HOST[:PORT]/PATH`, lowercase path
/// components, no tag, digest or wildcard.
fn check_scope(scope: &str) -> Result<(), &'static str> {
    let (host, path) = scope
        .split_once('/')
        .ok_or("is not a repository HOST/PATH")?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    let path_ok = path.split('/').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && part.as_bytes()[0].is_ascii_alphanumeric()
    });
    if host_ok && path_ok {
        Ok(())
    } else {
        Err("is not a fully qualified repository HOST[:PORT]/PATH (no tag, digest or wildcard)")
    }
}

/// Whether every attribute of `dn1` is in `dn2` with the same value.
fn is_subset(dn1: &BTreeMap<String, String>, dn2: &BTreeMap<String, String>) -> bool {
    dn1.iter().all(|(k, v)| dn2.get(k) == Some(v))
}

/// A distinguished name as RFC 4514 writes it (`C=US, ST=WA, O=Acme`), one attribute per
/// RDN, each type once; values unescaped (`\,`, `\\`, `\ `, `\HH`).
fn parse_dn(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    // Each part keeps escapes, so that `=` and `+` are found outside them below.
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                current.push(chars.next().ok_or("the DN ends in a lone '\\'")?);
            }
            ',' | ';' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    let mut dn = BTreeMap::new();
    for part in parts {
        let (kind, value) = split_unescaped(&part, '=')
            .ok_or_else(|| format!("{:?} is not TYPE=VALUE", part.trim()))?;
        if split_unescaped(value, '+').is_some() {
            return Err("multi-valued RDNs (TYPE=A+TYPE=B) are not supported".into());
        }
        let kind = kind.trim();
        let valid_type = kind.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || !kind.is_empty() && kind.chars().all(|c| c.is_ascii_digit() || c == '.');
        if !valid_type {
            return Err(format!("{kind:?} is not an attribute type"));
        }
        let value = unescape(value.trim_start())?;
        if dn.insert(kind.to_string(), value).is_some() {
            return Err(format!(
                "the attribute {kind} is given twice; each may be given once"
            ));
        }
    }
    Ok(dn)
}

/// `text` split at the first `sep` that is not escaped.
fn split_unescaped(text: &str, sep: char) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => return Some((&text[..i], &text[i + 1..])),
            _ => {}
        }
    }
    None
}

/// An attribute value's escapes resolved; unescaped trailing spaces are dropped.
fn unescape(value: &str) -> Result<String, String> {
    let mut out: Vec<u8> = Vec::new();
    let mut keep = 0;
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let next = *bytes.get(i + 1).ok_or("a value ends in a lone '\\'")?;
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(next);
                    i += 2;
                }
            }
            keep = out.len();
        } else {
            out.push(bytes[i]);
            i += 1;
            if bytes[i - 1] != b' ' {
                keep = out.len();
            }
        }
    }
    out.truncate(keep);
    String::from_utf8(out).map_err(|_| "a value is not UTF-8".to_string())
}

/// A certificate subject as Notation reads it: each attribute by the type name Go's
/// `pkix.Name.String` writes (dotted OID for others), one value each. A subject with an
/// attribute twice, a multi-valued RDN or a value that is not a string matches no
/// identity.
fn subject_attributes(name: &Name) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for rdn in name.0.iter() {
        if rdn.0.len() != 1 {
            return Err("the subject has a multi-valued RDN".into());
        }
        for atv in rdn.0.iter() {
            let oid = atv.oid.to_string();
            let kind = match oid.as_str() {
                "2.5.4.6" => "C",
                "2.5.4.8" => "ST",
                "2.5.4.7" => "L",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.3" => "CN",
                "2.5.4.5" => "SERIALNUMBER",
                "2.5.4.9" => "STREET",
                "2.5.4.17" => "POSTALCODE",
                other => other,
            }
            .to_string();
            let value = &atv.value;
            let text = match value.tag() {
                Tag::Utf8String => value.decode_as::<Utf8StringRef>().map(|s| s.to_string()),
                Tag::PrintableString => value
                    .decode_as::<PrintableStringRef>()
                    .map(|s| s.to_string()),
                Tag::Ia5String => value.decode_as::<Ia5StringRef>().map(|s| s.to_string()),
                Tag::TeletexString => value.decode_as::<TeletexStringRef>().map(|s| s.to_string()),
                other => return Err(format!("the subject's {kind} is a {other}, not a string")),
            }
            .map_err(|e| format!("the subject's {kind}: {e}"))?;
            if out.insert(kind.clone(), text).is_some() {
                return Err(format!("the subject has {kind} twice"));
            }
        }
    }
    Ok(out)
}

impl Identities {
    /// Whether a certificate with this subject may have signed; `Err` says why not.
    pub fn admit(&self, subject: &Name) -> Result<(), String> {
        let Identities::Subjects(identities) = self else {
            return Ok(());
        };
        let attributes = subject_attributes(subject)
            .map_err(|why| format!("the signing certificate's subject {subject}: {why}"))?;
        if identities.iter().any(|(_, dn)| is_subset(dn, &attributes)) {
            return Ok(());
        }
        Err(format!(
            "the signing certificate {subject} matches none of the trusted identities {}",
            identities
                .iter()
                .map(|(raw, _)| format!("{raw:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguished_names_are_read_as_rfc_4514_writes_them() {
        let dn = parse_dn("C=US, ST=WA,O=Acme\\, Inc.,CN=\\ x\\2c ").unwrap();
        assert_eq!(dn["C"], "US");
        assert_eq!(dn["ST"], "WA");
        assert_eq!(dn["O"], "Acme, Inc.");
        assert_eq!(dn["CN"], " x,");
        assert!(parse_dn("C=US,C=CA").unwrap_err().contains("twice"));
        assert!(parse_dn("C=US+O=x").unwrap_err().contains("multi-valued"));
        assert!(parse_dn("C US").is_err());
    }

    #[test]
    fn an_exact_scope_beats_the_global_one() {
        let doc = br#"{"version":"1.0","trustPolicies":[
            {"name":"all","registryScopes":["*"],"signatureVerification":{"level":"audit"},
             "trustStores":["ca:a"],"trustedIdentities":["*"]},
            {"name":"one","registryScopes":["r.io/a/b"],"signatureVerification":{"level":"strict"},
             "trustStores":["ca:a"],"trustedIdentities":["*"]}]}"#;
        let policy = TrustPolicy::parse(doc).unwrap();
        assert_eq!(policy.applicable(Some("r.io/a/b")).unwrap().name, "one");
        assert_eq!(policy.applicable(Some("r.io/a/c")).unwrap().name, "all");
        assert_eq!(policy.applicable(None).unwrap().name, "all");
    }
}
