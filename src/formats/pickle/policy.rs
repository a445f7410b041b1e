//! What the pickle gate refuses. Two policies rate the globals a pickle imports:
//! `strict` (the default) allows only what a weights-only load of a PyTorch checkpoint
//! needs, modelled on PyTorch's `weights_only=True` unpickler, and refuses everything else
//! by name; `picklescan` refuses what picklescan 1.0.5 rates dangerous, as picklescan does.

use serde::Serialize;

/// How picklescan rates an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Safety {
    Innocuous,
    Suspicious,
    Dangerous,
}

/// Which imports the gate refuses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PicklePolicy {
    /// Only the globals a weights-only load needs ([`allowed`]).
    #[default]
    Strict,
    /// Whatever picklescan rates dangerous.
    Picklescan,
}

impl PicklePolicy {
    pub fn name(self) -> &'static str {
        match self {
            PicklePolicy::Strict => "strict",
            PicklePolicy::Picklescan => "picklescan",
        }
    }

    /// Whether this policy refuses an import of `module.name` that picklescan rates `safety`.
    pub fn refuses(self, module: &str, name: &str, safety: Safety) -> bool {
        match self {
            PicklePolicy::Strict => !allowed(module, name),
            PicklePolicy::Picklescan => safety == Safety::Dangerous,
        }
    }
}

/// PyTorch's storage types, as `torch.save` names them (`torch.FloatStorage`, ...).
const STORAGES: &[&str] = &[
    "DoubleStorage",
    "FloatStorage",
    "HalfStorage",
    "LongStorage",
    "IntStorage",
    "ShortStorage",
    "CharStorage",
    "ByteStorage",
    "BoolStorage",
    "BFloat16Storage",
    "ComplexDoubleStorage",
    "ComplexFloatStorage",
    "QUInt8Storage",
    "QInt8Storage",
    "QInt32Storage",
    "QUInt4x2Storage",
    "QUInt2x4Storage",
];

/// PyTorch's legacy tensor types (`torch.FloatTensor`, ...).
const TENSOR_TYPES: &[&str] = &[
    "DoubleTensor",
    "FloatTensor",
    "HalfTensor",
    "BFloat16Tensor",
    "LongTensor",
    "IntTensor",
    "ShortTensor",
    "CharTensor",
    "ByteTensor",
    "BoolTensor",
];

/// `torch.<dtype>` names: the storage dtypes, the newer ones, sub-byte integers, and the
/// quantization schemes a quantized tensor records.
const DTYPES: &[&str] = &[
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
    "complex128",
    "complex64",
    "complex32",
    "quint8",
    "qint8",
    "qint32",
    "quint4x2",
    "quint2x4",
    "uint16",
    "uint32",
    "uint64",
    "float8_e5m2",
    "float8_e4m3fn",
    "float8_e5m2fnuz",
    "float8_e4m3fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
    "bits8",
    "bits16",
    "bits1x8",
    "bits2x4",
    "bits4x2",
    "uint1",
    "uint2",
    "uint3",
    "uint4",
    "uint5",
    "uint6",
    "uint7",
    "int1",
    "int2",
    "int3",
    "int4",
    "int5",
    "int6",
    "int7",
    "per_tensor_affine",
    "per_tensor_symmetric",
    "per_channel_affine",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
];

/// The `torch._utils` functions that rebuild tensors and parameters.
const REBUILD_FUNCTIONS: &[&str] = &[
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_sparse_tensor",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_wrapper_subclass",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_device_tensor_from_cpu_tensor",
];

/// The strict allow-list: the globals PyTorch's `weights_only=True` unpickler allows by
/// default. Names are matched exactly as the pickle writes them: none of these is renamed by
/// Python's protocol 0-2 import fixes (`__builtin__` becomes `builtins`), so the name imported
/// is the name allowed.
/// NumPy's globals (`numpy.core.multiarray._reconstruct`, `numpy.dtype`) are not allowed:
/// PyTorch does not allow them by default either, and object arrays unpickle anything.
pub fn allowed(module: &str, name: &str) -> bool {
    match module {
        "collections" => matches!(name, "OrderedDict" | "Counter"),
        "torch" => {
            STORAGES.contains(&name)
                || TENSOR_TYPES.contains(&name)
                || DTYPES.contains(&name)
                || matches!(name, "Size" | "Tensor" | "device")
        }
        "torch.cuda" => STORAGES.contains(&name) || TENSOR_TYPES.contains(&name),
        "torch.storage" => matches!(name, "TypedStorage" | "UntypedStorage"),
        "torch._utils" => REBUILD_FUNCTIONS.contains(&name),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch.nn.parameter" => name == "Parameter",
        "torch.serialization" => name == "_get_layout",
        "_codecs" => name == "encode",
        // Protocols 0 to 2 write Python 2's name of builtins; Python 3 imports it as builtins.
        "builtins" | "__builtin__" => matches!(name, "bytearray" | "set" | "complex"),
        _ => false,
    }
}

