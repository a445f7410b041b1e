//! The one outcome model every check produces, and its renderers.
//!
//! A check returns a [`Report`]: subjects (files, shards, blobs, signatures), each with a
//! [`Verdict`], plus totals. Renderers only format a report; none of them feeds back into
//! the checking code, and the exit status is derived from the report alone.

mod github;
mod json;
mod junit;
mod markdown;
mod sarif;
mod text;

use std::time::Duration;

use crate::error::{EXIT_INTEGRITY, EXIT_OPERATIONAL};

pub use json::value as json_value;
pub use text::render_check_lines;

/// What was found for one subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// Matches what was approved.
    Ok,
    /// Present, but its digest (or size) differs from the approved one.
    Changed,
    /// Approved, but absent.
    Missing,
    /// Present, but not approved (and not ignored).
    Extra,
    /// Could not be read (I/O error, with the OS message).
    Unreadable,
    /// Changed while it was being read.
    Unstable,
    /// Refused by a signature or policy check.
    Rejected,
}

impl Verdict {
    pub const ALL: [Verdict; 7] = [
        Verdict::Ok,
        Verdict::Changed,
        Verdict::Missing,
        Verdict::Extra,
        Verdict::Unreadable,
        Verdict::Unstable,
        Verdict::Rejected,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Changed => "changed",
            Verdict::Missing => "missing",
            Verdict::Extra => "extra",
            Verdict::Unreadable => "unreadable",
            Verdict::Unstable => "unstable",
            Verdict::Rejected => "rejected",
        }
    }

    /// One line saying what the verdict means, for SARIF rules and help text.
    pub fn meaning(self) -> &'static str {
        match self {
            Verdict::Ok => "matches the approved digest",
            Verdict::Changed => "differs from the approved digest",
            Verdict::Missing => "is approved but absent",
            Verdict::Extra => "is present but not approved",
            Verdict::Unreadable => "could not be read",
            Verdict::Unstable => "changed while it was being read",
            Verdict::Rejected => "was refused by a signature or policy check",
        }
    }

    /// An integrity failure: the artifact is not what was approved.
    pub fn is_integrity_failure(self) -> bool {
        !matches!(self, Verdict::Ok | Verdict::Unreadable)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub name: String,
    pub verdict: Verdict,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub message: Option<String>,
    /// Set when an active waiver accepted this subject's failure (its verdict is then Ok):
    /// until when and by whom (`waived until 2026-12-31 by alice@example.com`), as JUnit
    /// shows it skipped. No check sets it; the waiver that overrides the verdict does.
    pub waived: Option<String>,
}

impl Subject {
    pub fn new(name: impl Into<String>, verdict: Verdict) -> Subject {
        Subject {
            name: name.into(),
            verdict,
            expected: None,
            actual: None,
            message: None,
            waived: None,
        }
    }

    pub fn expected(mut self, digest: impl Into<String>) -> Subject {
        self.expected = Some(digest.into());
        self
    }

    pub fn actual(mut self, digest: impl Into<String>) -> Subject {
        self.actual = Some(digest.into());
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Subject {
        self.message = Some(message.into());
        self
    }
}

/// The overall result, as `status` in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Verified,
    Failed,
    Error,
}

