//! Publishing a run once it is over: the metrics textfile, the JSON report file, and the
//! alerts when the run did not verify; and, before it starts, the check that it can.

use std::path::{Path, PathBuf};

use super::alert::{self, AlertOutcome};
use super::config::Config;
use super::history::History;
use super::metrics;
use super::outcome::{RunReport, TargetResult};
use super::render;
use crate::error::{Error, Result};
use crate::fsio::write_atomically;
use crate::report::Status;

/// Where a run was published.
#[derive(Debug)]
pub struct Published {
    /// The JSON report file.
    pub report: PathBuf,
    /// What became of each alert (none when the run verified).
    pub alerts: Vec<AlertOutcome>,
}

/// Checks, before a run checks anything, that it can publish: creates `report_dir` and the
/// metrics file's folder and writes (and removes) a file in each, so that a run never
/// records a verdict in the history that it then cannot report. A place that cannot be
/// written is an operational error naming it.
pub fn check_writable(config: &Config, report_dir: &Path) -> Result<()> {
    let metrics_dir = config.metrics_file.as_deref().map(folder_of);
    let cache_dir = config.cache.as_ref().map(|c| folder_of(&c.path));
    for dir in std::iter::once(report_dir)
        .chain(metrics_dir)
        .chain(cache_dir)
    {
        let unwritable = |e: std::io::Error| Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                e.kind(),
                format!("cannot write the run's state here: {e}"),
            ),
        };
        std::fs::create_dir_all(dir).map_err(unwritable)?;
        tempfile::Builder::new()
            .prefix(".vouch-probe-")
            .tempfile_in(dir)
            .map_err(unwritable)?;
    }
    Ok(())
}

/// The folder a file is written into.
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The metrics of `run`, its counters summed over this worker's shard in the history.
pub fn metrics_text(config: &Config, run: &RunReport) -> Result<String> {
    let shard = run.shard.map(|s| s.to_string());
    let totals = History::open(&config.history)?.byte_totals(shard.as_deref())?;
    Ok(metrics::render(run, totals))
}

/// Writes the metrics (when configured) and the JSON report of `run` into `report_dir`, and
/// raises the alerts when the run did not verify. A failed alert is in
/// [`Published::alerts`], never an error.
pub fn publish(config: &Config, run: &RunReport, report_dir: &Path) -> Result<Published> {
    publish_with(config, run, run, report_dir)
}

/// As [`publish`], for a run of only the targets a change event named: the metrics still
/// cover every target, the others (`standing`) as their last check left them.
pub fn publish_changes(
    config: &Config,
    run: &RunReport,
    standing: &[TargetResult],
    report_dir: &Path,
) -> Result<Published> {
    publish_with(
        config,
        run,
        &with_standing(config, run, standing),
        report_dir,
    )
}

/// `run` with the targets it did not check as their last check (`standing`) left them, in
/// the config's order: what the metrics of a run of a few targets describe.
pub fn with_standing(config: &Config, run: &RunReport, standing: &[TargetResult]) -> RunReport {
    let mut everything = run.clone();
    everything.targets.extend(
        standing
            .iter()
            .filter(|s| !run.targets.iter().any(|t| t.name == s.name))
            .cloned(),
    );
    everything
        .targets
        .sort_by_key(|t| config.targets.iter().position(|c| c.name == t.name));
    everything
}

