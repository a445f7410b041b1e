//! `cargo xtask bench`: whole commands side by side with the peer tools on the same
//! generated inputs, interleaved, in one run; writes BENCHMARKS.md.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// BENCHMARKS.md keeps everything from this line on across runs.
const NOTES_MARKER: &str = "<!-- notes written by hand; cargo xtask bench keeps them -->";

/// How a command's cost is judged against another's.
struct Measured {
    label: String,
    times: Vec<Duration>,
    /// User plus system CPU time of each run.
    cpu_times: Vec<Duration>,
    /// Bytes each run read from the disk rather than the page cache.
    disk_reads: Vec<u64>,
    peak_rss_kib: u64,
}

impl Measured {
    fn median(&self) -> Duration {
        median(&self.times)
    }

    fn median_cpu(&self) -> Duration {
        median(&self.cpu_times)
    }

    fn median_disk_mb(&self) -> f64 {
        median(&self.disk_reads) as f64 / 1e6
    }
}

fn median<T: Ord + Copy>(values: &[T]) -> T {
    let mut values = values.to_vec();
    values.sort();
    values[values.len() / 2]
}

struct Spec {
    label: String,
    argv: Vec<String>,
    /// The file or directory the command reads, read into the page cache before each warm
    /// run: a VM may page out cached pages it finds idle, and a warm run must not pay for it.
    input: Option<String>,
}

fn spec(label: &str, argv: &[&str]) -> Spec {
    Spec {
        label: label.to_string(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        input: None,
    }
}

fn with_input(specs: Vec<Spec>, input: &str) -> Vec<Spec> {
    specs
        .into_iter()
        .map(|spec| Spec {
            input: Some(input.to_string()),
            ..spec
        })
        .collect()
}

/// Reads every file under `path` once, so that its pages are in the page cache.
pub(crate) fn read_into_cache(path: &Path) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))? {
            read_into_cache(&entry.map_err(|e| e.to_string())?.path())?;
        }
        return Ok(());
    }
    let mut file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buffer = vec![0; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
}

pub struct Bench {
    root: PathBuf,
    data: PathBuf,
    vouch: String,
    model_signing: String,
    python: String,
    runs: usize,
    cold_ok: bool,
    out: String,
}

