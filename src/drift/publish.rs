//! Publishing a run once it is over: the metrics textfile, the JSON report file, and the
//! alerts when the run did not verify.

use std::path::{Path, PathBuf};

use super::alert::{self, AlertOutcome};
use super::config::Config;
use super::history::History;
use super::metrics;
use super::outcome::RunReport;
use super::render;
use crate::error::{Error, Result};
use crate::fsio::write_atomically;
use crate::report::Status;

/// Where run reports go unless the command line or `report_dir` says otherwise.
pub const DEFAULT_REPORT_DIR: &str = "vouch-reports";

/// Where a run was published.
#[derive(Debug)]
pub struct Published {
    /// The JSON report file.
    pub report: PathBuf,
    /// What became of each alert (none when the run verified).
    pub alerts: Vec<AlertOutcome>,
}

/// Writes the metrics (when configured) and the JSON report of `run` into `report_dir` (or
/// the configured one), and raises the alerts when the run did not verify. A failed alert is
/// in [`Published::alerts`], never an error.
pub fn publish(config: &Config, run: &RunReport, report_dir: Option<&Path>) -> Result<Published> {
    if let Some(path) = &config.metrics_file {
        let shard = run.shard.map(|s| s.to_string());
        let bytes_total = History::open(&config.history)?.bytes_hashed_total(shard.as_deref())?;
        metrics::write(path, run, bytes_total)?;
    }
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
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = dir.join(format!(
        "vouch-drift-{}-run{}.json",
        run.started_at.strftime("%Y%m%dT%H%M%SZ"),
        run.run_id
    ));
    let json = render::to_json(run);
    write_atomically(&path, json.as_bytes())?;
    let alerts = match run.status() {
        Status::Verified => Vec::new(),
        status => alert::raise(&config.alert, status, &path, json.as_bytes()),
    };
    Ok(Published {
        report: path,
        alerts,
    })
}
