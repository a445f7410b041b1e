use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{refused, write_output, EngineArgs, OutputArgs, Target, TrustArgs};
use crate::approval::rules::ImageApprovalParts;
use crate::error::{Error, Result};
use crate::oci::auth::Credentials;
use crate::oci::document::Platform;
use crate::oci::{self, Connection, ImageRef, ModelRoot, Options, Platforms, Reading};
use crate::report::{self, Report};
use crate::verify::image::check_image;

#[derive(Debug, Args)]
pub struct OciArgs {
    #[command(subcommand)]
    command: OciCommand,
}

#[derive(Debug, Subcommand)]
enum OciCommand {
    /// Verify an image or model artifact: its manifest against a pinned digest, every blob
    /// against its descriptor, and optionally its cosign signatures (--key; --identity with
    /// --issuer, keyless; --certificate-chain with --identity, a private PKI) or Notation
    /// signatures (--trust-policy), diff_ids and an approved OMS manifest or signature
    Verify(Box<VerifyArgs>),
    /// Print the digest of the manifest or index REF resolves to, to pin with --digest
    Digest(DigestArgs),
    /// Sign the digest REF resolves to with a key, as `cosign sign --key` does (its legacy
    /// scheme): the signature is added to the `sha256-HEX.sig` manifest beside the image,
    /// where `vouch oci verify --key` and cosign find it
    Sign(SignArgs),
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The image: docker://HOST[:PORT]/REPO(:TAG|@DIGEST), HOST[:PORT]/REPO(:TAG|@DIGEST) or
    /// oci:DIR[:TAG|@DIGEST]
    #[arg(value_name = "REF")]
    reference: String,
    /// The private key: PEM, PKCS#8 (PRIVATE KEY, ENCRYPTED PRIVATE KEY), SEC1 (EC PRIVATE
    /// KEY), PKCS#1 (RSA PRIVATE KEY), or cosign's encrypted key (ENCRYPTED COSIGN PRIVATE
    /// KEY, ENCRYPTED SIGSTORE PRIVATE KEY); ECDSA P-256/P-384/P-521, Ed25519 or RSA
    #[arg(long, value_name = "PRIVATE.pem")]
    key: PathBuf,
    /// A file whose first line is the key's password [default: the COSIGN_PASSWORD
    /// environment variable, else no password]
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// The repository the signature names (critical.identity.docker-reference)
    /// [default: REF's repository; an image layout names none, so it needs this]
    #[arg(long, value_name = "HOST[:PORT]/PATH")]
    signed_repository: Option<String>,
    /// Write cosign 3's signature instead: a Sigstore bundle v0.3 (a DSSE statement of
    /// https://sigstore.dev/cosign/sign/v1 naming the digest) attached as an OCI 1.1
    /// referrer and listed in the referrers fallback tag sha256-HEX
    #[arg(long)]
    bundle: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image: docker://HOST[:PORT]/REPO(:TAG|@DIGEST) or oci:DIR[:TAG|@DIGEST]
    #[arg(value_name = "REF")]
    reference: String,
    /// The approved digest of the manifest or index REF resolves to (as `vouch oci digest`
    /// prints it); a tag that now points elsewhere fails
    #[arg(long, value_name = "sha256:HEX")]
    digest: Option<String>,
    /// An approved OMS manifest of the model the artifact holds (one layer per file, named
    /// by org.opencontainers.image.title; files method, sha256)
    #[arg(long, value_name = "FILE", conflicts_with = "signature")]
    manifest: Option<PathBuf>,
    /// An OMS signature bundle of the model the artifact holds (as `vouch sign` or
    /// model-signing write it); needs --key, --certificate-chain, or
    /// --identity/--identity-regexp with --issuer. Its statement is used as --manifest is,
    /// once the signature has been checked
    #[arg(long, value_name = "FILE")]
    signature: Option<PathBuf>,
    #[command(flatten)]
    trust: TrustArgs,
    /// The repository the image's cosign signatures must name
    /// (critical.identity.docker-reference), with --key or --identity and without
    /// --signature [default:
    /// REF's repository; an image layout names none, so it is then not checked]
    #[arg(long, value_name = "HOST[:PORT]/PATH")]
    signed_repository: Option<String>,
    /// Notation's trust policy document (trustpolicy.json, version 1.0): the image's
    /// Notation signatures are checked under the statement whose registry scope holds REF's
    /// repository (else the `*` one; an image layout: only `*`); needs --trust-store
    #[arg(long, value_name = "FILE", requires = "trust_store")]
    trust_policy: Option<PathBuf>,
    /// Notation's trust store: the directory holding x509/{ca,signingAuthority,tsa}/NAME/
    /// with the certificates the trust policy's stores name
    #[arg(long, value_name = "DIR", requires = "trust_policy")]
    trust_store: Option<PathBuf>,
    /// Count cosign attestations (Sigstore bundle referrers) whose statement has this
    /// predicate type, instead of signatures; with --identity and --issuer
    #[arg(long, value_name = "URI")]
    attestation_type: Option<String>,
    #[command(flatten)]
    platform: PlatformArgs,
    /// Verify every manifest of a multi-platform image
    #[arg(long, conflicts_with = "platform")]
    all_platforms: bool,
    /// Also decompress each layer (gzip, zstd or none) and check it against the
    /// configuration's rootfs.diff_ids
    #[arg(long)]
    diff_ids: bool,
    /// Read no blob: compare the approved files with the digests the manifest gives its
    /// raw layers (each a file's SHA-256). Only the manifests are transferred; a corrupted
    /// blob store is caught only without this flag
    #[arg(long, conflicts_with = "diff_ids")]
    no_pull: bool,
    /// A ModelCar image (as KServe runs them): the model is the files under DIR of the
    /// image's filesystem, once its layers are applied in order with their whiteouts;
    /// compared with --manifest or --signature by their names relative to DIR
    #[arg(long, value_name = "DIR", conflicts_with = "no_pull")]
    model_root: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// The image: docker://HOST[:PORT]/REPO(:TAG|@DIGEST) or oci:DIR[:TAG|@DIGEST]
    #[arg(value_name = "REF")]
    reference: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Which manifest of a multi-platform image: shared by `oci verify` and `sbom`.
#[derive(Debug, Args)]
pub(super) struct PlatformArgs {
    /// The platform to read in a multi-platform image [default: this machine's, or the
    /// only manifest of the index]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
}

impl PlatformArgs {
    pub(super) fn platform(&self) -> Result<Option<Platform>> {
        self.platform
            .as_deref()
            .map(|text| Platform::parse(text).map_err(|e| Error::Usage(format!("--platform: {e}"))))
            .transpose()
    }
}

/// How to reach a registry: shared by `oci verify`, `oci digest` and `sbom`.
#[derive(Debug, Args)]
pub(super) struct RegistryArgs {
    /// User name for the registry; the password is read from standard input
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password for --username from standard input
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Speak plain HTTP to the registry (a registry on this machine that does not speak TLS
    /// is reached that way without it)
    #[arg(long)]
    insecure: bool,
    /// Connect and read timeout of each request, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// Retries of a request that failed for a reason that may pass (network, 5xx, 429),
    /// with a doubling pause
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(0..=10))]
    retries: u32,
    /// The slowest transfer accepted, in bytes per second: each request and each blob must
    /// be done within --timeout plus its size at this rate [default: 1048576]
    #[arg(long, value_name = "BYTES_PER_SECOND", default_value_t = oci::DEFAULT_MIN_RATE,
          hide_default_value = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    min_rate: u64,
}

