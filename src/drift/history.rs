//! The drift history: every run, every target checked, and every subject that drifted —
//! when it was first seen, last seen, and repaired — in SQLite.
//!
//! The store is in WAL mode and every write is one `BEGIN IMMEDIATE` transaction, so runs
//! at once on one history take turns instead of corrupting it, and a run killed mid-way
//! leaves everything it committed readable, its own row marked incomplete (no finish time).

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::report::{Report, Status, Subject, Verdict};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT,
    shard TEXT
);
CREATE TABLE IF NOT EXISTS checks (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    target TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    failed_subjects INTEGER NOT NULL,
    bytes_hashed INTEGER NOT NULL,
    checked_at TEXT NOT NULL,
    error TEXT,
    approval_version TEXT,
    bytes_from_cache INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS checks_by_target ON checks(target, checked_at);
CREATE TABLE IF NOT EXISTS drift (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    subject TEXT NOT NULL,
    verdict TEXT NOT NULL,
    message TEXT,
    first_seen_at TEXT NOT NULL,
    first_seen_run INTEGER NOT NULL,
    last_seen_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_run INTEGER
);
CREATE INDEX IF NOT EXISTS drift_by_target ON drift(target, resolved_at);
";

/// Columns added since the first schema, with their definitions: a history made before
/// gets them when it is opened.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("checks", "approval_version", "TEXT"),
    ("checks", "bytes_from_cache", "INTEGER NOT NULL DEFAULT 0"),
];

/// How long a writer waits for another run to finish its transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

pub struct History {
    connection: Connection,
    path: std::path::PathBuf,
}

/// Bytes counted over the recorded checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByteTotals {
    pub hashed: u64,
    pub from_cache: u64,
}

/// What the history knows of one target.
#[derive(Debug, Serialize)]
pub struct TargetHistory {
    pub target: String,
    pub owner: String,
    pub last_checked_at: Option<String>,
    pub last_status: Option<String>,
    pub last_verified_at: Option<String>,
    /// The registry versions the target's approval was read from (an alias followed), in
    /// the order they were first checked.
    pub approval_versions: Vec<String>,
    /// Bytes the last check hashed, and bytes it took from the hash cache.
    pub last_bytes_hashed: Option<u64>,
    pub last_bytes_from_cache: Option<u64>,
    pub drift: Vec<DriftEntry>,
}

#[derive(Debug, Serialize)]
pub struct DriftEntry {
    pub subject: String,
    pub verdict: String,
    pub message: Option<String>,
    pub first_seen_at: String,
    pub last_seen_at: String,
    /// When a later run found it matching again.
    pub resolved_at: Option<String>,
}

/// A run that never finished (killed, or still going).
#[derive(Debug, Serialize)]
pub struct IncompleteRun {
    pub id: i64,
    pub started_at: String,
}

