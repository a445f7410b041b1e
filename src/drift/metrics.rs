//! The Prometheus textfile the node exporter's textfile collector reads, rewritten whole
//! (atomically) after every run.

use std::fmt::Write;
use std::path::Path;

use super::outcome::RunReport;
use crate::error::Result;
use crate::fsio::write_atomically;
use crate::report::Status;

/// Writes the metrics of `run` to `path`; `bytes_total` counts every byte ever hashed.
pub fn write(path: &Path, run: &RunReport, bytes_total: u64) -> Result<()> {
    write_atomically(path, render(run, bytes_total).as_bytes())
}

pub fn render(run: &RunReport, bytes_total: u64) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "vouch_target_verified",
        "gauge",
        "1 if the target matched its approval in the last run, else 0.",
    );
    for t in &run.targets {
        let verified = u8::from(t.report.status() == Status::Verified);
        let _ = writeln!(
            out,
            "vouch_target_verified{{target=\"{}\",owner=\"{}\"}} {verified}",
            label(&t.name),
            label(&t.owner)
        );
    }
    family(
        &mut out,
        "vouch_target_failed_subjects",
        "gauge",
        "Subjects of the target that failed in the last run.",
    );
    for t in &run.targets {
        let _ = writeln!(
            out,
            "vouch_target_failed_subjects{{target=\"{}\"}} {}",
            label(&t.name),
            t.report.failures().count()
        );
    }
    let finished = run.finished_at.as_second();
    family(
        &mut out,
        "vouch_last_run_timestamp_seconds",
        "gauge",
        "When the last run finished (Unix time).",
    );
    let _ = writeln!(out, "vouch_last_run_timestamp_seconds {finished}");
    family(
        &mut out,
        "vouch_run_duration_seconds",
        "gauge",
        "How long the last run took.",
    );
    let _ = writeln!(
        out,
        "vouch_run_duration_seconds {:.3}",
        run.duration.as_secs_f64()
    );
    family(
        &mut out,
        "vouch_bytes_hashed_total",
        "counter",
        "Bytes hashed by every run recorded in the history.",
    );
    let _ = writeln!(out, "vouch_bytes_hashed_total {bytes_total}");
    out
}

/// Writes the HELP and TYPE lines that open a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value as the text exposition format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
