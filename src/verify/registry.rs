//! A registry's own copy of a model version: its files streamed from the artifact store
//! through the tracking server's proxy into the digests, never written to disk, and compared
//! file by file with the version's approval.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::approval::{resolve, Approval, Locator, Resolution};
use crate::error::{Error, Result};
use crate::hash::{Algorithm, Digest, Hasher};
use crate::model::compare::Expected;
use crate::model::oms::{root_digest, Method, Resource, ResourceKey};
use crate::model::paths::SINGLE_FILE_NAME;
use crate::registry::{Client, Listed, ModelVersion};
use crate::report::{Report, Subject, Verdict};

/// Where `vouch approve --registry` stores approvals, below the artifact root: never part
/// of a model.
const APPROVALS: &str = "vouch-approvals";

/// Verifies the files of the version a registry approval (`Locator::Registry`) names
/// against that approval. Each file is hashed as its chunks arrive, one file at a time.
pub fn check_registry_copy(approval: &Approval) -> Result<Report> {
    let started = Instant::now();
    let locator = match approval {
        Approval::Manifest(Locator::Registry(locator))
        | Approval::Signature {
            bundle: Locator::Registry(locator),
            ..
        } => locator,
        _ => {
            return Err(Error::Usage(
                "without MODEL, only a registry version's own copy can be checked (--registry)"
                    .to_string(),
            ))
        }
    };
    let resolved = match resolve(approval, None)? {
        Resolution::Expected(resolved) => resolved,
        Resolution::Refused(refusal) => return Ok(refusal.report(locator.model.to_string())),
        Resolution::Pinned { .. } => unreachable!("a registry approval is a manifest or signature"),
    };
    let version = resolved
        .version
        .expect("a registry approval names its version");
    let client = Client::connect(locator.tracking_uri.as_deref())?;
    let source = artifacts_of(&version)?;
    let mut report = Report {
        target: format!("{} ({source})", version.uri()),
        approval: resolved.expected.description.clone(),
        approval_version: Some(version.uri()),
        ..Report::default()
    };
    if let Some(signature) = resolved.signature {
        report.subjects.push(signature);
    }
    compare(&client, &source, &resolved.expected, &mut report)?;
    report.duration = started.elapsed();
    Ok(report)
}

/// The artifact location of the version's files: its `source` when the proxy serves it,
/// else its storage location (MLflow 3 records `models:/m-…` as the source of a logged model).
fn artifacts_of(version: &ModelVersion) -> Result<String> {
    [Some(&version.source), version.storage_location.as_ref()]
        .into_iter()
        .flatten()
        .find(|s| s.starts_with("mlflow-artifacts:"))
        .map(|s| s.trim_end_matches('/').to_string())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}: its files are at {:?}, which vouch cannot read through the tracking server's \
                 artifact proxy (mlflow-artifacts:/ locations only); verify a downloaded copy as MODEL",
                version.uri(),
                version.source
            ))
        })
}

/// Streams each file below `source` and compares it with `expected`, one subject per
/// resource; approved files absent from the store are missing, files it holds that the
/// approval does not list are extra.
fn compare(client: &Client, source: &str, expected: &Expected, report: &mut Report) -> Result<()> {
    let ignored = &expected.serialization.ignore_paths;
    let below_root = source
        .strip_prefix("mlflow-artifacts:")
        .unwrap_or(source)
        .trim_start_matches('/')
        .is_empty();
    let listed: Vec<Listed> = client
        .list(source)?
        .into_iter()
        .filter(|file| !ignored.matches(&file.path))
        .filter(|file| {
            let name = file.path.as_str();
            !(below_root && (name == APPROVALS || name.starts_with("vouch-approvals/")))
        })
        .collect();
    let mut approved: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for resource in &expected.resources {
        approved
            .entry(resource.key.path.as_str())
            .or_default()
            .push(resource);
    }
    // A single-file model is approved as `.`: the store's one file is it.
    let single = approved.len() == 1 && approved.contains_key(SINGLE_FILE_NAME);
    let mut found: Vec<Resource> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for Listed { path: name, size } in &listed {
        let key = match single && listed.len() == 1 {
            true => SINGLE_FILE_NAME,
            false => name.as_str(),
        };
        let Some((&path, wanted)) = approved.get_key_value(key) else {
            report.subjects.push(
                Subject::new(name.clone(), Verdict::Extra)
                    .message("in the registry's copy, not in the approval"),
            );
            continue;
        };
        seen.push(path);
        let uri = format!("{source}/{name}");
        let resources = hash_stream(
            client,
            &uri,
            *size,
            path,
            expected,
            &mut report.bytes_hashed,
        )?;
        compare_file(name, wanted, &resources, report);
        found.extend(resources);
    }
    for (path, _) in approved.iter().filter(|(path, _)| !seen.contains(path)) {
        report.subjects.push(
            Subject::new(path.to_string(), Verdict::Missing)
                .message("approved, but not in the registry's copy"),
        );
    }
    if report.subjects.iter().all(|s| s.verdict == Verdict::Ok) {
        found.sort_by(|a, b| a.key.cmp(&b.key));
        report.root_digest = Some(root_digest(found.iter().map(|r| &r.digest)).prefixed());
    }
    Ok(())
}