fn publish_with(
    config: &Config,
    run: &RunReport,
    measured: &RunReport,
    report_dir: &Path,
) -> Result<Published> {
    if let Some(path) = &config.metrics_file {
        write_atomically(path, metrics_text(config, measured)?.as_bytes())?;
    }
    std::fs::create_dir_all(report_dir).map_err(|e| Error::io(report_dir, e))?;
    let path = report_dir.join(format!(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::outcome::Shard;
    use crate::report::{Report, Subject, Verdict};
    use std::time::Duration;

    fn run_of(shard: Option<Shard>, verdict: Verdict) -> RunReport {
        let at: jiff::Timestamp = "2026-12-01T08:00:00Z".parse().unwrap();
        RunReport {
            run_id: 7,
            started_at: at,
            finished_at: at,
            duration: Duration::from_millis(1500),
            shard,
            targets: vec![TargetResult {
                name: "m".into(),
                owner: "ops@example.com".into(),
                location: "/srv/m".into(),
                report: Report {
                    subjects: vec![Subject::new("w.bin", verdict)],
                    ..Report::default()
                },
                hidden: Vec::new(),
            }],
            stopped: false,
        }
    }

    #[test]
    fn a_run_is_published_as_its_report_file_its_metrics_and_its_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"
metrics_file = "vouch.prom"
report_dir = "reports"

[[target]]
name = "m"
owner = "ops@example.com"
path = "/srv/m"
manifest = "m.oms.json"

[alert]
command = ["sh", "-c", "exit 3"]
"#;
        let today = jiff::civil::date(2026, 12, 1);
        let config = Config::parse(text, &dir.path().join("vouch.toml"), today).unwrap();
        // The metrics count the bytes of every run of this worker's shard in the history.
        let mut history = History::open(&config.history).unwrap();
        let at = "2026-11-30T08:00:00Z".parse().unwrap();
        for (shard, bytes) in [(Some("1/2"), 100), (Some("2/2"), 20), (Some("1/2"), 3)] {
            let run = history.begin_run(shard, at).unwrap();
            let report = Report {
                bytes_hashed: bytes,
                ..Report::default()
            };
            history
                .record_check(run, "m", "o", &report, &[], at)
                .unwrap();
        }
        drop(history);

        let shard = Shard::parse("1/2").ok();
        let verified = run_of(shard, Verdict::Ok);
        check_writable(&config, &config.report_dir).unwrap();
        let published = publish(&config, &verified, &config.report_dir).unwrap();
        assert_eq!(
            published.report,
            dir.path()
                .join("reports/vouch-drift-20261201T080000Z-run7.json")
        );
        let written = std::fs::read_to_string(&published.report).unwrap();
        assert_eq!(written, render::to_json(&verified));
        assert!(published.alerts.is_empty(), "{:?}", published.alerts);
        let metrics = std::fs::read_to_string(dir.path().join("vouch.prom")).unwrap();
        let totals = crate::drift::history::ByteTotals {
            hashed: 103,
            from_cache: 0,
        };
        assert_eq!(metrics, metrics::render(&verified, totals));

        // A failed run raises the alert, whose failure is an outcome, not an error.
        let other_dir = dir.path().join("elsewhere");
        let failed = run_of(shard, Verdict::Changed);
        let published = publish(&config, &failed, &other_dir).unwrap();
        assert!(published.report.starts_with(&other_dir));
        let [alert] = published.alerts.as_slice() else {
            panic!("one alert: {:?}", published.alerts)
        };
        assert_eq!(alert.channel, "command sh");
        let message = alert.result.as_ref().unwrap_err().to_string();
        assert_eq!(message, "sh exited with exit status: 3");
    }

    #[test]
    fn a_place_that_cannot_be_written_is_an_operational_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let text = "metrics_file = \"metrics/vouch.prom\"\n[[target]]\nname = \"m\"\nowner = \"o\"\npath = \"/srv/m\"\nmanifest = \"m.json\"\n";
        let today = jiff::civil::date(2026, 12, 1);
        let config = Config::parse(text, &dir.path().join("vouch.toml"), today).unwrap();
        check_writable(&config, &config.report_dir).unwrap();
        // Both folders are made, and the probes leave nothing behind.
        for made in ["vouch-reports", "metrics"] {
            let entries = std::fs::read_dir(dir.path().join(made)).unwrap().count();
            assert_eq!(entries, 0, "{made} holds a leftover probe");
        }

        // A folder below a regular file cannot be made, whoever runs the test.
        std::fs::write(dir.path().join("plain"), b"").unwrap();
        let blocked = dir.path().join("plain/reports");
        let error = check_writable(&config, &blocked).unwrap_err();
        assert_eq!(error.exit_status(), crate::error::EXIT_OPERATIONAL);
        let message = error.to_string();
        assert!(
            message.contains(&blocked.display().to_string())
                && message.contains("cannot write the run's state here"),
            "{message}"
        );
    }
}
