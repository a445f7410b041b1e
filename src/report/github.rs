//! GitHub Actions workflow commands: an `::error` per failure and a summary notice.

use super::{Report, Status};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for subject in report.failures() {
        let mut message = format!("{} {}", subject.name, subject.verdict.meaning());
        if let (Some(expected), Some(actual)) = (&subject.expected, &subject.actual) {
            message.push_str(&format!(": expected {expected}, found {actual}"));
        }
        if let Some(text) = &subject.message {
            message.push_str(&format!(" ({text})"));
        }
        out.push_str(&format!(
            "::error file={},title={}::{}\n",
            property(&subject.name),
            property(&format!("vouch: {}", subject.verdict.name())),
            data(&message)
        ));
    }
    for warning in &report.warnings {
        out.push_str(&format!("::warning title=vouch::{}\n", data(warning)));
    }
    let (command, summary) = match (report.status(), &report.error) {
        (_, Some(error)) => ("error", format!("{}: {}", report.target, error)),
        (Status::Verified, _) => (
            "notice",
            format!(
                "verified {} ({} subjects)",
                report.target,
                report.subjects.len()
            ),
        ),
        (_, None) => (
            "error",
            format!(
                "{} failed verification ({} of {} subjects)",
                report.target,
                report.failures().count(),
                report.subjects.len()
            ),
        ),
    };
    out.push_str(&format!("::{command} title=vouch::{}\n", data(&summary)));
    out
}

/// Escapes a command's message.
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command property value.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}