pub fn run(args: &[String], root: &Path, venv: &Path) -> Result<(), String> {
    let runs = match args.iter().position(|a| a == "--runs") {
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .ok_or("--runs takes a number")?,
        None => 7,
    };
    // `--only quiet --dev` measures the dev build, for a quick look without a release build.
    let dev = args.iter().any(|a| a == "--dev");
    let mut build = Command::new("cargo");
    build
        .current_dir(root)
        .args(["build", "--package", "vouch-cli"]);
    if !dev {
        build.arg("--release");
    }
    super::run(&mut build)?;
    let profile = if dev { "debug" } else { "release" };
    let mut bench = Bench {
        root: root.to_path_buf(),
        data: root.join("target/bench-data"),
        vouch: root
            .join("target")
            .join(profile)
            .join("vouch")
            .display()
            .to_string(),
        model_signing: venv.join("bin/model_signing").display().to_string(),
        python: venv.join("bin/python").display().to_string(),
        runs,
        cold_ok: can_drop_caches(),
        out: String::new(),
    };
    fs::create_dir_all(&bench.data)
        .map_err(|e| format!("cannot create {}: {e}", bench.data.display()))?;
    let only = args
        .windows(2)
        .find(|w| w[0] == "--only")
        .map(|w| w[1].as_str());
    if only == Some("registry") {
        let mut section = String::new();
        for (target, measured, ok) in bench.registry().section(&mut section)? {
            let _ = writeln!(
                section,
                "\n- {target}: {measured} ({})",
                if ok { "met" } else { "missed" }
            );
        }
        println!("{section}");
        return Ok(());
    }
    if only == Some("quiet") {
        let mut section = String::new();
        let rows = bench.quiet().section(&mut section)?;
        let _ = writeln!(
            section,
            "\nMade by `cargo xtask bench --only quiet{}` ({} build of vouch).",
            if dev { " --dev" } else { "" },
            profile
        );
        for (target, measured, ok) in rows {
            let _ = writeln!(
                section,
                "\n- {target}: {measured} ({})",
                if ok { "met" } else { "missed" }
            );
        }
        println!("{section}");
        return Ok(());
    }
    if only == Some("cache") {
        // Only the hash cache's section, printed rather than written into BENCHMARKS.md.
        let (sample, off) = bench.cache()?;
        let _ = writeln!(
            bench.out,
            "\nwarm cache, default sample: {:.2}% of the full run; sample off: {:.2}%",
            sample * 100.0,
            off * 100.0
        );
        print!("{}", bench.out);
        return Ok(());
    }
    bench.generate()?;
    bench.report()?;
    let path = root.join("BENCHMARKS.md");
    // Analysis written by hand below the marker survives a new run.
    if let Ok(previous) = fs::read_to_string(&path) {
        if let Some(at) = previous.find(NOTES_MARKER) {
            bench.out.push('\n');
            bench.out.push_str(&previous[at..]);
        }
    }
    fs::write(&path, &bench.out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

/// Dropping the page cache needs root and a writable /proc/sys/vm/drop_caches.
fn can_drop_caches() -> bool {
    fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .is_ok()
}

fn drop_caches() {
    let _ = Command::new("sync").status();
    if let Ok(mut f) = fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
    {
        let _ = f.write_all(b"3\n");
    }
}

/// Deterministic random bytes (xorshift), fast enough to write gigabytes.
pub(crate) fn write_random(path: &Path, len: u64, seed: u64) -> Result<(), String> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut file = fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buffer = vec![0u8; 8 << 20];
    let mut left = len;
    while left > 0 {
        for word in buffer.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buffer.len() as u64) as usize;
        file.write_all(&buffer[..n])
            .map_err(|e| format!("{}: {e}", path.display()))?;
        left -= n as u64;
    }
    Ok(())
}

/// A directory of `count` files of `size` bytes, made once and reused.
fn files(dir: &Path, count: usize, size: u64, per_dir: usize) -> Result<Vec<PathBuf>, String> {
    let stamp = dir.join(".complete");
    let paths: Vec<PathBuf> = (0..count)
        .map(|i| {
            if per_dir >= count {
                dir.join(format!("model-{:05}-of-{count:05}.bin", i + 1))
            } else {
                dir.join(format!("d{:03}/f{:03}.bin", i / per_dir, i % per_dir))
            }
        })
        .collect();
    if !stamp.exists() {
        eprintln!(
            "xtask: generating {} ({count} x {} bytes)",
            dir.display(),
            size
        );
        let _ = fs::remove_dir_all(dir);
        for (i, path) in paths.iter().enumerate() {
            fs::create_dir_all(path.parent().unwrap()).map_err(|e| e.to_string())?;
            write_random(path, size, (i as u64 + 1) * (size + 7))?;
        }
        fs::write(&stamp, b"").map_err(|e| e.to_string())?;
    }
    Ok(paths)
}

