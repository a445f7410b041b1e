//! Quiet I/O: `--io direct` (O_DIRECT in aligned windows) gives the digests `sha256sum`
//! gives, on sizes that end off a block and on a range that starts off one; a drift run with
//! it leaves the model's pages out of the page cache and a hot file's pages in (counted by
//! `fincore` from util-linux), where a buffered run brings the model in; a file system that
//! refuses O_DIRECT (procfs) is read through the cache and said so; `max_rate` paces.
//!
//! Files live under Cargo's target directory, on a disk file system: the page cache is
//! what is measured, and a tmpfs is all page cache.

mod common;

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::*;

fn disk_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Sizes around the 4 KiB alignment and one past several 8 MiB windows.
const SIZES: [usize; 6] = [0, 1, 4095, 4096, 4097, (19 << 20) + 3];

#[test]
fn direct_reads_give_sha256sums_digests_on_unaligned_sizes() {
    let test = "direct_reads_give_sha256sums_digests_on_unaligned_sizes";
    let Some(sha256sum) = require_tool(test, "sha256sum") else {
        return;
    };
    let dir = disk_dir();
    let mut paths = Vec::new();
    for (i, size) in SIZES.iter().enumerate() {
        let path = dir.path().join(format!("f{size}"));
        std::fs::write(&path, pseudo_random(*size, i as u64 + 1)).unwrap();
        paths.push(path);
    }
    let expected = run(std::process::Command::new(sha256sum).args(&paths))
        .expect(0)
        .stdout();
    for io in ["direct", "buffered"] {
        let ran = vouch_run(
            ["hash".as_ref(), "--io".as_ref(), io.as_ref()]
                .into_iter()
                .chain(paths.iter().map(|p| p.as_os_str())),
        )
        .expect(0);
        assert_eq!(ran.stdout(), expected, "--io {io}");
        assert!(ran.stderr.is_empty(), "{}", ran.stderr);
    }
}

/// A model approved as shards whose boundaries fall off the 4 KiB alignment, checked by a
/// drift run with `--io direct`, verifies; a flipped byte in a shard that starts off a
/// boundary fails.
#[test]
fn a_direct_drift_run_checks_unaligned_shards() {
    let dir = disk_dir();
    let model = dir.path().join("model");
    write_tree(
        &model,
        &[
            ("a.bin", &pseudo_random((5 << 20) + 3, 7)),
            ("b.bin", &pseudo_random(4097, 8)),
            ("empty.bin", b""),
        ],
    );
    let manifest = dir.path().join("model.oms.json");
    vouch_run([
        "manifest".as_ref(),
        model.as_os_str(),
        "--shard-size".as_ref(),
        "1000003".as_ref(),
        "-o".as_ref(),
        manifest.as_os_str(),
    ])
    .expect(0);
    let config = drift_config(dir.path(), "");
    let checked = drift_run(&config, &["--io", "direct"]).expect(0);
    assert!(checked.stderr.is_empty(), "{}", checked.stderr);
    flip_byte(&model.join("a.bin"), 3_000_010);
    let run = drift_run(&config, &["--io", "direct", "--format", "json"])
        .expect(1)
        .json();
    let failed: Vec<&str> = run["targets"][0]["report"]["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] != "ok")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["a.bin:3000009:4000012"], "{run}");
}

#[test]
fn verify_reads_direct_when_asked_and_still_catches_a_change() {
    let dir = disk_dir();
    let model = dir.path().join("model");
    write_tree(
        &model,
        &[
            ("w.bin", &pseudo_random((9 << 20) + 1, 12)),
            ("c.json", b"{}"),
        ],
    );
    let manifest = dir.path().join("model.oms.json");
    vouch_run([
        "manifest".as_ref(),
        model.as_os_str(),
        "-o".as_ref(),
        manifest.as_os_str(),
    ])
    .expect(0);
    let verify = || {
        vouch_run([
            "verify".as_ref(),
            model.as_os_str(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
            "--io".as_ref(),
            "direct".as_ref(),
        ])
    };
    verify().expect(0);
    flip_byte(&model.join("w.bin"), 9 << 20);
    verify().expect(1);
}

fn drift_config(dir: &Path, extra: &str) -> PathBuf {
    let config = dir.join("vouch.toml");
    std::fs::write(
        &config,
        format!(
            "{extra}report_dir = \"reports\"\n\n[[target]]\nname = \"m\"\nowner = \"ops@example.com\"\n\
             path = \"model\"\nmanifest = \"model.oms.json\"\n"
        ),
    )
    .unwrap();
    config
}

fn drift_run(config: &Path, args: &[&str]) -> Ran {
    let mut command = vouch();
    command
        .args(["drift", "run"])
        .args(args)
        .arg("-c")
        .arg(config);
    run(&mut command)
}

/// Resident bytes of `path`, as `fincore` counts them.
fn resident(fincore: &Path, path: &Path) -> u64 {
    let ran = run(std::process::Command::new(fincore)
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path))
    .expect(0);
    ran.stdout()
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("fincore said {:?}: {e}", ran.stdout()))
}

