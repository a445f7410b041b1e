//! Files that a real Python loader (`joblib.load`, `pandas.read_pickle`,
//! `numpy.load(allow_pickle=True)`) unpickles, running the code in them, in the framings a
//! red team found vouch reading differently: joblib's old `ZF` format, LZMA-alone headers
//! and lzip streams liblzma's automatic decoder takes, a zip behind a prefix, tar checksums
//! written as Python's `int(text, 8)` reads them, gzip as Python's gzip module reads it
//! (and fails part way through), and pickles that are also valid ONNX and safetensors
//! files. The peer Python writes each file and runs its loader on it (the payload touches a
//! marker file); `vouch scan` must then report the import or refuse the file, naming it
//! and the problem, with the exit status the README gives, and `vouch verify
//! --deny-unsafe-pickle` must reject every one.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Writes the hostile files into `out` and runs each one's loader (see the module docs).
const LOADERS_PY: &str = r#"# Writes files that a real Python loader unpickles (running os.system), each in a framing
# vouch once missed, and runs that loader on each in a child process. Prints, per file,
# the loader's code and whether the payload ran (it touches DIR/../ran-NAME).
import io, json, lzma, os, pickle, struct, subprocess, sys, tarfile, zipfile, zlib

out, marks = sys.argv[1], sys.argv[2]
cases = {}

class Payload:
    def __init__(self, name):
        self.name = name
    def __reduce__(self):
        return (os.system, (f"touch {os.path.join(marks, 'ran-' + self.name)}",))

def payload(name, protocol=2):
    return pickle.dumps(Payload(name), protocol=protocol)

def write(name, data, loader):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    cases[name] = loader.replace("PATH", repr(os.path.join(out, name)))

PANDAS = "import pandas; pandas.read_pickle(PATH)"
JOBLIB = "import joblib; joblib.load(PATH)"
NUMPY = "import numpy; numpy.load(PATH, allow_pickle=True)"

# joblib's format before 0.9.3: "ZF", the length in hex padded to 19 bytes, zlib.
data = payload("zf.joblib")
write("zf.joblib", b"ZF" + ("0x%x" % len(data)).ljust(19).encode() + zlib.compress(data), JOBLIB)

# LZMA-alone with a dictionary of 256 bytes: 5D 00 01 00 00 (joblib goes by 5D 00).
data = payload("dict256.joblib")
raw = lzma.compress(data, format=lzma.FORMAT_ALONE,
                    filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 16}])
write("dict256.joblib", raw[:1] + struct.pack("<I", 256) + raw[5:], JOBLIB)

# LZMA-alone with lc=lp=pb=0 (first byte 00): pandas' *.xz reads it (liblzma's FORMAT_AUTO).
data = payload("props0.pkl.xz")
write("props0.pkl.xz", lzma.compress(data, format=lzma.FORMAT_ALONE, filters=[
    {"id": lzma.FILTER_LZMA1, "lc": 0, "lp": 0, "pb": 0, "dict_size": 1 << 16}]), PANDAS)

# lzip, which liblzma's automatic decoder reads too.
data = payload("lzip.pkl.xz")
body = lzma.compress(data, format=lzma.FORMAT_RAW, filters=[
    {"id": lzma.FILTER_LZMA1, "lc": 3, "lp": 0, "pb": 2, "dict_size": 1 << 16}])
lz = b"LZIP\x01" + bytes([16]) + body
lz += struct.pack("<IQQ", zlib.crc32(data), len(data), len(lz) + 20)
write("lzip.pkl.xz", lz, PANDAS)

# A zip behind a prefix that is no pickle: offsets relative to the zip (zipfile shifts
# them), and absolute (what zipfile's mode 'a' writes after other bytes).
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w") as z:
    z.writestr("model.pkl", payload("relative.pkl.zip"))
write("relative.pkl.zip", b"Z" * 64 + buffer.getvalue(), PANDAS)
buffer = io.BytesIO()
buffer.write(b"Z" * 64)
with zipfile.ZipFile(buffer, "a") as z:
    z.writestr("model.pkl", payload("absolute.pkl.zip"))
write("absolute.pkl.zip", buffer.getvalue(), PANDAS)

# Tars: plain, and with checksums written as tarfile's int(text, 8) also reads them.
def tar(name, field=None):
    data = payload(name)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("model.pkl")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    b = bytearray(buffer.getvalue())
    if field is not None:
        s = sum(b[:148]) + 8 * 32 + sum(b[156:512])
        text = field("%o" % s).encode()
        assert len(text) <= 8, text
        b[148:156] = text.ljust(8, b"\0")
        assert tarfile.open(fileobj=io.BytesIO(bytes(b))).getnames() == ["model.pkl"]
    write(name, bytes(b), PANDAS)
