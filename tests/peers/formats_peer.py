"""Writes model files with the formats' own Python packages and reports what those
packages read back, for vouch's format and SBOM interop tests.

Usage (each prints one JSON object on stdout):
  formats_peer.py safetensors DIR   -> {file: facts} as the safetensors package reads them
  formats_peer.py gguf DIR          -> {file: facts} as the gguf package's reader reports them
  formats_peer.py onnx DIR          -> {file: facts} as the onnx package reads them
  formats_peer.py pickles DIR       -> {file: [[module, name, safety], ...]} from picklescan
  formats_peer.py hostile DIR       -> {file: {"zipfile": members or error, "imports": [...]}}
                                       hostile containers and memo tricks, with what Python's
                                       zipfile lists and what Python's unpickler imports
  formats_peer.py checkpoints DIR   -> {file: {"imports": [...], "fickling": severity}}
                                       PyTorch-style checkpoints written as torch.save does
  formats_peer.py cyclonedx FILE    -> {"errors": null or text} from the strict 1.6 validator
"""

import io
import json
import os
import pickle
import sys
import zipfile

import numpy as np


def safetensors_corpus(out):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    rng = np.random.default_rng(7)
    files = {
        "plain.safetensors": ({"w": rng.standard_normal((4, 3), dtype=np.float32)}, None),
        "mixed.safetensors": (
            {
                "embed.weight": rng.standard_normal((16, 8)).astype(np.float16),
                "layers.0.bias": np.arange(8, dtype=np.int64),
                "mask": np.array([True, False, True]),
                "scalar": np.array(3.5, dtype=np.float64),
                "empty": np.zeros((0, 5), dtype=np.int32),
            },
            {"format": "pt", "source": "vouch tests", "ünïcode": "✓"},
        ),
    }
    facts = {}
    for name, (tensors, metadata) in files.items():
        path = os.path.join(out, name)
        save_file(tensors, path, metadata=metadata)
        with safe_open(path, "np") as f:
            dtypes = {}
            params = 0
            for key in f.keys():
                s = f.get_slice(key)
                dtypes[s.get_dtype()] = dtypes.get(s.get_dtype(), 0) + 1
                params += int(np.prod(s.get_shape(), dtype=np.int64))
            facts[name] = {
                "tensor_count": len(f.keys()),
                "parameter_count": params,
                "dtypes": dtypes,
                "metadata": f.metadata() or {},
            }
    return facts