impl Status {
    /// The exit status a promotion gate reads: 0, 1 or 3 (2 comes from errors before a
    /// verdict).
    pub fn exit_status(self) -> u8 {
        match self {
            Status::Verified => 0,
            Status::Failed => EXIT_INTEGRITY,
            Status::Error => EXIT_OPERATIONAL,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Verified => "verified",
            Status::Failed => "failed",
            Status::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    /// What was checked (a model path, an image reference).
    pub target: String,
    /// What it was checked against, in words (`manifest approved.json (files, sha256)`).
    pub approval: String,
    /// The model version whose approval was checked (`models:/NAME/VERSION`), when it was
    /// kept in a registry: an alias resolved.
    pub approval_version: Option<String>,
    /// The root digest of the target as found, when every part of it could be hashed.
    pub root_digest: Option<String>,
    pub subjects: Vec<Subject>,
    /// Things the user should know that are not failures.
    pub warnings: Vec<String>,
    pub bytes_hashed: u64,
    /// Bytes whose digests a hash cache vouched for instead of a read.
    pub bytes_from_cache: u64,
    pub duration: Duration,
    /// Set when the check could not run to the end; the message says why.
    pub error: Option<String>,
}

impl Report {
    /// A report for a check that stopped with an error before reaching a verdict.
    pub fn failed_run(target: impl Into<String>, error: impl Into<String>) -> Report {
        Report {
            target: target.into(),
            error: Some(error.into()),
            ..Report::default()
        }
    }

    /// Failed if any subject is an integrity failure; otherwise error if anything could not
    /// be read or the run stopped; otherwise verified.
    pub fn status(&self) -> Status {
        if self
            .subjects
            .iter()
            .any(|s| s.verdict.is_integrity_failure())
        {
            Status::Failed
        } else if self.error.is_some()
            || self
                .subjects
                .iter()
                .any(|s| s.verdict == Verdict::Unreadable)
        {
            Status::Error
        } else {
            Status::Verified
        }
    }

    pub fn exit_status(&self) -> u8 {
        self.status().exit_status()
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.subjects
            .iter()
            .filter(|s| s.verdict == verdict)
            .count()
    }

    pub fn failures(&self) -> impl Iterator<Item = &Subject> {
        self.subjects.iter().filter(|s| s.verdict != Verdict::Ok)
    }

    /// The failures with their index among the subjects.
    pub fn indexed_failures(&self) -> impl Iterator<Item = (usize, &Subject)> {
        self.subjects
            .iter()
            .enumerate()
            .filter(|(_, s)| s.verdict != Verdict::Ok)
    }

    /// One line for a failing subject: what it is, both digests, the message.
    pub fn describe_failure(subject: &Subject) -> String {
        let mut text = format!("{} {}", subject.name, subject.verdict.meaning());
        if let (Some(expected), Some(actual)) = (&subject.expected, &subject.actual) {
            text.push_str(&format!(": expected {expected}, found {actual}"));
        }
        if let Some(message) = &subject.message {
            text.push_str(&format!(" ({message})"));
        }
        text
    }

    /// The one-line outcome: verified, failed (how many), or the error that stopped it.
    pub fn summary_line(&self) -> String {
        match (self.status(), &self.error) {
            (_, Some(error)) => format!("{}: {}", self.target, error),
            (Status::Verified, _) => format!(
                "verified {} ({} subjects)",
                self.target,
                self.subjects.len()
            ),
            (_, None) => format!(
                "{} failed verification ({} of {} subjects)",
                self.target,
                self.failures().count(),
                self.subjects.len()
            ),
        }
    }
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable summary.
    #[default]
    Text,
    /// One JSON object (fields documented in the README).
    Json,
    /// JUnit XML, one testcase per subject.
    Junit,
    /// SARIF 2.1.0, one result per failure.
    Sarif,
    /// GitHub Actions workflow commands (`::error` annotations).
    Github,
}

/// One report as a JUnit testsuite named `name`, e.g. one target of a drift run.
pub struct JunitSuite<'a> {
    pub name: &'a str,
    pub report: &'a Report,
}

/// JUnit XML with one testsuite per report; `duration` is the whole run's.
pub fn render_junit(suites: &[JunitSuite], duration: Duration) -> String {
    junit::render_suites(suites, duration)
}

/// Renders `report` in `format`, its subjects located by their names alone.
pub fn render(report: &Report, format: Format) -> String {
    render_located(report, format, &Locations::by_name(report))
}

/// Renders `report` in `format`; the formats that point at files (SARIF, GitHub
/// annotations) point each subject at `locations`.
pub fn render_located(report: &Report, format: Format, locations: &Locations) -> String {
    match format {
        Format::Text => text::render(report),
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Sarif => sarif::render(report, locations),
        Format::Github => github::render(report, locations),
    }
}

/// A Markdown summary of `report` (a heading, the totals and a table of what failed), as a
/// CI job's summary page shows it.
pub fn render_markdown(report: &Report) -> String {
    markdown::render(report)
}

/// Where the subjects of a report are, for the renderers that point at files: paths
/// relative to the repository root (or wherever the caller anchors them), one per subject,
/// and the path a result about the whole target points at. The caller, which knows the
/// file system, builds it; renderers only read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locations {
    /// One per subject of the report, in order.
    pub subjects: Vec<String>,
    /// What a result about the whole target points at: the model, or the approval file.
    pub target: String,
    /// The directory the paths are relative to, as an absolute `file://` URI ending in `/`,
    /// when it is known.
    pub root_uri: Option<String>,
}

impl Locations {
    /// Each subject located by its own name, the target by the report's target.
    pub fn by_name(report: &Report) -> Locations {
        Locations {
            subjects: report.subjects.iter().map(|s| s.name.clone()).collect(),
            target: report.target.clone(),
            root_uri: None,
        }
    }

    /// Where subject `index` is.
    fn of(&self, index: usize) -> &str {
        self.subjects
            .get(index)
            .map_or(self.target.as_str(), String::as_str)
    }
}

/// Human-readable byte count (`1.50 GB`), decimal units as disks are sold.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_prefers_integrity_failures_over_read_errors() {
        let mut report = Report::default();
        assert_eq!(report.exit_status(), 0);
        report.subjects.push(Subject::new("a", Verdict::Unreadable));
        assert_eq!((report.status(), report.exit_status()), (Status::Error, 3));
        report.subjects.push(Subject::new("b", Verdict::Changed));
        assert_eq!((report.status(), report.exit_status()), (Status::Failed, 1));
    }
}
