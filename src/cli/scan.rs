use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{write_output, EngineArgs, PicklePolicyArg, RevisionArg};
use crate::error::Result;
use crate::verify::scan::scan_model;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    /// Human-readable facts and findings
    Text,
    /// One JSON object (fields documented in the README)
    Json,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The model: a directory, a single weights file, a Hugging Face cache snapshot or
    /// hf://ORG/NAME[@REV] (see the README's "Hugging Face caches")
    model: PathBuf,
    #[command(flatten)]
    revision: RevisionArg,
    /// Output format
    #[arg(long, value_enum, default_value_t = ScanFormat::Text)]
    format: ScanFormat,
    /// Which pickle imports are reported unsafe (and exit 1): strict (only what a
    /// weights-only load needs) or picklescan (what picklescan rates dangerous)
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = PicklePolicyArg::Strict)]
    pickle_policy: PicklePolicyArg,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(mut args: ScanArgs) -> Result<u8> {
    args.model = args.revision.resolve(&args.model)?;
    let engine = args.engine.engine()?;
    let report = scan_model(&args.model, args.pickle_policy.into(), &engine)?;
    let rendered = match args.format {
        ScanFormat::Text => report.render_text(),
        ScanFormat::Json => report.render_json(),
    };
    write_output(None, rendered.as_bytes())?;
    Ok(report.exit_status())
}
