//! Every header reader against random, truncated and hostile bytes: never a panic, never an
//! allocation anywhere near a size the file declares, and a clear message naming the problem.
//! A counting allocator records the largest single allocation made while a reader runs.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use common::*;
use proptest::prelude::*;
use vouch::formats::{inspect_open, Problem};

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.with(|l| l.set(l.get().max(layout.size())));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.with(|l| l.set(l.get().max(new_size)));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most any reader may allocate at once for inputs this small: its fixed buffers.
const ALLOCATION_BOUND: usize = 1 << 20;

/// Inspects `bytes` saved under `name`; returns the outcome as text and the largest
/// single allocation made meanwhile.
fn inspect_bytes(dir: &Path, name: &str, bytes: &[u8]) -> (Result<bool, String>, usize) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    LARGEST.with(|l| l.set(0));
    let outcome = match inspect_open(&file, bytes.len() as u64, name) {
        Ok(facts) => Ok(facts.is_some()),
        Err(Problem::Malformed(message)) => Err(message),
        Err(Problem::Io(e)) => panic!("{name}: unexpected I/O error {e}"),
    };
    (outcome, LARGEST.with(Cell::get))
}

const NAMES: [&str; 6] = [
    "m.safetensors",
    "m.gguf",
    "m.onnx",
    "m.pkl",
    "m.pt",
    "m.zip",
];

/// Small real headers of each format, to truncate and corrupt.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let safetensors =
        std::fs::read(project_root().join("testdata/tiny-model/model.safetensors")).unwrap();
    let mut gguf = b"GGUF".to_vec();
    gguf.extend_from_slice(&3u32.to_le_bytes());
    gguf.extend_from_slice(&1u64.to_le_bytes()); // one tensor
    gguf.extend_from_slice(&1u64.to_le_bytes()); // one key
    gguf.extend_from_slice(&20u64.to_le_bytes());
    gguf.extend_from_slice(b"general.architecture");
    gguf.extend_from_slice(&8u32.to_le_bytes());
    gguf.extend_from_slice(&5u64.to_le_bytes());
    gguf.extend_from_slice(b"llama");
    gguf.extend_from_slice(&1u64.to_le_bytes());
    gguf.push(b'w');
    gguf.extend_from_slice(&1u32.to_le_bytes());
    gguf.extend_from_slice(&4u64.to_le_bytes());
    gguf.extend_from_slice(&0u32.to_le_bytes());
    gguf.extend_from_slice(&0u64.to_le_bytes());
    gguf.resize(gguf.len().div_ceil(32) * 32 + 16, 0);
    // ONNX: ir_version 8, producer "p", opset ("", 17), a graph with one external tensor.
    let mut onnx = vec![0x08, 8, 0x12, 1, b'p', 0x42, 2, 0x10, 17];
    let entry = [
        0x0a, 8, b'l', b'o', b'c', b'a', b't', b'i', b'o', b'n', 0x12, 1, b'w',
    ];
    let mut tensor = vec![0x6a, entry.len() as u8];
    tensor.extend_from_slice(&entry);
    tensor.extend_from_slice(&[0x70, 1]);
    let mut graph = vec![0x2a, tensor.len() as u8];
    graph.extend_from_slice(&tensor);
    onnx.push(0x3a);
    onnx.push(graph.len() as u8);
    onnx.extend_from_slice(&graph);
    let pickle =
        b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94."
            .to_vec();
    // A PyTorch-style zip: the pickle deflated, a stored tensor.
    let mut compress = flate2::Compress::new(flate2::Compression::best(), false);
    let mut deflated = Vec::with_capacity(256);
    compress
        .compress_vec(&pickle, &mut deflated, flate2::FlushCompress::Finish)
        .unwrap();
    let zip = zip_archive(&[
        ("archive/data.pkl".into(), 8, deflated, pickle.len() as u32),
        ("archive/data/0".into(), 0, vec![7; 16], 16),
    ]);
    vec![
        ("m.safetensors", safetensors),
        ("m.gguf", gguf),
        ("m.onnx", onnx),
        ("m.pkl", pickle.clone()),
        ("m.pt", pickle),
        ("m.zip", zip),
    ]
}

