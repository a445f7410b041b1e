//! Resolving an approval: reading it from where its locator says, checking its signature
//! first when it is signed, and turning it into what a target must match.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fsio::read_input;
use crate::manifest::statement::{self, StatementError};
use crate::manifest::{
    check_list_expected, check_list_expected_for_file, load_check_list, load_statement,
    relative_to_directory, statement_expected,
};
use crate::model::compare::Expected;
use crate::model::oms::Serialization;
use crate::report::{Report, Subject, Verdict};
use crate::sign::{read_bundle, verify_bundle, Rejection};

use super::{Approval, Locator, Pin, TrustSpec};

/// What a target must match, once its approval has been read and any signature checked.
pub enum Resolution<'a> {
    /// The resources of a manifest, a signed statement or a check list.
    Expected(Resolved),
    /// A digest of the whole model, serialized as it was made.
    Pinned {
        pin: &'a Pin,
        serialization: &'a Serialization,
    },
    /// The signature was refused: nothing may be compared with its payload.
    Refused(Refusal),
}

/// An approval read into the resources it approves.
pub struct Resolved {
    pub expected: Expected,
    /// Where the approval was read from (left out of a model it lies inside).
    pub source: Locator,
    /// The `ok` subject that names the signature and its signer, when it was signed.
    pub signature: Option<Subject>,
}

/// A refused signature: its `rejected` subject names the bundle and says why.
pub struct Refusal {
    /// The approval in words, for the report: `signature model.sig`.
    pub approval: String,
    pub subject: Subject,
}

impl Refusal {
    /// The report of a check of `target` that stopped at the refused signature.
    pub fn report(self, target: String) -> Report {
        Report {
            target,
            approval: self.approval,
            subjects: vec![self.subject],
            ..Report::default()
        }
    }
}

/// Reads `approval` and turns it into what a target must match. A malformed approval, a
/// signed payload in a layout vouch does not support, or trust that cannot be loaded is an
/// error (exit 2); a refused signature, or a signed payload that is no valid statement, is
/// a [`Resolution::Refused`] (exit 1). A check list is read against the model `target`: for
/// a single file, only its own line counts; for a directory, names may carry the directory's
/// path as `vouch hash DIR` writes them.
pub fn resolve<'a>(approval: &'a Approval, target: Option<&Path>) -> Result<Resolution<'a>> {
    match approval {
        Approval::Manifest(source) => {
            let path = source.path();
            let statement = load_statement(path)?;
            Ok(Resolution::Expected(Resolved {
                expected: statement_expected(&statement, path)?,
                source: source.clone(),
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
            let path = list.path();
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
                signature: None,
            }))
        }
    }
}

/// Checks the OMS signature bundle at `bundle` under `trust` before its statement is used.
fn resolve_signature(bundle: &Locator, trust: &TrustSpec) -> Result<Resolution<'static>> {
    let policy = trust.load()?;
    let path = bundle.path();
    let parsed = read_bundle(&read_input(path)?).map_err(|e| Error::input(path, e.to_string()))?;
    let name = bundle.to_string();
    let refused = |reason: String| {
        Resolution::Refused(Refusal {
            approval: format!("signature {name}"),
            subject: Subject::new(name.clone(), Verdict::Rejected).message(reason),
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
        signature: Some(
            Subject::new(name, Verdict::Ok).message(format!("signed by {}", verified.signer)),
        ),
    }))
}
