use std::path::{Path, PathBuf};

use clap::Args;

use super::oci::{parse_reference, PlatformArgs, RegistryArgs};
use super::{write_output, EngineArgs, RevisionArg, SerializationArgs};
use crate::error::{Error, Result};
use crate::hash::Engine;
use crate::manifest::statement;
use crate::model::build_manifest;
use crate::model::oms::{Manifest, Serialization};
use crate::oci::{ImageRef, ModelRoot, Platforms};
use crate::report;
use crate::verify::image::artifact_manifest;

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The model: a directory, a single weights file, a Hugging Face cache snapshot or
    /// hf://ORG/NAME[@REV] (see the README's "Hugging Face caches"), or a model artifact in
    /// a registry or image layout (docker://HOST[:PORT]/REPO(:TAG|@DIGEST), oci:DIR[:TAG|@DIGEST])
    model: PathBuf,
    #[command(flatten)]
    revision: RevisionArg,
    /// Write the manifest to FILE (atomically) instead of stdout; a FILE inside the model
    /// is left out of the manifest
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    serialization: SerializationArgs,
    #[command(flatten)]
    artifact: ArtifactArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

/// How to reach a model artifact: the flags `manifest` and `digest` take for one.
#[derive(Debug, Args)]
pub(super) struct ArtifactArgs {
    #[command(flatten)]
    platform: PlatformArgs,
    /// A ModelCar image (as KServe runs them): its model is the files under DIR of the
    /// image's filesystem, once its layers are applied in order with their whiteouts
    #[arg(long, value_name = "DIR")]
    model_root: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(mut args: ManifestArgs) -> Result<u8> {
    args.model = args.revision.resolve(&args.model)?;
    let outputs: Vec<&Path> = args.output.iter().map(PathBuf::as_path).collect();
    let serialization = args.serialization.serialization(&args.model, &outputs)?;
    let engine = args.engine.engine()?;
    match model_manifest(&args.model, &serialization, &args.artifact, &engine)? {
        Ok(manifest) => {
            write_output(args.output.as_deref(), &statement::to_json(&manifest))?;
            Ok(0)
        }
        Err(status) => Ok(status),
    }
}

/// The manifest of `model`: files on disk, or a model artifact (`docker://…`, `oci:…`)
/// described from its layer digests without pulling its raw layers. An artifact that
/// cannot be described has its report printed, and `Err` holds the exit status.
pub(super) fn model_manifest(
    model: &Path,
    serialization: &Serialization,
    artifact: &ArtifactArgs,
    engine: &Engine,
) -> Result<std::result::Result<Manifest, u8>> {
    let text = model.to_string_lossy();
    // A model directory whose name starts like a reference is written `./oci:…`.
    if !ImageRef::is_reference(&text) {
        if artifact.platform.platform()?.is_some()
            || artifact.registry.any_given()
            || artifact.model_root.is_some()
        {
            return Err(Error::Usage(
                "--platform, --model-root, --username and --insecure go with a model artifact (docker://… or oci:…)"
                    .into(),
            ));
        }
        return Ok(Ok(build_manifest(model, serialization, engine)?.0));
    }
    let reference = parse_reference(&text)?;
    let platforms = artifact
        .platform
        .platform()?
        .map_or(Platforms::Host, Platforms::Only);
    let connection = artifact.registry.connection()?;
    let model_root = artifact
        .model_root
        .as_deref()
        .map(ModelRoot::parse)
        .transpose()
        .map_err(Error::Usage)?;
    match artifact_manifest(
        &reference,
        &connection,
        platforms,
        model_root.as_ref(),
        serialization,
        engine,
    )? {
        Ok((manifest, report)) => {
            for warning in &report.warnings {
                eprintln!("vouch: warning: {warning}");
            }
            Ok(Ok(manifest))
        }
        Err(report) => {
            eprint!("{}", report::render(&report, report::Format::Text));
            eprintln!("vouch: no manifest written: the files of {reference} cannot all be named and hashed faithfully");
            Ok(Err(report.exit_status().max(1)))
        }
    }
}