impl Bench {
    fn registry(&self) -> super::bench_registry::RegistryBench<'_> {
        super::bench_registry::RegistryBench {
            vouch: &self.vouch,
            data: &self.data,
            runs: self.runs,
        }
    }

    fn quiet(&self) -> super::bench_quiet::Quiet<'_> {
        super::bench_quiet::Quiet {
            vouch: &self.vouch,
            data: &self.data,
            runs: self.runs,
        }
    }

    fn input(&self, name: &str) -> PathBuf {
        self.data.join(name)
    }

    fn generate(&self) -> Result<(), String> {
        files(&self.input("a-4x1GiB"), 4, GIB, usize::MAX)?;
        files(&self.input("b-1x4GiB"), 1, 4 * GIB, usize::MAX)?;
        files(&self.input("c-20000x16KiB"), 20_000, 16 << 10, 100)?;
        files(&self.input("d-256x16MiB"), 256, 16 * MIB, usize::MAX)?;
        for (name, size) in [
            ("scale-4x256MiB", 256 * MIB),
            ("scale-4x512MiB", 512 * MIB),
            ("scale-4x2GiB", 2 * GIB),
        ] {
            files(&self.input(name), 4, size, usize::MAX)?;
        }
        let three = self.input("three-files");
        if !three.join("approved.json").exists() {
            fs::create_dir_all(&three).map_err(|e| e.to_string())?;
            fs::write(three.join("config.json"), b"{\"model_type\": \"bench\"}\n")
                .map_err(|e| e.to_string())?;
            write_random(&three.join("tokenizer.json"), 400_000, 3)?;
            write_random(&three.join("model.safetensors"), 2_000_000, 4)?;
            let out = Command::new(&self.vouch)
                .args([
                    "manifest".as_ref(),
                    three.as_os_str(),
                    "-o".as_ref(),
                    three.join("approved.json").as_os_str(),
                ])
                .status()
                .map_err(|e| e.to_string())?;
            if !out.success() {
                return Err("cannot write the three-file manifest".into());
            }
        }
        let keys = self.input("keys");
        if !keys.join("key.pem").exists() {
            fs::create_dir_all(&keys).map_err(|e| e.to_string())?;
            let script = self.root.join("tests/peers/model_signing_peer.py");
            super::run(
                Command::new(&self.python)
                    .arg(script)
                    .arg("keygen")
                    .arg(&keys),
            )?;
        }
        Ok(())
    }

    /// Runs every spec `runs` times, interleaved, after one warm-up each. Each round starts
    /// one spec further on, so that no command always follows the same one (a long run before
    /// it gives the VM time to page out what it will read).
    fn measure(&self, specs: &[Spec], cold: bool) -> Result<Vec<Measured>, String> {
        let mut results: Vec<Measured> = specs
            .iter()
            .map(|s| Measured {
                label: s.label.clone(),
                times: Vec::new(),
                cpu_times: Vec::new(),
                disk_reads: Vec::new(),
                peak_rss_kib: 0,
            })
            .collect();
        let rounds = if cold { self.runs.min(3) } else { self.runs };
        if !cold {
            for spec in specs {
                timed(spec)?;
            }
        }
        for round in 0..rounds {
            for index in (0..specs.len()).map(|i| (i + round) % specs.len()) {
                let (spec, result) = (&specs[index], &mut results[index]);
                if cold {
                    drop_caches();
                } else if let Some(input) = &spec.input {
                    read_into_cache(Path::new(input))?;
                }
                let run = timed(spec)?;
                result.times.push(run.wall);
                result.cpu_times.push(run.cpu);
                result.disk_reads.push(run.disk_read_bytes);
                result.peak_rss_kib = result.peak_rss_kib.max(run.peak_rss_kib);
            }
        }
        Ok(results)
    }

    fn table(
        &mut self,
        title: &str,
        bytes: u64,
        results: &[Measured],
        baseline: &[(usize, usize)],
    ) {
        let _ = writeln!(self.out, "\n### {title}\n");
        let _ = writeln!(
            self.out,
            "| command | median | GB/s | CPU | read from disk | peak RSS |"
        );
        let _ = writeln!(self.out, "| --- | ---: | ---: | ---: | ---: | ---: |");
        for r in results {
            let seconds = r.median().as_secs_f64();
            let _ = writeln!(
                self.out,
                "| {} | {:.3} s | {:.2} | {:.2} s | {:.0} MB | {} MiB |",
                r.label,
                seconds,
                bytes as f64 / seconds / 1e9,
                r.median_cpu().as_secs_f64(),
                r.median_disk_mb(),
                r.peak_rss_kib / 1024
            );
        }
        for &(ours, theirs) in baseline {
            let ratio =
                results[theirs].median().as_secs_f64() / results[ours].median().as_secs_f64();
            let _ = writeln!(
                self.out,
                "\n{} is **{ratio:.2}x** as fast as {}.",
                results[ours].label, results[theirs].label
            );
        }
    }

    fn paths(&self, dir: &str) -> Vec<String> {
        let mut found = Vec::new();
        collect(&self.input(dir), &mut found);
        found.sort();
        found
    }

    /// The commands each model-directory case compares, every one reading the input warm:
    /// vouch and model_signing signing the directory, vouch hash and sha256sum hashing it.
    fn model_dir_specs(&self, name: &str) -> Vec<Spec> {
        let dir = self.input(name).display().to_string();
        let key = self.input("keys/key.pem").display().to_string();
        let temp = std::env::temp_dir();
        let sig = temp.join("vouch-bench.sig").display().to_string();
        let ms_sig = temp.join("model-signing-bench.sig").display().to_string();
        let files = self.paths(name);
        let mut sha256sum = vec!["sha256sum"];
        sha256sum.extend(files.iter().map(String::as_str));
        let vouch = self.vouch.as_str();
        let model_signing = self.model_signing.as_str();
        let sign = [
            vouch,
            "sign",
            &dir,
            "--key",
            &key,
            "-o",
            &sig,
            "--progress",
            "never",
        ];
        let ms_sign = [
            model_signing,
            "sign",
            "key",
            "--private_key",
            &key,
            "--signature",
            &ms_sig,
            &dir,
        ];
        let specs = vec![
            spec("vouch sign (sha256, files)", &sign),
            spec("model_signing sign key", &ms_sign),
            spec(
                "vouch hash (sha256)",
                &[vouch, "hash", &dir, "--progress", "never"],
            ),
            spec("sha256sum", &sha256sum),
        ];
        with_input(specs, &dir)
    }

    fn report(&mut self) -> Result<(), String> {
        let vouch = self.vouch.clone();
        let single_core = openssl_sha256_rate()?;
        let limit = 2.0 * single_core;

        let _ = writeln!(self.out, "# Benchmarks\n");
        let _ = writeln!(self.out, "Made by `cargo xtask bench` (release build; {} runs per command after a warm-up, interleaved, each round starting one command further on; medians).\n", self.runs);
        let _ = writeln!(self.out, "{}", machine());
        let _ = writeln!(
            self.out,
            "- SHA-256 limit: `openssl speed -evp sha256` gives {:.2} GB/s on one core, so **{:.2} GB/s** on two.",
            single_core / 1e9,
            limit / 1e9
        );

        // (a) An LLM's shards: 4 x 1 GiB.
        let a = self.input("a-4x1GiB").display().to_string();
        let a_files = self.paths("a-4x1GiB");
        let mut openssl = vec!["openssl", "dgst", "-sha256"];
        openssl.extend(a_files.iter().map(String::as_str));
        let two_openssl = format!(
            "openssl dgst -sha256 {} {} >/dev/null & openssl dgst -sha256 {} {} >/dev/null & wait",
            a_files[0], a_files[1], a_files[2], a_files[3]
        );
        let results = self.measure(
            &self
                .model_dir_specs("a-4x1GiB")
                .into_iter()
                .chain(with_input(
                    vec![
                        spec("openssl dgst -sha256", &openssl),
                        spec(
                            "openssl dgst -sha256, two processes at once",
                            &["sh", "-c", &two_openssl],
                        ),
                    ],
                    &a,
                ))
                .collect::<Vec<_>>(),
            false,
        )?;
        self.table(
            "(a) 4 files of 1 GiB, sha256, warm cache",
            4 * GIB,
            &results,
            &[(0, 1), (2, 3), (2, 4), (2, 5)],
        );
        let fraction = 4.0 * GIB as f64 / results[0].median().as_secs_f64() / limit;
        let page_cache = 4.0 * GIB as f64 / results[5].median().as_secs_f64() / limit;
        let _ = writeln!(
            self.out,
            "\nvouch sign reaches **{:.0}%** of the two-core SHA-256 limit; openssl itself, two \
             processes reading these files from the page cache, reaches {:.0}%.",
            fraction * 100.0,
            page_cache * 100.0
        );
        let hash = &results[2];
        let per_core = 4.0 * GIB as f64 / hash.median_cpu().as_secs_f64();
        let _ = writeln!(
            self.out,
            "\nWhat binds: vouch hash spends {:.2} s of CPU on the 4 GiB, {:.2} GB/s per busy core \
             ({:.0}% of `openssl speed`'s one-core rate), and keeps the two cores {:.0}% busy over \
             its wall time.",
            hash.median_cpu().as_secs_f64(),
            per_core / 1e9,
            per_core / (limit / 2.0) * 100.0,
            hash.median_cpu().as_secs_f64() / 2.0 / hash.median().as_secs_f64() * 100.0
        );
        let a_sign = (
            results[1].median().as_secs_f64() / results[0].median().as_secs_f64(),
            fraction,
            results[0].peak_rss_kib,
        );

        // (b) One 4 GiB file.
        let b = self.paths("b-1x4GiB").remove(0);
        let shards = [
            vouch.as_str(),
            "digest",
            &b,
            "--shard-size",
            "1000000000",
            "--progress",
            "never",
        ];
        let results = self.measure(
            &with_input(
                vec![
                    spec(
                        "vouch hash (sha256, whole file)",
                        &[&vouch, "hash", &b, "--progress", "never"],
                    ),
                    spec("openssl dgst -sha256", &["openssl", "dgst", "-sha256", &b]),
                    spec("sha256sum", &["sha256sum", &b]),
                    spec("vouch digest --shard-size 1000000000", &shards),
                    spec(
                        "vouch hash --algo blake3",
                        &[
                            &vouch,
                            "hash",
                            "--algo",
                            "blake3",
                            &b,
                            "--progress",
                            "never",
                        ],
                    ),
                    spec("b3sum", &["b3sum", &b]),
                ],
                &b,
            ),
            false,
        )?;
        self.table(
            "(b) one 4 GiB file, warm cache",
            4 * GIB,
            &results,
            &[(0, 1), (0, 2), (3, 0), (4, 5)],
        );
        let b_ratios = (
            results[1].median().as_secs_f64() / results[0].median().as_secs_f64(),
            results[0].median().as_secs_f64() / results[3].median().as_secs_f64(),
            results[5].median().as_secs_f64() / results[4].median().as_secs_f64(),
            results
                .iter()
                .take(1)
                .chain(results.iter().skip(3).take(2))
                .map(|r| r.peak_rss_kib)
                .max()
                .unwrap_or(0),
        );

        // (c) Many small files.
        let results = self.measure(&self.model_dir_specs("c-20000x16KiB"), false)?;
        self.table(
            "(c) 20,000 files of 16 KiB, warm cache",
            20_000 * (16 << 10),
            &results,
            &[(0, 1), (2, 3)],
        );
        let c_ratio = results[1].median().as_secs_f64() / results[0].median().as_secs_f64();

        // (d) 256 files of 16 MiB.
        let results = self.measure(&self.model_dir_specs("d-256x16MiB"), false)?;
        self.table(
            "(d) 256 files of 16 MiB, warm cache",
            256 * 16 * MIB,
            &results,
            &[(0, 1), (2, 3)],
        );

        // Scaling from 1 to 8 GiB.
        let scale: Vec<(u64, String)> = vec![
            (GIB, self.input("scale-4x256MiB").display().to_string()),
            (2 * GIB, self.input("scale-4x512MiB").display().to_string()),
            (4 * GIB, a.clone()),
            (8 * GIB, self.input("scale-4x2GiB").display().to_string()),
        ];
        let specs: Vec<Spec> = scale
            .iter()
            .map(|(bytes, dir)| Spec {
                input: Some(dir.clone()),
                ..spec(
                    &format!("vouch digest, {} GiB", bytes / GIB),
                    &[&vouch, "digest", dir, "--progress", "never"],
                )
            })
            .collect();
        let results = self.measure(&specs, false)?;
        let _ = writeln!(
            self.out,
            "\n### Scaling: (a) with 4 files of 256 MiB to 2 GiB, warm cache\n"
        );
        let _ = writeln!(
            self.out,
            "| input | median | seconds per GiB | CPU seconds per GiB | read from disk | peak RSS |"
        );
        let _ = writeln!(self.out, "| --- | ---: | ---: | ---: | ---: | ---: |");
        let per_gib = |cost: &dyn Fn(&Measured) -> Duration| -> Vec<f64> {
            scale
                .iter()
                .zip(&results)
                .map(|((bytes, _), r)| cost(r).as_secs_f64() / (*bytes as f64 / GIB as f64))
                .collect()
        };
        let wall_per_gib = per_gib(&|r| r.median());
        let cpu_per_gib = per_gib(&|r| r.median_cpu());
        for (((r, wall), cpu), (bytes, _)) in results
            .iter()
            .zip(&wall_per_gib)
            .zip(&cpu_per_gib)
            .zip(&scale)
        {
            let _ = writeln!(
                self.out,
                "| {} GiB | {:.3} s | {wall:.3} | {cpu:.3} | {:.0} MB | {} MiB |",
                bytes / GIB,
                r.median().as_secs_f64(),
                r.median_disk_mb(),
                r.peak_rss_kib / 1024
            );
        }
        let spread_of = |values: &[f64]| {
            values.iter().cloned().fold(f64::MIN, f64::max)
                / values.iter().cloned().fold(f64::MAX, f64::min)
                - 1.0
        };
        let spread = spread_of(&wall_per_gib);
        let _ = writeln!(
            self.out,
            "\nWall time per GiB varies by **{:.1}%** from 1 to 8 GiB; CPU time per GiB by {:.1}%.",
            spread * 100.0,
            spread_of(&cpu_per_gib) * 100.0
        );

        // Start to exit on a small model.
        let three = self.input("three-files").display().to_string();
        let manifest = self
            .input("three-files/approved.json")
            .display()
            .to_string();
        let mut latency = self.measure(
            &[spec(
                "vouch verify, three-file model",
                &[&vouch, "verify", &three, "--manifest", &manifest],
            )],
            false,
        )?;
        for _ in 0..3 {
            let more = self.measure(
                &[spec(
                    "vouch verify, three-file model",
                    &[&vouch, "verify", &three, "--manifest", &manifest],
                )],
                false,
            )?;
            latency[0].times.extend(more[0].times.iter().copied());
        }
        let latency_ms = latency[0].median().as_secs_f64() * 1e3;
        let _ = writeln!(
            self.out,
            "\n### Latency\n\n`vouch verify` of a three-file model (2.4 MB) against its manifest: median **{latency_ms:.1} ms** start to exit over {} runs.",
            latency[0].times.len()
        );

        // Cold cache, against what the disk gives in the same rounds: two `dd iflag=direct`
        // streams over the same four files.
        let cold = if self.cold_ok {
            let files = self.paths("a-4x1GiB");
            let dd = |f: &str| format!("dd if={f} of=/dev/null bs=16M iflag=direct status=none");
            let streams = format!(
                "{} && {} & {} && {} & wait",
                dd(&files[0]),
                dd(&files[1]),
                dd(&files[2]),
                dd(&files[3])
            );
            let results = self.measure(
                &[
                    spec(
                        "disk: two dd iflag=direct streams, (a)",
                        &["sh", "-c", &streams],
                    ),
                    spec(
                        "vouch digest (a), cold",
                        &[&vouch, "digest", &a, "--progress", "never"],
                    ),
                    spec("vouch digest --shard-size 1000000000 (b), cold", &shards),
                ],
                true,
            )?;
            self.table(
                "Cold cache (page cache dropped before each run)",
                4 * GIB,
                &results,
                &[],
            );
            let ratio = results[0].median().as_secs_f64() / results[1].median().as_secs_f64();
            let _ = writeln!(self.out, "\nvouch reads (a) cold at **{:.0}%** of the disk's parallel read rate measured in the same rounds.", ratio * 100.0);
            Some(ratio)
        } else {
            let _ = writeln!(self.out, "\n### Cold cache\n\nNot measured: dropping the page cache needs root (/proc/sys/vm/drop_caches).");
            None
        };

        let mut section = String::new();
        let quiet_rows = self.quiet().section(&mut section)?;
        let registry_rows = self.registry().section(&mut section)?;
        self.out.push_str(&section);
        let (cache_sample, cache_off) = self.cache()?;

        let check = |ok: bool| if ok { "met" } else { "**missed**" };
        let _ = writeln!(self.out, "\n## Targets\n");
        let _ = writeln!(self.out, "| target | measured | |");
        let _ = writeln!(self.out, "| --- | --- | --- |");
        let mut row = |target: &str, measured: String, ok: bool| {
            let _ = writeln!(self.out, "| {target} | {measured} | {} |", check(ok));
        };
        row(
            "(a) ≥ 1.3x model_signing",
            format!("{:.2}x", a_sign.0),
            a_sign.0 >= 1.3,
        );
        row(
            "(a) ≥ 90% of the 2-core SHA-256 limit",
            format!("{:.0}%", a_sign.1 * 100.0),
            a_sign.1 >= 0.9,
        );
        row(
            "(b) sha256 ≥ 0.95x openssl dgst",
            format!("{:.2}x", b_ratios.0),
            b_ratios.0 >= 0.95,
        );
        row(
            "(b) shards ≥ 1.8x whole-file",
            format!("{:.2}x", b_ratios.1),
            b_ratios.1 >= 1.8,
        );
        row(
            "(b) blake3 ≥ b3sum",
            format!("{:.2}x", b_ratios.2),
            b_ratios.2 >= 1.0,
        );
        row(
            "(c) ≥ 5x model_signing",
            format!("{c_ratio:.2}x"),
            c_ratio >= 5.0,
        );
        if let Some(cold) = cold {
            row(
                "cold cache within 15% of the disk",
                format!("{:.0}%", cold * 100.0),
                cold >= 0.85,
            );
        }
        row(
            "peak RSS ≤ 256 MiB on (a)",
            format!("{} MiB", a_sign.2 / 1024),
            a_sign.2 / 1024 <= 256,
        );
        row(
            "peak RSS ≤ 256 MiB on (b)",
            format!("{} MiB", b_ratios.3 / 1024),
            b_ratios.3 / 1024 <= 256,
        );
        row(
            "three-file verify < 10 ms",
            format!("{latency_ms:.1} ms"),
            latency_ms < 10.0,
        );
        row(
            "linear from 1 to 8 GiB (within 10%)",
            format!("{:.1}%", spread * 100.0),
            spread <= 0.10,
        );
        for (target, measured, ok) in quiet_rows.into_iter().chain(registry_rows) {
            row(&target, measured, ok);
        }
        row(
            "unchanged model, warm hash cache, default sample ≤ 3% of the full run",
            format!("{:.2}%", cache_sample * 100.0),
            cache_sample <= 0.03,
        );
        row(
            "unchanged model, warm hash cache, sample off ≤ 0.5% of the full run",
            format!("{:.2}%", cache_off * 100.0),
            cache_off <= 0.005,
        );
        Ok(())
    }

    /// Re-verifies of an unchanged model by `drift run`: without the cache, with a warm one
    /// and the default sample, and with the sample off. The model is `$VOUCH_BENCH_CACHE_MIB`
    /// MiB (default 8192) in 128 files, so one file is under the 1% budget. Returns the two
    /// cached runs' times as fractions of the full run's.
    fn cache(&mut self) -> Result<(f64, f64), String> {
        let mib: u64 = match std::env::var("VOUCH_BENCH_CACHE_MIB") {
            Ok(text) => text
                .parse()
                .map_err(|_| format!("VOUCH_BENCH_CACHE_MIB={text} is not a number"))?,
            Err(_) => 8192,
        };
        let name = format!("cache-{mib}MiB");
        let dir = self.input(&name);
        files(&dir.join("model"), 128, mib * MIB / 128, usize::MAX)?;
        let manifest = dir.join("approved.json");
        if !manifest.exists() {
            super::run(Command::new(&self.vouch).args([
                "manifest".as_ref(),
                dir.join("model").as_os_str(),
                "-o".as_ref(),
                manifest.as_os_str(),
            ]))?;
        }
        let configs = [
            ("full", "cache = false"),
            ("sample", "cache = \"sample/cache.json\""),
            ("off", "cache = \"off/cache.json\"\nrehash_budget = \"off\""),
        ];
        let mut specs = Vec::new();
        for (label, settings) in configs {
            let config = dir.join(format!("{label}.toml"));
            let text = format!(
                "{settings}\nhistory = \"{label}/history.sqlite\"\nreport_dir = \"{label}/reports\"\n\n\
                 [[target]]\nname = \"model\"\nowner = \"bench\"\npath = \"model\"\nmanifest = \"approved.json\"\n"
            );
            fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
            let config = config.display().to_string();
            let argv = [self.vouch.as_str(), "drift", "run", "-c", &config];
            // Two runs warm the cache: the first is a full one, the second takes from it.
            for _ in 0..2 {
                timed(&spec(label, &argv))?;
            }
            specs.push(spec(
                match label {
                    "full" => "drift run, no cache (every byte read)",
                    "sample" => "drift run, warm cache, default sample (1%)",
                    _ => "drift run, warm cache, rehash_budget = \"off\"",
                },
                &argv,
            ));
        }
        let results = self.measure(
            &with_input(specs, &dir.join("model").display().to_string()),
            false,
        )?;
        self.table(
            &format!("Hash cache: re-verify of an unchanged {mib} MiB model (128 files), warm page cache"),
            mib * MIB,
            &results,
            &[],
        );
        let full = results[0].median().as_secs_f64();
        let _ = writeln!(
            self.out,
            "\nThe GB/s column counts the model's bytes, read or not. A sample re-reads whole \
             files: at least one a run, so a model of few large files re-reads a larger share."
        );
        Ok((
            results[1].median().as_secs_f64() / full,
            results[2].median().as_secs_f64() / full,
        ))
    }
}

