//! One file against a detached Sigstore bundle: a message signature or a DSSE attestation
//! whose subject is the file, as cosign and sigstore-python write them, signed keyless or
//! with a key.

use std::path::Path;
use std::time::Instant;

use crate::error::{Error, Hint, Result};
use crate::hash::ReadError;
use crate::manifest::statement::{PREDICATE_TYPE, PREDICATE_TYPE_V0_2};
use crate::report::{Report, Subject, Verdict};
use crate::sign::{
    read_detached_bundle, verify_detached, DetachedFailure, DetachedPolicy, Rejection,
};

/// Verifies the file at `file` against the detached bundle at `bundle_path` under `policy`.
pub fn verify_detached_file(
    file: &Path,
    bundle_path: &Path,
    policy: &DetachedPolicy,
) -> Result<Report> {
    let started = Instant::now();
    let bundle = read_detached_bundle(crate::fsio::read_input(bundle_path)?)
        .map_err(|e| Error::input(bundle_path, e.to_string()))?;
    // An OMS model signature signs a model's root digest (SHA-256 over its files'
    // digests), which a file holding those digests would match.
    if let Some(oms) = bundle
        .predicate_type
        .as_deref()
        .filter(|p| [PREDICATE_TYPE, PREDICATE_TYPE_V0_2].contains(p))
    {
        return Err(Error::input(
            bundle_path,
            format!(
                "is an OMS model signature (predicate {oms}): it signs a model's root digest, not a file's \
                 digest; verify the model it signs against it as a signature instead"
            ),
        )
        .with_hint(Hint::CheckSignature));
    }
    let (handle, stamp) = crate::hash::reader::open_regular(file, true).map_err(|e| match e {
        ReadError::NotRegular(kind) => Error::input(
            file,
            format!("is {kind}; a signed artifact is a regular file"),
        ),
        ReadError::Io(e) => Error::io(file, e),
        ReadError::Unstable(message) => Error::Unstable {
            path: file.to_path_buf(),
            message,
        },
    })?;
    let bundle_name = bundle_path.display().to_string();
    let file_name = file.display().to_string();
    let subjects = match verify_detached(&bundle, std::io::BufReader::new(handle), policy) {
        Ok(signer) => vec![
            Subject::new(bundle_name, Verdict::Ok).message(format!("signed by {signer}")),
            Subject::new(file_name, Verdict::Ok).message("matches the signed digest"),
        ],
        Err(DetachedFailure::ArtifactMismatch(detail)) => {
            vec![Subject::new(file_name, Verdict::Changed).message(format!(
                "the bundle signs other content than this file ({detail})"
            ))]
        }
        Err(DetachedFailure::Rejected(Rejection(reason))) => {
            vec![Subject::new(bundle_name, Verdict::Rejected).message(reason)]
        }
        Err(DetachedFailure::Malformed(problem)) => {
            return Err(Error::input(bundle_path, problem));
        }
        Err(DetachedFailure::Unreadable(e)) => return Err(Error::io(file, e)),
    };
    Ok(Report {
        target: file.display().to_string(),
        approval: format!("Sigstore bundle {}", bundle_path.display()),
        subjects,
        bytes_hashed: stamp.len,
        duration: started.elapsed(),
        ..Report::default()
    })
}
