use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};

use super::{write_output, EngineArgs};
use crate::error::{Error, Result};
use crate::model::verify::name_inside;
use crate::sbom::describe::{check_purl, describe_model, Created, DescribeOptions, Sbom, Subject};
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
    /// The model: a directory, or a single weights file
    target: PathBuf,
    /// SBOM format
    #[arg(long, value_enum, default_value_t = SbomFormat::Cyclonedx)]
    format: SbomFormat,
    /// Write the SBOM to FILE (atomically) instead of stdout; a FILE inside the model is
    /// left out of it
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The model's name [default: the Hugging Face repository id of a hub cache snapshot,
    /// else the directory or file name]
    #[arg(long, value_name = "N")]
    name: Option<String>,
    /// The model's version [default: the revision of a hub cache snapshot]
    #[arg(long, value_name = "V")]
    version: Option<String>,
    /// The model's package URL, e.g. pkg:huggingface/NS/NAME@REV [default: derived from a
    /// hub cache snapshot path]
    #[arg(long, value_name = "P")]
    purl: Option<String>,
    /// Also record this digest of every file (CycloneDX)
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    algo: Option<ExtraAlgorithm>,
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
        check_purl(purl).map_err(|e| Error::Usage(format!("--purl: {e}")))?;
    }
    let created = created()?;
    let options = DescribeOptions {
        name: args.name.clone(),
        version: args.version.clone(),
        purl: args.purl.clone(),
        blake3: args.algo == Some(ExtraAlgorithm::Blake3),
        ignore: args
            .output
            .iter()
            .filter_map(|output| name_inside(&args.target, output))
            .collect(),
    };
    let engine = args.engine.engine()?;
    let progress = args.engine.progress();
    let (model, warnings) = describe_model(&args.target, &options, &engine, progress.as_ref())?;
    for warning in warnings {
        eprintln!("vouch: warning: {warning}");
    }
    let sbom = Sbom {
        subject: Subject::Model(model),
        created,
    };
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
