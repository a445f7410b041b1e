//! SARIF 2.1.0: one result per failing subject, one rule per verdict.

use serde_json::json;

use super::{Report, Verdict};

pub fn render(report: &Report) -> String {
    let rules: Vec<_> = Verdict::ALL
        .into_iter()
        .filter(|v| *v != Verdict::Ok)
        .map(|v| {
            json!({
                "id": v.name(),
                "name": v.name(),
                "shortDescription": { "text": format!("The artifact {}", v.meaning()) },
                "defaultConfiguration": { "level": level(v) },
            })
        })
        .collect();
    let mut results: Vec<_> = report
        .failures()
        .map(|s| {
            let mut text = format!("{} {}", s.name, s.verdict.meaning());
            if let (Some(expected), Some(actual)) = (&s.expected, &s.actual) {
                text.push_str(&format!(": expected {expected}, found {actual}"));
            }
            if let Some(message) = &s.message {
                text.push_str(&format!(" ({message})"));
            }
            json!({
                "ruleId": s.verdict.name(),
                "level": level(s.verdict),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": { "artifactLocation": { "uri": uri(&s.name) } }
                }],
            })
        })
        .collect();
    if let Some(error) = &report.error {
        results.push(json!({
            "ruleId": Verdict::Unreadable.name(),
            "level": "error",
            "message": { "text": error },
        }));
    }
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "vouch",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "originalUriBaseIds": { "TARGET": { "description": { "text": report.target } } },
            "results": results,
        }],
    });
    let mut out = serde_json::to_string_pretty(&log).expect("SARIF always serializes");
    out.push('\n');
    out
}

fn level(verdict: Verdict) -> &'static str {
    if verdict == Verdict::Unreadable {
        "warning"
    } else {
        "error"
    }
}

/// A relative URI reference for a subject name: path characters kept, the rest escaped.
fn uri(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
