//! The Prometheus text exposition of a run: the textfile the node exporter's textfile
//! collector reads (rewritten whole, atomically, after every run) and what `drift watch
//! --listen` serves on /metrics. Every family of a target carries its `target` and `owner`.

use std::fmt::Write;

use super::history::ByteTotals;
use super::outcome::{RunReport, TargetResult};
use crate::report::Status;

/// A family with one sample per target: name, type, help, and the target's value.
type PerTarget = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TargetResult) -> String,
);

/// The metrics of `run`; `totals` count every byte ever hashed or taken from the hash cache.
pub fn render(run: &RunReport, totals: ByteTotals) -> String {
    let mut out = String::new();
    let per_target: [PerTarget; 6] = [
        (
            "vouch_target_verified",
            "gauge",
            "1 if the target matched its approval in the last run, else 0.",
            |t| u8::from(t.report.status() == Status::Verified).to_string(),
        ),
        (
            "vouch_target_drifted",
            "gauge",
            "1 if the target did not match its approval (changed, missing, extra, rejected) in the last run, else 0.",
            |t| u8::from(t.report.status() == Status::Failed).to_string(),
        ),
        (
            "vouch_target_check_failed",
            "gauge",
            "1 if the target could not be checked (unreadable, unreachable, timed out) in the last run, else 0.",
            |t| u8::from(t.report.status() == Status::Error).to_string(),
        ),
        (
            "vouch_target_failed_subjects",
            "gauge",
            "Subjects of the target that failed in the last run.",
            |t| t.report.failures().count().to_string(),
        ),
        (
            "vouch_target_bytes_hashed",
            "gauge",
            "Bytes of the target read and hashed in the last run.",
            |t| t.report.bytes_hashed.to_string(),
        ),
        (
            "vouch_target_bytes_from_cache",
            "gauge",
            "Bytes of the target whose digests the hash cache gave in the last run.",
            |t| t.report.bytes_from_cache.to_string(),
        ),
    ];
    for (name, kind, help, value) in per_target {
        family(&mut out, name, kind, help);
        for t in &run.targets {
            let _ = writeln!(
                out,
                "{name}{{target=\"{}\",owner=\"{}\"}} {}",
                label(&t.name),
                label(&t.owner),
                value(t)
            );
        }
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
    let _ = writeln!(out, "vouch_bytes_hashed_total {}", totals.hashed);
    family(
        &mut out,
        "vouch_bytes_from_cache_total",
        "counter",
        "Bytes the hash cache vouched for in every run recorded in the history.",
    );
    let _ = writeln!(out, "vouch_bytes_from_cache_total {}", totals.from_cache);
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
