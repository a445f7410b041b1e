//! The command line: argument definitions (one file per subcommand) and the glue that
//! calls the library and writes what it returns. `main` maps the result to an exit status.

mod completions;
mod digest;
mod drift;
mod hash;
mod manifest;
mod oci;
mod output;
mod progress;
mod registry;
mod sbom;
mod scan;
mod sign;
mod verify;

use std::path::{Path, PathBuf};

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use crate::approval::setting::{RuleError, Spelling};
use crate::approval::{TrustParts, TrustSpec};
use crate::error::{Error, Result};
use crate::hash::{default_jobs, Algorithm, Engine, ReaderConfig};
use crate::model::oms::Serialization;
use crate::model::paths::name_inside;
use crate::model::paths::{normalize_ignore, IgnoreSet};
use output::{write_output, OutputArgs, Target};
use progress::{Bar, ProgressMode};

#[derive(Debug, Parser)]
#[command(
    name = "vouch",
    version,
    about = "Verify that model weights and artifacts are exactly what was approved",
    after_help = "Exit status: 0 verified, 1 integrity failure, 2 usage or input error, 3 operational error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print digests of files and directories, as sha256sum and b3sum do, or check a list.
    Hash(hash::HashArgs),
    /// Print the OMS root digest of a model (the subject digest model-signing signs).
    Digest(digest::DigestArgs),
    /// Write the unsigned OMS manifest (in-toto statement) of a model: the approved manifest.
    Manifest(manifest::ManifestArgs),
    /// Sign a model: an OMS signature bundle, as model-signing writes one.
    Sign(sign::SignArgs),
    /// Verify a model against a signature, a manifest, a pinned root digest or a check list.
    Verify(Box<verify::VerifyArgs>),
    /// Approve a model version in an MLflow model registry: store its manifest (or
    /// signature) with the version and tag it with the digests.
    Approve(registry::ApproveArgs),
    /// Verify a model against its registry approval and, only when it verifies, move an
    /// alias (production, champion) to the version.
    Promote(Box<registry::PromoteArgs>),
    /// Write a CycloneDX 1.6 or SPDX 2.3 SBOM of a model (its files, digests and format
    /// facts) or of a container image (its layers, checked while they are hashed).
    Sbom(sbom::SbomArgs),
    /// Read the headers of a model's weight files (safetensors, GGUF, ONNX, pickle) and
    /// report what they are and whether loading them could run code.
    Scan(scan::ScanArgs),
    /// Scheduled drift checks: verify every deployed target, remember, alert, gate.
    #[command(subcommand_required = true)]
    Drift(drift::DriftArgs),
    /// Verify container images and model artifacts in OCI registries and image layouts.
    #[command(subcommand_required = true)]
    Oci(oci::OciArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(completions::CompletionsArgs),
}

/// Runs a parsed command line and returns the exit status.
pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Hash(args) => hash::run(args),
        Command::Digest(args) => digest::run(args),
        Command::Manifest(args) => manifest::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Verify(args) => verify::run(*args),
        Command::Approve(args) => registry::approve(args),
        Command::Promote(args) => registry::promote(*args),
        Command::Sbom(args) => sbom::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Oci(args) => oci::run(args),
        Command::Drift(args) => drift::run(args),
        Command::Completions(args) => completions::run(args),
    }
}

/// An error as the command line says it: the library's message, then the hint in flags.
pub fn describe_error(error: &Error) -> String {
    match error.hint() {
        Some(hint) => format!("{error}\nhint: {}", Spelling::Flag.hint(hint)),
        None => error.to_string(),
    }
}

fn algorithm_parser() -> impl TypedValueParser<Value = Algorithm> {
    algorithms_parser(&Algorithm::ALL)
}

/// `--algo` where an OMS serialization is made: the algorithms model manifests use.
fn oms_algorithm_parser() -> impl TypedValueParser<Value = Algorithm> {
    let oms: Vec<Algorithm> = Algorithm::ALL.into_iter().filter(|a| a.is_oms()).collect();
    algorithms_parser(&oms)
}