#[test]
fn seeds_are_read_whole_and_every_truncation_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in seeds() {
        let (outcome, _) = inspect_bytes(dir.path(), name, &bytes);
        assert_eq!(outcome, Ok(true), "{name}");
        for cut in 0..bytes.len() {
            let (outcome, largest) = inspect_bytes(dir.path(), name, &bytes[..cut]);
            assert!(
                largest <= ALLOCATION_BOUND,
                "{name} cut at {cut}: allocated {largest}"
            );
            if let Err(message) = outcome {
                assert!(!message.is_empty());
            }
        }
    }
}

#[test]
fn huge_declared_lengths_are_refused_without_allocating_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut gguf_huge_string = b"GGUF".to_vec();
    gguf_huge_string.extend_from_slice(&3u32.to_le_bytes());
    gguf_huge_string.extend_from_slice(&0u64.to_le_bytes());
    gguf_huge_string.extend_from_slice(&1u64.to_le_bytes());
    gguf_huge_string.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
    let mut gguf_huge_counts = b"GGUF".to_vec();
    gguf_huge_counts.extend_from_slice(&3u32.to_le_bytes());
    gguf_huge_counts.extend_from_slice(&u64::MAX.to_le_bytes());
    gguf_huge_counts.extend_from_slice(&u64::MAX.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "m.safetensors",
            (1u64 << 62).to_le_bytes().to_vec(),
            "runs past the end of the file",
        ),
        (
            "m.safetensors",
            {
                let mut b = 200_000_000u64.to_le_bytes().to_vec();
                b.extend_from_slice(&[b'{'; 64]);
                b
            },
            "header of 200000000 bytes",
        ),
        (
            "m.safetensors",
            {
                let header =
                    br#"{"w":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}"#;
                let mut b = (header.len() as u64).to_le_bytes().to_vec();
                b.extend_from_slice(header);
                b
            },
            "truncated",
        ),
        (
            "m.safetensors",
            {
                // The safetensors library refuses a field given twice; vouch does too.
                let header =
                    br#"{"w":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#;
                let mut b = (header.len() as u64).to_le_bytes().to_vec();
                b.extend_from_slice(header);
                b.extend_from_slice(&[0; 4]);
                b
            },
            "duplicate key",
        ),
        ("m.gguf", gguf_huge_string, "runs past the end"),
        ("m.gguf", gguf_huge_counts, "runs past the end"),
        (
            "m.onnx",
            vec![0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f],
            "more than its enclosing message",
        ),
        (
            "m.pt",
            b"PK\x03\x04garbage that is not a zip".to_vec(),
            "zip",
        ),
        ("m.pt", b"7z\xbc\xaf\x27\x1c\x00\x04".to_vec(), "7z"),
    ];
    for (name, bytes, expected) in cases {
        let (outcome, largest) = inspect_bytes(dir.path(), name, &bytes);
        assert!(largest <= ALLOCATION_BOUND, "{name}: allocated {largest}");
        let message = outcome.expect_err(name);
        assert!(message.contains(expected), "{name}: {message}");
    }
    // A pickle string declared 2^60 bytes long is skipped as it streams by; with no import
    // before it the file is no pickle at all, as picklescan also concludes.
    let mut pickle = vec![0x80, 4, 0x8d];
    pickle.extend_from_slice(&(1u64 << 60).to_le_bytes());
    pickle.extend_from_slice(b"os\x94");
    let (outcome, largest) = inspect_bytes(dir.path(), "m.pkl", &pickle);
    assert!(largest <= ALLOCATION_BOUND, "allocated {largest}");
    assert_eq!(outcome, Ok(false));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_nor_allocate_much(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        which in 0..NAMES.len(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (_, largest) = inspect_bytes(dir.path(), NAMES[which], &bytes);
        prop_assert!(largest <= ALLOCATION_BOUND, "allocated {}", largest);
    }

    #[test]
    fn corrupted_seeds_never_panic_nor_allocate_much(
        which in 0..6usize,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (name, mut bytes) = seeds().swap_remove(which);
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        let (_, largest) = inspect_bytes(dir.path(), name, &bytes);
        prop_assert!(largest <= ALLOCATION_BOUND, "allocated {}", largest);
    }
}

