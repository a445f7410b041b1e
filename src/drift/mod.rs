//! The drift checker: scheduled runs that verify every deployed target against what was
//! approved, remember what drifted and since when, honour waivers, export metrics and alert.

pub mod alert;
pub mod config;
pub mod history;
pub mod metrics;
pub mod run;
pub mod waiver;

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fsio::write_atomically;
use crate::report::Status;
use alert::AlertOutcome;
use config::Config;
use run::{RunOptions, RunReport};

/// Where run reports go unless `--report-dir` or `report_dir` says otherwise.
pub const DEFAULT_REPORT_DIR: &str = "vouch-reports";

/// Runs the targets, writes the JSON report into `report_dir` (or the configured one), and
/// raises the alerts when the run did not verify.
pub fn run_and_publish(
    config: &Config,
    options: &RunOptions,
    report_dir: Option<&Path>,
) -> Result<(RunReport, Vec<AlertOutcome>)> {
    let mut run = run::run(config, options)?;
    let dir = report_dir
        .map(Path::to_path_buf)
        .or_else(|| config.report_dir.clone())
        .unwrap_or_else(|| {
            config
                .source
                .parent()
                .unwrap_or(Path::new("."))
                .join(DEFAULT_REPORT_DIR)
        });
    std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io(&dir, e))?;
    let path: PathBuf = dir.join(format!(
        "vouch-drift-{}-run{}.json",
        run.started_at.strftime("%Y%m%dT%H%M%SZ"),
        run.run_id
    ));
    let json = run.to_json();
    write_atomically(&path, json.as_bytes())?;
    run.report_path = Some(path.clone());
    let alerts = match run.status() {
        Status::Verified => Vec::new(),
        status => alert::raise(&config.alert, status, &path, json.as_bytes()),
    };
    Ok((run, alerts))
}
