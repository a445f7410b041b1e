//! Images and model artifacts: every blob against its descriptor (and a pin, and diff_ids
//! when asked), and the files of a model artifact against an approved OMS manifest or
//! signature, whose signature is checked before its statement is used.

use std::path::Path;
use std::time::Instant;

use super::image_signatures::{check_signatures, Policy, NO_SIGNATURE_SUBJECT};
use crate::approval::{resolve, Approval, ImageSigners, Resolution};
use crate::error::{Error, Result};
use crate::hash::{Algorithm, Engine};
use crate::model::compare::Expected;
use crate::model::oms::{Manifest, Method, Resource, ResourceKey, Serialization};
use crate::oci::{self, ApprovedFiles, Connection, ImageRef, Options};
use crate::report::{Report, Subject, Verdict};

/// Verifies the image or artifact `reference` names; with an `approval` (an OMS manifest or
/// signature of the model it holds), its layers are compared with the approved files; with
/// `signers`, at least one signature attached to the digest it resolved to must satisfy
/// them.
///
/// A refused signature is a report with one `rejected` subject (exit 1), and no blob is
/// read; a signed statement in a layout vouch does not support, or one whose serialization
/// cannot describe an artifact's whole-file layers, is an input error (exit 2), and so is
/// a malformed key.
pub fn check_image(
    reference: &ImageRef,
    connection: &Connection,
    options: &Options,
    approval: Option<&Approval>,
    signers: Option<&ImageSigners>,
    engine: &Engine,
) -> Result<Report> {
    let started = Instant::now();
    if let Some(Approval::Pinned { .. } | Approval::CheckList { .. }) = approval {
        return Err(Error::Usage(NOT_AN_IMAGE_APPROVAL.into()));
    }
    let policy = signers
        .map(|signers| Policy::load(signers, reference))
        .transpose()?;
    let (mut report, resolved) = match approval.map(|a| resolve(a, None)).transpose()? {
        None => oci::verify(reference, connection, options, None, engine)?,
        Some(Resolution::Expected(resolved)) => {
            let approved = approved_files(&resolved.expected, &resolved.source.shown())?;
            let (mut report, root) =
                oci::verify(reference, connection, options, Some(&approved), engine)?;
            if let Some(signature) = resolved.signature {
                report.subjects.insert(0, signature);
            }
            (report, root)
        }
        Some(Resolution::Refused(refusal)) => (refusal.report(reference.to_string()), None),
        Some(Resolution::Pinned { .. }) => unreachable!("a pin is refused above"),
    };
    if let Some(policy) = &policy {
        // Signatures name the digest (and size and media type) that was resolved and
        // checked, not the tag, which may have moved since.
        match &resolved {
            Some(resolved) => {
                check_signatures(reference, connection, resolved, policy, &mut report)?
            }
            None => report.subjects.push(
                Subject::new(NO_SIGNATURE_SUBJECT, Verdict::Unreadable)
                    .expected(policy.describe())
                    .message("not checked: the image was not resolved to a digest"),
            ),
        }
    }
    report.duration = started.elapsed();
    Ok(report)
}

/// The OMS manifest of the model artifact `reference` names, built from its layers' digests
/// (a raw layer's digest is its file's SHA-256; a tar layer is streamed for its entries), or
/// of the files under `model_root` of a ModelCar image, as `vouch manifest` states the same
/// files on disk. The model is named as a directory of its
/// files would be: after the repository's last component (an image layout: its directory).
/// `Err` holds the report of an artifact that cannot be described faithfully.
pub fn artifact_manifest(
    reference: &ImageRef,
    connection: &Connection,
    platforms: oci::Platforms,
    model_root: Option<&oci::ModelRoot>,
    serialization: &Serialization,
    engine: &Engine,
) -> Result<std::result::Result<(Manifest, Report), Report>> {
    if serialization.method != Method::Files || serialization.algorithm != Algorithm::Sha256 {
        return Err(Error::Usage(format!(
            "an OCI artifact's layer digests are whole-file SHA-256 digests, so its manifest is serialized as files, sha256, not {}",
            serialization.describe()
        )));
    }
    let started = Instant::now();
    let held = oci::held_files(
        reference,
        connection,
        platforms,
        model_root,
        &serialization.ignore_paths,
        engine,
    )?;
    let oci::HeldFiles { mut report, files } = match held {
        Ok(held) => held,
        Err(mut report) => {
            report.duration = started.elapsed();
            return Ok(Err(report));
        }
    };
    report.duration = started.elapsed();
    let resources = files
        .into_iter()
        .map(|(path, digest)| Resource {
            key: ResourceKey { path, range: None },
            digest,
        })
        .collect();
    let name = match reference {
        ImageRef::Registry(image) => image.repository.rsplit('/').next(),
        ImageRef::Layout(layout) => layout.dir.file_name().and_then(|n| n.to_str()),
    }
    .unwrap_or_default()
    .to_string();
    Ok(Ok((
        Manifest::new(name, serialization.clone(), resources),
        report,
    )))
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
            reading: crate::oci::Reading::Every,
            model_root: None,
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
            let error = check_image(
                &reference,
                &connection,
                &options,
                Some(approval),
                None,
                &engine,
            )
            .unwrap_err();
            assert!(
                matches!(&error, Error::Usage(m) if m == NOT_AN_IMAGE_APPROVAL),
                "{approval:?}: {error}"
            );
        }
    }
}