fn algorithms_parser(algorithms: &[Algorithm]) -> impl TypedValueParser<Value = Algorithm> {
    PossibleValuesParser::new(algorithms.iter().map(|a| a.name())).map(|name| {
        name.parse::<Algorithm>()
            .expect("only listed names get here")
    })
}

/// `--pickle-policy`: which pickle imports `verify --deny-unsafe-pickle` and `scan` refuse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PicklePolicyArg {
    /// Only the globals a weights-only load needs (PyTorch's weights_only allow-list)
    #[default]
    Strict,
    /// What picklescan rates dangerous
    Picklescan,
}

impl From<PicklePolicyArg> for crate::formats::pickle::PicklePolicy {
    fn from(arg: PicklePolicyArg) -> Self {
        match arg {
            PicklePolicyArg::Strict => Self::Strict,
            PicklePolicyArg::Picklescan => Self::Picklescan,
        }
    }
}

/// `--jobs` and `--progress`, accepted by every command that hashes.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Threads that hash at once [default: one per core]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Show a progress bar on stderr
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto, value_name = "WHEN")]
    progress: ProgressMode,
}

impl EngineArgs {
    fn jobs(&self) -> usize {
        jobs_or_default(self.jobs)
    }

    /// The engine, reporting progress as `--progress` asks.
    fn engine(&self) -> Result<Engine> {
        self.engine_reading(crate::hash::Io::Buffered)
    }

    /// [`EngineArgs::engine`], reading files as `io` says.
    fn engine_reading(&self, io: crate::hash::Io) -> Result<Engine> {
        let jobs = self.jobs();
        Ok(Engine::new(jobs, ReaderConfig::for_jobs(jobs).with_io(io))
            .map_err(|e| Error::Usage(format!("cannot start {jobs} threads: {e}")))?
            .with_progress(Bar::for_mode(self.progress, "hashing")))
    }
}

/// `--jobs`, or one per core.
fn jobs_or_default(jobs: Option<u16>) -> usize {
    jobs.map(usize::from).unwrap_or_else(default_jobs)
}

/// `--revision`: which snapshot of a Hugging Face cache repository a command reads.
#[derive(Debug, Args)]
pub struct RevisionArg {
    /// With a hub cache repository directory (models--ORG--NAME) or hf://ORG/NAME: the
    /// snapshot to read, a commit or a ref in refs/ (main, refs/pr/1) [default for hf://:
    /// main]
    #[arg(long, value_name = "REV|REF")]
    revision: Option<String>,
}

impl RevisionArg {
    /// The model path `given` names: a snapshot for `hf://…` or a repository directory.
    fn resolve(&self, given: &Path) -> Result<PathBuf> {
        crate::model::hf::resolve_target(given, self.revision.as_deref())
    }
}

/// How a model is serialized: shared by `digest`, `manifest` and `verify --digest`.
#[derive(Debug, Args)]
pub struct SerializationArgs {
    /// Digest algorithm of each resource: sha256 (the default), blake2b or blake3
    #[arg(long, value_name = "ALGORITHM", value_parser = oms_algorithm_parser())]
    algo: Option<Algorithm>,
    /// Split files into shards of this many bytes (the OMS shards method; model-signing's
    /// default is 1000000000); without it, each file is one resource
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    shard_size: Option<u64>,
    /// A path to leave out, relative to the model root (repeatable); .git, .gitattributes,
    /// .github and .gitignore are left out too, unless --no-ignore-git-paths
    #[arg(long = "ignore-paths", value_name = "PATH")]
    ignore_paths: Vec<String>,
    /// Treat .git, .gitattributes, .github and .gitignore at the model root like any other
    /// file (as model-signing's flag of that name does)
    #[arg(long)]
    no_ignore_git_paths: bool,
    /// Hash symbolic links that stay inside the model as their targets' content
    #[arg(long)]
    allow_symlinks: bool,
}