fn collect(dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if !entry.file_name().to_string_lossy().starts_with('.') {
            out.push(path.display().to_string());
        }
    }
}

/// What one run of a command cost.
struct Run {
    wall: Duration,
    cpu: Duration,
    disk_read_bytes: u64,
    peak_rss_kib: u64,
}

/// Runs a command to completion and measures it.
fn timed(spec: &Spec) -> Result<Run, String> {
    let started = Instant::now();
    let child = Command::new(&spec.argv[0])
        .args(&spec.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", spec.argv[0]))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        return Err(format!("wait4 failed for {}", spec.label));
    }
    let elapsed = started.elapsed();
    let exit = std::process::ExitStatus::from_raw(status);
    if !exit.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr {
            use std::io::Read;
            let _ = pipe.read_to_string(&mut stderr);
        }
        return Err(format!("{} failed ({exit}): {stderr}", spec.label));
    }
    let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Run {
        wall: elapsed,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        // Block input operations are counted in 512-byte units.
        disk_read_bytes: usage.ru_inblock as u64 * 512,
        peak_rss_kib: usage.ru_maxrss as u64,
    })
}

/// One core's SHA-256 rate from `openssl speed -evp sha256` (16 KiB blocks), bytes/s.
fn openssl_sha256_rate() -> Result<f64, String> {
    let output = Command::new("openssl")
        .args([
            "speed", "-evp", "sha256", "-seconds", "3", "-bytes", "16384",
        ])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("openssl speed: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("sha256"))
        .ok_or("no sha256 line from openssl speed")?;
    let kilo = line
        .split_whitespace()
        .last()
        .and_then(|v| v.trim_end_matches('k').parse::<f64>().ok())
        .ok_or("unreadable openssl speed output")?;
    Ok(kilo * 1000.0)
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let flags = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kernel = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "- Machine: {cpu}, {cores} cores{}{}, {:.0} GiB RAM, Linux {kernel}; commit {commit}.",
        if flags.contains(" sha_ni") {
            ", SHA-NI"
        } else {
            ""
        },
        if flags.contains(" avx512f") {
            ", AVX-512"
        } else {
            ""
        },
        memory as f64 / (1 << 20) as f64
    )
}
