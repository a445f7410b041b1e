//! One JSON object per report; field names are documented in the README.

use serde::Serialize;

use super::Report;

#[derive(Serialize)]
struct JsonReport<'a> {
    status: &'static str,
    target: &'a str,
    approval: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_version: Option<&'a str>,
    root_digest: Option<&'a str>,
    subjects: Vec<JsonSubject<'a>>,
    warnings: &'a [String],
    bytes_hashed: u64,
    bytes_from_cache: u64,
    duration_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonSubject<'a> {
    name: &'a str,
    verdict: &'static str,
    expected: Option<&'a str>,
    actual: Option<&'a str>,
    message: Option<&'a str>,
}

pub fn render(report: &Report) -> String {
    let mut out = serde_json::to_string_pretty(&view(report)).expect("a report always serializes");
    out.push('\n');
    out
}

/// The report as a JSON value, to embed in a larger document.
pub fn value(report: &Report) -> serde_json::Value {
    serde_json::to_value(view(report)).expect("a report always serializes")
}

fn view(report: &Report) -> JsonReport<'_> {
    JsonReport {
        status: report.status().name(),
        target: &report.target,
        approval: &report.approval,
        approval_version: report.approval_version.as_deref(),
        root_digest: report.root_digest.as_deref(),
        subjects: report
            .subjects
            .iter()
            .map(|s| JsonSubject {
                name: &s.name,
                verdict: s.verdict.name(),
                expected: s.expected.as_deref(),
                actual: s.actual.as_deref(),
                message: s.message.as_deref(),
            })
            .collect(),
        warnings: &report.warnings,
        bytes_hashed: report.bytes_hashed,
        bytes_from_cache: report.bytes_from_cache,
        duration_seconds: report.duration.as_secs_f64(),
        error: report.error.as_deref(),
    }
}