def gguf_corpus(out):
    import gguf

    facts = {}
    specs = [
        ("llama-f32.gguf", "llama", 4096, gguf.LlamaFileType.ALL_F32, ["F32"]),
        ("qwen-q8.gguf", "qwen2", 32768, gguf.LlamaFileType.MOSTLY_Q8_0, ["Q8_0", "F16", "F32"]),
    ]
    rng = np.random.default_rng(3)
    for name, arch, ctx, ftype, types in specs:
        path = os.path.join(out, name)
        w = gguf.GGUFWriter(path, arch)
        w.add_name(name.split(".")[0])
        w.add_context_length(ctx)
        w.add_file_type(ftype)
        w.add_block_count(2)
        w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "hello", "wörld"])
        for i, t in enumerate(types):
            data = rng.standard_normal((4, 64), dtype=np.float32)
            if t == "Q8_0":
                q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
                w.add_tensor(f"blk.{i}.q", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            elif t == "F16":
                w.add_tensor(f"blk.{i}.h", data.astype(np.float16))
            else:
                w.add_tensor(f"blk.{i}.f", data)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

        r = gguf.GGUFReader(path)

        def scalar(key):
            field = r.get_field(key)
            return None if field is None else field.contents()

        tensor_types = {}
        for t in r.tensors:
            tensor_types[t.tensor_type.name] = tensor_types.get(t.tensor_type.name, 0) + 1
        arch_read = scalar("general.architecture")
        ftype_read = scalar("general.file_type")
        facts[name] = {
            "version": int(scalar("GGUF.version")),
            "architecture": arch_read,
            "name": scalar("general.name"),
            "file_type": gguf.LlamaFileType(ftype_read).name if ftype_read is not None else None,
            "tensor_count": len(r.tensors),
            "parameter_count": int(sum(int(t.n_elements) for t in r.tensors)),
            "context_length": scalar(f"{arch_read}.context_length"),
            "tensor_types": tensor_types,
        }
    return facts


def onnx_corpus(out):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

    def model(weights, producer, opsets):
        inits = [numpy_helper.from_array(w, name=f"w{i}") for i, w in enumerate(weights)]
        nodes = [helper.make_node("MatMul", ["x", "w0"], ["y"])]
        graph = helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
            initializer=inits,
        )
        m = helper.make_model(graph, producer_name=producer[0], opset_imports=opsets)
        m.producer_version = producer[1]
        return m

    rng = np.random.default_rng(5)
    weights = [rng.standard_normal((4, 4)).astype(np.float32) for _ in range(3)]
    inline = model(weights, ("vouch-tests", "1.0"), [helper.make_opsetid("", 17)])
    onnx.save_model(inline, os.path.join(out, "inline.onnx"))
    external = model(
        weights,
        ("pytorch", "2.3.0"),
        [helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)],
    )
    onnx.save_model(
        external,
        os.path.join(out, "external.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=False,
        size_threshold=0,
    )
    facts = {}
    for name in ["inline.onnx", "external.onnx"]:
        m = onnx.load(os.path.join(out, name), load_external_data=False)
        locations = sorted(
            {ExternalDataInfo(t).location for t in _get_all_tensors(m) if uses_external_data(t)}
        )
        facts[name] = {
            "ir_version": m.ir_version,
            "opsets": [{"domain": o.domain, "version": o.version} for o in m.opset_import],
            "producer_name": m.producer_name,
            "producer_version": m.producer_version,
            "external_data": locations,
        }
    return facts


class Reduce:
    """An object that pickles as a call of `func(*args)`."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def torch_like_zip(path, payload, protocol=2):
    """A zip laid out as torch.save writes it: archive/data.pkl, version, storages."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle.dumps(payload, protocol=protocol))
        z.writestr("archive/byteorder", b"little")
        z.writestr("archive/data/0", np.arange(16, dtype=np.float32).tobytes())
        z.writestr("archive/version", b"3\n")
        z.writestr("archive/.data/serialization_id", b"1234567890")


def pickle_corpus(out):
    import collections
    import builtins
    import subprocess

    from picklescan.scanner import scan_file_path

    write = lambda name, data: open(os.path.join(out, name), "wb").write(data)
    benign = collections.OrderedDict([("w", [1.0, 2.0]), ("b", (3, "x"))])
    torch_like_zip(os.path.join(out, "benign.pt"), benign)
    torch_like_zip(os.path.join(out, "evil.pt"), {"w": Reduce(os.system, ("true",))}, protocol=4)
    write("os_system.pkl", pickle.dumps(Reduce(os.system, ("echo hi",))))
    write("exec.pkl", pickle.dumps(Reduce(builtins.exec, ("print(1)",))))
    write("subprocess.pkl", pickle.dumps(Reduce(subprocess.check_output, (["id"],))))
    import datetime

    write("suspicious.pkl", pickle.dumps([Reduce(datetime.timedelta, (1,))], protocol=4))
    write("nested.pkl", pickle.dumps({"a": [benign, {"b": Reduce(eval, ("1+1",))}]}))
    for protocol in range(0, 6):
        write(f"proto{protocol}.pkl", pickle.dumps(Reduce(os.system, ("true",)), protocol=protocol))
        write(f"proto{protocol}_benign.pkl", pickle.dumps(benign, protocol=protocol))
    # Two pickles back to back: the second one is the dangerous one.
    write("second.pkl", pickle.dumps([1, 2]) + pickle.dumps(Reduce(os.system, ("true",))))
    # Imports, then garbage: picklescan still reports what it saw.
    write("truncated.pkl", pickle.dumps(Reduce(os.system, ("true",)), protocol=2)[:-3])
    write("not_a_pickle.bin", bytes(range(256)) * 4)
    # A legacy (pre-zip) PyTorch file: the magic number, then the checkpoint's pickles.
    legacy = io.BytesIO()
    for obj in [0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, {"w": Reduce(os.system, ("true",))}, ["0"]]:
        pickle.dump(obj, legacy, protocol=2)
    write("legacy.pth", legacy.getvalue() + b"\x00" * 64)
    # A zip (not a PyTorch name) with a pickle member.
    with zipfile.ZipFile(os.path.join(out, "bundle.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model/weights.pkl", pickle.dumps(Reduce(subprocess.Popen, (["true"],))))
        z.writestr("README.txt", "hello")

    verdicts = {}
    for name in sorted(os.listdir(out)):
        result = scan_file_path(os.path.join(out, name))
        verdicts[name] = sorted(
            {(g.module, g.name, g.safety.value) for g in result.globals}
        )
    return verdicts


class Anything(dict):
    """What a recording unpickler returns for every global: accepts any call, item, append
    and state."""

    def __new__(cls, *args, **kwargs):
        return dict.__new__(cls)

    def append(self, item):
        pass

    def extend(self, items):
        pass

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return Anything()

    def __setstate__(self, state):
        pass


class Recording(pickle.Unpickler):
    """Python's own unpickler, importing nothing: it records each global it would import."""

    def __init__(self, file, seen):
        super().__init__(file)
        self.seen = seen

    def find_class(self, module, name):
        self.seen.add((module, name))
        return Anything

    def persistent_load(self, pid):
        return Anything()


def python_imports(data):
    """Every global Python's unpickler imports loading `data` pickle after pickle (the body
    of a .npy array, as numpy.load reads it)."""
    if data.startswith(b"\x93NUMPY"):
        f = io.BytesIO(data)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(f)
        else:
            np.lib.format.read_array_header_2_0(f)
        data = f.read()
    seen = set()
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        try:
            Recording(stream, seen).load()
        except Exception:
            break
    return sorted(seen)


def zip_view(path):
    """The members Python's zipfile reads from `path`, and what their pickles import."""
    try:
        with zipfile.ZipFile(path) as z:
            members = {}
            for info in z.infolist():
                try:
                    members[info.filename] = python_imports(z.read(info))
                except Exception as e:
                    members[info.filename] = f"unreadable: {type(e).__name__}"
            return members
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def hostile_corpus(out):
    import subprocess

    evil = pickle.dumps(Reduce(os.system, ("true",)), protocol=2)
    benign = pickle.dumps({"w": [1.0, 2.0]}, protocol=2)
    path = lambda name: os.path.join(out, name)

    def zip_with(name, members, compression=zipfile.ZIP_STORED):
        with zipfile.ZipFile(path(name), "w", compression) as z:
            for member, data in members:
                z.writestr(member, data)

    # Members vouch cannot inflate: LZMA and BZIP2.
    zip_with("lzma.pt", [("archive/data.pkl", evil)], zipfile.ZIP_LZMA)
    zip_with("bzip2.bin", [("archive/data.pkl", evil)], zipfile.ZIP_BZIP2)
    # A directory entry (name ending in '/') that holds a pickle.
    zip_with("dir_bytes.pt", [("archive/data.pk_", evil)])
    data = open(path("dir_bytes.pt"), "rb").read().replace(b"archive/data.pk_", b"archive/data.pk/")
    open(path("dir_bytes.pt"), "wb").write(data)
    # An encrypted member (the flag set in both headers).
    zip_with("encrypted.zip", [("m.pkl", evil)])
    data = bytearray(open(path("encrypted.zip"), "rb").read())
    for magic, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(magic)
        data[at + flag_at] |= 1
    open(path("encrypted.zip"), "wb").write(bytes(data))
    # Data prepended to a zip whose offsets count from its own start: Python's zipfile
    # shifts every member by the prepended length (concat), other readers do not.
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("archive/data.pkl", evil)
    open(path("prepended.pt"), "wb").write(benign + inner.getvalue())
    # torch.load's oldest format: a tar whose 'pickle' member it unpickles.
    import tarfile

    with tarfile.open(path("model.ckpt"), "w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("pickle")
        info.size = len(evil)
        t.addfile(info, io.BytesIO(evil))
    # Not a zip at all, under a PyTorch name.
    open(path("garbage.pt"), "wb").write(b"PK\x03\x04garbage that is not a zip")
    # A benign pickle with a zip appended by zipfile's append mode (offsets from the file's
    # start): pickle.load reads the pickle, zipfile the archive.
    open(path("weights"), "wb").write(benign)
    with zipfile.ZipFile(path("weights"), "a") as z:
        z.writestr("archive/data.pkl", evil)
    # Names that say nothing: a PyTorch zip, a legacy file, a protocol-0 pickle.
    torch_like_zip(path("checkpoint.pth.tar"), {"w": Reduce(os.system, ("true",))})
    legacy = io.BytesIO()
    for obj in [0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, {"w": Reduce(eval, ("1",))}, []]:
        pickle.dump(obj, legacy, protocol=2)
    open(path("model.th"), "wb").write(legacy.getvalue())
    open(path("blob"), "wb").write(pickle.dumps(Reduce(subprocess.call, (["true"],)), protocol=0))
    # Object arrays: numpy pickles the body after the .npy header.
    np.save(path("objects.npy"), np.array([Reduce(os.system, ("true",))], dtype=object), allow_pickle=True)
    np.savez(path("objects.npz"), a=np.arange(3), b=np.array([Reduce(eval, ("1",)), 2], dtype=object))
    np.savez_compressed(path("compressed.npz"), b=np.array([Reduce(exec, ("1",))], dtype=object))
    # Memo tricks: a model that memoizes opcode arguments, or skips DUP, names another global.
    tricks = {
        # MEMOIZE after MEMOIZE: entries 0 and 1 both hold 'builtins'.
        "memoize_twice.pkl": b"\x80\x04\x8c\x08builtins\x94\x94\x8c\x04eval\x94h\x01h\x02\x93\x8c\x011\x85R.",
        # MEMOIZE after BINGET stores what BINGET pushed.
        "memoize_get.pkl": b"\x80\x04\x8c\x08builtins\x94h\x00\x94\x8c\x04exec\x94000h\x01h\x02\x93\x8c\x011\x85R.",
        # PUT and GET with large indexes, LONG_BINPUT/LONG_BINGET.
        "put_get.pkl": b"(S'os'\np99999\n0Vsystem\nr\x00\x00\x01\x00g99999\nj\x00\x00\x01\x00\x93(S'true'\ntR.",
        # DUP: the module is a copy of the string below it.
        "dup.pkl": b"\x80\x04\x8c\x05posix2\x94\x8c\x06system\x93\x94.",
        # MEMOIZE indexes count entries, not the highest index: PUT 7, then MEMOIZE is 1.
        "memo_len.pkl": b"\x80\x04\x8c\x0bcollections\x94\x8c\x0bOrderedDictq\x07\x8c\x02os\x94\x8c\x06system\x940h\x02h\x03\x93.",
    }
    for name, data in tricks.items():
        open(path(name), "wb").write(data)

    facts = {}
    for name in sorted(os.listdir(out)):
        data = open(path(name), "rb").read()
        facts[name] = {
            "zipfile": zip_view(path(name)) if zipfile.is_zipfile(path(name)) else None,
            "imports": python_imports(data),
        }
    return facts


def compressed_corpus(out):
    """Pickles in compressed streams, as pandas.read_pickle (by extension) and joblib.load
    (by magic) inflate and unpickle them; what Python imports loading each after inflating."""
    import bz2, gzip, lzma, zlib

    evil = pickle.dumps(Reduce(os.system, ("true",)), protocol=2)
    zipped = os.path.join(out, "zipped.pt")
    torch_like_zip(zipped, {"w": Reduce(os.system, ("true",))})
    zipped_bytes = open(zipped, "rb").read()
    os.remove(zipped)
    files = {
        "model.pkl.gz": (gzip.compress(evil), gzip.decompress),
        "model.pkl.bz2": (bz2.compress(evil), bz2.decompress),
        "model.pkl.xz": (lzma.compress(evil), lzma.decompress),
        "model.pkl.lzma": (lzma.compress(evil, format=lzma.FORMAT_ALONE), lzma.decompress),
        "model.joblib": (zlib.compress(evil), zlib.decompress),
        "checkpoint.pt.gz": (gzip.compress(zipped_bytes), gzip.decompress),
        "notes.txt.gz": (gzip.compress(b"plain text, no pickle\n" * 100), gzip.decompress),
    }
    facts = {}
    for name, (data, inflate) in files.items():
        open(os.path.join(out, name), "wb").write(data)
        inflated = inflate(data)
        imports = set(map(tuple, python_imports(inflated)))
        if inflated.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(inflated)) as z:
                for info in z.infolist():
                    imports.update(map(tuple, python_imports(z.read(info))))
        facts[name] = {"imports": sorted(imports)}
    return facts


def fake_torch():
    """Modules named as PyTorch's, so that pickle writes the globals torch.save writes."""
    import types
    import collections

    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks):
        pass

    def _rebuild_parameter(data, requires_grad, hooks):
        pass

    for f in (_rebuild_tensor_v2, _rebuild_parameter):
        f.__module__ = "torch._utils"
        f.__qualname__ = f.__name__
        setattr(utils, f.__name__, f)

    class FloatStorage:
        pass

    class Size(tuple):
        pass

    class dtype:
        def __init__(self, name):
            self.name = name

        def __reduce__(self):
            return self.name

    dtype.__module__ = "torch"
    for cls in (FloatStorage, Size):
        cls.__module__ = "torch"
        cls.__qualname__ = cls.__name__
        setattr(torch, cls.__name__, cls)
    torch.float32 = dtype("float32")
    torch._utils = utils
    sys.modules["torch"] = torch
    sys.modules["torch._utils"] = utils
    return torch, utils, collections


class Tensor:
    """Pickles as torch.save pickles a tensor: _rebuild_tensor_v2 over a persistent storage."""

    def __init__(self, utils, key, shape, parameter=False):
        self.utils, self.key, self.shape, self.parameter = utils, key, shape, parameter

    def __reduce__(self):
        import collections

        stride = tuple(int(np.prod(self.shape[i + 1 :])) for i in range(len(self.shape)))
        storage = StorageRef(self.key, int(np.prod(self.shape)))
        tensor = (self.utils._rebuild_tensor_v2, (storage, 0, sys.modules["torch"].Size(self.shape), stride, False, collections.OrderedDict()))
        if not self.parameter:
            return tensor
        return (self.utils._rebuild_parameter, (Reduced(tensor), True, collections.OrderedDict()))


class Reduced:
    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


class StorageRef:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class TorchPickler(pickle.Pickler):
    """torch.save's pickler: storages are persistent ids ('storage', type, key, location, numel)."""

    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", sys.modules["torch"].FloatStorage, obj.key, "cpu", obj.numel)
        return None


def torch_pickle(obj):
    out = io.BytesIO()
    TorchPickler(out, protocol=2).dump(obj)
    return out.getvalue()


def checkpoint_corpus(out):
    import collections

    torch, utils, _ = fake_torch()
    path = lambda name: os.path.join(out, name)

    def state(extra=None):
        sd = collections.OrderedDict()
        sd["layer.weight"] = Tensor(utils, "0", (2, 3), parameter=True)
        sd["layer.bias"] = Tensor(utils, "1", (3,))
        sd["dtype"] = torch.float32
        sd["shape"] = torch.Size((2, 3))
        if extra is not None:
            sd["extra"] = extra
        sd._metadata = collections.OrderedDict([("", {"version": 1})])
        return sd

    def zip_checkpoint(name, obj):
        # torch.save's zip: <archive>/data.pkl, byteorder, data/<key>, version, stored.
        archive = name.split(".")[0]
        with zipfile.ZipFile(path(name), "w", zipfile.ZIP_STORED) as z:
            z.writestr(f"{archive}/data.pkl", torch_pickle(obj))
            z.writestr(f"{archive}/byteorder", b"little")
            z.writestr(f"{archive}/data/0", np.arange(6, dtype=np.float32).tobytes())
            z.writestr(f"{archive}/data/1", np.arange(3, dtype=np.float32).tobytes())
            z.writestr(f"{archive}/version", b"3\n")
            z.writestr(f"{archive}/.data/serialization_id", b"0123456789")

    def legacy_checkpoint(name, obj):
        # torch's legacy format: magic number, protocol version, system info, the data
        # pickle, the storage keys, then each storage's element count and bytes.
        f = io.BytesIO()
        for header in [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}]:
            pickle.dump(header, f, protocol=2)
        f.write(torch_pickle(obj))
        pickle.dump(["0", "1"], f, protocol=2)
        for n in (6, 3):
            f.write(n.to_bytes(8, "little") + np.arange(n, dtype=np.float32).tobytes())
        open(path(name), "wb").write(f.getvalue())

    zip_checkpoint("good.pt", state())
    legacy_checkpoint("good_legacy.pth", state())
    zip_checkpoint("eval.pt", state(Reduce(eval, ("1+1",))))
    zip_checkpoint("numpy.pt", state(np.arange(3)))
    legacy_checkpoint("system_legacy.pth", state(Reduce(os.system, ("true",))))

    from fickling.analysis import check_safety
    from fickling.fickle import Pickled

    facts = {}
    for name in sorted(os.listdir(out)):
        data = open(path(name), "rb").read()
        pickles = []
        if zipfile.is_zipfile(path(name)):
            with zipfile.ZipFile(path(name)) as z:
                pickles = [z.read(n) for n in z.namelist() if n.endswith(".pkl")]
        else:
            stream = io.BytesIO(data)
            for _ in range(5):
                start = stream.tell()
                Recording(stream, set()).load()
                pickles.append(data[start : stream.tell()])
        imports = sorted({g for p in pickles for g in python_imports(p)})
        severity = max(check_safety(Pickled.load(p)).severity for p in pickles)
        facts[name] = {"imports": imports, "fickling": severity.name}
    # What Python's unpickler renames at protocols 0 to 2 (fix_imports): a name written as
    # one of these is imported as another.
    import _compat_pickle

    facts["fix_imports"] = {
        "modules": sorted(_compat_pickle.IMPORT_MAPPING),
        "names": sorted(f"{m}.{n}" for m, n in _compat_pickle.NAME_MAPPING),
    }
    return facts


def cyclonedx(path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(path).read())
    return {"errors": None if errors is None else str(errors)}


def main():
    command, arg = sys.argv[1], sys.argv[2]
    corpus = {
        "safetensors": safetensors_corpus,
        "gguf": gguf_corpus,
        "onnx": onnx_corpus,
        "pickles": pickle_corpus,
        "hostile": hostile_corpus,
        "compressed": compressed_corpus,
        "checkpoints": checkpoint_corpus,
        "cyclonedx": cyclonedx,
    }[command]
    json.dump(corpus(arg), sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
