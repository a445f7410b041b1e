//! The change-event and quiet-I/O part of `cargo xtask bench` (issue 18): change-to-alert
//! latency of `drift watch --on-change`, `--io direct` throughput against `dd iflag=direct`,
//! and what a drift run does to the page cache with and without `--io direct`.
//! `cargo xtask bench --only quiet` runs this part alone and prints its section.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A row of the targets table: the target, what was measured, whether it was met.
pub type Row = (String, String, bool);

const MIB: u64 = 1 << 20;

pub struct Quiet<'a> {
    pub vouch: &'a str,
    pub data: &'a Path,
    pub runs: usize,
}

impl Quiet<'_> {
    /// Measures everything, writing its section into `out`.
    pub fn section(&self, out: &mut String) -> Result<Vec<Row>, String> {
        let _ = writeln!(out, "\n### Change events and quiet I/O (issue 18)\n");
        let mut rows = Vec::new();
        rows.push(self.latency(out)?);
        rows.push(self.throughput(out)?);
        rows.extend(self.residency(out)?);
        Ok(rows)
    }

    fn dir(&self, name: &str) -> Result<PathBuf, String> {
        let dir = self.data.join(name);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    }

    fn vouch(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new(self.vouch)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("vouch: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "vouch {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// A model directory of `files`, its manifest and a vouch.toml (with `extra` on top).
    fn model(&self, name: &str, files: &[(&str, u64)], extra: &str) -> Result<PathBuf, String> {
        let dir = self.dir(name)?;
        let model = dir.join("model");
        fs::create_dir_all(&model).map_err(|e| e.to_string())?;
        for (i, (file, size)) in files.iter().enumerate() {
            let path = model.join(file);
            let fresh = fs::metadata(&path)
                .map(|m| m.len() != *size)
                .unwrap_or(true);
            if fresh {
                super::bench::write_random(&path, *size, 40 + i as u64)?;
            }
        }
        let manifest = dir.join("model.oms.json");
        let (model_text, manifest_text) =
            (model.display().to_string(), manifest.display().to_string());
        self.vouch(&[
            "manifest",
            &model_text,
            "-o",
            &manifest_text,
            "--progress",
            "never",
        ])?;
        let config = dir.join("vouch.toml");
        fs::write(
            &config,
            format!(
                "{extra}report_dir = \"reports\"\n\n[[target]]\nname = \"m\"\nowner = \"bench@example.com\"\n\
                 path = \"model\"\nmanifest = \"model.oms.json\"\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(dir)
    }

    /// Flips a byte of a model file with a watcher running, 20 times (each flip undone
    /// before the next), and times each flip until the watcher logs the target failed.
    fn latency(&self, out: &mut String) -> Result<Row, String> {
        let dir = self.model(
            "events",
            &[("model.safetensors", 64 * MIB), ("config.json", 1000)],
            "",
        )?;
        let mut child = Command::new(self.vouch)
            .args(["drift", "watch", "--on-change", "--every", "1h", "-c"])
            .arg(dir.join("vouch.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("vouch drift watch: {e}"))?;
        let stderr = BufReader::new(child.stderr.take().expect("piped"));
        let (sender, lines) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let wait_for = |wanted: &dyn Fn(&str) -> bool| -> Result<Instant, String> {
            loop {
                let line = lines
                    .recv_timeout(Duration::from_secs(60))
                    .map_err(|_| "the watcher logged nothing for 60 s".to_string())?;
                if wanted(&line) {
                    return Ok(Instant::now());
                }
            }
        };
        let result = (|| {
            wait_for(&|l| l.contains("\"event\":\"run\""))?;
            let weights = dir.join("model/model.safetensors");
            let mut trials = Vec::new();
            for trial in 0..20u64 {
                let changed = Instant::now();
                flip_byte(&weights, trial * 4099)?;
                let failed = wait_for(&|l| {
                    l.contains("\"event\":\"target\"") && l.contains("\"status\":\"failed\"")
                })?;
                trials.push(failed - changed);
                wait_for(&|l| l.contains("\"event\":\"run\""))?;
                flip_byte(&weights, trial * 4099)?;
                wait_for(&|l| {
                    l.contains("\"event\":\"target\"") && l.contains("\"status\":\"verified\"")
                })?;
                wait_for(&|l| l.contains("\"event\":\"run\""))?;
            }
            Ok::<_, String>(trials)
        })();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        let mut trials = result?;
        trials.sort();
        let median = trials[trials.len() / 2].as_secs_f64();
        let _ = writeln!(
            out,
            "Change-to-alert latency: `vouch drift watch --on-change` over a 64 MiB model; a byte \
             of it flipped, timed until the watcher logs the target failed (the run is published \
             and alerted at the same point); 20 trials, each flip undone before the next.\n\n\
             | median | fastest | slowest |\n| ---: | ---: | ---: |\n| {:.3} s | {:.3} s | {:.3} s |",
            median,
            trials[0].as_secs_f64(),
            trials[trials.len() - 1].as_secs_f64()
        );
        Ok((
            "change-to-alert median < 2 s (20 trials)".into(),
            format!("{median:.3} s"),
            median < 2.0,
        ))
    }

    /// `vouch hash --io direct` (BLAKE3, so that hashing is not what binds) against
    /// `dd iflag=direct` on one 2 GiB file, interleaved.
    fn throughput(&self, out: &mut String) -> Result<Row, String> {
        let dir = self.dir("direct")?;
        let file = dir.join("big.bin");
        let size = 2048 * MIB;
        if fs::metadata(&file).map(|m| m.len()).ok() != Some(size) {
            super::bench::write_random(&file, size, 77)?;
        }
        let path = file.display().to_string();
        let dd = format!("if={path}");
        let commands: [(&str, Vec<&str>); 3] = [
            (
                "dd iflag=direct bs=8M",
                vec![
                    "dd",
                    &dd,
                    "of=/dev/null",
                    "bs=8M",
                    "iflag=direct",
                    "status=none",
                ],
            ),
            (
                "vouch hash --io direct --algo blake3",
                vec![
                    self.vouch,
                    "hash",
                    "--io",
                    "direct",
                    "--algo",
                    "blake3",
                    &path,
                    "--progress",
                    "never",
                ],
            ),
            (
                "vouch hash --io direct (sha256)",
                vec![
                    self.vouch,
                    "hash",
                    "--io",
                    "direct",
                    &path,
                    "--progress",
                    "never",
                ],
            ),
        ];
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); commands.len()];
        for round in 0..self.runs.max(3) {
            for (i, (_, argv)) in commands.iter().enumerate().cycle().skip(round).take(3) {
                let started = Instant::now();
                let status = Command::new(argv[0])
                    .args(&argv[1..])
                    .stdout(Stdio::null())
                    .status()
                    .map_err(|e| format!("{}: {e}", argv[0]))?;
                if !status.success() {
                    return Err(format!("{argv:?} failed"));
                }
                times[i].push(started.elapsed().as_secs_f64());
            }
        }
        let medians: Vec<f64> = times
            .iter_mut()
            .map(|t| {
                t.sort_by(|a, b| a.total_cmp(b));
                t[t.len() / 2]
            })
            .collect();
        let _ = writeln!(
            out,
            "\nDirect reads of one 2 GiB file (not from the page cache: O_DIRECT reads the disk \
             every time), {} rounds interleaved, medians:\n\n| command | median | GB/s |\n| --- | ---: | ---: |",
            self.runs.max(3)
        );
        for ((label, _), median) in commands.iter().zip(&medians) {
            let _ = writeln!(
                out,
                "| {label} | {median:.3} s | {:.2} |",
                size as f64 / median / 1e9
            );
        }
        let ratio = medians[0] / medians[1];
        let _ = writeln!(
            out,
            "\n`vouch hash --io direct` reads at **{:.0}%** of `dd iflag=direct`'s rate.",
            ratio * 100.0
        );
        Ok((
            "--io direct ≥ 90% of dd iflag=direct".into(),
            format!("{:.0}%", ratio * 100.0),
            ratio >= 0.9,
        ))
    }

    /// A hot 512 MiB file read into the page cache, then a drift run over a 1 GiB model with
    /// and without `--io direct`: resident pages of the hot file and of the model, by
    /// `fincore`, before and after.
    fn residency(&self, out: &mut String) -> Result<Vec<Row>, String> {
        let dir = self.model(
            "residency",
            &[("a.bin", 512 * MIB), ("b.bin", 512 * MIB)],
            "",
        )?;
        let hot = dir.join("hot.bin");
        if fs::metadata(&hot).map(|m| m.len()).ok() != Some(512 * MIB) {
            super::bench::write_random(&hot, 512 * MIB, 99)?;
        }
        let model_files = [dir.join("model/a.bin"), dir.join("model/b.bin")];
        let config = dir.join("vouch.toml").display().to_string();
        let _ = writeln!(
            out,
            "\nPage cache around a drift run of a 1 GiB model while a 512 MiB \"hot\" file is \
             resident (resident bytes by `fincore`; the model's pages dropped before each run):\n\n\
             | run | hot file before | hot file after | model after |\n| --- | ---: | ---: | ---: |"
        );
        let mut rows = Vec::new();
        for (label, io) in [("--io direct", "direct"), ("buffered", "buffered")] {
            super::bench::read_into_cache(&hot)?;
            for file in &model_files {
                evict(file)?;
            }
            let before = resident(&hot)?;
            self.vouch(&["drift", "run", "--io", io, "-c", &config])?;
            let after = resident(&hot)?;
            let model: u64 = model_files
                .iter()
                .map(|f| resident(f))
                .sum::<Result<u64, String>>()?;
            let _ = writeln!(
                out,
                "| {label} | {:.0} MiB | {:.0} MiB | {:.0} MiB |",
                before as f64 / MIB as f64,
                after as f64 / MIB as f64,
                model as f64 / MIB as f64
            );
            if io == "direct" {
                rows.push((
                    "--io direct: hot file's resident pages unchanged".into(),
                    format!("{} → {} bytes", before, after),
                    after >= before,
                ));
                rows.push((
                    "--io direct: no page of the model cached".into(),
                    format!("{model} bytes"),
                    model == 0,
                ));
            }
        }
        let _ = writeln!(
            out,
            "\nWith 24 GiB of memory a 1 GiB buffered run evicts nothing: its cost is the model \
             itself now filling the page cache, which under memory pressure is what pushes a \
             server's pages out. A direct run adds nothing to the cache."
        );
        Ok(rows)
    }
}

fn flip_byte(path: &Path, offset: u64) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset)
        .map_err(|e| e.to_string())?;
    byte[0] ^= 1;
    file.write_all_at(&byte, offset).map_err(|e| e.to_string())
}

/// Drops the clean cached pages of `path`.
fn evict(path: &Path) -> Result<(), String> {
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.sync_all().map_err(|e| e.to_string())?;
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    Ok(())
}

/// Resident bytes of `path`, by `fincore`.
fn resident(path: &Path) -> Result<u64, String> {
    let output = Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path)
        .output()
        .map_err(|e| format!("fincore: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("fincore {}: {e}", path.display()))
}
