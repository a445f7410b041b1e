//! A run's report as JSON (the report file, and the alert webhook's body) and as text, and
//! as one flat report for the renderers that take one list.

use serde::Serialize;

use super::outcome::{RunReport, TargetResult};
use crate::report::{self, JunitSuite, Report, Status, Subject, Verdict};

/// Every target's subjects in one report, named `target: subject`, for the renderers
/// that take one list (SARIF, GitHub annotations): the subjects of [`by_target`] in order.
pub fn flatten(run: &RunReport) -> Report {
    let mut flat = Report {
        target: format!("drift run {}", run.run_id),
        duration: run.duration,
        ..Report::default()
    };
    for part in by_target(run) {
        flat.subjects.extend(part.subjects);
        flat.warnings.extend(part.warnings);
        flat.bytes_hashed += part.bytes_hashed;
    }
    flat
}

/// Each target's report as flattened: subjects named `target: subject`, the owner in their
/// messages, and a check that stopped as one unreadable subject named by the target.
fn by_target(run: &RunReport) -> Vec<Report> {
    run.targets.iter().map(flatten_target).collect()
}

fn flatten_target(t: &TargetResult) -> Report {
    let owner = format!("owner {}", t.owner);
    let mut flat = Report {
        target: t.name.clone(),
        duration: t.report.duration,
        bytes_hashed: t.report.bytes_hashed,
        ..Report::default()
    };
    for s in &t.report.subjects {
        let mut subject = s.clone();
        subject.name = format!("{}: {}", t.name, s.name);
        subject.message = Some(match &s.message {
            Some(m) => format!("{m} ({owner})"),
            None => owner.clone(),
        });
        flat.subjects.push(subject);
    }
    if let Some(error) = &t.report.error {
        flat.subjects.push(
            Subject::new(t.name.clone(), Verdict::Unreadable).message(format!("{error} ({owner})")),
        );
    }
    flat.warnings = t
        .report
        .warnings
        .iter()
        .map(|w| format!("{}: {w}", t.name))
        .collect();
    flat
}

/// JUnit: one testsuite per target, with the target's time; waived subjects are skipped.
pub fn to_junit(run: &RunReport) -> String {
    let parts = by_target(run);
    let suites: Vec<JunitSuite> = parts
        .iter()
        .map(|report| JunitSuite {
            name: &report.target,
            report,
        })
        .collect();
    report::render_junit(&suites, run.duration)
}

pub fn to_json(run: &RunReport) -> String {
    #[derive(Serialize)]
    struct Run<'a> {
        status: &'static str,
        run_id: i64,
        started_at: String,
        finished_at: String,
        duration_seconds: f64,
        shard: Option<String>,
        stopped: bool,
        targets: Vec<TargetView<'a>>,
    }
    #[derive(Serialize)]
    struct TargetView<'a> {
        name: &'a str,
        owner: &'a str,
        location: &'a str,
        status: &'static str,
        waived: &'a [String],
        report: serde_json::Value,
    }
    let view = Run {
        status: run.status().name(),
        run_id: run.run_id,
        started_at: run.started_at.to_string(),
        finished_at: run.finished_at.to_string(),
        duration_seconds: run.duration.as_secs_f64(),
        shard: run.shard.map(|s| s.to_string()),
        stopped: run.stopped,
        targets: run
            .targets
            .iter()
            .map(|t| TargetView {
                name: &t.name,
                owner: &t.owner,
                location: &t.location,
                status: t.report.status().name(),
                waived: &t.hidden,
                report: report::json_value(&t.report),
            })
            .collect(),
    };
    let mut out = serde_json::to_string_pretty(&view).expect("a run always serializes");
    out.push('\n');
    out
}

pub fn to_text(run: &RunReport) -> String {
    let mut out = String::new();
    for t in &run.targets {
        out.push_str(&format!(
            "== {} (owner {}) {}\n",
            t.name, t.owner, t.location
        ));
        for line in report::render(&t.report, report::Format::Text).lines() {
            out.push_str(&format!("   {line}\n"));
        }
    }
    let failing: Vec<&str> = run
        .targets
        .iter()
        .filter(|t| t.report.status() != Status::Verified)
        .map(|t| t.name.as_str())
        .collect();
    let shard = run
        .shard
        .map(|s| format!(" (shard {s})"))
        .unwrap_or_default();
    let stopped = if run.stopped {
        "; stopped before every target was checked"
    } else {
        ""
    };
    out.push_str(&match run.status() {
        Status::Verified => format!(
            "vouch drift: run {}{shard}: all {} targets verified in {:.2} s{stopped}\n",
            run.run_id,
            run.targets.len(),
            run.duration.as_secs_f64()
        ),
        status => format!(
            "vouch drift: run {}{shard}: {} — {} of {} targets not verified: {}{stopped}\n",
            run.run_id,
            if status == Status::Failed {
                "FAILED"
            } else {
                "ERROR"
            },
            failing.len(),
            run.targets.len(),
            failing.join(", ")
        ),
    });
    out
}
