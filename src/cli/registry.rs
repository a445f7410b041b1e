//! `vouch approve --registry` and `vouch promote`: approvals kept with a model version in an
//! MLflow model registry (or an Azure ML workspace), and the promotion gate that moves an
//! alias only to a verified version. `verify --registry` reads the approval through the
//! approval layer's registry locator.

use std::path::PathBuf;

use clap::Args;
use sha2::{Digest as _, Sha256};

use super::verify::VerifyArgs;
use super::{EngineArgs, SerializationArgs};
use crate::error::{Error, Result};
use crate::fsio::read_input;
use crate::manifest::digest::manifest_digest;
use crate::manifest::statement;
use crate::model::build_manifest;
use crate::registry::{tags, Client, ModelUri};
use crate::sign::keys::PrivateKey;
use crate::sign::{sign_payload, Signer};

/// Where approvals are stored through the artifact proxy, below the artifact root.
const APPROVAL_ROOT: &str = "mlflow-artifacts:/vouch-approvals";

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The model: a directory, or a single weights file
    model: PathBuf,
    /// The model version the approval is kept with: models:/NAME/VERSION
    #[arg(long, value_name = "models:/NAME/VERSION")]
    registry: String,
    /// The tracking server (http(s):// or azureml://) [default: $MLFLOW_TRACKING_URI]
    #[arg(long, value_name = "URI")]
    tracking_uri: Option<String>,
    /// Sign the manifest with this EC private key (PEM, unencrypted) and store the OMS
    /// signature bundle instead of the unsigned manifest
    #[arg(long, value_name = "PRIVATE.pem")]
    key: Option<PathBuf>,
    #[command(flatten)]
    serialization: SerializationArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn approve(args: ApproveArgs) -> Result<u8> {
    let uri = ModelUri::parse(&args.registry)?;
    if !matches!(uri.target, crate::registry::Target::Version(_)) {
        return Err(Error::Usage(format!(
            "{uri}: approve a version (models:/NAME/VERSION), not an alias"
        )));
    }
    let client = Client::connect(args.tracking_uri.as_deref())?;
    let version = client.resolve(&uri)?;
    let serialization = args.serialization.serialization(&args.model, &[])?;
    let engine = args.engine.engine()?;
    let (manifest, _) = build_manifest(&args.model, &serialization, &engine)?;
    let payload = statement::to_json(&manifest);
    let (bytes, kind, file) = match &args.key {
        Some(key_path) => {
            let key = PrivateKey::from_pem(&read_input(key_path)?, None)
                .map_err(|e| Error::input(key_path, e.to_string()))?;
            let signer = Signer {
                key,
                certificates: Vec::new(),
            };
            (sign_payload(&payload, &signer), "signature", "model.sig")
        }
        None => (payload, "manifest", "manifest.json"),
    };
    let sha = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    // One stored object per approval: the path carries its digest, so a new approval never
    // overwrites the bytes an older tag still names.
    let location = format!(
        "{APPROVAL_ROOT}/{}/{}/{}/{file}",
        version.name,
        version.version,
        &sha["sha256:".len()..]
    );
    client.upload(&location, bytes)?;
    client.set_tag(&version, tags::APPROVAL_URI, &location)?;
    client.set_tag(&version, tags::APPROVAL_KIND, kind)?;
    client.set_tag(&version, tags::APPROVAL_SHA256, &sha)?;
    client.set_tag(
        &version,
        tags::ROOT_DIGEST,
        &manifest.root_digest().prefixed(),
    )?;
    client.set_tag(
        &version,
        tags::MANIFEST_DIGEST,
        &manifest_digest(&manifest).prefixed(),
    )?;
    eprintln!(
        "vouch: approved {} (root {}) as {} of {}",
        args.model.display(),
        manifest.root_digest().prefixed(),
        kind,
        version.uri()
    );
    Ok(0)
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The alias to move to the version when it verifies (production, champion)
    #[arg(long, value_name = "ALIAS")]
    alias: String,
    #[command(flatten)]
    verify: VerifyArgs,
}

pub fn promote(args: PromoteArgs) -> Result<u8> {
    let Some(registry) = args.verify.registry.clone() else {
        return Err(Error::Usage(
            "promote needs --registry models:/NAME/VERSION".to_string(),
        ));
    };
    let Some(model) = args.verify.model.clone() else {
        return Err(Error::Usage(
            "promote needs MODEL, the copy that is to be deployed".to_string(),
        ));
    };
    let uri = ModelUri::parse(&registry)?;
    if !matches!(uri.target, crate::registry::Target::Version(_)) {
        return Err(Error::Usage(format!(
            "{uri}: promote a version (models:/NAME/VERSION), not an alias"
        )));
    }
    let client = Client::connect(args.verify.tracking_uri.as_deref())?;
    let version = client.resolve(&uri)?;
    let checked = super::verify::check(&args.verify, &model);
    let (status, why) = match &checked {
        Ok(report) => {
            super::verify::say_version(report);
            let why = match report.exit_status() {
                0 => String::new(),
                _ => match report.failures().next() {
                    Some(first) => format!(
                        "{} ({} failing)",
                        crate::report::Report::describe_failure(first),
                        report.failures().count()
                    ),
                    None => report.summary_line(),
                },
            };
            (report.exit_status(), why)
        }
        Err(error) => (error.exit_status(), error.to_string()),
    };
    let result = if status == 0 {
        "verified".to_string()
    } else {
        format!("failed: {why}")
    };
    client.set_tag(
        &version,
        tags::VERIFIED_AT,
        &jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string()),
    )?;
    client.set_tag(&version, tags::RESULT, &result)?;
    client.set_tag(&version, tags::VERSION, env!("CARGO_PKG_VERSION"))?;
    let status = match checked {
        Ok(report) => super::verify::emit(&args.verify, &model, Ok(report))?,
        Err(error) => return super::verify::emit(&args.verify, &model, Err(error)),
    };
    if status != 0 {
        eprintln!(
            "vouch: {} not promoted: alias {} left where it was",
            version.uri(),
            args.alias
        );
        return Ok(status);
    }
    client.set_alias(&version, &args.alias)?;
    let alias = ModelUri {
        name: version.name.clone(),
        target: crate::registry::Target::Alias(args.alias.clone()),
    };
    let now = client.resolve(&alias)?;
    if now.version != version.version {
        return Err(Error::Remote {
            target: client.endpoint().to_string(),
            message: format!(
                "{alias} points at version {} after vouch moved it to {}: another writer moved it",
                now.version, version.version
            ),
        });
    }
    eprintln!(
        "vouch: promoted {}: {alias} -> version {}",
        version.uri(),
        now.version
    );
    Ok(0)
}