tar("plain.pkl.tar")
tar("prefix.pkl.tar", lambda o: "0o" + o.rjust(6, "0"))
tar("underscore.pkl.tar", lambda o: o[:1] + "_" + o[1:])
tar("spaces.pkl.tar", lambda o: "\x0b+" + o + "\x1c")

# gzip framings Python's gzip module reads: reserved flag bits, a wrong header CRC, zero
# bytes between members (the pickle split across them); and what Python unpickles before
# it fails: a wrong CRC-32 in the trailer, garbage after the member.
def member(data, flags=0, extra=b"", crc=None):
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    crc = zlib.crc32(data) if crc is None else crc
    return (b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\0\xff" + extra + body
            + struct.pack("<II", crc, len(data) & 0xffffffff))
data = payload("reserved.pkl.gz")
write("reserved.pkl.gz", member(data, flags=0xe0), PANDAS)
data = payload("header_crc.pkl.gz")
write("header_crc.pkl.gz", member(data, flags=0x02, extra=b"\xde\xad"), PANDAS)
data = payload("padded.pkl.gz")
write("padded.pkl.gz", member(data[:3]) + b"\0" * 16 + member(data[3:]), PANDAS)
data = payload("bad_crc.pkl.gz")
write("bad_crc.pkl.gz", member(data, crc=zlib.crc32(data) ^ 1), PANDAS)
data = payload("garbage.pkl.gz")
write("garbage.pkl.gz", member(data) + b"garbage", PANDAS)

# Polyglots under names whose readers read them: a pickle that is a valid ONNX model
# (BININT's 4 bytes are the tag and length of an unknown field holding the pickle) and
# one that is a valid safetensors file (LONG1 and SHORT_BINBYTES skip the JSON header).
body = b"\x00\x00\x00" + b"0" + payload("polyglot.onnx")
assert len(body) < 128
write("polyglot.onnx", b"J" + bytes([len(body)]) + body + b"\x08\x07", NUMPY)
N = 0x8a + 256 * 8
data = payload("polyglot.safetensors")
tail = b'":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (len(data), len(data))
m, L = 17, 120
last = (N - 2) - 2 - 122 * m
key = (b"C" + bytes([L]) + b"a" * L) * m + b"C" + bytes([last])
header = b'{"' + key + tail + b" " * (last - len(tail))
assert len(header) == N
write("polyglot.safetensors", struct.pack("<Q", N) + header + data, NUMPY)

# What the format's own package reads of each polyglot.
import onnx, safetensors.numpy
readers = {
    "polyglot.onnx": onnx.load(os.path.join(out, "polyglot.onnx")).ir_version == 7,
    "polyglot.safetensors": list(safetensors.numpy.load_file(
        os.path.join(out, "polyglot.safetensors")).keys()) == [key.decode()],
}

report = {}
for name, code in cases.items():
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    report[name] = {
        "loader": code,
        "ran": os.path.exists(os.path.join(marks, "ran-" + name)),
        "format_reader": readers.get(name),
        "stderr": ran.stderr[-500:],
    }
print(json.dumps(report))
"#;

/// What `vouch scan FILE` must say of each file: its exit status and a part of its line.
const EXPECTED: &[(&str, i32, &str)] = &[
    ("zf.joblib", 1, "UNSAFE import posix.system"),
    ("dict256.joblib", 2, "vouch cannot inflate lzma"),
    ("props0.pkl.xz", 2, "vouch cannot inflate lzma"),
    ("lzip.pkl.xz", 2, "vouch cannot inflate lzip"),
    (
        "relative.pkl.zip",
        2,
        "zip archive whose central directory can be found in two ways",
    ),
    (
        "absolute.pkl.zip",
        1,
        "UNSAFE import posix.system (in model.pkl)",
    ),
    ("plain.pkl.tar", 2, "is a tar archive"),
    ("prefix.pkl.tar", 2, "is a tar archive"),
    ("underscore.pkl.tar", 2, "is a tar archive"),
    ("spaces.pkl.tar", 2, "is a tar archive"),
    ("reserved.pkl.gz", 1, "UNSAFE import posix.system"),
    ("header_crc.pkl.gz", 1, "UNSAFE import posix.system"),
    ("padded.pkl.gz", 1, "UNSAFE import posix.system"),
    ("bad_crc.pkl.gz", 2, "(gzip: CRC check failed)"),
    (
        "garbage.pkl.gz",
        2,
        "(gzip: not a gzipped file after a member)",
    ),
    ("polyglot.onnx", 1, "UNSAFE import posix.system"),
    ("polyglot.safetensors", 1, "UNSAFE import posix.system"),
];

