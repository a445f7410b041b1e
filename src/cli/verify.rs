use std::path::PathBuf;

use clap::{ArgGroup, Args};

use super::{user_ignores, EngineArgs, OutputArgs, SerializationArgs};
use crate::error::{Error, Result};
use crate::hash::{Algorithm, Digest};
use crate::manifest::{check_list_expected, load_check_list, load_statement, statement_expected};
use crate::model::verify::{verify, verify_root, Expected, VerifyOptions};
use crate::report::{self, Report};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("approval").required(true).args(["manifest", "digest", "check"])))]
pub struct VerifyArgs {
    /// The model: a directory, or a single weights file
    model: PathBuf,
    /// An approved OMS manifest (an unsigned in-toto statement, e.g. from `vouch manifest`
    /// or the payload of a model-signing signature); it records its own serialization
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// A pinned OMS root digest, sha256:HEX, as `vouch digest` prints it (serialized with
    /// --algo, --shard-size and --allow-symlinks as it was made)
    #[arg(long, value_name = "sha256:HEX")]
    digest: Option<String>,
    /// A sha256sum/b3sum check list whose names are relative to the model root (--algo
    /// names its algorithm)
    #[arg(long, value_name = "SUMS")]
    check: Option<PathBuf>,
    /// Fail (exit 1) when a pickle file (.pt, .bin, .pkl, PyTorch zip, ...) imports a
    /// global picklescan rates dangerous, or cannot be scanned
    #[arg(long)]
    deny_unsafe_pickle: bool,
    #[command(flatten)]
    serialization: SerializationArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: VerifyArgs) -> Result<u8> {
    match check(&args) {
        Ok(report) => args
            .output
            .emit(&report, |r| report::render(r, report::Format::Text)),
        Err(error) => {
            args.output.emit_error(&args.model, &error);
            Err(error)
        }
    }
}

fn check(args: &VerifyArgs) -> Result<Report> {
    let flags = &args.serialization;
    let mut options = VerifyOptions {
        extra_ignores: user_ignores(&args.model, &flags.ignore_paths)?,
        approval_files: Vec::new(),
        deny_unsafe_pickle: args.deny_unsafe_pickle,
    };
    let engine = args.engine.engine()?;
    let progress = args.engine.progress();
    let against = |expected: &Expected, options: &VerifyOptions| {
        verify(&args.model, expected, options, &engine, progress.as_ref())
    };
    if let Some(path) = &args.manifest {
        if flags.algo.is_some() || flags.shard_size.is_some() || flags.allow_symlinks {
            return Err(Error::Usage(
                "a manifest records its own serialization; --algo, --shard-size and --allow-symlinks \
                 go with --digest or --check"
                    .into(),
            ));
        }
        let statement = load_statement(path)?;
        options.approval_files.push(path.clone());
        return against(&statement_expected(&statement, path), &options);
    }
    if let Some(path) = &args.check {
        if flags.shard_size.is_some() {
            return Err(Error::Usage(
                "a check list holds whole-file digests; --shard-size goes with --digest".into(),
            ));
        }
        let entries = load_check_list(path, flags.algo.unwrap_or(Algorithm::Sha256))?;
        let expected = check_list_expected(&entries, path, flags.allow_symlinks)?;
        options.approval_files.push(path.clone());
        return against(&expected, &options);
    }
    let text = args.digest.as_deref().expect("clap requires one approval");
    let root = Digest::from_prefixed(text).map_err(|e| Error::Usage(format!("--digest: {e}")))?;
    if root.algorithm != Algorithm::Sha256 {
        return Err(Error::Usage(
            "--digest: an OMS root digest is sha256:HEX".into(),
        ));
    }
    let serialization = flags.serialization(&args.model, &[])?;
    verify_root(
        &args.model,
        &serialization,
        &root,
        &options,
        &engine,
        progress.as_ref(),
    )
}
