use std::path::PathBuf;

use clap::Args;

use super::{write_output, EngineArgs, SerializationArgs};
use crate::error::Result;
use crate::model::build_manifest;

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// The model: a directory, or a single weights file
    model: PathBuf,
    #[command(flatten)]
    serialization: SerializationArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: DigestArgs) -> Result<u8> {
    let serialization = args.serialization.serialization(&args.model, &[])?;
    let engine = args.engine.engine()?;
    let progress = args.engine.progress();
    let (manifest, _) = build_manifest(&args.model, &serialization, &engine, progress.as_ref())?;
    write_output(
        None,
        format!("{}\n", manifest.root_digest().prefixed()).as_bytes(),
    )?;
    Ok(0)
}
