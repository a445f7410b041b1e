//! Hashes many file ranges at once on a bounded thread pool, largest first.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::algorithm::{Algorithm, Digest};
use super::progress::Progress;
use super::reader::{self, ReadError, ReaderConfig};

/// One unit of hashing work: bytes `[start, end)` of the file at `path`.
#[derive(Clone, Debug)]
pub struct Task {
    pub path: PathBuf,
    pub start: u64,
    pub end: u64,
    /// Follow a symbolic link at `path` (only for links already vetted by the caller).
    pub follow_symlinks: bool,
}

impl Task {
    /// The whole of a file whose size, when it was listed, was `len`.
    pub fn whole(path: PathBuf, len: u64) -> Task {
        Task {
            path,
            start: 0,
            end: len,
            follow_symlinks: false,
        }
    }

    fn len(&self) -> u64 {
        self.end - self.start
    }
}

/// The engine: a thread pool and the reader settings.
pub struct Engine {
    pool: rayon::ThreadPool,
    reader: ReaderConfig,
}

/// How many threads to use when `--jobs` is not given: one per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Engine {
    /// An engine with `jobs` worker threads (at least one).
    pub fn new(jobs: usize, reader: ReaderConfig) -> std::io::Result<Engine> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .thread_name(|i| format!("vouch-hash-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Engine { pool, reader })
    }

    pub fn jobs(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Hashes every task with every algorithm and returns the results in task order,
    /// along with the number of bytes read.
    ///
    /// Workers take tasks largest first from a shared queue, so one huge file starts at
    /// once instead of being left for last; BLAKE3 tasks also split inside a file.
    pub fn hash_all(
        &self,
        tasks: &[Task],
        algorithms: &[Algorithm],
        progress: &dyn Progress,
    ) -> (Vec<Result<Vec<Digest>, ReadError>>, u64) {
        let mut order: Vec<usize> = (0..tasks.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tasks[i].len()));
        progress.begin(tasks.iter().map(Task::len).sum());

        let results: Vec<OnceLock<Result<Vec<Digest>, ReadError>>> =
            (0..tasks.len()).map(|_| OnceLock::new()).collect();
        let next = AtomicUsize::new(0);
        let bytes = AtomicU64::new(0);
        let on_bytes = |n: u64| {
            bytes.fetch_add(n, Ordering::Relaxed);
            progress.advance(n);
        };
        let workers = self.jobs().min(tasks.len());
        self.pool.scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|_| loop {
                    let slot = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&index) = order.get(slot) else { break };
                    let outcome = self.hash_one(&tasks[index], algorithms, &on_bytes);
                    let _ = results[index].set(outcome);
                });
            }
        });
        progress.finish();
        let results = results
            .into_iter()
            .map(|cell| cell.into_inner().expect("every task was taken by a worker"))
            .collect();
        (results, bytes.into_inner())
    }

    fn hash_one(
        &self,
        task: &Task,
        algorithms: &[Algorithm],
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<Digest>, ReadError> {
        let (file, stamp) = reader::open_regular(&task.path, task.follow_symlinks)?;
        reader::hash_range(
            &file,
            &stamp,
            task.start,
            task.end,
            algorithms,
            &self.reader,
            on_bytes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::progress::Silent;

    #[test]
    fn results_come_back_in_task_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut tasks = Vec::new();
        let mut expected = Vec::new();
        for i in 0..40usize {
            let data = vec![i as u8; i * 1000 + (i % 3) * 300_000];
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, &data).unwrap();
            tasks.push(Task::whole(path, data.len() as u64));
            expected.push(Algorithm::Sha256.digest(&data));
        }
        let engine = Engine::new(3, ReaderConfig::default()).unwrap();
        let (results, bytes) = engine.hash_all(&tasks, &[Algorithm::Sha256], &Silent);
        let got: Vec<Digest> = results.into_iter().map(|r| r.unwrap().remove(0)).collect();
        assert_eq!(got, expected);
        assert_eq!(bytes, tasks.iter().map(|t| t.end).sum::<u64>());
    }

    #[test]
    fn a_missing_file_is_an_io_error_for_that_task_only() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(&good, b"x").unwrap();
        let tasks = vec![
            Task::whole(dir.path().join("gone"), 1),
            Task::whole(good, 1),
        ];
        let engine = Engine::new(2, ReaderConfig::default()).unwrap();
        let (results, _) = engine.hash_all(&tasks, &[Algorithm::Sha256], &Silent);
        assert!(matches!(results[0], Err(ReadError::Io(_))));
        assert!(results[1].is_ok());
    }
}
