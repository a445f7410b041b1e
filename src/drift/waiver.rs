//! Waivers: a named owner accepts a target's failures on some paths until a date. An active
//! waiver hides those failures (and is listed in every report); an expired one is itself a
//! failure until someone removes or renews it.

use jiff::civil::Date;

use super::config::{Deployed, Target, Waiver};
use crate::approval::Approval;
use crate::report::{Report, Subject, Verdict};

/// Applies `waivers` (all of them, any target) to `report`, the report of `target`, as of
/// `today`. A hidden subject's verdict becomes Ok and its `waived` says until when and by
/// whom. Returns the names of the subjects a waiver hid: they are still drift.
///
/// Only files of a model are waived: the subjects that name the approval itself (its
/// signature, manifest or check list, and any pin checked against it) never are, whatever
/// a waiver's paths say. (The config refuses waivers for image and root-digest targets.)
pub fn apply(report: &mut Report, target: &Target, waivers: &[Waiver], today: Date) -> Vec<String> {
    let approval_subjects = approval_subjects(target);
    let single_file = is_single_file(target);
    let mut hidden = Vec::new();
    for waiver in waivers.iter().filter(|w| w.target == target.name) {
        let paths = waiver.paths.join(", ");
        if single_file {
            // The model's one file is the whole model, which no waiver may cover.
            report.subjects.push(
                Subject::new(format!("waiver for {paths}"), Verdict::Rejected).message(format!(
                    "target \"{}\" is a single file, so this waiver (owner {}) would cover the whole \
                     model; a waiver covers files inside a model directory",
                    target.name, waiver.owner
                )),
            );
            continue;
        }
        if today > waiver.expires {
            report.subjects.push(
                Subject::new(format!("waiver for {paths}"), Verdict::Rejected).message(format!(
                    "waiver expired on {}, owner {} ({}); remove or renew it",
                    waiver.expires, waiver.owner, waiver.reason
                )),
            );
            continue;
        }
        report.warnings.push(format!(
            "active waiver until {} for {paths}, owner {}: {}",
            waiver.expires, waiver.owner, waiver.reason
        ));
        for subject in &mut report.subjects {
            // Policy rejections (signatures, unsafe pickles) are never waived.
            let waivable = !matches!(subject.verdict, Verdict::Ok | Verdict::Rejected)
                && !approval_subjects.contains(&subject.name);
            if waivable && waiver.paths.iter().any(|p| covers(p, &subject.name)) {
                let was = subject.verdict.name();
                subject.verdict = Verdict::Ok;
                subject.message = Some(format!(
                    "waived until {} by {} ({}); was {was}",
                    waiver.expires, waiver.owner, waiver.reason
                ));
                subject.waived = Some(format!(
                    "waived until {} by {}",
                    waiver.expires, waiver.owner
                ));
                hidden.push(subject.name.clone());
            }
        }
    }
    hidden
}

/// Whether the target is a model that is one file (checked on disk when the waivers apply,
/// right after the check: the config names a path, not a kind).
fn is_single_file(target: &Target) -> bool {
    match &target.subject {
        Deployed::Model { path, .. } => std::fs::metadata(path).is_ok_and(|m| !m.is_dir()),
        Deployed::Image(_) => false,
    }
}

/// The names under which a target's report speaks of its approval rather than its files.
fn approval_subjects(target: &Target) -> Vec<String> {
    match &target.subject {
        Deployed::Model { approval, .. } => match approval {
            Approval::Manifest(file) => vec![file.to_string()],
            Approval::Signature { bundle, .. } => vec![bundle.to_string()],
            Approval::CheckList { list, .. } => vec![list.to_string()],
            Approval::Pinned { .. } => Vec::new(),
        },
        Deployed::Image(image) => vec![image.reference.to_string()],
    }
}

/// Whether the waiver path `path` covers the subject `name`: the file itself, anything
/// below it, or one of its shards (`path:start:end`).
fn covers(path: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(path) else {
        return false;
    };
    if rest.is_empty() || rest.starts_with('/') {
        return true;
    }
    let mut range = rest.split(':').skip(1);
    rest.starts_with(':')
        && range.next().is_some_and(|s| s.parse::<u64>().is_ok())
        && range.next().is_some_and(|e| e.parse::<u64>().is_ok())
        && range.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            name: "t".into(),
            owner: "o".into(),
            subject: Deployed::Model {
                path: "m".into(),
                approval: Approval::Signature {
                    bundle: crate::approval::Locator::File("docs/model.sig".into()),
                    trust: crate::approval::TrustSpec::Key("key.pem".into()),
                },
            },
            ignore_paths: Vec::new(),
            include_git_paths: false,
            deny_unsafe_pickle: false,
            io: crate::hash::Io::Buffered,
            cache: None,
        }
    }

    fn waiver(expires: Date) -> Waiver {
        Waiver {
            target: "t".into(),
            paths: vec!["README.md".into(), "docs".into()],
            reason: "model card edited".into(),
            owner: "alice@example.com".into(),
            expires,
        }
    }

    fn report() -> Report {
        Report {
            subjects: vec![
                Subject::new("README.md", Verdict::Changed),
                Subject::new("docs/a.md", Verdict::Extra),
                Subject::new("weights.bin", Verdict::Changed),
                Subject::new("README.md.bak", Verdict::Extra),
            ],
            ..Report::default()
        }
    }

    #[test]
    fn an_active_waiver_hides_its_paths_only() {
        let mut r = report();
        let hidden = apply(
            &mut r,
            &target(),
            &[waiver(jiff::civil::date(2030, 1, 1))],
            jiff::civil::date(2029, 12, 31),
        );
        assert_eq!(hidden, ["README.md", "docs/a.md"]);
        let waived: Vec<Option<&str>> = r.subjects.iter().map(|s| s.waived.as_deref()).collect();
        let by_alice = Some("waived until 2030-01-01 by alice@example.com");
        assert_eq!(waived, [by_alice, by_alice, None, None]);
        let failing: Vec<&str> = r.failures().map(|s| s.name.as_str()).collect();
        assert_eq!(failing, ["weights.bin", "README.md.bak"]);
        assert!(r.warnings[0].contains("active waiver until 2030-01-01"));
    }

    #[test]
    fn an_expired_waiver_hides_nothing_and_fails() {
        let mut r = report();
        let hidden = apply(
            &mut r,
            &target(),
            &[waiver(jiff::civil::date(2026, 1, 1))],
            jiff::civil::date(2026, 1, 2),
        );
        assert!(hidden.is_empty());
        let expired = r.subjects.last().unwrap();
        assert_eq!(expired.verdict, Verdict::Rejected);
        assert!(expired
            .message
            .as_deref()
            .unwrap()
            .contains("waiver expired on 2026-01-01, owner alice@example.com"));
    }

    #[test]
    fn the_approval_s_own_subject_is_never_waived() {
        let mut r = report();
        r.subjects
            .push(Subject::new("docs/model.sig", Verdict::Changed));
        let hidden = apply(
            &mut r,
            &target(),
            &[waiver(jiff::civil::date(2030, 1, 1))],
            jiff::civil::date(2029, 12, 31),
        );
        assert_eq!(hidden, ["README.md", "docs/a.md"]);
        assert_eq!(r.subjects.last().unwrap().verdict, Verdict::Changed);
    }

    #[test]
    fn shards_of_a_waived_file_are_covered() {
        assert!(covers("w.bin", "w.bin:0:1000"));
        assert!(!covers("w.bin", "w.bin:x"));
        assert!(!covers("w.bin", "w.bin2"));
    }
}
