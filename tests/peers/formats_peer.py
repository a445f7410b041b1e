"""Writes model files with the formats' own Python packages and reports what those
packages read back, for vouch's format and SBOM interop tests.

Usage (each prints one JSON object on stdout):
  formats_peer.py safetensors DIR   -> {file: facts} as the safetensors package reads them
  formats_peer.py gguf DIR          -> {file: facts} as the gguf package's reader reports them
  formats_peer.py onnx DIR          -> {file: facts} as the onnx package reads them
  formats_peer.py pickles DIR       -> {file: [[module, name, safety], ...]} from picklescan
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
        "cyclonedx": cyclonedx,
    }[command]
    json.dump(corpus(arg), sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