#[test]
fn scan_names_the_file_and_the_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(
        &model,
        &[
            (
                "good.safetensors",
                &std::fs::read(project_root().join("testdata/tiny-model/model.safetensors"))
                    .unwrap(),
            ),
            ("bad.safetensors", &(1u64 << 40).to_le_bytes()),
        ],
    );
    let ran = vouch_run(["scan".as_ref(), model.as_os_str()]).expect(2);
    let out = ran.stdout();
    assert!(out.contains("bad.safetensors"), "{out}");
    assert!(
        out.contains("MALFORMED: the JSON header of 1099511627776 bytes"),
        "{out}"
    );
    // The SBOM still describes every file; the malformed header is a warning.
    let ran = vouch_run(["sbom".as_ref(), model.as_os_str()]).expect(0);
    assert!(ran.stderr.contains("bad.safetensors"), "{}", ran.stderr);
    assert_eq!(
        ran.json()["metadata"]["component"]["components"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// A zip archive of `members` (name, method, data as stored, declared inflated size), laid
/// out as zip writers lay it out: local headers and data, the central directory, its end.
fn zip_archive(members: &[(String, u16, Vec<u8>, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut directory = Vec::new();
    for (name, method, data, size) in members {
        let offset = out.len() as u32;
        let mut common = Vec::new();
        common.extend_from_slice(&20u16.to_le_bytes()); // version needed
        common.extend_from_slice(&0u16.to_le_bytes()); // flags
        common.extend_from_slice(&method.to_le_bytes());
        common.extend_from_slice(&[0; 4]); // time, date
        common.extend_from_slice(&0u32.to_le_bytes()); // CRC
        common.extend_from_slice(&(data.len() as u32).to_le_bytes());
        common.extend_from_slice(&size.to_le_bytes());
        common.extend_from_slice(&(name.len() as u16).to_le_bytes());
        common.extend_from_slice(&0u16.to_le_bytes()); // extra
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&common);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        directory.extend_from_slice(b"PK\x01\x02");
        directory.extend_from_slice(&20u16.to_le_bytes()); // version made by
        directory.extend_from_slice(&common);
        directory.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        directory.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        directory.extend_from_slice(&offset.to_le_bytes());
        directory.extend_from_slice(name.as_bytes());
    }
    let start = out.len() as u32;
    out.extend_from_slice(&directory);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    let count = members.len().min(0xffff) as u16;
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// Raw deflate data that inflates to `mib` MiB of zeros: one fully flushed MiB, repeated.
fn deflated_zeros(mib: usize) -> Vec<u8> {
    let mut compress = flate2::Compress::new(flate2::Compression::best(), false);
    let mut block = Vec::with_capacity(1 << 16);
    compress
        .compress_vec(&vec![0u8; 1 << 20], &mut block, flate2::FlushCompress::Full)
        .unwrap();
    let mut out = block.repeat(mib);
    out.extend_from_slice(&[0x03, 0x00]); // a final, empty block
    out
}

/// `vouch scan` and `verify --deny-unsafe-pickle` on `model`, each within `limit`: the scan
/// reports a malformed file naming `expected`, the gate rejects it.
fn refused_quickly(model: &Path, expected: &str) {
    let limit = std::time::Duration::from_secs(10);
    let started = std::time::Instant::now();
    let ran = run_within(vouch().arg("scan").arg(model), limit).expect(2);
    assert!(ran.stdout().contains(expected), "{}", ran.stdout());
    let digest = run_within(vouch().arg("digest").arg(model), limit)
        .expect(0)
        .stdout();
    let ran = run_within(
        vouch()
            .arg("verify")
            .arg(model)
            .args(["--digest", digest.trim(), "--deny-unsafe-pickle"]),
        limit,
    )
    .expect(1);
    assert!(
        ran.stdout().contains("cannot be scanned"),
        "{}",
        ran.stdout()
    );
    assert!(ran.stdout().contains(expected), "{}", ran.stdout());
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());
}

#[test]
fn a_zip_bomb_is_refused_in_well_under_a_second_never_inflated() {
    let dir = tempfile::tempdir().unwrap();
    // About 4 GiB of zeros deflated into a few MiB, under a name that says nothing.
    let bomb = deflated_zeros(4095);
    let declared = 4095u32 << 20;
    let archive = zip_archive(&[("archive/data.pkl".into(), 8, bomb, declared)]);
    std::fs::write(dir.path().join("weights"), archive).unwrap();
    refused_quickly(&dir.path().join("weights"), "possible zip bomb");
}

#[test]
fn a_zip_of_too_many_members_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<_> = (0..100_001)
        .map(|i| (format!("m{i}"), 0, Vec::new(), 0))
        .collect();
    std::fs::write(dir.path().join("many.npz"), zip_archive(&members)).unwrap();
    refused_quickly(&dir.path().join("many.npz"), "more than 100000 members");
}

#[test]
fn a_pickle_of_endless_opcodes_is_refused_at_the_opcode_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut pickle = b"N0".repeat(10_000_001);
    pickle.extend_from_slice(b"N.");
    std::fs::write(dir.path().join("model.bin"), pickle).unwrap();
    refused_quickly(
        &dir.path().join("model.bin"),
        "more than 20000000 opcodes (bounded work)",
    );
}

#[test]
fn members_that_share_or_overlap_their_data_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let evil = b"\x80\x02cposix\nsystem\nq\x00.".to_vec();
    let mut archive = zip_archive(&[
        ("a.pkl".into(), 0, evil.clone(), evil.len() as u32),
        ("b.pkl".into(), 0, evil.clone(), evil.len() as u32),
    ]);
    // Point the second directory entry at the first member's header.
    let second = archive
        .windows(4)
        .rposition(|w| w == b"PK\x01\x02")
        .unwrap();
    archive[second + 42..second + 46].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(dir.path().join("shared.zip"), archive).unwrap();
    refused_quickly(&dir.path().join("shared.zip"), "overlaps another member");
}