/// Every entry of the strict allow-list as `module.name`, for documentation and tests.
pub fn allow_list() -> Vec<String> {
    let torch = STORAGES.iter().chain(TENSOR_TYPES).chain(DTYPES);
    let mut all: Vec<String> = torch.map(|n| format!("torch.{n}")).collect();
    all.extend(["Size", "Tensor", "device"].map(|n| format!("torch.{n}")));
    all.extend(
        STORAGES
            .iter()
            .chain(TENSOR_TYPES)
            .map(|n| format!("torch.cuda.{n}")),
    );
    all.extend(
        REBUILD_FUNCTIONS
            .iter()
            .map(|n| format!("torch._utils.{n}")),
    );
    all.extend(
        [
            "collections.OrderedDict",
            "collections.Counter",
            "torch.storage.TypedStorage",
            "torch.storage.UntypedStorage",
            "torch._tensor._rebuild_from_type_v2",
            "torch.nn.parameter.Parameter",
            "torch.serialization._get_layout",
            "_codecs.encode",
            "builtins.bytearray",
            "builtins.set",
            "builtins.complex",
            "__builtin__.bytearray",
            "__builtin__.set",
            "__builtin__.complex",
        ]
        .map(String::from),
    );
    all
}

enum Names {
    All,
    Only(&'static [&'static str]),
    /// picklescan tests these with Python's `in` on a string, so any part of it matches.
    Within(&'static str),
}

impl Names {
    fn covers(&self, name: &str) -> bool {
        match self {
            Names::All => true,
            Names::Only(names) => names.contains(&name),
            Names::Within(text) => text.contains(name),
        }
    }
}

/// Globals picklescan 1.0.5 rates innocuous.
fn safe_rule(module: &str) -> Option<Names> {
    const STORAGES: &[&str] = &[
        "LongStorage",
        "FloatStorage",
        "HalfStorage",
        "QUInt2x4Storage",
        "QUInt4x2Storage",
        "QInt32Storage",
        "QInt8Storage",
        "QUInt8Storage",
        "ComplexFloatStorage",
        "ComplexDoubleStorage",
        "DoubleStorage",
        "BFloat16Storage",
        "BoolStorage",
        "CharStorage",
        "ShortStorage",
        "IntStorage",
        "ByteStorage",
    ];
    Some(match module {
        "collections" => Names::Only(&["OrderedDict"]),
        "torch" => Names::Only(STORAGES),
        "numpy" => Names::Only(&["dtype", "ndarray"]),
        "numpy._core.multiarray" | "numpy.core.multiarray" => Names::Only(&["_reconstruct"]),
        "torch._utils" => Names::Only(&["_rebuild_tensor_v2"]),
        _ => return None,
    })
}

