//! SARIF 2.1.0: one result per failing subject, one rule per verdict. Every result has a
//! location (GitHub's code scanning refuses results without one): the file the subject is,
//! or, for what concerns the whole target, the model or its approval.

use serde_json::{json, Value};

use super::{Locations, Report, Verdict};

/// The base the relative URIs of a run are resolved against.
const ROOT_BASE_ID: &str = "SRCROOT";

pub fn render(report: &Report, locations: &Locations) -> String {
    let rules: Vec<_> = Verdict::ALL
        .into_iter()
        .filter(|v| *v != Verdict::Ok)
        .map(|v| {
            json!({
                "id": v.name(),
                "name": v.name(),
                "shortDescription": { "text": format!("The artifact {}", v.meaning()) },
                "fullDescription": { "text": format!("The artifact {}.", v.meaning()) },
                "help": { "text": help(v) },
                "defaultConfiguration": { "level": level(v) },
            })
        })
        .collect();
    let based = locations.root_uri.is_some();
    let mut results: Vec<_> = report
        .indexed_failures()
        .map(|(index, s)| {
            json!({
                "ruleId": s.verdict.name(),
                "level": level(s.verdict),
                "message": { "text": Report::describe_failure(s) },
                "locations": [location(locations.of(index), based)],
            })
        })
        .collect();
    if let Some(error) = &report.error {
        results.push(json!({
            "ruleId": Verdict::Unreadable.name(),
            "level": "error",
            "message": { "text": error },
            "locations": [location(&locations.target, based)],
        }));
    }
    let mut run = json!({
        "tool": { "driver": {
            "name": "vouch",
            "version": env!("CARGO_PKG_VERSION"),
            "rules": rules,
        }},
        "results": results,
    });
    if let Some(root) = &locations.root_uri {
        run["originalUriBaseIds"] = json!({ ROOT_BASE_ID: { "uri": root } });
    }
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    });
    let mut out = serde_json::to_string_pretty(&log).expect("SARIF always serializes");
    out.push('\n');
    out
}

/// A result's location: a path relative to the run's root (or an absolute path).
fn location(path: &str, based: bool) -> Value {
    let artifact = if path.starts_with('/') {
        json!({ "uri": format!("file://{}", uri(path)) })
    } else if based {
        json!({ "uri": uri(path), "uriBaseId": ROOT_BASE_ID })
    } else {
        json!({ "uri": uri(path) })
    };
    json!({ "physicalLocation": { "artifactLocation": artifact } })
}

/// What to do about a verdict, for a rule's help text.
fn help(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Ok => "Nothing to do.",
        Verdict::Changed | Verdict::Missing | Verdict::Extra => {
            "The artifact is not what was approved: find out who changed it, then restore the \
             approved file or approve the new content."
        }
        Verdict::Unreadable => {
            "Check the file's permissions and the storage it is on, then verify again."
        }
        Verdict::Unstable => {
            "Something wrote to the artifact while it was read: verify again once it is at rest."
        }
        Verdict::Rejected => {
            "A signature or policy check refused it: see the message for which and why."
        }
    }
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
