//! Hashes many file ranges at once on a bounded thread pool, largest first.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::algorithm::{Algorithm, Digest};
use super::progress::Progress;
use super::queue::Queue;
use super::reader::{self, ReadError, ReaderConfig, Stamp};
use super::task::Task;
use super::throttle::Throttle;

/// What a hashing pass may also do with each file while it is open: called once per file
/// (on its task that starts at 0) with the task's index, the open file and its stamp.
pub type Inspect<'a, T> = dyn Fn(usize, &File, &Stamp) -> T + Sync + 'a;

/// A task's digests and what its inspection found (for a task that starts at 0), or why
/// it has none.
pub type Outcome<T> = Result<(Vec<Digest>, Option<T>), ReadError>;

/// The engine: a thread pool, the reader settings and where progress is reported.
pub struct Engine {
    pool: rayon::ThreadPool,
    reader: ReaderConfig,
    progress: Box<dyn Progress>,
    cache: Option<super::cache::Cache>,
    throttle: Option<Arc<Throttle>>,
    /// Files whose file system refused `O_DIRECT`, with its message: read buffered.
    direct_refused: Mutex<Vec<(String, String)>>,
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
        Ok(Engine {
            pool,
            reader,
            progress: Box::new(super::progress::Silent),
            cache: None,
            throttle: None,
            direct_refused: Mutex::new(Vec::new()),
        })
    }

    /// The same engine, reporting its progress to `progress`.
    pub fn with_progress(self, progress: Box<dyn Progress>) -> Engine {
        Engine { progress, ..self }
    }

    /// The same engine, taking digests of unchanged files from `cache`.
    pub fn with_cache(self, cache: super::cache::Cache) -> Engine {
        Engine {
            cache: Some(cache),
            ..self
        }
    }

    /// The same engine, reading no faster than `throttle` allows.
    pub fn with_throttle(self, throttle: Arc<Throttle>) -> Engine {
        Engine {
            throttle: Some(throttle),
            ..self
        }
    }

    /// A sentence for each file read through the page cache although direct I/O was asked
    /// for, because its file system refused `O_DIRECT`.
    pub fn direct_refused(&self) -> Vec<String> {
        let refused = self.direct_refused.lock().expect("refusals lock");
        refused
            .iter()
            .map(|(path, message)| {
                format!(
                    "{path}: the file system refused O_DIRECT ({message}); it was read through \
                     the page cache"
                )
            })
            .collect()
    }

    /// The hash cache, when this engine uses one.
    pub fn cache(&self) -> Option<&super::cache::Cache> {
        self.cache.as_ref()
    }

    /// Where this engine reports progress: for work that streams beside the hash pool.
    pub fn progress(&self) -> &dyn Progress {
        self.progress.as_ref()
    }

    pub fn jobs(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Hashes every task with every algorithm and returns the results in task order,
    /// along with the number of bytes read.
    ///
    /// Workers take tasks largest first from one [`Queue`], so one huge file starts at
    /// once instead of being left for last; BLAKE3 tasks also split inside a file.
    pub fn hash_all(
        &self,
        tasks: &[Task],
        algorithms: &[Algorithm],
    ) -> (Vec<Result<Vec<Digest>, ReadError>>, u64) {
        match &self.cache {
            Some(cache) => cache.hash_all(
                &|some, wanted| self.hash_uncached(some, wanted),
                tasks,
                algorithms,
            ),
            None => self.hash_uncached(tasks, algorithms),
        }
    }

    /// As [`Engine::hash_all`], reading every file whatever the cache holds.
    pub(super) fn hash_uncached(
        &self,
        tasks: &[Task],
        algorithms: &[Algorithm],
    ) -> (Vec<Result<Vec<Digest>, ReadError>>, u64) {
        let (results, bytes) = self.run::<()>(tasks, algorithms, None);
        let digests = results
            .into_iter()
            .map(|result| result.map(|(digests, _)| digests))
            .collect();
        (digests, bytes)
    }

    /// As [`Engine::hash_all`], and `inspect` reads each file from the very handle that was
    /// hashed, before the final check that the file did not change: what it finds is of
    /// the bytes the digests are of. The result of a task that starts at 0 carries it.
    pub fn hash_all_inspecting<T: Send + Sync>(
        &self,
        tasks: &[Task],
        algorithms: &[Algorithm],
        inspect: &Inspect<T>,
    ) -> (Vec<Outcome<T>>, u64) {
        self.run(tasks, algorithms, Some(inspect))
    }

    fn run<T: Send + Sync>(
        &self,
        tasks: &[Task],
        algorithms: &[Algorithm],
        inspect: Option<&Inspect<T>>,
    ) -> (Vec<Outcome<T>>, u64) {
        let progress = self.progress();
        let sizes: Vec<u64> = tasks.iter().map(Task::len).collect();
        progress.begin(sizes.iter().sum());

        let queue = Queue::largest_first(&sizes);
        let no_stop = AtomicBool::new(false);
        let bytes = AtomicU64::new(0);
        let on_bytes = |n: u64| {
            bytes.fetch_add(n, Ordering::Relaxed);
            progress.advance(n);
            if let Some(throttle) = &self.throttle {
                throttle.pace(n);
            }
        };
        let hash =
            |index: usize| self.hash_one(index, &tasks[index], algorithms, &on_bytes, inspect);
        let workers = self.jobs().min(tasks.len());
        // The pool's own threads, not scoped ones: BLAKE3 splits a file across this pool.
        self.pool.scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|_| queue.work(&no_stop, &hash));
            }
        });
        progress.finish();
        let results = queue
            .into_results()
            .into_iter()
            .map(|result| result.expect("every task was taken by a worker"))
            .collect();
        (results, bytes.into_inner())
    }

    /// Opens the task's file, checks it is the file that was listed, hashes the range, and
    /// inspects the open file when asked, checking it did not change meanwhile.
    fn hash_one<T>(
        &self,
        index: usize,
        task: &Task,
        algorithms: &[Algorithm],
        on_bytes: &(dyn Fn(u64) + Sync),
        inspect: Option<&Inspect<T>>,
    ) -> Outcome<T> {
        let (file, stamp) = task.location.open()?;
        task.identity.check(&stamp)?;
        let mut config = self.reader;
        if config.direct {
            if let Err(e) = reader::set_direct(&file, true) {
                config.direct = false;
                let path = task.location.path().display().to_string();
                let mut refused = self.direct_refused.lock().expect("refusals lock");
                if !refused.iter().any(|(p, _)| *p == path) {
                    refused.push((path, e.to_string()));
                }
            }
        }
        let digests = reader::hash_range(
            &file, &stamp, task.start, task.end, algorithms, &config, on_bytes,
        )?;
        let inspected = match inspect {
            Some(inspect) if task.start == 0 => {
                // What inspects the file reads small, unaligned pieces: through the cache.
                if config.direct {
                    reader::set_direct(&file, false)?;
                }
                let inspected = inspect(index, &file, &stamp);
                reader::check_unchanged(&file, &stamp)?;
                Some(inspected)
            }
            _ => None,
        };
        Ok((digests, inspected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::opening::Location;
    use crate::hash::reader::Identity;
    use std::path::PathBuf;

    fn given(path: PathBuf) -> Task {
        let identity = Identity::of(&std::fs::metadata(&path).unwrap());
        Task::whole(Location::Given(path), identity)
    }

    #[test]
    fn results_come_back_in_task_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut tasks = Vec::new();
        let mut expected = Vec::new();
        for i in 0..40usize {
            let data = vec![i as u8; i * 1000 + (i % 3) * 300_000];
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, &data).unwrap();
            tasks.push(given(path));
            expected.push(Algorithm::Sha256.digest(&data));
        }
        let engine = Engine::new(3, ReaderConfig::default()).unwrap();
        let (results, bytes) = engine.hash_all(&tasks, &[Algorithm::Sha256]);
        let got: Vec<Digest> = results.into_iter().map(|r| r.unwrap().remove(0)).collect();
        assert_eq!(got, expected);
        assert_eq!(bytes, tasks.iter().map(|t| t.end).sum::<u64>());
    }

    #[test]
    fn a_missing_file_is_an_io_error_for_that_task_only() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(&good, b"x").unwrap();
        let gone = dir.path().join("gone");
        std::fs::write(&gone, b"y").unwrap();
        let tasks = vec![given(gone.clone()), given(good)];
        std::fs::remove_file(&gone).unwrap();
        let engine = Engine::new(2, ReaderConfig::default()).unwrap();
        let (results, _) = engine.hash_all(&tasks, &[Algorithm::Sha256]);
        assert!(matches!(results[0], Err(ReadError::Io(_))));
        assert!(results[1].is_ok());
    }
}
