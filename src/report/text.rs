//! Plain text for people: failures with their digests, then one summary line.

use std::fmt::Write;

use super::{human_bytes, Report, Status, Verdict};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for subject in report.failures() {
        let _ = writeln!(out, "{:<10} {}", subject.verdict.name(), subject.name);
        if let Some(expected) = &subject.expected {
            let _ = writeln!(out, "{:<10}   expected {expected}", "");
        }
        if let Some(actual) = &subject.actual {
            let _ = writeln!(out, "{:<10}   actual   {actual}", "");
        }
        if let Some(message) = &subject.message {
            let _ = writeln!(out, "{:<10}   {message}", "");
        }
    }
    // What passed with something to say: who signed (a signature's subject), and the like.
    for subject in &report.subjects {
        if let (Verdict::Ok, Some(message)) = (subject.verdict, &subject.message) {
            let _ = writeln!(
                out,
                "{:<10} {}: {message}",
                subject.verdict.name(),
                subject.name
            );
        }
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    if let Some(root) = &report.root_digest {
        let _ = writeln!(out, "root digest {root}");
    }
    let against = if report.approval.is_empty() {
        String::new()
    } else {
        format!(" against {}", report.approval)
    };
    let cached = if report.bytes_from_cache > 0 {
        format!(
            " ({} more from the hash cache)",
            human_bytes(report.bytes_from_cache)
        )
    } else {
        String::new()
    };
    let totals = format!(
        "{} hashed{cached} in {:.2} s{}",
        human_bytes(report.bytes_hashed),
        report.duration.as_secs_f64(),
        rate(report)
    );
    let total = report.subjects.len();
    let subjects = if total == 1 { "subject" } else { "subjects" };
    match (report.status(), &report.error) {
        (Status::Error, Some(error)) => {
            let _ = writeln!(out, "vouch: ERROR {}{against}: {error}", report.target);
        }
        (Status::Verified, _) => {
            let _ = writeln!(
                out,
                "vouch: verified {}{against}: {total} {subjects} ok; {totals}",
                report.target
            );
        }
        (status, _) => {
            let word = if status == Status::Failed {
                "FAILED"
            } else {
                "ERROR"
            };
            let failed = report.failures().count();
            let breakdown: Vec<String> = Verdict::ALL
                .into_iter()
                .filter(|v| *v != Verdict::Ok)
                .filter_map(|v| match report.count(v) {
                    0 => None,
                    n => Some(format!("{n} {}", v.name())),
                })
                .collect();
            let _ = writeln!(
                out,
                "vouch: {word} {}{against}: {failed} of {total} {subjects} failed ({}); {totals}",
                report.target,
                breakdown.join(", ")
            );
        }
    }
    out
}

fn rate(report: &Report) -> String {
    let seconds = report.duration.as_secs_f64();
    if report.bytes_hashed < 10_000_000 || seconds <= 0.0 {
        return String::new();
    }
    format!(
        " ({}/s)",
        human_bytes((report.bytes_hashed as f64 / seconds) as u64)
    )
}

/// One line per subject, as `sha256sum -c` prints them: `NAME: OK`, `NAME: FAILED`,
/// `NAME: FAILED open or read`.
pub fn render_check_lines(report: &Report) -> String {
    let mut out = String::new();
    for subject in &report.subjects {
        let outcome = match subject.verdict {
            Verdict::Ok => "OK",
            Verdict::Changed => "FAILED",
            Verdict::Missing | Verdict::Unreadable => "FAILED open or read",
            Verdict::Unstable => "FAILED changed while being read",
            Verdict::Extra | Verdict::Rejected => "FAILED",
        };
        let _ = writeln!(out, "{}: {outcome}", subject.name);
    }
    out
}
