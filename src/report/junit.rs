//! JUnit XML: one testsuite per report, one testcase per subject.

use std::fmt::Write;

use super::{Report, Verdict};

pub fn render(report: &Report) -> String {
    let failures = report
        .subjects
        .iter()
        .filter(|s| s.verdict.is_integrity_failure())
        .count();
    let errors = report.count(Verdict::Unreadable) + usize::from(report.error.is_some());
    let tests = report.subjects.len() + usize::from(report.error.is_some());
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"vouch\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">",
        report.duration.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">",
        escape(&report.target),
        report.duration.as_secs_f64()
    );
    for subject in &report.subjects {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(&report.target),
            escape(&subject.name)
        );
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
            "    <testcase classname=\"{0}\" name=\"{0}\">\n      <error type=\"error\" message=\"{1}\"/>\n    </testcase>",
            escape(&report.target),
            escape(error)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
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