/// `vouch verify MODEL --digest (its own) --deny-unsafe-pickle ARGS`, with the exit expected.
fn gate(model: &Path, extra: &[&str], expected_exit: i32) -> Ran {
    let digest = vouch_run(["digest".as_ref(), model.as_os_str()])
        .expect(0)
        .stdout();
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "verify".as_ref(),
        model.as_os_str(),
        "--digest".as_ref(),
        digest.trim().as_ref(),
        "--deny-unsafe-pickle".as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    vouch_run(args).expect(expected_exit)
}

/// An import a pickle makes, then bytes after which the scanner stops (or is derailed), then
/// `posix.system`: what a loader with its own unpickler (joblib's) may read on to.
#[test]
fn a_pickle_that_stops_before_its_stop_or_wraps_joblib_arrays_is_unscannable() {
    let dir = tempfile::tempdir().unwrap();
    let evil: &[u8] = b"\x8c\x05posix\x8c\x06system\x93\x8c\x04true\x85R.";
    let import = |module: &str, name: &str| {
        let mut bytes = vec![0x80, 4, 0x8c, module.len() as u8];
        bytes.extend_from_slice(module.as_bytes());
        bytes.extend_from_slice(&[0x8c, name.len() as u8]);
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0x93);
        bytes
    };
    // An allowed import, then an opcode Python does not know, then the call.
    let mut stopped = import("collections", "OrderedDict");
    stopped.extend_from_slice(b")R\x03");
    stopped.extend_from_slice(evil);
    // joblib: the wrapper's BUILD, raw array bytes that end the pickle, then the call.
    let mut joblib = import("joblib.numpy_pickle", "NumpyArrayWrapper");
    joblib.extend_from_slice(b")\x81}b.\x8e");
    joblib.extend_from_slice(&(1u64 << 40).to_le_bytes());
    joblib.extend_from_slice(evil);
    for (name, bytes, expected) in [
        ("stopped.pkl", &stopped, "stops before its STOP opcode"),
        ("model.joblib", &joblib, "joblib's own unpickler"),
    ] {
        let model = dir.path().join(name.replace('.', "_"));
        write_tree(&model, &[(name, bytes)]);
        for policy in ["strict", "picklescan"] {
            let ran = gate(&model, &["--pickle-policy", policy], 1);
            let out = format!("{}{}", ran.stdout(), ran.stderr);
            assert!(out.contains(expected), "{name} {policy}: {out}");
        }
    }
    // A complete pickle followed by bytes that are no pickle (a legacy checkpoint's storage
    // data, an appended zip) is read to its STOP and passes.
    let mut trailing = import("collections", "OrderedDict");
    trailing.extend_from_slice(b")R.K\x03raw storage bytes");
    let model = dir.path().join("trailing");
    write_tree(&model, &[("model.pkl", &trailing)]);
    gate(&model, &[], 0);
}