impl History {
    pub fn open(path: &Path) -> Result<History> {
        let sql = |e| sql_error(path, e);
        let connection = Connection::open(path).map_err(sql)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::input(
                path,
                format!("cannot use write-ahead logging (journal mode is {mode})"),
            ));
        }
        connection
            .execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(sql)?;
        // The log is kept when the connection closes rather than checkpointed and removed:
        // recreating it and checkpointing cost four fsyncs a run, about 10 ms of a cached
        // re-verify. It is checkpointed as it grows (every 1000 pages) and stays consistent;
        // as with synchronous=NORMAL, a power loss may take the last runs' records, never
        // the report files, which are flushed.
        connection
            .set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )
            .map_err(sql)?;
        let mut history = History {
            connection,
            path: path.to_path_buf(),
        };
        history.write(|tx| {
            tx.execute_batch(SCHEMA)?;
            for (table, column, definition) in ADDED_COLUMNS {
                let present: bool = tx.query_row(
                    &format!(
                        "SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"
                    ),
                    params![column],
                    |r| r.get(0),
                )?;
                if !present {
                    tx.execute_batch(&format!(
                        "ALTER TABLE {table} ADD COLUMN {column} {definition}"
                    ))?;
                }
            }
            Ok(())
        })?;
        Ok(history)
    }

    fn error(&self, e: rusqlite::Error) -> Error {
        sql_error(&self.path, e)
    }

    /// Runs `work` in one immediate (write-locked) transaction.
    fn write<T>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let value = work(&tx).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(value)
    }

    /// Records the start of a run; its id ties the checks together.
    pub fn begin_run(&mut self, shard: Option<&str>, at: Timestamp) -> Result<i64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO runs (started_at, shard) VALUES (?1, ?2)",
                params![stamp(at), shard],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Records one target's check and updates its drift: failures not seen before are
    /// opened, open ones seen again are touched, and open ones that now match are resolved.
    /// `hidden` are subjects a waiver hid: still drift, though not failures.
    pub fn record_check(
        &mut self,
        run: i64,
        target: &str,
        owner: &str,
        report: &Report,
        hidden: &[String],
        at: Timestamp,
    ) -> Result<()> {
        let now = stamp(at);
        self.write(|tx| {
            tx.execute(
                "INSERT INTO checks (run_id, target, owner, status, failed_subjects, bytes_hashed, checked_at, error, approval_version, bytes_from_cache)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    run,
                    target,
                    owner,
                    report.status().name(),
                    report.failures().count() as i64,
                    report.bytes_hashed as i64,
                    now,
                    report.error,
                    report.approval_version,
                    report.bytes_from_cache as i64
                ],
            )?;
            if report.error.is_some() {
                // The target could not be checked: what drifted is unknown, so nothing changes.
                return Ok(());
            }
            let open: Vec<(i64, String)> = tx
                .prepare("SELECT id, subject FROM drift WHERE target = ?1 AND resolved_at IS NULL")?
                .query_map(params![target], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            // A failure (or a waived one) opens or keeps a drift entry; a subject that could
            // not be read keeps one open but does not open one.
            let drifting = |s: &&Subject| s.verdict.is_integrity_failure() || hidden.contains(&s.name);
            for subject in report.subjects.iter().filter(drifting) {
                let verdict = if hidden.contains(&subject.name) { "waived" } else { subject.verdict.name() };
                match open.iter().find(|(_, name)| *name == subject.name) {
                    Some((id, _)) => tx.execute(
                        "UPDATE drift SET last_seen_at = ?1, verdict = ?2, message = ?3 WHERE id = ?4",
                        params![now, verdict, subject.message, id],
                    )?,
                    None => tx.execute(
                        "INSERT INTO drift (target, subject, verdict, message, first_seen_at, first_seen_run, last_seen_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)",
                        params![target, subject.name, verdict, subject.message, now, run],
                    )?,
                };
            }
            for (id, name) in &open {
                let now_subject = report.subjects.iter().find(|s| &s.name == name);
                let still_drifting =
                    now_subject.is_some_and(|s| drifting(&s) || s.verdict == Verdict::Unreadable);
                if !still_drifting {
                    tx.execute(
                        "UPDATE drift SET resolved_at = ?1, resolved_run = ?2 WHERE id = ?3",
                        params![now, run, id],
                    )?;
                }
            }
            Ok(())
        })
    }

    /// Marks a run finished: with its status, or `None` when it was stopped (SIGTERM) before
    /// every target was checked.
    pub fn finish_run(&mut self, run: i64, status: Option<Status>, at: Timestamp) -> Result<()> {
        let status = status.map_or("stopped", Status::name);
        self.write(|tx| {
            tx.execute(
                "UPDATE runs SET finished_at = ?1, status = ?2 WHERE id = ?3",
                params![stamp(at), status, run],
            )?;
            Ok(())
        })
    }

    /// Bytes hashed, and bytes taken from the hash cache, by every check recorded for runs
    /// of `shard` (each worker of a sharded fleet counts its own): counters for Prometheus.
    pub fn byte_totals(&self, shard: Option<&str>) -> Result<ByteTotals> {
        self.connection
            .query_row(
                "SELECT COALESCE(SUM(bytes_hashed), 0), COALESCE(SUM(bytes_from_cache), 0) FROM checks \
                 WHERE run_id IN (SELECT id FROM runs WHERE shard IS ?1)",
                params![shard],
                |r| {
                    Ok(ByteTotals {
                        hashed: r.get::<_, i64>(0)? as u64,
                        from_cache: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .map_err(|e| self.error(e))
    }

    /// What the history knows of each target (or of `only`), by name.
    pub fn targets(&self, only: Option<&str>) -> Result<Vec<TargetHistory>> {
        let names: Vec<(String, String)> = self
            .connection
            .prepare(
                // With MAX(), SQLite takes the bare column (owner) from the latest check.
                "SELECT target, owner, MAX(checked_at) FROM checks WHERE ?1 IS NULL OR target = ?1
                 GROUP BY target ORDER BY target",
            )
            .and_then(|mut s| {
                s.query_map(params![only], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(|e| self.error(e))?;
        names
            .into_iter()
            .map(|(target, owner)| self.target(target, owner))
            .collect()
    }

    fn target(&self, target: String, owner: String) -> Result<TargetHistory> {
        let sql = |e| self.error(e);
        let last: Option<(String, String, i64, i64)> = self
            .connection
            .query_row(
                "SELECT checked_at, status, bytes_hashed, bytes_from_cache FROM checks WHERE target = ?1 \
                 ORDER BY checked_at DESC, rowid DESC LIMIT 1",
                params![target],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(sql)?;
        let last_verified_at: Option<String> = self
            .connection
            .query_row(
                "SELECT MAX(checked_at) FROM checks WHERE target = ?1 AND status = 'verified'",
                params![target],
                |r| r.get(0),
            )
            .map_err(sql)?;
        let approval_versions = self
            .connection
            .prepare(
                "SELECT approval_version FROM checks WHERE target = ?1 AND approval_version IS NOT NULL
                 GROUP BY approval_version ORDER BY MIN(checked_at), MIN(rowid)",
            )
            .and_then(|mut s| s.query_map(params![target], |r| r.get(0))?.collect())
            .map_err(sql)?;
        let drift = self
            .connection
            .prepare(
                "SELECT subject, verdict, message, first_seen_at, last_seen_at, resolved_at FROM drift
                 WHERE target = ?1 ORDER BY first_seen_at, subject",
            )
            .and_then(|mut s| {
                s.query_map(params![target], |r| {
                    Ok(DriftEntry {
                        subject: r.get(0)?,
                        verdict: r.get(1)?,
                        message: r.get(2)?,
                        first_seen_at: r.get(3)?,
                        last_seen_at: r.get(4)?,
                        resolved_at: r.get(5)?,
                    })
                })?
                .collect()
            })
            .map_err(sql)?;
        Ok(TargetHistory {
            target,
            owner,
            last_checked_at: last.as_ref().map(|(at, ..)| at.clone()),
            last_status: last.as_ref().map(|(_, status, ..)| status.clone()),
            last_verified_at,
            approval_versions,
            last_bytes_hashed: last.as_ref().map(|l| l.2 as u64),
            last_bytes_from_cache: last.as_ref().map(|l| l.3 as u64),
            drift,
        })
    }

    /// Runs with no finish time: killed mid-way, or still running.
    pub fn incomplete_runs(&self) -> Result<Vec<IncompleteRun>> {
        self.connection
            .prepare("SELECT id, started_at FROM runs WHERE finished_at IS NULL ORDER BY id")
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(IncompleteRun {
                        id: r.get(0)?,
                        started_at: r.get(1)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Subject, Verdict};

    fn report(subjects: Vec<Subject>) -> Report {
        Report {
            subjects,
            ..Report::default()
        }
    }

    #[test]
    fn drift_opens_persists_and_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::open(&dir.path().join("h.sqlite")).unwrap();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let t2: Timestamp = "2026-01-03T00:00:00Z".parse().unwrap();

        let run = history.begin_run(None, t0).unwrap();
        history
            .record_check(
                run,
                "m",
                "o",
                &report(vec![Subject::new("a", Verdict::Changed)]),
                &[],
                t0,
            )
            .unwrap();
        history.finish_run(run, Some(Status::Failed), t0).unwrap();
        let run = history.begin_run(None, t1).unwrap();
        history
            .record_check(
                run,
                "m",
                "o",
                &report(vec![Subject::new("a", Verdict::Changed)]),
                &[],
                t1,
            )
            .unwrap();
        let run = history.begin_run(None, t2).unwrap();
        history
            .record_check(
                run,
                "m",
                "o",
                &report(vec![Subject::new("a", Verdict::Ok)]),
                &[],
                t2,
            )
            .unwrap();
        history.finish_run(run, Some(Status::Verified), t2).unwrap();

        let targets = history.targets(None).unwrap();
        assert_eq!(targets.len(), 1);
        let drift = &targets[0].drift[0];
        assert_eq!(drift.first_seen_at, t0.to_string());
        assert_eq!(drift.last_seen_at, t1.to_string());
        assert_eq!(drift.resolved_at.as_deref(), Some(t2.to_string().as_str()));
        assert_eq!(
            targets[0].last_verified_at.as_deref(),
            Some(t2.to_string().as_str())
        );
        // The second run never finished.
        assert_eq!(history.incomplete_runs().unwrap().len(), 1);
    }

    #[test]
    fn an_older_history_gains_the_approval_version_and_keeps_its_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(&SCHEMA.replace(",\n    approval_version TEXT", ""))
            .unwrap();
        old.execute_batch(
            "INSERT INTO runs (started_at) VALUES ('2026-01-01T00:00:00Z');
             INSERT INTO checks (run_id, target, owner, status, failed_subjects, bytes_hashed, checked_at)
             VALUES (1, 'm', 'o', 'verified', 0, 10, '2026-01-01T00:00:00Z');",
        )
        .unwrap();
        drop(old);
        let mut history = History::open(&path).unwrap();
        let at: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let run = history.begin_run(None, at).unwrap();
        let kept = Report {
            approval_version: Some("models:/m/4".into()),
            ..report(vec![Subject::new("a", Verdict::Ok)])
        };
        history.record_check(run, "m", "o", &kept, &[], at).unwrap();
        let targets = History::open(&path).unwrap().targets(None).unwrap();
        assert_eq!(targets[0].approval_versions, ["models:/m/4"]);
        assert_eq!(
            targets[0].last_checked_at.as_deref(),
            Some(at.to_string().as_str())
        );
        assert_eq!(history.byte_totals(None).unwrap().hashed, 10);
    }

    #[test]
    fn a_history_made_before_the_cache_columns_opens_and_counts_cached_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        // The checks table as the first schema made it, with one check in it.
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, \
             finished_at TEXT, status TEXT, shard TEXT);
             CREATE TABLE checks (run_id INTEGER NOT NULL REFERENCES runs(id), target TEXT NOT NULL, \
             owner TEXT NOT NULL, status TEXT NOT NULL, failed_subjects INTEGER NOT NULL, \
             bytes_hashed INTEGER NOT NULL, checked_at TEXT NOT NULL, error TEXT);
             INSERT INTO runs (started_at, finished_at, status) VALUES ('2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z', 'verified');
             INSERT INTO checks VALUES (1, 'm', 'o', 'verified', 0, 500, '2026-01-01T00:00:01Z', NULL);",
        )
        .unwrap();
        drop(old);

        let mut history = History::open(&path).unwrap();
        let at: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let run = history.begin_run(None, at).unwrap();
        let cached = Report {
            bytes_hashed: 7,
            bytes_from_cache: 493,
            ..report(vec![Subject::new("a", Verdict::Ok)])
        };
        history
            .record_check(run, "m", "o", &cached, &[], at)
            .unwrap();
        assert_eq!(
            history.byte_totals(None).unwrap(),
            ByteTotals {
                hashed: 507,
                from_cache: 493
            }
        );
        let target = &history.targets(None).unwrap()[0];
        assert_eq!(target.last_bytes_hashed, Some(7));
        assert_eq!(target.last_bytes_from_cache, Some(493));
        drop(history);
        // Opening it again adds nothing twice.
        History::open(&path).unwrap();
    }

    #[test]
    fn a_stopped_run_is_finished_and_each_shard_counts_its_own_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::open(&dir.path().join("h.sqlite")).unwrap();
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut hashed = |shard: Option<&str>, bytes: u64| {
            let run = history.begin_run(shard, at).unwrap();
            let report = Report {
                bytes_hashed: bytes,
                ..report(vec![Subject::new("a", Verdict::Ok)])
            };
            history
                .record_check(run, "m", "o", &report, &[], at)
                .unwrap();
            history.finish_run(run, None, at).unwrap();
        };
        hashed(Some("1/2"), 100);
        hashed(Some("2/2"), 20);
        hashed(Some("1/2"), 3);
        hashed(None, 4000);
        assert!(history.incomplete_runs().unwrap().is_empty());
        let hashed = |shard| history.byte_totals(shard).unwrap().hashed;
        assert_eq!(hashed(Some("1/2")), 103);
        assert_eq!(hashed(Some("2/2")), 20);
        assert_eq!(hashed(None), 4000);
    }
}

/// A database error, as an I/O error on the history file.
fn sql_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}

/// A time as the history records it: RFC 3339, UTC, to the second.
fn stamp(at: Timestamp) -> String {
    at.round(jiff::Unit::Second).unwrap_or(at).to_string()
}

/// What `vouch drift history` shows.
#[derive(Debug, Serialize)]
pub struct HistoryView {
    pub targets: Vec<TargetHistory>,
    pub incomplete_runs: Vec<IncompleteRun>,
}

impl HistoryView {
    pub fn to_json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).expect("a history always serializes");
        out.push('\n');
        out
    }

    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for t in &self.targets {
            let _ = writeln!(out, "{} (owner {})", t.target, t.owner);
            let _ = writeln!(
                out,
                "  last checked {}: {}; last verified {}",
                t.last_checked_at.as_deref().unwrap_or("never"),
                t.last_status.as_deref().unwrap_or("-"),
                t.last_verified_at.as_deref().unwrap_or("never")
            );
            if !t.approval_versions.is_empty() {
                let _ = writeln!(
                    out,
                    "  approvals kept with {}",
                    t.approval_versions.join(", ")
                );
            }
            if let (Some(hashed), Some(cached)) = (t.last_bytes_hashed, t.last_bytes_from_cache) {
                let _ = writeln!(
                    out,
                    "  last check hashed {hashed} bytes and took {cached} from the hash cache"
                );
            }
            for d in &t.drift {
                let state = match &d.resolved_at {
                    Some(at) => format!("repaired {at}"),
                    None => format!("still drifting (last seen {})", d.last_seen_at),
                };
                let _ = writeln!(
                    out,
                    "  {:<10} {}  first seen {}, {state}",
                    d.verdict, d.subject, d.first_seen_at
                );
            }
        }
        for run in &self.incomplete_runs {
            let _ = writeln!(
                out,
                "run {} started {} never finished (killed, or still running)",
                run.id, run.started_at
            );
        }
        if self.targets.is_empty() {
            out.push_str("no target has been checked yet\n");
        }
        out
    }
}
