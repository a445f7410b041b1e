//! `vouch verify --hf-blobs`: a Hugging Face download checked against the names
//! huggingface_hub gave its files. A cache snapshot's files are named by their blobs
//! (SHA-256 of an LFS file, git blob SHA-1 of any other); a `--local-dir` download's by the
//! etag in `.cache/huggingface/download/NAME.metadata`. The cache's `refs/` must name
//! snapshots it has.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha1::Digest as _;

use crate::error::{Error, Result};
use crate::hash::opening::open_file_beneath;
use crate::hash::{Algorithm, Engine, Stamp, Task};
use crate::model::compare::Comparison;
use crate::model::hf::{self, Snapshot};
use crate::model::oms::Method;
use crate::model::paths::IgnoreSet;
use crate::model::walk::{self, Model, WalkOptions};
use crate::report::{Report, Subject, Verdict};

/// What `--hf-blobs` cannot see, said in every report it makes.
pub const CANNOT_CATCH: &str = "--hf-blobs checks each file against the name huggingface_hub gave it only: it cannot catch a malicious upstream, a file re-pointed to another valid blob, or a deleted file; an approved manifest or signature catches those";

/// Where the metadata of a `--local-dir` download's files is.
const DOWNLOAD_METADATA: &str = ".cache/huggingface/download";

/// How a blob name says what the content is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Named {
    Sha256,
    GitBlob,
}

impl Named {
    fn of(name: &str) -> Option<Named> {
        if hf::is_lower_hex(name, 64) {
            Some(Named::Sha256)
        } else if hf::is_lower_hex(name, 40) {
            Some(Named::GitBlob)
        } else {
            None
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Named::Sha256 => "sha256",
            Named::GitBlob => "gitsha1",
        }
    }
}

/// What a file's content must match, and how the report names where that came from.
struct Expected {
    name: String,
    from: String,
}

/// Checks the snapshot or `--local-dir` download at `path` against its own names.
pub fn check_blobs(path: &Path, engine: &Engine) -> Result<Report> {
    let started = Instant::now();
    let snapshot = Snapshot::recognize(path);
    let local = snapshot.is_none() && hf::is_local_dir(path);
    if snapshot.is_none() && !local {
        return Err(Error::input(
            path,
            "is neither a Hugging Face cache snapshot (models--ORG--NAME/snapshots/REV) nor a --local-dir download (with .cache/huggingface/download), so --hf-blobs has no names to check it against",
        ));
    }
    let mut ignore = IgnoreSet::default();
    if local {
        hf::ignore_local_dir_metadata(path, &mut ignore);
    }
    let model = walk::walk(
        path,
        &WalkOptions {
            allow_symlinks: false,
            ignore: &ignore,
            require_utf8: true,
        },
    )?;
    let comparison = Comparison {
        model: &model,
        method: Method::Files,
    };
    let mut report = Report {
        target: path.display().to_string(),
        ..Report::default()
    };
    for problem in &model.problems {
        report
            .subjects
            .push(comparison.problem_subject(problem, false));
    }
    let mut checked = Vec::new();
    let mut commits = Vec::new();
    for file in &model.files {
        let expected = match &snapshot {
            Some(snapshot) => file.blob.as_ref().map(|blob| Expected {
                name: blob.clone(),
                from: format!("its blob {}/blobs/{blob}", snapshot.repo),
            }),
            None => match local_metadata(&model, &file.name) {
                Ok(Some((commit, etag))) => {
                    if !commits.contains(&commit) {
                        commits.push(commit);
                    }
                    Some(Expected {
                        name: etag,
                        from: format!("the etag in {DOWNLOAD_METADATA}/{}.metadata", file.name),
                    })
                }
                Ok(None) => None,
                Err(message) => {
                    report
                        .subjects
                        .push(Subject::new(file.name.clone(), Verdict::Rejected).message(message));
                    continue;
                }
            },
        };
        let Some(expected) = expected else {
            let why = match snapshot {
                Some(_) => {
                    "is not a link to a blob, so its content has no name to be checked against"
                }
                None => {
                    "has no download metadata, so its content has no name to be checked against"
                }
            };
            report
                .subjects
                .push(Subject::new(file.name.clone(), Verdict::Rejected).message(why));
            continue;
        };
        match Named::of(&expected.name) {
            Some(named) => checked.push((file, expected, named)),
            None => report.subjects.push(
                Subject::new(file.name.clone(), Verdict::Rejected).message(format!(
                    "{} is neither a SHA-256 nor a git blob SHA-1, so the content cannot be checked against it",
                    expected.from
                )),
            ),
        }
    }
    let tasks: Vec<Task> = checked
        .iter()
        .map(|(file, _, _)| Task::whole(file.location.clone(), file.identity))
        .collect();
    let git_blob = |task: usize, open: &File, stamp: &Stamp| {
        (checked[task].2 == Named::GitBlob).then(|| git_blob_sha1(open, stamp.len))
    };
    let (results, bytes) = engine.hash_all_inspecting(&tasks, &[Algorithm::Sha256], &git_blob);
    report.bytes_hashed = bytes;
    for ((file, expected, named), result) in checked.iter().zip(results) {
        let actual = match result {
            Ok((digests, inspected)) => match (named, inspected.flatten()) {
                (Named::Sha256, _) => digests[0].hex(),
                (Named::GitBlob, Some(Ok(sha1))) => sha1,
                (Named::GitBlob, found) => {
                    let message = match found {
                        Some(Err(e)) => e.to_string(),
                        _ => "was not read".to_string(),
                    };
                    report.subjects.push(
                        Subject::new(file.name.clone(), Verdict::Unreadable).message(message),
                    );
                    continue;
                }
            },
            Err(error) => {
                report.subjects.push(error.subject(file.name.clone()));
                continue;
            }
        };
        let prefix = named.prefix();
        let mut subject = Subject::new(
            file.name.clone(),
            if actual == expected.name {
                Verdict::Ok
            } else {
                Verdict::Changed
            },
        )
        .expected(format!("{prefix}:{}", expected.name))
        .actual(format!("{prefix}:{actual}"));
        if actual != expected.name {
            subject = subject.message(format!(
                "its content does not match {} (read from {})",
                expected.from,
                file.location.path().display()
            ));
        }
        report.subjects.push(subject);
    }
    match &snapshot {
        Some(snapshot) => {
            report.approval = format!(
                "the blob names of the Hugging Face cache ({} snapshot {})",
                snapshot.repo, snapshot.revision
            );
            check_refs(snapshot, &mut report)?;
        }
        None => {
            report.approval =
                "the etags of a Hugging Face --local-dir download's metadata".to_string();
            missing_local_files(&model, &mut report)?;
            if commits.len() > 1 {
                report.warnings.push(format!(
                    "the files were downloaded from {} different commits: {}",
                    commits.len(),
                    commits.join(", ")
                ));
            }
        }
    }
    report.warnings.push(CANNOT_CATCH.to_string());
    report.duration = started.elapsed();
    Ok(report)
}

