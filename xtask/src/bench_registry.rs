//! The registry part of `cargo xtask bench` (issue 15): one raw layer (1 GiB, or
//! `VOUCH_BENCH_REGISTRY_MIB` MiB) in a loopback docker-registry, read by `vouch oci verify`,
//! by a plain `curl` GET of the blob to /dev/null and by `skopeo copy` to a fresh layout;
//! then vouch and curl again through a relay paced to a 10 Gbit/s link; all interleaved in
//! one run. `cargo xtask bench --only registry` runs this part alone.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bench_quiet::Row;
use super::bench_wire;

const MIB: u64 = 1 << 20;
/// The link of the last two rows: 10 Gbit/s, a common link between a cluster and its registry.
const WIRE_BYTES_PER_SECOND: u32 = 1_250_000_000;
/// Rows of the table, in the order of `argvs`.
const VOUCH: usize = 0;
const CURL: usize = 1;
const DIGEST: usize = 3;
const WIRE_VOUCH: usize = 4;
const WIRE_CURL: usize = 5;
/// The digest of `{}`, the OCI empty descriptor's content.
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

pub struct RegistryBench<'a> {
    pub vouch: &'a str,
    pub data: &'a Path,
    pub runs: usize,
}

/// The registry process, killed when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One run of a command: its wall time, peak RSS (KiB) and CPU time (user and system).
struct Timed {
    wall: Duration,
    rss_kib: u64,
    cpu: Duration,
}

/// Runs `argv`, which must succeed.
fn timed(argv: &[String]) -> Result<Timed, String> {
    let started = Instant::now();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        return Err(format!("wait4 failed for {}", argv[0]));
    }
    let wall = started.elapsed();
    let exit = std::process::ExitStatus::from_raw(status);
    if !exit.success() {
        return Err(format!("{argv:?} failed ({exit})"));
    }
    let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Timed {
        wall,
        rss_kib: usage.ru_maxrss as u64,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
    })
}

/// The CPU time (user and system) process `pid` has used so far, from /proc.
fn cpu_of(pid: u32) -> Result<Duration, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // The fields after the command name (which may hold spaces) start with the state;
    // utime and stime are the 14th and 15th fields of the whole line.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or("malformed /proc stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| "malformed /proc stat".to_string())
    };
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(Duration::from_secs_f64(
        (ticks(11)? + ticks(12)?) as f64 / per_second,
    ))
}

