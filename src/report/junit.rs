//! JUnit XML: one testsuite per report, one testcase per subject. A suite carries its
//! report's time (no subject is timed on its own); a subject a waiver accepted is skipped.

use std::fmt::Write;
use std::time::Duration;

use super::{JunitSuite, Report, Verdict};

pub fn render(report: &Report) -> String {
    render_suites(
        &[JunitSuite {
            name: &report.target,
            report,
        }],
        report.duration,
    )
}

/// The totals of a suite, or of all of them.
#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

impl Counts {
    fn of(report: &Report) -> Counts {
        Counts {
            tests: report.subjects.len() + usize::from(report.error.is_some()),
            failures: report
                .subjects
                .iter()
                .filter(|s| s.verdict.is_integrity_failure())
                .count(),
            errors: report.count(Verdict::Unreadable) + usize::from(report.error.is_some()),
            skipped: report
                .subjects
                .iter()
                .filter(|s| s.waived.is_some())
                .count(),
        }
    }

    fn add(mut self, other: Counts) -> Counts {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self
    }

    fn attributes(&self) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
            self.tests, self.failures, self.errors, self.skipped
        )
    }
}

pub fn render_suites(suites: &[JunitSuite], duration: Duration) -> String {
    let total = suites
        .iter()
        .map(|s| Counts::of(s.report))
        .fold(Counts::default(), Counts::add);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"vouch\" {} time=\"{:.3}\">",
        total.attributes(),
        duration.as_secs_f64()
    );
    for suite in suites {
        render_suite(&mut out, suite);
    }
    out.push_str("</testsuites>\n");
    out
}

fn render_suite(out: &mut String, suite: &JunitSuite) {
    let JunitSuite { name, report } = *suite;
    let name = escape(name);
    let _ = writeln!(
        out,
        "  <testsuite name=\"{name}\" {} time=\"{:.3}\">",
        Counts::of(report).attributes(),
        report.duration.as_secs_f64()
    );
    for subject in &report.subjects {
        let _ = write!(
            out,
            "    <testcase classname=\"{name}\" name=\"{}\"",
            escape(&subject.name)
        );
        if let Some(waived) = &subject.waived {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                escape(waived)
            );
            continue;
        }
        if subject.verdict == Verdict::Ok {
            out.push_str("/>\n");
            continue;
        }
        let element = if subject.verdict == Verdict::Unreadable {
            "error"
        } else {
            "failure"
        };
        let mut detail = Vec::new();
        if let Some(expected) = &subject.expected {
            detail.push(format!("expected {expected}"));
        }
        if let Some(actual) = &subject.actual {
            detail.push(format!("actual   {actual}"));
        }
        if let Some(message) = &subject.message {
            detail.push(message.clone());
        }
        let _ = writeln!(
            out,
            ">\n      <{element} type=\"{}\" message=\"{} {}\">{}</{element}>\n    </testcase>",
            subject.verdict.name(),
            escape(&subject.name),
            subject.verdict.meaning(),
            escape(&detail.join("\n"))
        );
    }
    if let Some(error) = &report.error {
        let _ = writeln!(
            out,
            "    <testcase classname=\"{name}\" name=\"{name}\">\n      <error type=\"error\" message=\"{}\"/>\n    </testcase>",
            escape(error)
        );
    }
    out.push_str("  </testsuite>\n");
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot hold.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push_str(&format!("&#{};", c as u32)),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
