use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};

use super::oci::{parse_reference, PlatformArgs, RegistryArgs};
use super::{write_output, EngineArgs};
use crate::error::{Error, Result};
use crate::model::paths::name_inside;
use crate::oci::reference::ImageRef;
use crate::oci::ModelRoot;
use crate::report;
use crate::sbom::document::{Created, Sbom, Subject};
use crate::sbom::image::{describe_image, ImageOutcome};
use crate::sbom::model::{describe_model, DescribeOptions};
use crate::sbom::purl;
use crate::sbom::{cyclonedx, spdx};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    /// CycloneDX 1.6 JSON
    Cyclonedx,
    /// SPDX 2.3 JSON
    Spdx,
}

/// Extra digests `--algo` can add to the SHA-256 of every file (CycloneDX only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExtraAlgorithm {
    Blake3,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// The model: a directory, a single weights file, a Hugging Face cache snapshot or
    /// hf://ORG/NAME[@REV]; or an image:
    /// docker://HOST[:PORT]/REPO(:TAG|@DIGEST) or oci:DIR[:TAG|@DIGEST]
    #[arg(value_name = "TARGET")]
    target: String,
    #[command(flatten)]
    revision: super::RevisionArg,
    /// SBOM format
    #[arg(long, value_enum, default_value_t = SbomFormat::Cyclonedx)]
    format: SbomFormat,
    /// Write the SBOM to FILE (atomically) instead of stdout; a FILE inside the model is
    /// left out of it
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The model's or image's name [default: the Hugging Face repository id of a hub cache
    /// snapshot, else the directory or file name; HOST/REPO for an image in a registry]
    #[arg(long, value_name = "N")]
    name: Option<String>,
    /// The version [default: the revision of a hub cache snapshot; an image's tag, else its
    /// digest]
    #[arg(long, value_name = "V")]
    version: Option<String>,
    /// The package URL, e.g. pkg:huggingface/NS/NAME@REV [default: derived from a hub cache
    /// snapshot path; pkg:oci/NAME@DIGEST?repository_url=HOST%2FREPO&tag=TAG for an image]
    #[arg(long, value_name = "P")]
    purl: Option<String>,
    /// Also record this digest of every file (CycloneDX)
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    algo: Option<ExtraAlgorithm>,
    #[command(flatten)]
    platform: PlatformArgs,
    /// A ModelCar image (as KServe runs them): its model is the files under DIR of the
    /// image's filesystem, once its layers are applied in order with their whiteouts
    #[arg(long, value_name = "DIR")]
    model_root: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: SbomArgs) -> Result<u8> {
    if args.format == SbomFormat::Spdx && args.algo.is_some() {
        // spdx-tools, the official validator, refuses 256-bit BLAKE3 checksums.
        return Err(Error::Usage(
            "--algo blake3 goes with --format cyclonedx; SPDX files carry SHA1 and SHA256 \
             (the SPDX validator refuses 256-bit BLAKE3 values)"
                .into(),
        ));
    }
    if let Some(purl) = &args.purl {
        purl::check(purl).map_err(|e| Error::Usage(format!("--purl: {e}")))?;
    }
    let created = created()?;
    let mut options = DescribeOptions {
        name: args.name.clone(),
        version: args.version.clone(),
        purl: args.purl.clone(),
        blake3: args.algo == Some(ExtraAlgorithm::Blake3),
        ignore: Vec::new(),
    };
    let engine = args.engine.engine()?;
    // A model directory whose name starts like a reference is written `./oci:…`.
    let (subject, warnings) = if ImageRef::is_reference(&args.target) {
        if args.revision.revision.is_some() {
            return Err(Error::Usage(
                "--revision goes with a Hugging Face model, not an image".into(),
            ));
        }
        let reference = parse_reference(&args.target)?;
        let model_root = args
            .model_root
            .as_deref()
            .map(ModelRoot::parse)
            .transpose()
            .map_err(Error::Usage)?;
        let outcome = describe_image(
            &reference,
            &args.registry.connection()?,
            args.platform.platform()?,
            model_root.as_ref(),
            &options,
            &engine,
        )?;
        match outcome {
            ImageOutcome::Described { image, warnings } => (Subject::Image(image), warnings),
            ImageOutcome::Refused(report) => {
                eprint!("{}", report::render(&report, report::Format::Text));
                eprintln!("vouch: no SBOM written: {reference} did not verify");
                return Ok(report.exit_status());
            }
        }
    } else {
        if args.platform.platform()?.is_some()
            || args.registry.any_given()
            || args.model_root.is_some()
        {
            return Err(Error::Usage(
                "--platform, --model-root, --username and --insecure go with an image (docker://… or oci:…)"
                    .into(),
            ));
        }
        let target = &args.revision.resolve(Path::new(&args.target))?;
        options.ignore = args
            .output
            .iter()
            .filter_map(|output| name_inside(target, output))
            .collect();
        let (model, warnings) = describe_model(target, &options, &engine)?;
        (Subject::Model(model), warnings)
    };
    for warning in warnings {
        eprintln!("vouch: warning: {warning}");
    }
    let sbom = Sbom { subject, created };
    let bytes = match args.format {
        SbomFormat::Cyclonedx => cyclonedx::render(&sbom),
        SbomFormat::Spdx => spdx::render(&sbom),
    };
    write_output(args.output.as_deref(), &bytes)?;
    Ok(0)
}

/// Now, or `SOURCE_DATE_EPOCH` (seconds since 1970, UTC) for reproducible output.
fn created() -> Result<Created> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => {
            let seconds: u64 = text.trim().parse().map_err(|_| {
                Error::Usage(format!(
                    "SOURCE_DATE_EPOCH='{text}' is not a number of seconds since 1970"
                ))
            })?;
            Ok(Created::Reproducible(
                UNIX_EPOCH + Duration::from_secs(seconds),
            ))
        }
        Err(_) => Ok(Created::Now(SystemTime::now())),
    }
}
