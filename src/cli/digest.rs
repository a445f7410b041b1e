use std::path::PathBuf;

use clap::Args;

use super::manifest::{model_manifest, ArtifactArgs};
use super::{write_output, EngineArgs, SerializationArgs};
use crate::error::Result;
use crate::manifest::digest::manifest_digest;

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// The model: a directory, a single weights file, or a model artifact in a registry or
    /// image layout (docker://HOST[:PORT]/REPO(:TAG|@DIGEST), oci:DIR[:TAG|@DIGEST])
    model: PathBuf,
    /// Print the manifest digest, which binds every file's name and boundaries, instead of
    /// the OMS root digest (pin it with `vouch verify --manifest-digest`)
    #[arg(long)]
    manifest_digest: bool,
    #[command(flatten)]
    serialization: SerializationArgs,
    #[command(flatten)]
    artifact: ArtifactArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: DigestArgs) -> Result<u8> {
    let serialization = args.serialization.serialization(&args.model, &[])?;
    let engine = args.engine.engine()?;
    let manifest = match model_manifest(&args.model, &serialization, &args.artifact, &engine)? {
        Ok(manifest) => manifest,
        Err(status) => return Ok(status),
    };
    let digest = if args.manifest_digest {
        manifest_digest(&manifest)
    } else {
        manifest.root_digest()
    };
    write_output(None, format!("{}\n", digest.prefixed()).as_bytes())?;
    Ok(0)
}
