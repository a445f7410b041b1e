//! Markdown for a CI job's summary page: the outcome, the totals, and a table of failures.

use std::fmt::Write;

use super::{human_bytes, Report, Status};

/// Rows shown in the failure table; the rest are counted.
const MAX_ROWS: usize = 200;

pub fn render(report: &Report) -> String {
    let mark = match report.status() {
        Status::Verified => "✅",
        Status::Failed => "❌",
        Status::Error => "⚠️",
    };
    let mut out = format!("### {mark} vouch: {}\n\n", cell(&report.summary_line()));
    if !report.approval.is_empty() {
        let _ = writeln!(out, "Checked against {}.\n", cell(&report.approval));
    }
    let _ = writeln!(
        out,
        "{} subjects, {} hashed in {:.2} s.\n",
        report.subjects.len(),
        human_bytes(report.bytes_hashed),
        report.duration.as_secs_f64()
    );
    let failures: Vec<_> = report.failures().collect();
    if !failures.is_empty() {
        out.push_str("| verdict | subject | detail |\n| --- | --- | --- |\n");
        for subject in failures.iter().take(MAX_ROWS) {
            let mut detail = Vec::new();
            if let Some(expected) = &subject.expected {
                detail.push(format!("expected `{expected}`"));
            }
            if let Some(actual) = &subject.actual {
                detail.push(format!("found `{actual}`"));
            }
            if let Some(message) = &subject.message {
                detail.push(cell(message));
            }
            let _ = writeln!(
                out,
                "| {} | `{}` | {} |",
                subject.verdict.name(),
                subject.name.replace('`', "'").replace('|', "\\|"),
                detail.join("; ")
            );
        }
        if failures.len() > MAX_ROWS {
            let _ = writeln!(out, "\n…and {} more.", failures.len() - MAX_ROWS);
        }
        out.push('\n');
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "> warning: {}", cell(warning));
    }
    out
}

/// Text made safe for one table cell or line: no line breaks, no cell separators, and no
/// HTML a summary page would render.
fn cell(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
