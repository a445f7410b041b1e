//! `vouch approve --registry` and `vouch promote`: approvals kept with a model version in an
//! MLflow model registry (or an Azure ML workspace), and the promotion gate that moves an
//! alias only to a verified version: both the copy to be deployed and the registry's own
//! copy of the version (what the alias will serve) must verify. `verify --registry` reads
//! the approval through the approval layer's registry locator.

use std::path::PathBuf;

use clap::Args;
use sha2::{Digest as _, Sha256};

use super::verify::VerifyArgs;
use super::{refused, EngineArgs, SerializationArgs};
use crate::approval::kept::{self, Kind};
use crate::approval::rules::ApprovalParts;
use crate::error::{Error, Result};
use crate::fsio::read_input;
use crate::manifest::digest::manifest_digest;
use crate::manifest::statement;
use crate::model::build_manifest;
use crate::registry::{tags, Client, ModelUri, ModelVersion};
use crate::report::Report;
use crate::sign::keys::PrivateKey;
use crate::sign::{sign_payload, Signer};
use crate::verify::registry::check_registry_copy;

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
    let (bytes, kind) = match &args.key {
        Some(key_path) => {
            let key = PrivateKey::from_pem(&read_input(key_path)?, None)
                .map_err(|e| Error::input(key_path, e.to_string()))?;
            let signer = Signer {
                key,
                certificates: Vec::new(),
            };
            (sign_payload(&payload, &signer), Kind::Signature)
        }
        None => (payload, Kind::Manifest),
    };
    let hex = hex::encode(Sha256::digest(&bytes));
    let sha = format!("sha256:{hex}");
    // The one place verify, promote and drift read this version's approval from.
    let location = kept::location(&version.name, &version.version, kind, &hex);
    client.upload(&location, bytes)?;
    client.set_tag(&version, tags::APPROVAL_URI, &location)?;
    client.set_tag(&version, tags::APPROVAL_KIND, kind.name())?;
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
        kind.name(),
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

/// What one of promote's two checks found: its exit status, and why it failed (empty when
/// verified).
fn outcome(checked: &Result<Report>) -> (u8, String) {
    match checked {
        Ok(report) => {
            let why = match report.exit_status() {
                0 => String::new(),
                _ => match report.failures().next() {
                    Some(first) => format!(
                        "{} ({} failing)",
                        Report::describe_failure(first),
                        report.failures().count()
                    ),
                    None => report.summary_line(),
                },
            };
            (report.exit_status(), why)
        }
        Err(error) => (error.exit_status(), error.to_string()),
    }
}

/// The registry's own copy of `version`, checked as `verify --registry` checks it without
/// MODEL, against the approval kept with it, under the trust given.
fn check_copy(args: &PromoteArgs, version: &ModelVersion) -> Result<Report> {
    let parts = ApprovalParts {
        registry: Some(version.uri()),
        tracking_uri: args.verify.tracking_uri.clone(),
        trust: args.verify.trust(),
        ..ApprovalParts::default()
    };
    check_registry_copy(&parts.approval().map_err(refused)?)
}

/// One report of both checks: MODEL's, then the registry copy's, whose files are named as
/// MLflow names a file of a version (`models:/NAME/VERSION/PATH`). A refusal of the version
/// itself that MODEL's check already reports is not repeated.
fn merged(mut local: Report, copy: Report, version: &ModelVersion) -> Report {
    let uri = version.uri();
    for mut subject in copy.subjects {
        if subject.name == uri {
            let repeated = local.subjects.iter().any(|s| {
                s.name == subject.name
                    && s.verdict == subject.verdict
                    && s.message == subject.message
            });
            if repeated {
                continue;
            }
        } else {
            subject.name = format!("{uri}/{}", subject.name);
        }
        local.subjects.push(subject);
    }
    local.warnings.extend(copy.warnings);
    local.bytes_hashed += copy.bytes_hashed;
    local.duration += copy.duration;
    local.approval = format!(
        "{}, with the registry's copy {} checked against it too",
        local.approval, copy.target
    );
    if let Some(error) = copy.error {
        local.error = Some(match local.error {
            Some(own) => format!("{own}; the registry's copy: {error}"),
            None => format!("the registry's copy: {error}"),
        });
    }
    local
}

/// The most characters of a tag value vouch writes: MLflow refuses a model version tag
/// value over 5000.
const MAX_TAG_CHARS: usize = 5000;

/// `value`, cut to [`MAX_TAG_CHARS`] with an ellipsis when longer.
fn within_tag_limit(value: String) -> String {
    if value.chars().count() <= MAX_TAG_CHARS {
        return value;
    }
    let mut cut: String = value.chars().take(MAX_TAG_CHARS - 1).collect();
    cut.push('…');
    cut
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
    // What the alias will serve is the registry's copy: it must verify, and so must the
    // copy that is to be deployed.
    let copy = check_copy(&args, &version);
    let local = super::verify::check(&args.verify, &model);
    let (copy_status, copy_why) = outcome(&copy);
    let (local_status, local_why) = outcome(&local);
    let result = match (local_status, copy_status) {
        (0, 0) => "verified".to_string(),
        (0, _) => format!("failed: the registry's copy: {copy_why}"),
        (_, 0) => format!("failed: {}: {local_why}", model.display()),
        // The version itself refused (no approval, or one bound elsewhere): one reason.
        _ if local_why == copy_why => format!("failed: {local_why}"),
        _ => format!(
            "failed: {}: {local_why}; the registry's copy: {copy_why}",
            model.display()
        ),
    };
    let result = within_tag_limit(result);
    client.set_tag(
        &version,
        tags::VERIFIED_AT,
        &jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string()),
    )?;
    client.set_tag(&version, tags::RESULT, &result)?;
    client.set_tag(&version, tags::VERSION, env!("CARGO_PKG_VERSION"))?;
    let checked = match (local, copy) {
        (Ok(local), Ok(copy)) => Ok(merged(local, copy, &version)),
        (Err(error), _) => Err(error),
        (_, Err(error)) => Err(error),
    };
    let status = match checked {
        Ok(report) => {
            super::verify::say_version(&report);
            super::verify::emit(&args.verify, &model, Ok(report))?
        }
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
