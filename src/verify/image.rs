//! Images and model artifacts: every blob against its descriptor (and a pin, and diff_ids
//! when asked), and the files of a model artifact against an approved OMS manifest or
//! signature, whose signature is checked before its statement is used.

use std::path::Path;
use std::time::Instant;

use crate::approval::{resolve, Approval, Resolution};
use crate::error::{Error, Result};
use crate::hash::{Algorithm, Engine};
use crate::model::compare::Expected;
use crate::model::oms::Method;
use crate::oci::{self, ApprovedFiles, Connection, ImageRef, Options};
use crate::report::Report;

/// Verifies the image or artifact `reference` names; with an `approval` (an OMS manifest or
/// signature of the model it holds), its layers are compared with the approved files.
///
/// A refused signature is a report with one `rejected` subject (exit 1), and no blob is
/// read; a signed statement in a layout vouch does not support, or one whose serialization
/// cannot describe an artifact's whole-file layers, is an input error (exit 2).
pub fn check_image(
    reference: &ImageRef,
    connection: &Connection,
    options: &Options,
    approval: Option<&Approval>,
    engine: &Engine,
) -> Result<Report> {
    let started = Instant::now();
    if let Some(Approval::Pinned { .. } | Approval::CheckList { .. }) = approval {
        return Err(Error::Usage(NOT_AN_IMAGE_APPROVAL.into()));
    }
    let mut report = match approval.map(|a| resolve(a, None)).transpose()? {
        None => oci::verify(reference, connection, options, None, engine)?,
        Some(Resolution::Expected(resolved)) => {
            let approved = approved_files(&resolved.expected, &resolved.source.shown())?;
            let mut report = oci::verify(reference, connection, options, Some(&approved), engine)?;
            if let Some(signature) = resolved.signature {
                report.subjects.insert(0, signature);
            }
            report
        }
        Some(Resolution::Refused(refusal)) => refusal.report(reference.to_string()),
        Some(Resolution::Pinned { .. }) => unreachable!("a pin is refused above"),
    };
    report.duration = started.elapsed();
    Ok(report)
}

const NOT_AN_IMAGE_APPROVAL: &str = "an image is approved by its digest, and a model artifact by an OMS manifest or \
     signature of the model it holds; a pinned model digest or a check list approves a model on disk";

/// The files an OCI artifact must hold: it stores whole files under their SHA-256 digests,
/// so an approval (read from `source`) serialized otherwise cannot describe it.
fn approved_files(expected: &Expected, source: &Path) -> Result<ApprovedFiles> {
    let serialization = &expected.serialization;
    if serialization.method != Method::Files || serialization.algorithm != Algorithm::Sha256 {
        return Err(Error::input(source, format!(
            "an OCI artifact stores whole files under their SHA-256 digests, but this manifest is serialized as {}; make it with `vouch manifest`'s default serialization (whole files, SHA-256)",
            serialization.describe()
        )));
    }
    // No default ignore names: unlike a checkout on disk, an artifact has no reason to
    // carry `.git` and the like, so such a layer is a file like any other.
    Ok(ApprovedFiles::new(
        expected
            .resources
            .iter()
            .map(|r| (r.key.path.clone(), r.digest.clone()))
            .collect(),
        serialization.ignore_paths.clone(),
        expected.description.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::approval::{Locator, Pin};
    use crate::hash::{Digest, ReaderConfig};
    use crate::model::oms::Serialization;
    use crate::oci::Platforms;

    #[test]
    fn a_model_pin_or_check_list_approves_no_image_and_nothing_is_read() {
        // The layout does not exist: reaching it would be another error.
        let reference = ImageRef::parse("oci:/nonexistent/vouch-layout:v1").unwrap();
        let connection = Connection {
            credentials: None,
            insecure: false,
            timeout: Duration::from_secs(1),
            retries: 0,
            min_rate: oci::DEFAULT_MIN_RATE,
        };
        let options = Options {
            platforms: Platforms::Host,
            pinned: None,
            diff_ids: false,
        };
        let engine = Engine::new(1, ReaderConfig::default()).unwrap();
        let digest = Digest::from_prefixed(&format!("sha256:{}", "0".repeat(64))).unwrap();
        let approvals = [
            Approval::Pinned {
                pin: Pin::Root(digest),
                serialization: Serialization::new(Algorithm::Sha256, None, false).unwrap(),
            },
            Approval::CheckList {
                list: Locator::File("/nonexistent/SHA256SUMS".into()),
                algorithm: Algorithm::Sha256,
                allow_symlinks: false,
            },
        ];
        for approval in &approvals {
            let error = check_image(&reference, &connection, &options, Some(approval), &engine)
                .unwrap_err();
            assert!(
                matches!(&error, Error::Usage(m) if m == NOT_AN_IMAGE_APPROVAL),
                "{approval:?}: {error}"
            );
        }
    }
}