impl RegistryArgs {
    /// Whether credentials or --insecure were given: flags only a registry can use.
    pub(super) fn any_given(&self) -> bool {
        self.username.is_some() || self.insecure
    }

    pub(super) fn connection(&self) -> Result<Connection> {
        let credentials = match &self.username {
            Some(username) => Some(Credentials::Basic {
                username: username.clone(),
                password: read_password()?,
            }),
            None => None,
        };
        Ok(Connection {
            credentials,
            insecure: self.insecure,
            timeout: Duration::from_secs(self.timeout),
            retries: self.retries,
            min_rate: self.min_rate,
        })
    }
}

/// The password on standard input, without the line break `echo` adds.
fn read_password() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .take(64 << 10)
        .read_to_string(&mut text)
        .map_err(|e| Error::io("<stdin>", e))?;
    let password = text.strip_suffix('\n').unwrap_or(&text);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(Error::Usage(
            "--password-stdin: standard input held no password".into(),
        ));
    }
    Ok(password.to_string())
}

pub(super) fn parse_reference(text: &str) -> Result<ImageRef> {
    ImageRef::parse(text).map_err(|e| Error::Usage(e.to_string()))
}

pub fn run(args: OciArgs) -> Result<u8> {
    match args.command {
        OciCommand::Verify(args) => match check(&args) {
            Ok(report) => {
                let target = Target::Image {
                    reference: &args.reference,
                    approval: args.manifest.as_deref().or(args.signature.as_deref()),
                };
                args.output
                    .emit(&report, target, |r| report::render(r, report::Format::Text))
            }
            Err(error) => {
                args.output.emit_error(Path::new(&args.reference), &error);
                Err(error)
            }
        },
        OciCommand::Digest(args) => digest(&args),
        OciCommand::Sign(args) => sign(&args),
    }
}