/// The git blob SHA-1 of the open file: SHA-1 over `blob LEN\0` and the content.
fn git_blob_sha1(open: &File, len: u64) -> io::Result<String> {
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {len}\0").as_bytes());
    let mut buffer = vec![0u8; 1 << 16];
    let mut offset = 0u64;
    while offset < len {
        let want = buffer.len().min((len - offset) as usize);
        let read = open.read_at(&mut buffer[..want], offset)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "shorter than it was when it was opened",
            ));
        }
        hasher.update(&buffer[..read]);
        offset += read as u64;
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The commit and etag recorded for the file `name` of a `--local-dir` download, read
/// beneath the model's handle without following a link; `None` when there is no metadata.
fn local_metadata(
    model: &Model,
    name: &str,
) -> std::result::Result<Option<(String, String)>, String> {
    let Some(root) = &model.root else {
        return Ok(None);
    };
    let relative = PathBuf::from(format!("{DOWNLOAD_METADATA}/{name}.metadata"));
    let file = match open_file_beneath(root.fd(), &relative) {
        Ok((file, _)) => file,
        Err(crate::hash::ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => {
            return Err(format!(
                "its download metadata {} cannot be read: {}",
                relative.display(),
                e.verdict().1
            ))
        }
    };
    let mut text = String::new();
    io::Read::read_to_string(&mut io::Read::take(file, 4096), &mut text).map_err(|e| {
        format!(
            "its download metadata {} cannot be read: {e}",
            relative.display()
        )
    })?;
    hf::download_metadata(&text).map(Some).ok_or_else(|| {
        format!(
            "its download metadata {} is not huggingface_hub's (commit, etag, timestamp lines)",
            relative.display()
        )
    })
}

/// Files a `--local-dir` download has metadata for but no longer has: `missing`.
fn missing_local_files(model: &Model, report: &mut Report) -> Result<()> {
    let metadata_dir = model.path.join(DOWNLOAD_METADATA);
    let none = IgnoreSet::default();
    let listed = walk::walk(
        &metadata_dir,
        &WalkOptions {
            allow_symlinks: false,
            ignore: &none,
            require_utf8: true,
        },
    )?;
    for file in &listed.files {
        let Some(name) = file.name.strip_suffix(".metadata") else {
            continue;
        };
        if !model.files.iter().any(|f| f.name == name)
            && !model.problems.iter().any(|p| p.name == name)
        {
            report
                .subjects
                .push(
                    Subject::new(name.to_string(), Verdict::Missing).message(format!(
                        "{DOWNLOAD_METADATA}/{name}.metadata records it, but the file is not there"
                    )),
                );
        }
    }
    Ok(())
}

/// Every ref of the snapshot's repository must name a snapshot the cache has.
fn check_refs(snapshot: &Snapshot, report: &mut Report) -> Result<()> {
    let repo = snapshot.cache.join(&snapshot.repo);
    let root = crate::hash::RootDir::open(&repo).map_err(|e| Error::io(&repo, e))?;
    let mut refs = Vec::new();
    list_refs(&repo.join("refs"), Path::new("refs"), &mut refs)
        .map_err(|e| Error::io(repo.join("refs"), e))?;
    refs.sort();
    for relative in refs {
        let name = relative.display().to_string();
        let subject = match hf::read_ref(root.fd(), &relative) {
            Ok(commit) if repo.join("snapshots").join(&commit).is_dir() => {
                Subject::new(name, Verdict::Ok).actual(commit)
            }
            Ok(commit) => Subject::new(name, Verdict::Missing).message(format!(
                "points at {commit}, which has no snapshot in the cache"
            )),
            Err(e) => Subject::new(name, Verdict::Rejected).message(e.to_string()),
        };
        report.subjects.push(subject);
    }
    Ok(())
}

/// The files under `dir` (named `relative` beneath the repository), links included.
fn list_refs(dir: &Path, relative: &Path, refs: &mut Vec<PathBuf>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            list_refs(&entry.path(), &path, refs)?;
        } else {
            refs.push(path);
        }
    }
    Ok(())
}
