use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};

use super::{user_ignores, EngineArgs, OutputArgs, SerializationArgs};
use crate::error::{Error, Result};
use crate::hash::{Algorithm, Digest};
use crate::manifest::{
    check_list_expected, load_check_list, load_statement, read_input, statement_expected,
};
use crate::model::verify::{verify, verify_root, verify_signed, Expected, VerifyOptions};
use crate::report::{self, Report};
use crate::sign::keyless::{IdentityRule, KeylessPolicy};
use crate::sign::keys::PublicKey;
use crate::sign::x509::pem_certificates;
use crate::sign::{verify_detached_file, SignerPolicy};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("approval").required(true).args(["manifest", "digest", "check", "signature", "bundle"])))]
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
    if signatures.signature.is_none() && signatures.bundle.is_none() && signatures.has_policy() {
        return Err(Error::Usage(
            "--key, --certificate-chain, --identity, --issuer and --trusted-root go with --signature or --bundle".into(),
        ));
    }
    if let Some(bundle) = &signatures.bundle {
        return verify_detached_file(&args.model, bundle, &signatures.keyless_policy()?);
    }
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
    if let Some(path) = &signatures.signature {
        refuse_serialization_flags(flags)?;
        let policy = signatures.signer_policy()?;
        return verify_signed(
            &args.model,
            path,
            &policy,
            &options,
            &engine,
            progress.as_ref(),
        );
    }
    if let Some(path) = &args.manifest {
        refuse_serialization_flags(flags)?;
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

/// A manifest or signature records its own serialization; flags that would change it are
/// refused rather than silently ignored.
fn refuse_serialization_flags(flags: &SerializationArgs) -> Result<()> {
    if flags.algo.is_some() || flags.shard_size.is_some() || flags.allow_symlinks {
        return Err(Error::Usage(
            "a manifest or signature records its own serialization; --algo, --shard-size and \
             --allow-symlinks go with --digest or --check"
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
    /// The signer's public key (PEM), for signatures made with a key
    #[arg(long, value_name = "PUBLIC.pem")]
    key: Option<PathBuf>,
    /// Trusted certificates (PEM; repeatable): the signing certificate must chain to one
    #[arg(long = "certificate-chain", value_name = "PEM")]
    certificate_chain: Vec<PathBuf>,
    /// The Sigstore signer identity (e-mail or URI), matched exactly
    #[arg(long, value_name = "ID", conflicts_with = "identity_regexp")]
    identity: Option<String>,
    /// A pattern the whole Sigstore signer identity must match
    #[arg(long, value_name = "REGEX")]
    identity_regexp: Option<String>,
    /// The OIDC issuer of the Sigstore identity, matched exactly
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// A Sigstore trusted_root.json [default: the public-good root shipped with vouch]
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
}

impl SignatureArgs {
    fn keyless(&self) -> bool {
        self.identity.is_some()
            || self.identity_regexp.is_some()
            || self.issuer.is_some()
            || self.trusted_root.is_some()
    }

    fn has_policy(&self) -> bool {
        self.key.is_some() || !self.certificate_chain.is_empty() || self.keyless()
    }

    fn signer_policy(&self) -> Result<SignerPolicy> {
        let chosen = [
            self.key.is_some(),
            !self.certificate_chain.is_empty(),
            self.keyless(),
        ];
        if chosen.iter().filter(|&&c| c).count() != 1 {
            return Err(Error::Usage(
                "--signature needs exactly one of: --key PUBLIC.pem; --certificate-chain ROOT.pem; \
                 --identity (or --identity-regexp) with --issuer"
                    .into(),
            ));
        }
        if let Some(path) = &self.key {
            let key = PublicKey::from_pem(&read_input(path)?).map_err(|e| Error::input(path, e))?;
            return Ok(SignerPolicy::Key(key));
        }
        if !self.certificate_chain.is_empty() {
            let mut anchors = Vec::new();
            for path in &self.certificate_chain {
                anchors.extend(
                    pem_certificates(&read_input(path)?).map_err(|e| Error::input(path, e))?,
                );
            }
            return Ok(SignerPolicy::CertificateChain {
                anchors,
                source: self.certificate_chain[0].clone(),
            });
        }
        Ok(SignerPolicy::Keyless(Box::new(self.keyless_policy()?)))
    }

    fn keyless_policy(&self) -> Result<KeylessPolicy> {
        if self.key.is_some() || !self.certificate_chain.is_empty() {
            return Err(Error::Usage(
                "--bundle is verified with --identity and --issuer, not a key".into(),
            ));
        }
        let identity = match (&self.identity, &self.identity_regexp) {
            (Some(identity), None) => IdentityRule::Exact(identity.clone()),
            (None, Some(pattern)) => IdentityRule::pattern(pattern).map_err(Error::Usage)?,
            _ => {
                return Err(Error::Usage(
                    "keyless verification needs --identity or --identity-regexp".into(),
                ))
            }
        };
        let issuer = self.issuer.clone().ok_or_else(|| {
            Error::Usage("keyless verification needs --issuer (the signer's OIDC issuer)".into())
        })?;
        let root = match &self.trusted_root {
            Some(path) => Some(
                String::from_utf8(read_input(path)?)
                    .map_err(|_| Error::input(path, "is not UTF-8 JSON"))?,
            ),
            None => None,
        };
        KeylessPolicy::new(identity, issuer, root.as_deref()).map_err(|e| {
            Error::input(
                self.trusted_root
                    .as_deref()
                    .unwrap_or(Path::new("<built-in trusted root>")),
                e,
            )
        })
    }
}