/// The password of a key: the first line of --password-file, else COSIGN_PASSWORD (as cosign
/// reads it), else none.
fn key_password(file: Option<&Path>) -> Result<Vec<u8>> {
    match file {
        Some(path) => {
            let text = crate::fsio::read_input(path)?;
            let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
            Ok(line.strip_suffix(b"\r").unwrap_or(line).to_vec())
        }
        None => Ok(std::env::var_os("COSIGN_PASSWORD")
            .map(|p| std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec())
            .unwrap_or_default()),
    }
}

fn sign(args: &SignArgs) -> Result<u8> {
    use crate::verify::image_signing::{sign_image, SignRequest, Signing, Written};
    let reference = parse_reference(&args.reference)?;
    let password = key_password(args.password_file.as_deref())?;
    let connection = args.registry.connection()?;
    let request = SignRequest {
        reference: &reference,
        connection: &connection,
        key: &args.key,
        password: &password,
        signed_repository: args.signed_repository.as_deref(),
        bundle: args.bundle,
    };
    let signed = match sign_image(&request).map_err(|e| match e {
        // Name the flag of a key whose password is wrong.
        Error::Input { path, message } if message.contains("wrong password") => Error::Input {
            path,
            message: format!(
                "{message}; give the password with --password-file or COSIGN_PASSWORD"
            ),
        },
        other => other,
    })? {
        Signing::Signed(signed) => signed,
        Signing::Unresolved(report) => {
            for warning in &report.warnings {
                eprintln!("vouch: warning: {warning}");
            }
            eprint!("{}", report::render(&report, report::Format::Text));
            eprintln!("vouch: nothing was signed");
            return Ok(report.exit_status());
        }
    };
    for warning in &signed.warnings {
        eprintln!("vouch: warning: {warning}");
    }
    let signed_what = format!(
        "signed {} ({}) for {} with {}",
        signed.digest, args.reference, signed.docker_reference, signed.key
    );
    let text = match &signed.written {
        Written::Legacy(appended) if appended.added => format!(
            "{signed_what}\nsignature written to {} (manifest {}, {} signature{})\n",
            appended.location,
            appended.manifest,
            appended.layers,
            if appended.layers == 1 { "" } else { "s" }
        ),
        Written::Legacy(appended) => format!(
            "{signed_what}\nthe same signature was already at {} (manifest {}); nothing was written\n",
            appended.location, appended.manifest
        ),
        Written::Bundle(referred) if referred.added => format!(
            "{signed_what}\nSigstore bundle written as the referrer {}, listed in {}\n",
            referred.manifest, referred.location
        ),
        Written::Bundle(referred) => format!(
            "{signed_what}\nthe same bundle referrer {} was already listed in {}; nothing was written\n",
            referred.manifest, referred.location
        ),
    };
    write_output(None, text.as_bytes())?;
    Ok(0)
}

fn check(args: &VerifyArgs) -> Result<Report> {
    let reference = parse_reference(&args.reference)?;
    let platforms = match (args.platform.platform()?, args.all_platforms) {
        (Some(platform), _) => Platforms::Only(platform),
        (None, true) => Platforms::All,
        (None, false) => Platforms::Host,
    };
    let approval = ImageApprovalParts {
        digest: args.digest.clone(),
        manifest: args.manifest.clone(),
        signature: args.signature.clone(),
        trust: args.trust.parts(),
        signed_repository: args.signed_repository.clone(),
        trust_policy: args.trust_policy.clone(),
        trust_store: args.trust_store.clone(),
        attestation_type: args.attestation_type.clone(),
    }
    .approval()
    .map_err(refused)?;
    let options = Options {
        platforms,
        pinned: approval.pinned,
        diff_ids: args.diff_ids,
        reading: if args.no_pull {
            Reading::None
        } else {
            Reading::Every
        },
        model_root: args
            .model_root
            .as_deref()
            .map(ModelRoot::parse)
            .transpose()
            .map_err(Error::Usage)?,
    };
    let connection = args.registry.connection()?;
    let engine = args.engine.engine()?;
    check_image(
        &reference,
        &connection,
        &options,
        approval.files.as_ref(),
        approval.signers.as_ref(),
        &engine,
    )
}

fn digest(args: &DigestArgs) -> Result<u8> {
    let reference = parse_reference(&args.reference)?;
    let report = oci::digest(&reference, &args.registry.connection()?)?;
    for warning in &report.warnings {
        eprintln!("vouch: warning: {warning}");
    }
    match (report.exit_status(), &report.root_digest) {
        (0, Some(digest)) => {
            write_output(None, format!("{digest}\n").as_bytes())?;
            Ok(0)
        }
        (status, _) => {
            eprint!("{}", report::render(&report, report::Format::Text));
            Ok(status)
        }
    }
}
