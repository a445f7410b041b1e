use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};

use super::{
    refused, user_ignores, EngineArgs, OutputArgs, PicklePolicyArg, RevisionArg, SerializationArgs,
    Target, TrustArgs,
};
use crate::approval::rules::ApprovalParts;
use crate::approval::setting::{RuleError, Spelling};
use crate::approval::Approval;
use crate::error::{Error, Result};
use crate::model::paths::name_inside;
use crate::report::{self, Report};
use crate::verify::detached::verify_detached_file;
use crate::verify::model::{check_model, VerifyOptions};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("approval").args(["manifest", "digest", "manifest_digest", "check", "signature", "bundle", "registry"])))]
// A check list may be of any algorithm `vouch hash` writes, sha512 among them.
#[command(mut_arg("algo", |arg| arg
    .value_parser(super::algorithm_parser())
    .help("Digest algorithm of each resource: sha256 (the default), blake2b or blake3; with --check also sha512")))]
pub struct VerifyArgs {
    /// The model: a directory, a single weights file, a Hugging Face cache snapshot or
    /// hf://ORG/NAME[@REV] (see the README's "Hugging Face caches"). Without it, --registry
    /// checks the registry's own copy of the version's files
    #[arg(required_unless_present = "registry")]
    pub(super) model: Option<PathBuf>,
    #[command(flatten)]
    revision: RevisionArg,
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
    /// A sha256sum/b3sum check list (--algo names its algorithm). For a directory, names
    /// are relative to it, or all start with its path as given (as `vouch hash DIR` writes
    /// them). For a single file, only the one line naming it counts, by its base name or its
    /// path as given (a release's SHA256SUMS); no such line, or two, is exit 2
    #[arg(long, value_name = "SUMS")]
    check: Option<PathBuf>,
    /// Verify against the approval kept with a model version in an MLflow registry:
    /// models:/NAME/VERSION or models:/NAME@ALIAS (see the README's "Model registry"); a
    /// kept signature needs --key, --certificate-chain or --identity/--issuer
    #[arg(long, value_name = "models:/NAME/VERSION|@ALIAS", conflicts_with_all = ["manifest", "digest", "manifest_digest", "check", "bundle"])]
    pub(super) registry: Option<String>,
    /// The tracking server of --registry (http(s):// or azureml://) [default:
    /// $MLFLOW_TRACKING_URI]
    #[arg(long, value_name = "URI", requires = "registry")]
    pub(super) tracking_uri: Option<String>,
    /// Fail (exit 1) when a file holding pickles (chosen by content: pickles, PyTorch zip
    /// and legacy checkpoints, .npy/.npz, any zip) imports a global the --pickle-policy
    /// refuses, or cannot be scanned
    #[arg(long)]
    deny_unsafe_pickle: bool,
    /// Check a Hugging Face cache snapshot (or --local-dir download) against its own names:
    /// each file's content against its blob's name (SHA-256 or git blob SHA-1), and refs/
    /// against the snapshots. Alone, or with another approval (both must pass)
    #[arg(long, conflicts_with = "bundle")]
    hf_blobs: bool,
    /// What --deny-unsafe-pickle refuses: strict (only what a weights-only load needs) or
    /// picklescan (what picklescan rates dangerous)
    #[arg(
        long,
        value_enum,
        value_name = "POLICY",
        requires = "deny_unsafe_pickle"
    )]
    pickle_policy: Option<PicklePolicyArg>,
    /// A tamper-aware hash cache (HMAC key in FILE.key, created 0600): unchanged files are
    /// taken from it, a random 1% sample is re-hashed, and all of them weekly. Never used
    /// unless given; it must lie outside the model
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,
    /// Read with O_DIRECT, past the page cache (direct), or through it (buffered)
    #[arg(long, value_enum, value_name = "MODE", default_value = "buffered")]
    io: crate::hash::Io,
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
    let Some(model) = &args.model else {
        return registry_copy(&args);
    };
    let result = check(&args, model);
    if let Ok(report) = &result {
        say_version(report);
    }
    emit(&args, model, result)
}

/// Whether any approval but `--hf-blobs` was given.
fn has_approval(args: &VerifyArgs) -> bool {
    args.manifest.is_some()
        || args.digest.is_some()
        || args.manifest_digest.is_some()
        || args.check.is_some()
        || args.registry.is_some()
        || args.signatures.signature.is_some()
        || args.signatures.bundle.is_some()
}

/// On stderr, which registry version's approval a report checked against.
pub(super) fn say_version(report: &Report) {
    if let Some(version) = &report.approval_version {
        eprintln!("vouch: checked against the approval kept with {version}");
    }
}

/// `verify --registry` without MODEL: the registry's own copy of the version's files.
fn registry_copy(args: &VerifyArgs) -> Result<u8> {
    let registry = args.registry.as_deref().unwrap_or_default();
    let flags = &args.serialization;
    for (flag, given) in [
        ("--ignore-paths", !flags.ignore_paths.is_empty()),
        ("--no-ignore-git-paths", flags.no_ignore_git_paths),
        ("--cache", args.cache.is_some()),
        ("--deny-unsafe-pickle", args.deny_unsafe_pickle),
    ] {
        if given {
            return Err(Error::Usage(format!(
                "{flag} goes with MODEL; the registry's copy is checked as its approval says"
            )));
        }
    }
    let result = approval(args, None)
        .and_then(|approval| crate::verify::registry::check_registry_copy(&approval));
    match result {
        Ok(report) => {
            say_version(&report);
            args.output.emit(
                &report,
                Target::Image {
                    reference: registry,
                    approval: None,
                },
                |r| report::render(r, report::Format::Text),
            )
        }
        Err(error) => {
            args.output.emit_error(Path::new(registry), &error);
            Err(error)
        }
    }
}