/// Runs the loaders script; `None` (skipped) without the peer Python.
fn hostile_corpus(test: &str) -> Option<(tempfile::TempDir, serde_json::Value)> {
    let python = peer_python(test)?;
    let dir = tempfile::tempdir().unwrap();
    let (model, marks) = (dir.path().join("model"), dir.path().join("marks"));
    std::fs::create_dir_all(&model).unwrap();
    std::fs::create_dir_all(&marks).unwrap();
    let script = dir.path().join("loaders.py");
    std::fs::write(&script, LOADERS_PY).unwrap();
    let ran = run(Command::new(python).arg(&script).arg(&model).arg(&marks));
    assert_eq!(ran.code, Some(0), "loaders.py failed:\n{}", ran.stderr);
    let report = ran.json();
    Some((dir, report))
}

#[test]
fn what_python_loaders_unpickle_is_reported_or_refused_by_scan_and_the_gate() {
    let Some((dir, loaders)) = hostile_corpus("pickle_loaders") else {
        return;
    };
    let model = dir.path().join("model");
    let cases = loaders.as_object().unwrap();
    assert_eq!(cases.len(), EXPECTED.len(), "{loaders:#}");
    for (name, exit, expected) in EXPECTED {
        let case = &loaders[*name];
        // The real loader runs the payload: each file is a working attack.
        assert_eq!(case["ran"], true, "{name}: {case:#}");
        if !case["format_reader"].is_null() {
            assert_eq!(case["format_reader"], true, "{name}: {case:#}");
        }
        let path = model.join(name);
        let ran = vouch_run(["scan".as_ref(), path.as_os_str()]).expect(*exit);
        let out = ran.stdout();
        assert!(
            out.lines().any(|l| l.starts_with(*name)) && out.contains(expected),
            "{name}: expected {expected:?} in\n{out}{}",
            ran.stderr
        );
    }
    // The same files, together: every one rejected by the gate, naming why.
    let digest = vouch_run(["digest".as_ref(), model.as_os_str()])
        .expect(0)
        .stdout();
    let report = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--digest".as_ref(),
        digest.trim().as_ref(),
        "--deny-unsafe-pickle".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
    .expect(1)
    .json();
    for (name, _, expected) in EXPECTED {
        let rejected = report["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == *name && s["verdict"] == "rejected")
            .unwrap_or_else(|| panic!("{name} is not rejected: {report:#}"));
        let message = rejected["message"].as_str().unwrap();
        let expected = expected.trim_start_matches("UNSAFE import ");
        let expected = expected.split(" (in ").next().unwrap();
        assert!(message.contains(expected), "{name}: {message}");
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// What only looks like a container from its first or last bytes is no finding: a zip end
/// record's signature in the last 64 KiB with no central directory where any reader looks,
/// text that starts with a zlib header, bytes that start like LZMA-alone but are a complete
/// pickle, and a benign gzip of two members padded with zeros.
#[test]
fn lookalikes_of_containers_are_no_findings() {
    let dir = tempfile::tempdir().unwrap();
    let mut weights = vec![0x11u8; 4096];
    weights[4000..4004].copy_from_slice(b"PK\x05\x06");
    weights[4012] = 16; // the directory's size
    write(dir.path(), "weights.bin", &weights);
    write(dir.path(), "notes.txt", b"x^hello, not zlib\n");
    // A protocol-2 pickle of a dict: complete, whatever its first bytes would mean.
    write(
        dir.path(),
        "state.pkl",
        b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s.",
    );
    let benign = b"\x80\x02}q\x00.";
    let mut gz = Vec::new();
    for part in [&benign[..3], &benign[3..]] {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut encoder, part).unwrap();
        gz.extend(encoder.finish().unwrap());
        gz.extend_from_slice(&[0; 8]);
    }
    write(dir.path(), "state.pkl.gz", &gz);
    let report = vouch_run([
        "scan".as_ref(),
        dir.path().as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
    .expect(0)
    .json();
    for file in report["files"].as_array().unwrap() {
        assert!(file["problem"].is_null(), "{file}");
    }
    let digest = vouch_run(["digest".as_ref(), dir.path().as_os_str()])
        .expect(0)
        .stdout();
    vouch_run([
        "verify".as_ref(),
        dir.path().as_os_str(),
        "--digest".as_ref(),
        digest.trim().as_ref(),
        "--deny-unsafe-pickle".as_ref(),
    ])
    .expect(0);
}

/// A pickle that is also an ONNX graph loading external data from outside the model: the
/// external-data check of `vouch verify` still sees it (it is refused as both), and a
/// safetensors header whose length bytes start a complete pickle that imports nothing
/// (`N.`) is still read as safetensors.
#[test]
fn polyglots_keep_the_checks_of_their_names_reader() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    // BININT's four bytes are field 9's tag and length; the pickle is that field's bytes.
    let mut body = vec![0, 0, 0, b'0'];
    body.extend_from_slice(b"\x80\x02ccollections\nOrderedDict\n)R.");
    let mut graph_onnx = vec![b'J', body.len() as u8];
    graph_onnx.extend_from_slice(&body);
    // ir_version 8, opset 17, a graph whose one tensor is stored at ../outside.
    graph_onnx.extend_from_slice(&[0x08, 8, 0x42, 2, 0x10, 17]);
    let location = b"../outside";
    let mut entry = vec![0x0a, 8];
    entry.extend_from_slice(b"location");
    entry.extend_from_slice(&[0x12, location.len() as u8]);
    entry.extend_from_slice(location);
    let mut tensor = vec![0x6a, entry.len() as u8];
    tensor.extend_from_slice(&entry);
    tensor.extend_from_slice(&[0x70, 1]);
    let mut graph = vec![0x2a, tensor.len() as u8];
    graph.extend_from_slice(&tensor);
    graph_onnx.push(0x3a);
    graph_onnx.push(graph.len() as u8);
    graph_onnx.extend_from_slice(&graph);
    write(&model, "graph.onnx", &graph_onnx);
    let ran = vouch_run(["scan".as_ref(), model.as_os_str()]).expect(2);
    assert!(
        ran.stdout()
            .contains("is an ONNX graph loading external data (../outside) that is also a pickle"),
        "{}",
        ran.stdout()
    );
    let digest = vouch_run(["digest".as_ref(), model.as_os_str()])
        .expect(0)
        .stdout();
    let report = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--digest".as_ref(),
        digest.trim().as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
    .expect(1)
    .json();
    let rejected = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "graph.onnx" && s["verdict"] == "rejected")
        .unwrap_or_else(|| panic!("graph.onnx is not rejected: {report:#}"));
    assert!(
        rejected["message"]
            .as_str()
            .unwrap()
            .contains("external data"),
        "{rejected}"
    );

    // Header length 0x2E4E: its first bytes are NONE, STOP.
    let mut header = br#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#.to_vec();
    header.resize(0x2E4E, b' ');
    let mut safetensors = (header.len() as u64).to_le_bytes().to_vec();
    safetensors.extend_from_slice(&header);
    safetensors.push(7);
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    write(&plain, "model.safetensors", &safetensors);
    let report = vouch_run([
        "scan".as_ref(),
        plain.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
    .expect(0)
    .json();
    assert_eq!(report["files"][0]["format"], "safetensors", "{report:#}");
}

/// A zip64 locator that points elsewhere than the zip64 record right before it: Python's
/// zipfile reads the record before the locator, PyTorch's reader (miniz) the one the locator
/// points at, so two central directories could serve two loaders. Refused as malformed;
/// the same archive with the locator pointing right is scanned.
#[test]
fn a_zip64_locator_pointing_elsewhere_is_refused() {
    let Some(python) = peer_python("a_zip64_locator_pointing_elsewhere_is_refused") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import io, pickle, struct, sys, zipfile
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w") as archive:
    archive.writestr("archive/data.pkl", pickle.dumps({"weights": [1, 2]}, protocol=2))
data = buffer.getvalue()
eocd = data.rindex(b"PK\x05\x06")
count, size, offset = struct.unpack("<HII", data[eocd + 10:eocd + 20])
for name, shift in (("right.pt", 0), ("elsewhere.pt", 1000)):
    record = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, eocd + shift, 1)
    out = data[:eocd] + record + locator + data[eocd:]
    open(sys.argv[1] + "/" + name, "wb").write(out)
    # Python's zipfile opens both and reads the member.
    assert zipfile.ZipFile(sys.argv[1] + "/" + name).read("archive/data.pkl")
"#;
    let ran = run(Command::new(&python).args(["-c", script]).arg(dir.path()));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let scan = |name: &str| vouch_run(["scan".as_ref(), dir.path().join(name).as_os_str()]);
    scan("right.pt").expect(0);
    let refused = scan("elsewhere.pt").expect(2);
    assert!(
        refused.stdout().contains("zip64 locator") || refused.stderr.contains("zip64 locator"),
        "{}{}",
        refused.stdout(),
        refused.stderr
    );
}
