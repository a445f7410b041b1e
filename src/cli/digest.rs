use std::path::PathBuf;

use clap::Args;

use super::manifest::{model_manifest, ArtifactArgs};
use super::{write_output, EngineArgs, RevisionArg, SerializationArgs};
use crate::error::Result;
use crate::manifest::digest::manifest_digest;

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// The model: a directory, a single weights file, a Hugging Face cache snapshot or
    /// hf://ORG/NAME[@REV] (see the README's "Hugging Face caches"), or a model artifact in
    /// a registry or image layout (docker://HOST[:PORT]/REPO(:TAG|@DIGEST), oci:DIR[:TAG|@DIGEST])
    model: PathBuf,
    #[command(flatten)]
    revision: RevisionArg,
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

pub fn run(mut args: DigestArgs) -> Result<u8> {
    args.model = args.revision.resolve(&args.model)?;
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
