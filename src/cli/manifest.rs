use std::path::PathBuf;

use clap::Args;

use super::{write_output, EngineArgs, RevisionArg, SerializationArgs};
use crate::error::Result;
use crate::manifest::statement;
use crate::model::build_manifest;

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The model: a directory, a single weights file, a Hugging Face cache snapshot or
    /// hf://ORG/NAME[@REV] (see the README's "Hugging Face caches")
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
    engine: EngineArgs,
}

pub fn run(mut args: ManifestArgs) -> Result<u8> {
    args.model = args.revision.resolve(&args.model)?;
    let outputs: Vec<&std::path::Path> = args.output.iter().map(PathBuf::as_path).collect();
    let serialization = args.serialization.serialization(&args.model, &outputs)?;
    let engine = args.engine.engine()?;
    let (manifest, _) = build_manifest(&args.model, &serialization, &engine)?;
    write_output(args.output.as_deref(), &statement::to_json(&manifest))?;
    Ok(0)
}
