use std::path::PathBuf;

use clap::{ArgGroup, Args};

use super::{user_ignores, EngineArgs, OutputArgs, PicklePolicyArg, SerializationArgs, TrustArgs};
use crate::approval::{Approval, Locator, Pin};
use crate::error::{Error, Result};
use crate::hash::{Algorithm, Digest};
use crate::report::{self, Report};
use crate::verify::detached::verify_detached_file;
use crate::verify::model::{check_model, VerifyOptions};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("approval").required(true).args(["manifest", "digest", "manifest_digest", "check", "signature", "bundle"])))]
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
    /// A pinned manifest digest, sha256:HEX, as `vouch digest --manifest-digest` prints it:
    /// unlike the root digest it binds every file's name and boundaries (serialized with
    /// --algo, --shard-size and --allow-symlinks as it was made)
    #[arg(long, value_name = "sha256:HEX")]
    manifest_digest: Option<String>,
    /// A sha256sum/b3sum check list whose names are relative to the model root (--algo
    /// names its algorithm)
    #[arg(long, value_name = "SUMS")]
    check: Option<PathBuf>,
    /// Fail (exit 1) when a file holding pickles (chosen by content: pickles, PyTorch zip
    /// and legacy checkpoints, .npy/.npz, any zip) imports a global the --pickle-policy
    /// refuses, or cannot be scanned
    #[arg(long)]
    deny_unsafe_pickle: bool,
    /// What --deny-unsafe-pickle refuses: strict (only what a weights-only load needs) or
    /// picklescan (what picklescan rates dangerous)
    #[arg(
        long,
        value_enum,
        value_name = "POLICY",
        requires = "deny_unsafe_pickle"
    )]
    pickle_policy: Option<PicklePolicyArg>,
    #[command(flatten)]
    signatures: SignatureArgs,
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
    let signatures = &args.signatures;
    let trust = &signatures.trust;
    trust.refuse_unless(
        signatures.signature.is_some() || signatures.bundle.is_some(),
        "--signature or --bundle",
    )?;
    if let Some(bundle) = &signatures.bundle {
        return verify_detached_file(&args.model, bundle, &trust.spec()?.load_keyless()?);
    }
    let approval = if let Some(bundle) = &signatures.signature {
        refuse_serialization_flags(flags)?;
        Approval::Signature {
            bundle: Locator::File(bundle.clone()),
            trust: trust.spec()?,
        }
    } else if let Some(manifest) = &args.manifest {
        refuse_serialization_flags(flags)?;
        Approval::Manifest(Locator::File(manifest.clone()))
    } else if let Some(list) = &args.check {
        if flags.shard_size.is_some() {
            return Err(Error::Usage(
                "a check list holds whole-file digests; --shard-size goes with --digest or --manifest-digest".into(),
            ));
        }
        Approval::CheckList {
            list: Locator::File(list.clone()),
            algorithm: flags.algo.unwrap_or(Algorithm::Sha256),
            allow_symlinks: flags.allow_symlinks,
        }
    } else {
        let pin = match (&args.digest, &args.manifest_digest) {
            (Some(text), _) => Pin::Root(sha256_pin("--digest", text)?),
            (None, Some(text)) => Pin::Manifest(sha256_pin("--manifest-digest", text)?),
            (None, None) => unreachable!("clap requires one approval"),
        };
        Approval::Pinned {
            pin,
            serialization: flags.serialization(&args.model, &[])?,
        }
    };
    let options = VerifyOptions {
        extra_ignores: user_ignores(&args.model, &flags.ignore_paths)?,
        extra_ignores_setting: "--ignore-paths",
        include_git_paths: flags.no_ignore_git_paths,
        approval_files: Vec::new(),
        deny_unsafe_pickle: args
            .deny_unsafe_pickle
            .then(|| args.pickle_policy.unwrap_or_default().into()),
    };
    let engine = args.engine.engine()?;
    check_model(&args.model, &approval, &options, &engine)
}

/// A pinned digest given as `flag`: `sha256:HEX`.
fn sha256_pin(flag: &str, text: &str) -> Result<Digest> {
    let digest = Digest::from_prefixed(text).map_err(|e| Error::Usage(format!("{flag}: {e}")))?;
    if digest.algorithm != Algorithm::Sha256 {
        return Err(Error::Usage(format!(
            "{flag}: a model's pinned digest is sha256:HEX"
        )));
    }
    Ok(digest)
}

/// A manifest or signature records its own serialization; flags that would change it are
/// refused rather than silently ignored.
fn refuse_serialization_flags(flags: &SerializationArgs) -> Result<()> {
    if flags.algo.is_some() || flags.shard_size.is_some() || flags.allow_symlinks {
        return Err(Error::Usage(
            "a manifest or signature records its own serialization; --algo, --shard-size and \
             --allow-symlinks go with --digest, --manifest-digest or --check"
                .into(),
        ));
    }
    Ok(())
}

/// Signatures and who must have made them.
#[derive(Debug, Args)]
struct SignatureArgs {
    /// An OMS signature bundle (model-signing's model.sig); needs --key, --certificate-chain,
    /// or --identity/--identity-regexp with --issuer
    #[arg(long, value_name = "FILE")]
    signature: Option<PathBuf>,
    /// A detached Sigstore bundle over MODEL, a single file (as cosign and sigstore-python
    /// write them); needs --identity/--identity-regexp and --issuer
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    trust: TrustArgs,
}
