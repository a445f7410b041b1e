//! OpenSSF Model Signing (OMS) serialization: a model as a sorted list of resources (whole
//! files or fixed-size shards of files), each with a digest, and the root digest over them.

use std::cmp::Ordering;
use std::fmt;

use super::paths::{compare_names, IgnoreSet};
use super::walk::{Model, ModelFile};
use crate::hash::{Algorithm, Digest, Task};

/// The shard size model-signing uses by default.
pub const DEFAULT_SHARD_SIZE: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// One resource per file, named by its path.
    Files,
    /// One resource per `shard_size` bytes of each file, named `path:start:end`.
    Shards { shard_size: u64 },
}

/// Settings OMS or model-signing cannot take.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SerializationError {
    #[error("{0} is not an OMS algorithm; model manifests use sha256, blake2b or blake3")]
    NotOms(Algorithm),
    #[error(
        "shards with blake3: BLAKE3 already hashes a file in parallel, and model-signing \
         silently drops sharding for blake3, so such a manifest could not be verified by it; \
         drop the shard size"
    )]
    ShardedBlake3,
    #[error("the shard size must be at least one byte")]
    EmptyShards,
}

/// Why a resource name is not a shard name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardNameError {
    #[error("a shard name must be PATH:START:END")]
    Form,
    #[error("'{0}' is not a byte offset in shard name PATH:START:END")]
    Offset(String),
    #[error("shard {start}..{end} is empty or reversed")]
    Empty { start: u64, end: u64 },
}

/// How a model was turned into resources; recorded in a manifest so it can be redone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serialization {
    pub method: Method,
    pub algorithm: Algorithm,
    pub allow_symlinks: bool,
    pub ignore_paths: IgnoreSet,
}

impl Serialization {
    /// The serialization these settings choose, ignoring model-signing's default paths.
    /// Refuses what OMS or model-signing cannot take.
    pub fn new(
        algorithm: Algorithm,
        shard_size: Option<u64>,
        allow_symlinks: bool,
    ) -> Result<Serialization, SerializationError> {
        if !algorithm.is_oms() {
            return Err(SerializationError::NotOms(algorithm));
        }
        if algorithm == Algorithm::Blake3 && shard_size.is_some() {
            return Err(SerializationError::ShardedBlake3);
        }
        if shard_size == Some(0) {
            return Err(SerializationError::EmptyShards);
        }
        Ok(Serialization {
            method: shard_size.map_or(Method::Files, |shard_size| Method::Shards { shard_size }),
            algorithm,
            allow_symlinks,
            ignore_paths: IgnoreSet::with_defaults(),
        })
    }

    /// The algorithm name written on each resource: `sha256`, or `sha256-sharded-<size>`.
    pub fn resource_algorithm(&self) -> String {
        match self.method {
            Method::Files => self.algorithm.name().to_string(),
            Method::Shards { shard_size } => format!("{}-sharded-{}", self.algorithm, shard_size),
        }
    }

    /// A short description for reports: `files, sha256` or `shards of 1000000000 bytes, sha256`.
    pub fn describe(&self) -> String {
        match self.method {
            Method::Files => format!("files, {}", self.algorithm),
            Method::Shards { shard_size } => {
                format!("shards of {shard_size} bytes, {}", self.algorithm)
            }
        }
    }
}

/// What a resource covers: a whole file, or bytes `[start, end)` of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceKey {
    pub path: String,
    pub range: Option<(u64, u64)>,
}

impl ResourceKey {
    /// Parses a resource name as written under `method`. Shard names split at their last
    /// two colons, so a path containing `:` survives.
    pub fn parse(name: &str, method: Method) -> Result<ResourceKey, ShardNameError> {
        match method {
            Method::Files => Ok(ResourceKey {
                path: name.to_string(),
                range: None,
            }),
            Method::Shards { .. } => {
                let mut parts = name.rsplitn(3, ':');
                let (end, start, path) = match (parts.next(), parts.next(), parts.next()) {
                    (Some(end), Some(start), Some(path)) => (end, start, path),
                    _ => return Err(ShardNameError::Form),
                };
                let number = |s: &str| {
                    s.parse::<u64>()
                        .map_err(|_| ShardNameError::Offset(s.to_string()))
                };
                let (start, end) = (number(start)?, number(end)?);
                if start >= end {
                    return Err(ShardNameError::Empty { start, end });
                }
                Ok(ResourceKey {
                    path: path.to_string(),
                    range: Some((start, end)),
                })
            }
        }
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.range {
            None => f.write_str(&self.path),
            Some((start, end)) => write!(f, "{}:{}:{}", self.path, start, end),
        }
    }
}

