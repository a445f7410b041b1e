//! GitHub Actions workflow commands: the summary first (GitHub shows only the first ten
//! annotations of each kind per step), then an `::error` per failure pointing at its file,
//! then the warnings.

use super::{Locations, Report, Status};

pub fn render(report: &Report, locations: &Locations) -> String {
    let command = match (report.status(), &report.error) {
        (Status::Verified, None) => "notice",
        _ => "error",
    };
    let mut out = format!(
        "::{command} title=vouch::{}\n",
        data(&report.summary_line())
    );
    for (index, subject) in report.indexed_failures() {
        out.push_str(&format!(
            "::error file={},title={}::{}\n",
            property(locations.of(index)),
            property(&format!("vouch: {}", subject.verdict.name())),
            data(&Report::describe_failure(subject))
        ));
    }
    for warning in &report.warnings {
        out.push_str(&format!("::warning title=vouch::{}\n", data(warning)));
    }
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