/// The CPU time (user and system) of this process's own threads so far.
fn own_cpu() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn output(command: &mut Command) -> Result<String, String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl RegistryBench<'_> {
    /// Measures everything, writing its section into `out`.
    pub fn section(&self, out: &mut String) -> Result<Vec<Row>, String> {
        let mib: u64 = match std::env::var("VOUCH_BENCH_REGISTRY_MIB") {
            Ok(n) => n
                .parse()
                .map_err(|_| "VOUCH_BENCH_REGISTRY_MIB takes a number of MiB")?,
            Err(_) => 1024,
        };
        let size = mib * MIB;
        let dir = self.data.join("registry");
        let _ = fs::remove_dir_all(&dir);
        let model = dir.join("model");
        fs::create_dir_all(&model).map_err(|e| format!("{}: {e}", model.display()))?;
        let weights = model.join("model.bin");
        let mut file = fs::File::create(&weights).map_err(|e| e.to_string())?;
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut chunk = vec![0u8; MIB as usize];
        for _ in 0..mib {
            for word in chunk.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            file.write_all(&chunk).map_err(|e| e.to_string())?;
        }
        drop(file);
        let approved = dir.join("approved.json");
        output(
            Command::new(self.vouch)
                .arg("manifest")
                .arg(&model)
                .arg("-o")
                .arg(&approved),
        )?;
        let sha256 = output(Command::new("sha256sum").arg(&weights))?;
        let digest = format!("sha256:{}", sha256.split_whitespace().next().unwrap_or(""));

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let served = Served(
            Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("docker-registry: {e}"))?,
        );
        let base = format!("http://127.0.0.1:{port}/v2/bench/model");
        let started = Instant::now();
        while output(Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{port}/v2/")]))
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(20) {
                return Err("docker-registry did not answer within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let empty = dir.join("empty.json");
        fs::write(&empty, b"{}").map_err(|e| e.to_string())?;
        for (path, digest) in [(&empty, EMPTY_DIGEST), (&weights, digest.as_str())] {
            let headers = output(Command::new("curl").args([
                "-sf",
                "-D",
                "-",
                "-o",
                "/dev/null",
                "-X",
                "POST",
                &format!("{base}/blobs/uploads/"),
            ]))?;
            let location = headers
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Location: ")
                        .or(l.strip_prefix("location: "))
                })
                .ok_or("the registry gave no upload location")?
                .trim();
            let location = if location.starts_with('/') {
                format!("http://127.0.0.1:{port}{location}")
            } else {
                location.to_string()
            };
            let join = if location.contains('?') { '&' } else { '?' };
            output(
                Command::new("curl")
                    .args([
                        "-sf",
                        "-X",
                        "PUT",
                        "-H",
                        "Content-Type: application/octet-stream",
                        "-T",
                    ])
                    .arg(path)
                    .arg(format!("{location}{join}digest={digest}")),
            )?;
        }
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.vouch.bench.v1","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{EMPTY_DIGEST}","size":2}},"layers":[{{"mediaType":"application/octet-stream","digest":"{digest}","size":{size},"annotations":{{"org.opencontainers.image.title":"model.bin"}}}}]}}"#
        );
        output(Command::new("curl").args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            &manifest,
            &format!("{base}/manifests/v1"),
        ]))?;

        let reference = format!("docker://127.0.0.1:{port}/bench/model:v1");
        let wire_port = bench_wire::start(port, WIRE_BYTES_PER_SECOND)?;
        let wired = format!("docker://127.0.0.1:{wire_port}/bench/model:v1");
        let layout = dir.join("layout");
        let argvs: Vec<(&str, Vec<String>)> = vec![
            (
                "vouch oci verify",
                vec![
                    self.vouch.into(),
                    "oci".into(),
                    "verify".into(),
                    reference.clone(),
                    "--manifest".into(),
                    approved.display().to_string(),
                ],
            ),
            (
                "curl GET of the blob to /dev/null",
                vec![
                    "curl".into(),
                    "-sf".into(),
                    "-o".into(),
                    "/dev/null".into(),
                    format!("{base}/blobs/{digest}"),
                ],
            ),
            (
                "skopeo copy to a fresh layout",
                vec![
                    "skopeo".into(),
                    "copy".into(),
                    "--src-tls-verify=false".into(),
                    reference.clone(),
                    format!("oci:{}:v1", layout.display()),
                ],
            ),
            (
                "SHA-256 of the same bytes from the page cache (vouch digest of the file)",
                vec![
                    self.vouch.into(),
                    "digest".into(),
                    weights.display().to_string(),
                ],
            ),
            (
                "vouch oci verify over a 10 Gbit/s link",
                vec![
                    self.vouch.into(),
                    "oci".into(),
                    "verify".into(),
                    wired,
                    "--manifest".into(),
                    approved.display().to_string(),
                ],
            ),
            (
                "curl GET of the blob over the same link",
                vec![
                    "curl".into(),
                    "-sf".into(),
                    "-o".into(),
                    "/dev/null".into(),
                    format!("http://127.0.0.1:{wire_port}/v2/bench/model/blobs/{digest}"),
                ],
            ),
        ];
        // Each row's throughput is compared with curl's over the same path.
        let baseline = [CURL, CURL, CURL, CURL, WIRE_CURL, WIRE_CURL];
        // One warm-up round, then `runs` rounds, each starting one command further on.
        let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); argvs.len()];
        let mut client_cpu: Vec<Vec<Duration>> = vec![Vec::new(); argvs.len()];
        let mut server_cpu: Vec<Vec<Duration>> = vec![Vec::new(); argvs.len()];
        let mut peak_rss_kib = 0;
        for round in 0..=self.runs {
            for k in 0..argvs.len() {
                let i = (round + k) % argvs.len();
                let _ = fs::remove_dir_all(&layout);
                // skopeo's written layout is flushed before the next command, not during it.
                let _ = Command::new("sync").status();
                // The relay runs on this process's threads: its CPU is this process's own.
                let before = cpu_of(served.0.id())? + own_cpu();
                let run = timed(&argvs[i].1)?;
                let registry = (cpu_of(served.0.id())? + own_cpu()).saturating_sub(before);
                if round > 0 {
                    walls[i].push(run.wall);
                    client_cpu[i].push(run.cpu);
                    server_cpu[i].push(registry);
                    if i == VOUCH || i == WIRE_VOUCH {
                        peak_rss_kib = peak_rss_kib.max(run.rss_kib);
                    }
                }
            }
        }
        let median = |times: &mut Vec<Duration>| {
            times.sort();
            times[times.len() / 2]
        };
        let gib = size as f64 / (1024 * MIB) as f64;
        let per_gib = |times: &mut Vec<Vec<Duration>>| -> Vec<f64> {
            times
                .iter_mut()
                .map(|t| median(t).as_secs_f64() / gib)
                .collect()
        };
        let client = per_gib(&mut client_cpu);
        let server = per_gib(&mut server_cpu);
        let wall_per_gib = per_gib(&mut walls);
        let rates: Vec<f64> = wall_per_gib.iter().map(|w| 1024.0 / w).collect();
        let _ = writeln!(
            out,
            "\n### A model layer in a registry (issue 15)\n\nOne raw layer of {mib} MiB in a loopback docker-registry (plain HTTP), {} runs each after a warm-up, interleaved; medians. The last two rows reach the registry through a relay that paces what it sends to 10 Gbit/s (1250 MB/s), as a link to a registry on another machine would. Set `VOUCH_BENCH_REGISTRY_MIB` for another size.\n",
            self.runs
        );
        let _ = writeln!(
            out,
            "| command | MiB/s | vs curl on the same path | its CPU s/GiB | the registry's CPU s/GiB | cores busy |"
        );
        let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
        for (i, (label, _)) in argvs.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {label} | {:.0} | {:.2}x | {:.3} | {:.3} | {:.2} |",
                rates[i],
                rates[i] / rates[baseline[i]],
                client[i],
                server[i],
                (client[i] + server[i]) / wall_per_gib[i]
            );
        }
        let _ = writeln!(
            out,
            "\nCPU is the median user + system time per GiB: the command's own (getrusage) and the registry's while it ran (/proc), with the relay's for the last two rows. vouch's own CPU per GiB is {:.2}x that of one SHA-256 pass over the file.",
            client[VOUCH] / client[DIGEST]
        );
        let wire_ratio = rates[WIRE_VOUCH] / rates[WIRE_CURL];
        // On loopback the GET may outrun one SHA-256 pass, which no verifier can.
        let reachable = rates[CURL].min(rates[DIGEST]);
        let loopback_ratio = rates[VOUCH] / reachable;
        let peak_mib = peak_rss_kib as f64 / 1024.0;
        let _ = writeln!(
            out,
            "\nvouch's peak RSS (getrusage of the child, the largest over its runs): {peak_mib:.1} MiB."
        );
        // One stream's SHA-256 is serial: no verifier of this layer is faster than that pass.
        let _ = writeln!(
            out,
            "\nOne SHA-256 pass over the layer, with no network at all, runs at {:.2}x curl's loopback GET on this machine: the most any one-pass verifier can reach. `vouch oci verify` reaches {:.0}% of it on loopback, and {:.2}x curl over the 10 Gbit/s link.",
            rates[DIGEST] / rates[CURL],
            100.0 * rates[VOUCH] / rates[DIGEST],
            wire_ratio
        );
        Ok(vec![
            (
                "registry verify at ≥ 0.9x a plain GET's throughput, over a 10 Gbit/s link".into(),
                format!("{wire_ratio:.2}x ({mib} MiB layer)"),
                wire_ratio >= 0.9,
            ),
            (
                "registry verify on loopback at ≥ 0.9x the slower of a plain GET and one SHA-256 pass"
                    .into(),
                format!(
                    "{loopback_ratio:.2}x (the GET alone: {:.2}x, one SHA-256 pass: {:.2}x the GET)",
                    rates[VOUCH] / rates[CURL],
                    rates[DIGEST] / rates[CURL]
                ),
                loopback_ratio >= 0.9,
            ),
            // A second SHA-256 pass would double it; receiving from the socket adds a little.
            (
                "registry verify at one SHA-256 pass of CPU per byte (< 1.5x the CPU of `vouch digest`)".into(),
                format!("{:.2}x", client[VOUCH] / client[DIGEST]),
                client[VOUCH] / client[DIGEST] < 1.5,
            ),
            (
                "registry verify peak RSS under 64 MiB".into(),
                format!("{peak_mib:.1} MiB"),
                peak_mib < 64.0,
            ),
        ])
    }
}