/// The resources of the file at `uri` (approved as `path`), hashed as its bytes stream in.
fn hash_stream(
    client: &Client,
    uri: &str,
    listed: Option<u64>,
    path: &str,
    expected: &Expected,
    bytes_hashed: &mut u64,
) -> Result<Vec<Resource>> {
    let mut hasher = Streamed::new(
        expected.serialization.algorithm,
        expected.serialization.method,
    );
    *bytes_hashed += client.stream(uri, listed, &mut |chunk| hasher.update(chunk))?;
    Ok(hasher
        .finish()
        .into_iter()
        .map(|(range, digest)| Resource {
            key: ResourceKey {
                path: path.to_string(),
                range,
            },
            digest,
        })
        .collect())
}

/// The digests of one file whose bytes arrive in chunks of any size: the whole file, or
/// each shard as its last byte arrives (as [`crate::model::oms::shard_ranges`] splits it).
struct Streamed {
    algorithm: Algorithm,
    shard_size: Option<u64>,
    hasher: Hasher,
    start: u64,
    offset: u64,
    done: Vec<(Option<(u64, u64)>, Digest)>,
}

impl Streamed {
    fn new(algorithm: Algorithm, method: Method) -> Streamed {
        Streamed {
            algorithm,
            shard_size: match method {
                Method::Files => None,
                Method::Shards { shard_size } => Some(shard_size),
            },
            hasher: algorithm.hasher(),
            start: 0,
            offset: 0,
            done: Vec::new(),
        }
    }

    fn update(&mut self, mut chunk: &[u8]) {
        let Some(shard_size) = self.shard_size else {
            self.hasher.update(chunk);
            return;
        };
        while !chunk.is_empty() {
            let left = self.start + shard_size - self.offset;
            let take = left.min(chunk.len() as u64) as usize;
            self.hasher.update(&chunk[..take]);
            self.offset += take as u64;
            chunk = &chunk[take..];
            if self.offset - self.start == shard_size {
                self.finish_shard();
            }
        }
    }

    fn finish_shard(&mut self) {
        let hasher = std::mem::replace(&mut self.hasher, self.algorithm.hasher());
        self.done
            .push((Some((self.start, self.offset)), hasher.finalize()));
        self.start = self.offset;
    }

    /// The digests: one for the whole file, or one a shard (none for an empty file).
    fn finish(mut self) -> Vec<(Option<(u64, u64)>, Digest)> {
        match self.shard_size {
            None => vec![(None, self.hasher.finalize())],
            Some(_) => {
                if self.offset > self.start {
                    self.finish_shard();
                }
                self.done
            }
        }
    }
}

/// The subjects of one file: each approved resource ok or changed, or the whole file changed
/// when its shards differ (its size changed).
fn compare_file(name: &str, wanted: &[&Resource], found: &[Resource], report: &mut Report) {
    let shown = |key: &ResourceKey| match key.range {
        None => name.to_string(),
        Some((start, end)) => format!("{name}:{start}:{end}"),
    };
    let same_keys = wanted.len() == found.len()
        && wanted
            .iter()
            .all(|w| found.iter().any(|f| f.key.range == w.key.range));
    if !same_keys {
        let size = |ranges: &mut dyn Iterator<Item = Option<(u64, u64)>>| {
            ranges
                .filter_map(|r| r.map(|(_, end)| end))
                .max()
                .unwrap_or(0)
        };
        report.subjects.push(
            Subject::new(name.to_string(), Verdict::Changed).message(format!(
                "its size changed: approved {} bytes, the registry's copy holds {}",
                size(&mut wanted.iter().map(|r| r.key.range)),
                size(&mut found.iter().map(|r| r.key.range))
            )),
        );
        return;
    }
    let mut wanted = wanted.to_vec();
    wanted.sort_by_key(|r| r.key.range);
    for approved in wanted {
        let Some(actual) = found.iter().find(|f| f.key.range == approved.key.range) else {
            continue;
        };
        let verdict = match actual.digest == approved.digest {
            true => Verdict::Ok,
            false => Verdict::Changed,
        };
        let mut subject = Subject::new(shown(&approved.key), verdict)
            .expected(approved.digest.prefixed())
            .actual(actual.digest.prefixed());
        if verdict == Verdict::Changed {
            subject = subject.message("the registry's copy differs from the approved one");
        }
        report.subjects.push(subject);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::oms::shard_ranges;

    /// Chunks of every size give the digests of the whole file, or of each shard as
    /// `shard_ranges` cuts it.
    #[test]
    fn streamed_digests_do_not_depend_on_the_chunks() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for chunk in [1, 7, 999, 1000, 1001, 4096, 20_000] {
            let mut whole = Streamed::new(Algorithm::Sha256, Method::Files);
            bytes.chunks(chunk).for_each(|c| whole.update(c));
            assert_eq!(
                whole.finish(),
                [(None, Algorithm::Sha256.digest(&bytes))],
                "chunks of {chunk}"
            );
            let mut sharded = Streamed::new(Algorithm::Sha256, Method::Shards { shard_size: 1000 });
            bytes[..9_500].chunks(chunk).for_each(|c| sharded.update(c));
            let expected: Vec<_> = shard_ranges(9_500, 1000)
                .map(|(start, end)| {
                    (
                        Some((start, end)),
                        Algorithm::Sha256.digest(&bytes[start as usize..end as usize]),
                    )
                })
                .collect();
            assert_eq!(sharded.finish(), expected, "chunks of {chunk}");
        }
        let empty = Streamed::new(Algorithm::Sha256, Method::Shards { shard_size: 1000 });
        assert!(empty.finish().is_empty());
    }
}
