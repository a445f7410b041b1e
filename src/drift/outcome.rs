//! What a drift run found: each target's report, and the run's own facts. The renderers
//! (`render`, `metrics`) and publishing read it; it knows none of them.

use std::time::Duration;

use jiff::Timestamp;

use crate::report::{Report, Status};

/// A stable share of the targets: `index` of `count` (1-based), for N workers that cover a
/// fleet together. A target's share depends only on its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Why a text is not a share `I/N`; each names the text.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("{0}: expected I/N, e.g. 2/5")]
    NotAShare(String),
    #[error("{0}: I is not a number")]
    IndexNotANumber(String),
    #[error("{0}: N is not a number")]
    CountNotANumber(String),
    #[error("{0}: I must be between 1 and N")]
    OutOfRange(String),
}

impl Shard {
    /// Parses `I/N` with 1 ≤ I ≤ N.
    pub fn parse(text: &str) -> Result<Shard, ShardError> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| ShardError::NotAShare(text.to_string()))?;
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| ShardError::IndexNotANumber(text.to_string()))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| ShardError::CountNotANumber(text.to_string()))?;
        if count == 0 || index == 0 || index > count {
            return Err(ShardError::OutOfRange(text.to_string()));
        }
        Ok(Shard { index, count })
    }

    pub fn takes(&self, target: &str) -> bool {
        // FNV-1a: stable across runs, machines and versions.
        let hash = target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        hash % self.count as u64 == (self.index - 1) as u64
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One target's outcome in a run.
#[derive(Clone, Debug)]
pub struct TargetResult {
    pub name: String,
    pub owner: String,
    pub location: String,
    pub report: Report,
    /// Subjects a waiver hid.
    pub hidden: Vec<String>,
}

/// A whole run.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub run_id: i64,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub duration: Duration,
    pub shard: Option<Shard>,
    pub targets: Vec<TargetResult>,
    /// Set when a stop was asked for before every target was checked.
    pub stopped: bool,
}

impl RunReport {
    /// Failed if any target failed, else error if any could not be checked, else verified.
    pub fn status(&self) -> Status {
        let statuses: Vec<Status> = self.targets.iter().map(|t| t.report.status()).collect();
        if statuses.contains(&Status::Failed) {
            Status::Failed
        } else if statuses.contains(&Status::Error) {
            Status::Error
        } else {
            Status::Verified
        }
    }

    pub fn exit_status(&self) -> u8 {
        self.status().exit_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_targets() {
        let names: Vec<String> = (0..200).map(|i| format!("target-{i}")).collect();
        for count in 1..=7 {
            let mut seen = vec![0; names.len()];
            for index in 1..=count {
                let shard = Shard::parse(&format!("{index}/{count}")).unwrap();
                for (i, name) in names.iter().enumerate() {
                    seen[i] += usize::from(shard.takes(name));
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "N={count}");
        }
    }

    #[test]
    fn a_bad_share_says_what_is_wrong_with_it() {
        for (bad, message) in [
            ("0/3", "0/3: I must be between 1 and N"),
            ("4/3", "4/3: I must be between 1 and N"),
            ("1/0", "1/0: I must be between 1 and N"),
            ("x/2", "x/2: I is not a number"),
            ("2/y", "2/y: N is not a number"),
            ("3", "3: expected I/N, e.g. 2/5"),
        ] {
            assert_eq!(Shard::parse(bad).unwrap_err().to_string(), message);
        }
    }
}