impl Ord for ResourceKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_names(&self.path, &other.path).then(self.range.cmp(&other.range))
    }
}

impl PartialOrd for ResourceKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub key: ResourceKey,
    pub digest: Digest,
}

/// A model's resources under one serialization, in canonical order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub model_name: String,
    pub serialization: Serialization,
    pub resources: Vec<Resource>,
}

impl Manifest {
    /// Builds a manifest, putting the resources in canonical order.
    pub fn new(
        model_name: String,
        serialization: Serialization,
        mut resources: Vec<Resource>,
    ) -> Manifest {
        resources.sort_by(|a, b| a.key.cmp(&b.key));
        Manifest {
            model_name,
            serialization,
            resources,
        }
    }

    /// SHA-256 over the concatenated raw digests of the resources, in order: the subject
    /// digest of an OMS statement.
    pub fn root_digest(&self) -> Digest {
        root_digest(self.resources.iter().map(|r| &r.digest))
    }
}

/// SHA-256 over the concatenated raw bytes of `digests`.
pub fn root_digest<'a>(digests: impl Iterator<Item = &'a Digest>) -> Digest {
    let mut hasher = Algorithm::Sha256.hasher();
    for digest in digests {
        hasher.update(&digest.bytes);
    }
    hasher.finalize()
}

/// The byte ranges a file of `len` bytes is split into (none for an empty file).
pub fn shard_ranges(len: u64, shard_size: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..len.div_ceil(shard_size)).map(move |i| (i * shard_size, ((i + 1) * shard_size).min(len)))
}

/// The resources `file` contributes under `method`, each with the task that hashes it.
pub fn plan_file(file: &ModelFile, method: Method) -> Vec<(ResourceKey, Task)> {
    let task = |start, end| Task {
        location: file.location.clone(),
        start,
        end,
        identity: file.identity,
    };
    match method {
        Method::Files => vec![(
            ResourceKey {
                path: file.name.clone(),
                range: None,
            },
            task(0, file.size()),
        )],
        Method::Shards { shard_size } => shard_ranges(file.size(), shard_size)
            .map(|(start, end)| {
                (
                    ResourceKey {
                        path: file.name.clone(),
                        range: Some((start, end)),
                    },
                    task(start, end),
                )
            })
            .collect(),
    }
}

/// Every resource of `model` under `method`, with the index of its file in the model and
/// its hashing task.
pub fn plan(model: &Model, method: Method) -> Vec<(ResourceKey, usize, Task)> {
    model
        .files
        .iter()
        .enumerate()
        .flat_map(|(index, file)| {
            plan_file(file, method)
                .into_iter()
                .map(move |(key, task)| (key, index, task))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_file_exactly() {
        assert_eq!(shard_ranges(0, 4).count(), 0);
        assert_eq!(shard_ranges(4, 4).collect::<Vec<_>>(), [(0, 4)]);
        assert_eq!(
            shard_ranges(9, 4).collect::<Vec<_>>(),
            [(0, 4), (4, 8), (8, 9)]
        );
    }

    #[test]
    fn shard_names_round_trip_and_keep_colons_in_paths() {
        let method = Method::Shards { shard_size: 10 };
        let key = ResourceKey::parse("dir/a:b:0:10", method).unwrap();
        assert_eq!(key.path, "dir/a:b");
        assert_eq!(key.range, Some((0, 10)));
        assert_eq!(key.to_string(), "dir/a:b:0:10");
        assert_eq!(
            ResourceKey::parse("a:10:0", method),
            Err(ShardNameError::Empty { start: 10, end: 0 })
        );
        assert_eq!(
            ResourceKey::parse("a:x:1", method),
            Err(ShardNameError::Offset("x".into()))
        );
        assert_eq!(ResourceKey::parse("a", method), Err(ShardNameError::Form));
    }

    #[test]
    fn keys_sort_by_component_then_offset() {
        let mut keys = [
            ResourceKey {
                path: "a-b".into(),
                range: Some((0, 4)),
            },
            ResourceKey {
                path: "a/b".into(),
                range: Some((4, 6)),
            },
            ResourceKey {
                path: "a/b".into(),
                range: Some((0, 4)),
            },
        ];
        keys.sort();
        let names: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        assert_eq!(names, ["a/b:0:4", "a/b:4:6", "a-b:0:4"]);
    }
}