/// Globals picklescan 1.0.5 rates dangerous.
fn unsafe_rule(module: &str) -> Option<Names> {
    const BUILTINS: &[&str] = &[
        "eval",
        "compile",
        "getattr",
        "apply",
        "exec",
        "open",
        "breakpoint",
    ];
    const GETTERS: &[&str] = &["attrgetter", "itemgetter", "methodcaller"];
    Some(match module {
        "__builtin__" | "builtins" => Names::Only(BUILTINS),
        "cloudpickle.cloudpickle" => Names::Only(&[
            "_builtin_type",
            "_make_function",
            "_function_setstate",
            "_make_cell",
            "_make_empty_cell",
            "subimport",
        ]),
        "types" => Names::Only(&["CodeType"]),
        "functools" => Names::Within("partial"),
        "logging" => Names::Only(&["FileHandler"]),
        "_io" => Names::Only(&["FileIO"]),
        "_operator" | "operator" => Names::Only(GETTERS),
        "code" => Names::Only(&["InteractiveInterpreter.runcode"]),
        "doctest" => Names::Only(&["debug_script"]),
        "ensurepip" => Names::Only(&["_run_pip"]),
        "idlelib.autocomplete" => {
            Names::Only(&["AutoComplete.get_entity", "AutoComplete.fetch_completions"])
        }
        "idlelib.calltip" => Names::Only(&["Calltip.fetch_tip", "get_entity"]),
        "idlelib.debugobj" => Names::Only(&["ObjectTreeItem.SetText"]),
        "idlelib.pyshell" => Names::Only(&[
            "ModifiedInterpreter.runcode",
            "ModifiedInterpreter.runcommand",
        ]),
        "idlelib.run" => Names::Only(&["Executive.runcode"]),
        "imaplib" => Names::Only(&["IMAP4_stream"]),
        "lib2to3.pgen2.grammar" => Names::Only(&["Grammar.loads"]),
        "lib2to3.pgen2.pgen" => Names::Only(&["ParserGenerator.make_label"]),
        "pkgutil" => Names::Only(&["resolve_name"]),
        "torch._dynamo.guards" => Names::Only(&["GuardBuilder.get"]),
        "torch._inductor.codecache" => Names::Within("compile_file"),
        "torch.fx.experimental.symbolic_shapes" => {
            Names::Only(&["ShapeEnv.evaluate_guards_expression"])
        }
        "torch.jit.unsupported_tensor_ops" => Names::Only(&["execWrapper"]),
        "torch.serialization" => Names::Within("load"),
        "torch.utils._config_module" => Names::Only(&["ConfigModule.load_config"]),
        "torch.utils.bottleneck.__main__" => Names::Only(&["run_cprofile", "run_autograd_prof"]),
        "torch.utils.collect_env" => Names::Only(&["run"]),
        "torch.utils.data.datapipes.utils.decoder" => Names::Only(&["basichandlers"]),
        "trace" => Names::Only(&["Trace.run", "Trace.runctx"]),
        "aiohttp"
        | "asyncio"
        | "bdb"
        | "commands"
        | "ctypes"
        | "httplib"
        | "numpy.f2py"
        | "numpy.testing._private.utils"
        | "nt"
        | "posix"
        | "os"
        | "requests.api"
        | "runpy"
        | "shutil"
        | "socket"
        | "ssl"
        | "subprocess"
        | "sys"
        | "cProfile"
        | "distutils.file_util"
        | "pdb"
        | "pickle"
        | "_pickle"
        | "pip"
        | "pty"
        | "profile"
        | "pydoc"
        | "test"
        | "timeit"
        | "urllib.request"
        | "uuid"
        | "venv"
        | "webbrowser"
        | "_osx_support"
        | "_aix_support"
        | "_pyrepl" => Names::All,
        _ => return None,
    })
}

/// Rates an import as picklescan 1.0.5 does (without `--strict`).
pub fn safety(module: &str, name: &str) -> Safety {
    if module.contains("unknown") || name.contains("unknown") {
        return Safety::Dangerous;
    }
    let mut rule = unsafe_rule(module);
    if rule.is_none() {
        // A module under one that is dangerous as a whole is dangerous too.
        let parts: Vec<&str> = module.split('.').collect();
        rule = (1..parts.len())
            .map(|i| parts[..i].join("."))
            .find(|parent| matches!(unsafe_rule(parent), Some(Names::All)))
            .map(|_| Names::All);
    }
    if rule.is_some_and(|r| r.covers(name)) {
        return Safety::Dangerous;
    }
    if safe_rule(module).is_some_and(|r| r.covers(name)) {
        return Safety::Innocuous;
    }
    Safety::Suspicious
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_imports_as_picklescan_does() {
        assert_eq!(safety("os", "system"), Safety::Dangerous);
        assert_eq!(safety("os.path", "join"), Safety::Dangerous);
        assert_eq!(safety("builtins", "exec"), Safety::Dangerous);
        assert_eq!(safety("builtins", "print"), Safety::Suspicious);
        assert_eq!(
            safety("torch._utils", "_rebuild_tensor_v2"),
            Safety::Innocuous
        );
        assert_eq!(safety("collections", "OrderedDict"), Safety::Innocuous);
        assert_eq!(safety("unknown", "x"), Safety::Dangerous);
        assert_eq!(safety("functools", "partial"), Safety::Dangerous);
    }

    #[test]
    fn strict_allows_only_the_weights_only_globals() {
        for entry in allow_list() {
            let (module, name) = entry.rsplit_once('.').unwrap();
            assert!(allowed(module, name), "{entry}");
        }
        assert!(!allowed("builtins", "eval"));
        assert!(!allowed("numpy.core.multiarray", "_reconstruct"));
        assert!(!allowed("torch", "load"));
        assert!(!allowed("collections", "OrderedDict.fromkeys"));
        assert!(!allowed("torch._utils", "_rebuild_tensor_v2 "));
        let strict = PicklePolicy::Strict;
        assert!(strict.refuses("datetime", "timedelta", Safety::Suspicious));
        assert!(!PicklePolicy::Picklescan.refuses("datetime", "timedelta", Safety::Suspicious));
    }
}
