use std::path::PathBuf;

use clap::Args;

use super::{write_output, EngineArgs, SerializationArgs};
use crate::error::Result;
use crate::manifest::statement;
use crate::model::build_manifest;

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The model: a directory, or a single weights file
    model: PathBuf,
    /// Write the manifest to FILE (atomically) instead of stdout; a FILE inside the model
    /// is left out of the manifest
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    serialization: SerializationArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: ManifestArgs) -> Result<u8> {
    let outputs: Vec<&std::path::Path> = args.output.iter().map(PathBuf::as_path).collect();
    let serialization = args.serialization.serialization(&args.model, &outputs)?;
    let engine = args.engine.engine()?;
    let (manifest, _) = build_manifest(&args.model, &serialization, &engine)?;
    write_output(args.output.as_deref(), &statement::to_json(&manifest))?;
    Ok(0)
}
