//! Resolving an approval: reading it from where its locator says, checking its signature
//! first when it is signed, and turning it into what a target must match.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fsio::read_input;
use crate::manifest::statement::{self, StatementError};
use crate::manifest::{
    check_list_expected, check_list_expected_for_file, load_check_list, parse_statement,
    relative_to_directory, statement_expected,
};
use crate::model::compare::Expected;
use crate::model::oms::Serialization;
use crate::report::{Report, Subject, Verdict};
use crate::sign::{read_bundle, verify_bundle, Rejection};

use super::kept::{self, Fetched, Kind};
use super::{Approval, Locator, Pin, TrustSpec};
use crate::registry::ModelVersion;

/// What a target must match, once its approval has been read and any signature checked.
pub enum Resolution<'a> {
    /// The resources of a manifest, a signed statement or a check list.
    Expected(Resolved),
    /// A digest of the whole model, serialized as it was made.
    Pinned {
        pin: &'a Pin,
        serialization: &'a Serialization,
    },
    /// The signature, or a registry version's approval, was refused: nothing may be
    /// compared with it.
    Refused(Refusal),
}

/// An approval read into the resources it approves.
pub struct Resolved {
    pub expected: Expected,
    /// Where the approval was read from (left out of a model it lies inside).
    pub source: Locator,
    /// The model version it was kept with, when it came from a registry (an alias resolved).
    pub version: Option<Box<ModelVersion>>,
    /// The `ok` subject that names the signature and its signer, when it was signed.
    pub signature: Option<Subject>,
}

/// A refused approval: its `rejected` subject names the signature (or the registry version)
/// and says why.
pub struct Refusal {
    /// The approval in words, for the report: `signature model.sig`.
    pub approval: String,
    pub subject: Subject,
    /// The registry version whose approval was refused (`models:/NAME/VERSION`).
    pub version: Option<String>,
}

impl Refusal {
    /// The report of a check of `target` that stopped at the refused approval.
    pub fn report(self, target: String) -> Report {
        Report {
            target,
            approval: self.approval,
            subjects: vec![self.subject],
            approval_version: self.version,
            ..Report::default()
        }
    }
}

/// Reads `approval` and turns it into what a target must match. A malformed approval, a
/// signed payload in a layout vouch does not support, or trust that cannot be loaded is an
/// error (exit 2); a refused signature, a signed payload that is no valid statement, or a
/// registry version whose approval is absent or does not match its tag is a
/// [`Resolution::Refused`] (exit 1); a registry that cannot be reached is exit 3. A check list is read against the model `target`: for
/// a single file, only its own line counts; for a directory, names may carry the directory's
/// path as `vouch hash DIR` writes them.
pub fn resolve<'a>(approval: &'a Approval, target: Option<&Path>) -> Result<Resolution<'a>> {
    match approval {
        Approval::Manifest(source) => {
            let (bytes, version) = match read(source, Kind::Manifest)? {
                Read::Bytes { bytes, version } => (bytes, version),
                Read::Refused(refusal) => return Ok(Resolution::Refused(refusal)),
            };
            let shown = source.shown();
            let statement = parse_statement(&bytes, &shown)?;
            let mut expected = statement_expected(&statement, &shown)?;
            if let Some(version) = &version {
                expected.description = format!(
                    "manifest kept with {} ({})",
                    version.uri(),
                    statement.manifest.serialization.describe()
                );
            }
            Ok(Resolution::Expected(Resolved {
                expected,
                source: source.clone(),
                version,
                signature: None,
            }))
        }
        Approval::Signature { bundle, trust } => resolve_signature(bundle, trust),
        Approval::Pinned { pin, serialization } => Ok(Resolution::Pinned { pin, serialization }),
        Approval::CheckList {
            list,
            algorithm,
            allow_symlinks,
        } => {
            let shown = list.shown();
            let path = shown.as_path();
            let entries = load_check_list(path, *algorithm)?;
            let expected = match target.and_then(|t| Some((t, t.metadata().ok()?))) {
                Some((file, meta)) if meta.is_file() => {
                    check_list_expected_for_file(&entries, path, file, *allow_symlinks)?
                }
                Some((dir, meta)) if meta.is_dir() => {
                    match relative_to_directory(&entries, path, dir)? {
                        Some((relative, read_as)) => {
                            let mut expected =
                                check_list_expected(&relative, path, *allow_symlinks)?;
                            expected.description = format!("{}; {read_as}", expected.description);
                            expected
                        }
                        None => check_list_expected(&entries, path, *allow_symlinks)?,
                    }
                }
                _ => check_list_expected(&entries, path, *allow_symlinks)?,
            };
            Ok(Resolution::Expected(Resolved {
                expected,
                source: list.clone(),
                version: None,
                signature: None,
            }))
        }
    }
}