pub(super) fn emit(args: &VerifyArgs, model: &Path, result: Result<Report>) -> Result<u8> {
    match result {
        Ok(report) => args.output.emit(&report, Target::Model(model), |r| {
            report::render(r, report::Format::Text)
        }),
        Err(error) => {
            args.output.emit_error(model, &error);
            Err(error)
        }
    }
}

impl VerifyArgs {
    /// Who must have signed the approval, as the trust flags say (promote checks the
    /// registry's own copy under the same trust as MODEL).
    pub(super) fn trust(&self) -> crate::approval::TrustParts {
        self.signatures.trust.parts()
    }
}

/// The approval the flags give; a pin is serialized with the ignores of `model`.
fn approval(args: &VerifyArgs, model: Option<&Path>) -> Result<Approval> {
    let flags = &args.serialization;
    let signatures = &args.signatures;
    let parts = ApprovalParts {
        manifest: args.manifest.clone(),
        signature: signatures.signature.clone(),
        digest: args.digest.clone(),
        manifest_digest: args.manifest_digest.clone(),
        check: args.check.clone(),
        algorithm: flags.algo,
        shard_size: flags.shard_size,
        allow_symlinks: flags.allow_symlinks,
        trust: signatures.trust.parts(),
        registry: args.registry.clone(),
        tracking_uri: args.tracking_uri.clone(),
    };
    let approval = parts.approval().map_err(|error| match error {
        // Trust flags also go with --bundle, which is no model approval.
        RuleError::TrustWithoutSignature => {
            Error::Usage(format!("{} or --bundle", error.spelled(Spelling::Flag)))
        }
        error => refused(error),
    })?;
    Ok(match (approval, model) {
        // A pin is made with the ignores in its serialization, as `vouch digest` makes it.
        (Approval::Pinned { pin, serialization }, Some(model)) => Approval::Pinned {
            pin,
            serialization: flags.with_ignores(serialization, model, &[])?,
        },
        (approval, _) => approval,
    })
}

/// Verifies `given` (resolved as `--revision` says) as the flags say.
pub(super) fn check(args: &VerifyArgs, given: &Path) -> Result<Report> {
    let model = &args.revision.resolve(given)?;
    if !has_approval(args) {
        if !args.hf_blobs {
            return Err(Error::Usage(
                "give an approval: --manifest, --signature, --digest, --manifest-digest, --check, --bundle, --registry or --hf-blobs".into(),
            ));
        }
        return crate::verify::hf::check_blobs(model, &args.engine.engine()?);
    }
    let flags = &args.serialization;
    let signatures = &args.signatures;
    if let Some(bundle) = &signatures.bundle {
        return verify_detached_file(model, bundle, &signatures.trust.spec()?.load_detached()?);
    }
    let approval = approval(args, Some(model))?;
    // A report written into the model is no file of it (as `manifest`, `sign` and `sbom`
    // leave their outputs out).
    let mut extra_ignores = user_ignores(model, &flags.ignore_paths)?;
    extra_ignores.extend(
        args.output
            .files()
            .filter_map(|file| name_inside(model, file)),
    );
    let options = VerifyOptions {
        extra_ignores,
        extra_ignores_setting: "--ignore-paths",
        include_git_paths: flags.no_ignore_git_paths,
        approval_files: Vec::new(),
        deny_unsafe_pickle: args
            .deny_unsafe_pickle
            .then(|| args.pickle_policy.unwrap_or_default().into()),
    };
    let mut engine = args.engine.engine_reading(args.io)?;
    if let Some(path) = &args.cache {
        let settings = crate::hash::cache::CacheSettings::at(path.clone());
        settings.refuse_inside(model)?;
        let scope = std::path::absolute(model).unwrap_or_else(|_| model.to_path_buf());
        engine = engine.with_cache(crate::hash::cache::Cache::open(
            &settings,
            &scope.to_string_lossy(),
        )?);
    }
    let mut report = check_model(model, &approval, &options, &engine)?;
    report.warnings.extend(engine.direct_refused());
    if args.hf_blobs {
        let blobs = crate::verify::hf::check_blobs(model, &engine)?;
        report.approval = format!("{}, and {}", report.approval, blobs.approval);
        report.subjects.extend(blobs.subjects);
        report.warnings.extend(blobs.warnings);
        report.bytes_hashed += blobs.bytes_hashed;
        report.duration += blobs.duration;
    }
    if let Some(cache) = engine.cache() {
        let used = cache.used();
        report.bytes_from_cache = used.bytes_from_cache;
        if let Some(note) = used.note {
            report.warnings.push(format!(
                "hash cache not used: {note}; every file was hashed"
            ));
        }
        cache.save()?;
    }
    Ok(report)
}

/// Signatures and who must have made them.
#[derive(Debug, Args)]
struct SignatureArgs {
    /// An OMS signature bundle (model-signing's model.sig); needs --key, --certificate-chain,
    /// or --identity/--identity-regexp with --issuer/--issuer-regexp
    #[arg(long, value_name = "FILE")]
    signature: Option<PathBuf>,
    /// A detached Sigstore bundle over MODEL, a single file (as cosign and sigstore-python
    /// write them); needs --identity/--identity-regexp and --issuer/--issuer-regexp, or --key
    /// for a bundle signed with a key (cosign sign-blob --key)
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    trust: TrustArgs,
}