/// Drops `path`'s clean pages from the page cache (as any reader may, no privilege needed).
fn evict(path: &Path) {
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    let done = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(done, 0);
}

#[test]
fn a_direct_drift_run_leaves_the_page_cache_as_it_found_it() {
    let test = "a_direct_drift_run_leaves_the_page_cache_as_it_found_it";
    let Some(fincore) = require_tool(test, "fincore") else {
        return;
    };
    let dir = disk_dir();
    let model = dir.path().join("model");
    let weights = model.join("weights.bin");
    write_tree(
        &model,
        &[
            ("weights.bin", &pseudo_random(24 << 20, 3)),
            ("small.json", &pseudo_random(10_000, 4)),
        ],
    );
    let manifest = dir.path().join("model.oms.json");
    vouch_run([
        "manifest".as_ref(),
        model.as_os_str(),
        "-o".as_ref(),
        manifest.as_os_str(),
    ])
    .expect(0);
    // What a server keeps hot: read whole, so every page is resident.
    let hot = dir.path().join("hot.bin");
    std::fs::write(&hot, pseudo_random(8 << 20, 5)).unwrap();
    std::fs::read(&hot).unwrap();
    let hot_before = resident(&fincore, &hot);
    assert_eq!(hot_before, 8 << 20, "the hot file is resident");

    // No hash cache: the second run must read the model to show what a buffered read does.
    let config = drift_config(dir.path(), "io = \"direct\"\ncache = false\n");
    for file in ["weights.bin", "small.json"] {
        evict(&model.join(file));
    }
    assert_eq!(resident(&fincore, &weights), 0, "eviction worked");
    drift_run(&config, &[]).expect(0);
    assert_eq!(
        resident(&fincore, &weights),
        0,
        "a direct run brings no page of the model in"
    );
    assert_eq!(resident(&fincore, &model.join("small.json")), 0);
    assert_eq!(
        resident(&fincore, &hot),
        hot_before,
        "the hot file kept its pages"
    );

    // The same run buffered brings the model into the page cache.
    drift_run(&config, &["--io", "buffered"]).expect(0);
    assert!(
        resident(&fincore, &weights) >= 16 << 20,
        "a buffered run caches the model"
    );
}

#[test]
fn a_file_system_without_direct_io_is_read_through_the_cache_and_said_so() {
    let ran = vouch_run(["hash", "--io", "direct", "/proc/version"]).expect(0);
    assert!(
        ran.stderr.contains("/proc/version")
            && ran.stderr.contains("refused O_DIRECT")
            && ran.stderr.contains("read through the page cache"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_target_with_a_refused_direct_read_says_so_in_its_report() {
    let dir = disk_dir();
    let pin = vouch_run(["digest", "/proc/version"]).expect(0).stdout();
    let config = dir.path().join("vouch.toml");
    std::fs::write(
        &config,
        format!(
            "io = \"direct\"\nreport_dir = \"reports\"\n\n[[target]]\nname = \"p\"\nowner = \"ops@example.com\"\n\
             path = \"/proc/version\"\ndigest = \"{}\"\n",
            pin.trim()
        ),
    )
    .unwrap();
    let run = drift_run(&config, &["--format", "json"]).json();
    let warnings = run["targets"][0]["report"]["warnings"].to_string();
    assert!(
        warnings.contains("refused O_DIRECT") && warnings.contains("/proc/version"),
        "{run}"
    );
}

/// `max_rate` paces reading: 6 MiB at 2 MiB/s takes at least 3 s (a lower bound only, so
/// a slow machine cannot fail it; the throttle's accuracy is in the bench).
#[test]
fn max_rate_paces_the_reading() {
    let dir = disk_dir();
    let model = dir.path().join("model");
    write_tree(&model, &[("w.bin", &pseudo_random(6 << 20, 11))]);
    let manifest = dir.path().join("model.oms.json");
    vouch_run([
        "manifest".as_ref(),
        model.as_os_str(),
        "-o".as_ref(),
        manifest.as_os_str(),
    ])
    .expect(0);
    let config = drift_config(dir.path(), &format!("max_rate = {}\n", 2 << 20));
    let started = Instant::now();
    drift_run(&config, &[]).expect(0);
    let took = started.elapsed().as_secs_f64();
    assert!(took >= 2.9, "6 MiB at 2 MiB/s took only {took:.2} s");
}

#[test]
fn bad_quiet_io_settings_are_exit_2_naming_the_line() {
    let dir = disk_dir();
    std::fs::create_dir(dir.path().join("model")).unwrap();
    for (setting, message) in [
        ("io = \"fast\"\n", "unknown variant `fast`"),
        ("max_rate = 0\n", "max_rate = 0 must be at least 1"),
    ] {
        let config = drift_config(dir.path(), setting);
        let ran = drift_run(&config, &[]).expect(2);
        assert!(
            ran.stderr.contains(message) && ran.stderr.contains("line 1"),
            "{setting}: {}",
            ran.stderr
        );
    }
}
