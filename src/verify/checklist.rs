//! Checks the files a check list names, relative to the working directory, as
//! `sha256sum -c` and `b3sum -c` do.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;

use crate::hash::reader::special_kind;
use crate::hash::{Engine, Identity, Location, Task};
use crate::manifest::checklist::CheckEntry;
use crate::report::{Report, Subject, Verdict};

pub fn check_files(entries: &[CheckEntry], source: &Path, engine: &Engine) -> Report {
    let started = Instant::now();
    let mut report = Report {
        target: source.display().to_string(),
        approval: format!("check list {}", source.display()),
        ..Report::default()
    };
    // Subjects in list order; hashing only for the entries that name a regular file.
    let mut pending: Vec<(usize, &CheckEntry)> = Vec::new();
    let mut tasks = Vec::new();
    for entry in entries {
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        let path = Path::new(OsStr::from_bytes(&entry.name));
        let subject = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Subject::new(name, Verdict::Missing)
                    .expected(entry.digest.prefixed())
                    .message(e.to_string())
            }
            Err(e) => Subject::new(name, Verdict::Unreadable).message(e.to_string()),
            Ok(meta) => match special_kind(&meta) {
                Some(kind) => Subject::new(name, Verdict::Changed)
                    .expected(entry.digest.prefixed())
                    .message(format!("is {kind}, not a regular file; it was not opened")),
                None => {
                    pending.push((report.subjects.len(), entry));
                    tasks.push(Task::whole(
                        Location::Given(path.to_path_buf()),
                        Identity::of(&meta),
                    ));
                    Subject::new(name, Verdict::Ok)
                }
            },
        };
        report.subjects.push(subject);
    }
    let algorithms: Vec<_> = {
        let mut all: Vec<_> = entries.iter().map(|e| e.digest.algorithm).collect();
        all.sort();
        all.dedup();
        all
    };
    let (results, bytes) = engine.hash_all(&tasks, &algorithms);
    for ((index, entry), result) in pending.into_iter().zip(results) {
        let subject = &mut report.subjects[index];
        match result {
            Ok(digests) => {
                let actual = digests
                    .into_iter()
                    .find(|d| d.algorithm == entry.digest.algorithm)
                    .expect("every algorithm of the list was computed");
                subject.verdict = if actual == entry.digest {
                    Verdict::Ok
                } else {
                    Verdict::Changed
                };
                subject.expected = Some(entry.digest.prefixed());
                subject.actual = Some(actual.prefixed());
            }
            Err(error) => {
                let (verdict, message) = error.verdict();
                subject.verdict = verdict;
                subject.message = Some(message);
            }
        }
    }
    report.bytes_hashed = bytes;
    report.duration = started.elapsed();
    report
}
