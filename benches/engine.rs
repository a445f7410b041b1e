//! The hashing engine alone: each algorithm on in-memory buffers, the windowed reader on a
//! file in the page cache, and the scheduler over many files.
//!
//! `cargo bench --bench engine`; whole-command comparisons with peer tools are in
//! `cargo xtask bench`.

use std::hint::black_box;
use std::io::Write;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vouch::hash::reader::{hash_range, open_regular};
use vouch::hash::{Algorithm, Engine, Identity, Location, ReaderConfig, Task};

fn random_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn algorithms(c: &mut Criterion) {
    let data = random_bytes(64 << 20);
    let mut group = c.benchmark_group("digest 64 MiB in memory");
    group
        .throughput(Throughput::Bytes(data.len() as u64))
        .sample_size(10);
    for algorithm in Algorithm::ALL {
        group.bench_function(algorithm.name(), |b| {
            b.iter(|| black_box(algorithm.digest(&data)))
        });
    }
    group.bench_function("blake3 (rayon, 2 threads)", |b| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        b.iter(|| {
            pool.install(|| {
                let mut hasher = Algorithm::Blake3.hasher();
                hasher.update_parallel(&data);
                black_box(hasher.finalize())
            })
        })
    });
    group.finish();
}

fn reader(c: &mut Criterion) {
    let len = 512usize << 20;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&random_bytes(len)).unwrap();
    let hash = |algorithm: Algorithm, config: &ReaderConfig| {
        let (handle, stamp) = open_regular(file.path(), false).unwrap();
        black_box(
            hash_range(
                &handle,
                &stamp,
                0,
                len as u64,
                &[algorithm],
                config,
                &|_| {},
            )
            .unwrap(),
        )
    };
    let mut group = c.benchmark_group("reader 512 MiB file, page cache");
    group
        .throughput(Throughput::Bytes(len as u64))
        .sample_size(10);
    for window in [4usize << 20, 16 << 20, 64 << 20] {
        let config = ReaderConfig {
            window,
            small_read_limit: 0,
            ..ReaderConfig::default()
        };
        group.bench_with_input(
            BenchmarkId::new("sha256, window MiB", window >> 20),
            &config,
            |b, config| b.iter(|| hash(Algorithm::Sha256, config)),
        );
    }
    let read_all = ReaderConfig {
        small_read_limit: u64::MAX,
        ..ReaderConfig::default()
    };
    group.bench_function("sha256, read in 64 KiB pieces", |b| {
        b.iter(|| hash(Algorithm::Sha256, &read_all))
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for window in [16usize << 20, 64 << 20, 128 << 20] {
        let config = ReaderConfig {
            parallel_window: window,
            small_read_limit: 0,
            ..ReaderConfig::default()
        };
        group.bench_with_input(
            BenchmarkId::new("blake3 on 2 threads, window MiB", window >> 20),
            &config,
            |b, config| b.iter(|| pool.install(|| hash(Algorithm::Blake3, config))),
        );
    }
    group.finish();
}

fn scheduler(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut tasks = Vec::new();
    for i in 0..2000usize {
        // Mostly small files with a few large ones, as in a model with its tokenizer and configs.
        let len = if i % 500 == 0 { 32 << 20 } else { 16 << 10 };
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, random_bytes(len)).unwrap();
        let identity = Identity::of(&std::fs::metadata(&path).unwrap());
        tasks.push(Task::whole(Location::Given(path), identity));
    }
    let total: u64 = tasks.iter().map(|t| t.end).sum();
    let mut group = c.benchmark_group("scheduler 2000 files, page cache, sha256");
    group.throughput(Throughput::Bytes(total)).sample_size(10);
    for jobs in [1usize, 2] {
        let engine = Engine::new(jobs, ReaderConfig::default()).unwrap();
        group.bench_with_input(BenchmarkId::new("jobs", jobs), &engine, |b, engine| {
            b.iter(|| black_box(engine.hash_all(&tasks, &[Algorithm::Sha256])))
        });
    }
    group.finish();
}

criterion_group!(benches, algorithms, reader, scheduler);
criterion_main!(benches);
