use std::path::PathBuf;

use clap::Args;

use super::{EngineArgs, RevisionArg, SerializationArgs};
use crate::error::{Error, Result};
use crate::fsio::{read_input, write_atomically};
use crate::manifest::statement;
use crate::model::build_manifest;
use crate::sign::keys::{KeyError, PrivateKey};
use crate::sign::x509::pem_certificates;
use crate::sign::{sign_payload, Signer};

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The model: a directory, a single weights file, a Hugging Face cache snapshot or
    /// hf://ORG/NAME[@REV] (see the README's "Hugging Face caches")
    model: PathBuf,
    #[command(flatten)]
    revision: RevisionArg,
    /// The EC private key (PEM: PKCS#8 or SEC1, encrypted or not; P-256, P-384 or P-521)
    #[arg(long, value_name = "PRIVATE.pem")]
    key: PathBuf,
    /// A file whose first line is the key's password
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Sign with this certificate (PEM) for the key, instead of the bare key
    #[arg(long, value_name = "LEAF.pem")]
    certificate: Option<PathBuf>,
    /// Certificates above the signing certificate (PEM; repeatable), put in the bundle
    #[arg(
        long = "certificate-chain",
        value_name = "CHAIN.pem",
        requires = "certificate"
    )]
    certificate_chain: Vec<PathBuf>,
    /// Where to write the signature bundle (atomically); inside the model it is left out of
    /// what is signed
    #[arg(short = 'o', long, value_name = "FILE", default_value = "model.sig")]
    output: PathBuf,
    #[command(flatten)]
    serialization: SerializationArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(mut args: SignArgs) -> Result<u8> {
    args.model = args.revision.resolve(&args.model)?;
    let signer = signer(&args)?;
    let serialization = args
        .serialization
        .serialization(&args.model, &[&args.output])?;
    let engine = args.engine.engine()?;
    let (manifest, _) = build_manifest(&args.model, &serialization, &engine)?;
    let payload = statement::to_json(&manifest);
    write_atomically(&args.output, &sign_payload(&payload, &signer))?;
    eprintln!(
        "vouch: signed {} (root {}) into {}",
        args.model.display(),
        manifest.root_digest().prefixed(),
        args.output.display()
    );
    Ok(0)
}

fn signer(args: &SignArgs) -> Result<Signer> {
    let password = match &args.password_file {
        Some(path) => {
            let text = read_input(path)?;
            let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
            Some(line.strip_suffix(b"\r").unwrap_or(line).to_vec())
        }
        None => None,
    };
    let key = PrivateKey::from_pem(&read_input(&args.key)?, password.as_deref()).map_err(|e| {
        let message = match e {
            KeyError::PasswordNeeded => {
                "the key is encrypted: give its password with --password-file".to_string()
            }
            other => other.to_string(),
        };
        Error::input(&args.key, message)
    })?;
    let Some(leaf) = &args.certificate else {
        return Ok(Signer {
            key,
            certificates: Vec::new(),
        });
    };
    let mut certificates =
        pem_certificates(&read_input(leaf)?).map_err(|e| Error::input(leaf, e.to_string()))?;
    certificates.truncate(1);
    for path in &args.certificate_chain {
        certificates.extend(
            pem_certificates(&read_input(path)?).map_err(|e| Error::input(path, e.to_string()))?,
        );
    }
    Signer::with_certificates(key, certificates).map_err(|e| Error::input(leaf, e.to_string()))
}