impl SerializationArgs {
    /// The serialization these flags describe for the model at `model`; `outputs` are files
    /// vouch is about to write, left out when they lie inside the model.
    fn serialization(&self, model: &Path, outputs: &[&Path]) -> Result<Serialization> {
        let algorithm = self.algo.unwrap_or(Algorithm::Sha256);
        let serialization = Serialization::new(algorithm, self.shard_size, self.allow_symlinks)
            .map_err(|e| refused(RuleError::Serialization(e)))?;
        self.with_ignores(serialization, model, outputs)
    }

    /// `serialization` leaving out what these flags leave out, and `outputs` inside the model.
    fn with_ignores(
        &self,
        mut serialization: Serialization,
        model: &Path,
        outputs: &[&Path],
    ) -> Result<Serialization> {
        if self.no_ignore_git_paths {
            serialization.ignore_paths = IgnoreSet::default();
        }
        for name in user_ignores(model, &self.ignore_paths)? {
            serialization.ignore_paths.insert(name);
        }
        for output in outputs {
            if let Some(name) = name_inside(model, output) {
                serialization.ignore_paths.insert(name);
            }
        }
        crate::model::hf::ignore_local_dir_metadata(model, &mut serialization.ignore_paths);
        Ok(serialization)
    }
}

/// `--ignore-paths` values as model-relative names.
fn user_ignores(model: &Path, given: &[String]) -> Result<Vec<String>> {
    given
        .iter()
        .map(|p| {
            normalize_ignore(model, p).map_err(|e| Error::Usage(format!("--ignore-paths {e}")))
        })
        .collect()
}

/// Who must have made a signature: shared by `verify` and `oci verify`.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The signer's public key (PEM), for signatures made with a key
    #[arg(long, visible_alias = "public-key", value_name = "PUBLIC.pem")]
    key: Option<PathBuf>,
    /// Trusted certificates (PEM; repeatable): the signing certificate must chain to one
    #[arg(long = "certificate-chain", value_name = "PEM")]
    certificate_chain: Vec<PathBuf>,
    /// Let a trusted certificate that is not a self-signed root (an intermediate) end the
    /// chain; without it the chain must reach a trusted root, as model-signing requires
    #[arg(long)]
    allow_partial_chain: bool,
    /// The Sigstore signer identity (e-mail or URI), matched exactly
    #[arg(
        long,
        visible_alias = "certificate-identity",
        value_name = "ID",
        conflicts_with = "identity_regexp"
    )]
    identity: Option<String>,
    /// A pattern the whole Sigstore signer identity must match
    #[arg(
        long,
        visible_alias = "certificate-identity-regexp",
        value_name = "REGEX"
    )]
    identity_regexp: Option<String>,
    /// The OIDC issuer of the Sigstore identity, matched exactly
    #[arg(
        long,
        visible_alias = "certificate-oidc-issuer",
        value_name = "URL",
        conflicts_with = "issuer_regexp"
    )]
    issuer: Option<String>,
    /// A pattern the whole OIDC issuer of the Sigstore identity must match
    #[arg(
        long,
        visible_alias = "certificate-oidc-issuer-regexp",
        value_name = "REGEX"
    )]
    issuer_regexp: Option<String>,
    /// A Sigstore trusted_root.json [default: the public-good root shipped with vouch]
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
}

impl TrustArgs {
    fn parts(&self) -> TrustParts {
        TrustParts {
            key: self.key.clone(),
            certificate_chain: self.certificate_chain.clone(),
            allow_partial_chain: self.allow_partial_chain,
            identity: self.identity.clone(),
            identity_regexp: self.identity_regexp.clone(),
            issuer: self.issuer.clone(),
            issuer_regexp: self.issuer_regexp.clone(),
            trusted_root: self.trusted_root.clone(),
        }
    }

    /// The trust the flags name: exactly one of a key, certificates, or an identity.
    fn spec(&self) -> Result<TrustSpec> {
        self.parts().spec().map_err(refused)
    }
}

/// Approval flags the rules refused, as a usage error that names the flags.
fn refused(error: RuleError) -> Error {
    Error::Usage(error.spelled(Spelling::Flag))
}