/// A pickle under a name whose reader refuses it is read as the pickle it is by `vouch scan`.
#[test]
fn scan_reads_a_misnamed_pickle_as_a_pickle_and_reports_its_imports() {
    let dir = tempfile::tempdir().unwrap();
    let evil: &[u8] = b"cposix\nsystem\n(S'id'\ntR.";
    let mut safetensors = b"S'abcdef{'\n0".to_vec();
    safetensors.extend_from_slice(evil);
    write_tree(
        dir.path(),
        &[
            ("evil.onnx", evil),
            ("evil.gguf", evil),
            ("model.safetensors", &safetensors),
        ],
    );
    let ran = vouch_run(["scan".as_ref(), dir.path().as_os_str()]).expect(1);
    let report = vouch_run([
        "scan".as_ref(),
        dir.path().as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
    .expect(1)
    .json();
    for file in report["files"].as_array().unwrap() {
        assert_eq!(file["format"], "pickle", "{file}");
        assert_eq!(
            file["dangerous"],
            serde_json::json!(["posix.system"]),
            "{file}"
        );
    }
    assert!(
        ran.stdout().contains("3 with unsafe pickle imports"),
        "{}",
        ran.stdout()
    );
}

/// zstd (which pandas.read_pickle inflates by extension) is inflated and scanned; a
/// decompression bomb is refused at the inflate bound, never written out whole.
#[test]
fn zstd_pickles_are_inflated_and_bombs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let evil: &[u8] = b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00true\x85R.";
    let bomb = zstd::encode_all(&vec![b'N'; 64 << 20][..], 3).unwrap();
    write_tree(
        dir.path(),
        &[
            ("model.pkl.zst", &zstd::encode_all(evil, 3).unwrap()),
            ("bomb.pkl.zst", &bomb),
        ],
    );
    let report = vouch_run([
        "scan".as_ref(),
        dir.path().as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
    .expect(1)
    .json();
    let files = report["files"].as_array().unwrap();
    let find = |name: &str| files.iter().find(|f| f["name"] == name).unwrap();
    assert_eq!(
        find("model.pkl.zst")["dangerous"],
        serde_json::json!(["posix.system"])
    );
    let bomb = find("bomb.pkl.zst")["problem"]["message"].as_str().unwrap();
    assert!(bomb.contains("possible decompression bomb"), "{bomb}");
}