/// Checks the OMS signature bundle at `bundle` under `trust` before its statement is used.
fn resolve_signature(bundle: &Locator, trust: &TrustSpec) -> Result<Resolution<'static>> {
    let policy = trust.load()?;
    let (bytes, version) = match read(bundle, Kind::Signature)? {
        Read::Bytes { bytes, version } => (bytes, version),
        Read::Refused(refusal) => return Ok(Resolution::Refused(refusal)),
    };
    let shown = bundle.shown();
    let path = shown.as_path();
    let parsed = read_bundle(&bytes).map_err(|e| Error::input(path, e.to_string()))?;
    let name = match &version {
        Some(version) => format!("{} kept with {}", Kind::Signature.name(), version.uri()),
        None => bundle.to_string(),
    };
    let refused = |reason: String| {
        Resolution::Refused(Refusal {
            approval: format!("signature {name}"),
            subject: Subject::new(name.clone(), Verdict::Rejected).message(reason),
            version: version.as_ref().map(|v| v.uri()),
        })
    };
    let verified = match verify_bundle(&parsed, &policy) {
        Ok(verified) => verified,
        Err(Rejection(reason)) => return Ok(refused(reason)),
    };
    let statement = match statement::parse(&verified.payload) {
        Ok(statement) => statement,
        Err(StatementError::Unsupported(message)) => return Err(Error::input(path, message)),
        Err(e) => {
            return Ok(refused(format!(
                "the signed payload is not a valid OMS statement: {e}"
            )))
        }
    };
    let mut expected = statement_expected(&statement, path)?;
    expected.description = format!(
        "signature {name} ({})",
        statement.manifest.serialization.describe()
    );
    Ok(Resolution::Expected(Resolved {
        expected,
        source: bundle.clone(),
        version,
        signature: Some(
            Subject::new(name, Verdict::Ok).message(format!("signed by {}", verified.signer)),
        ),
    }))
}

/// An approval's bytes as read from where its locator says.
enum Read {
    Bytes {
        bytes: Vec<u8>,
        version: Option<Box<ModelVersion>>,
    },
    Refused(Refusal),
}

/// Reads the approval at `locator`, which must be of `kind`. A registry approval that is
/// missing, tampered with, or unsigned where a signature (trust) was asked for is refused
/// (exit 1); a signature where no trust was given is an input error (exit 2).
fn read(locator: &Locator, kind: Kind) -> Result<Read> {
    let registry = match locator {
        Locator::File(path) => {
            return Ok(Read::Bytes {
                bytes: read_input(path)?,
                version: None,
            })
        }
        Locator::Registry(registry) => registry,
    };
    let refusal = |version: &ModelVersion, why: String| {
        Read::Refused(Refusal {
            approval: format!("the approval kept with {}", version.uri()),
            subject: Subject::new(version.uri(), Verdict::Rejected).message(why),
            version: Some(version.uri()),
        })
    };
    let kept = match kept::fetch(registry)? {
        Fetched::Kept(kept) => kept,
        Fetched::Refused { version, why } => return Ok(refusal(&version, why)),
    };
    match (kind, kept.kind) {
        (Kind::Signature, Kind::Manifest) => Ok(refusal(
            &kept.version,
            format!(
                "{} keeps an unsigned manifest, but a signature was asked for (trust given): \
                 an unsigned approval does not stand in for a signed one",
                kept.version.uri()
            ),
        )),
        (Kind::Manifest, Kind::Signature) => Err(Error::input(
            locator.shown(),
            format!(
                "{} keeps an OMS signature: give who must have signed it (a key, a certificate \
                 chain, or an identity and issuer)",
                kept.version.uri()
            ),
        )),
        _ => Ok(Read::Bytes {
            bytes: kept.bytes,
            version: Some(Box::new(kept.version)),
        }),
    }
}
