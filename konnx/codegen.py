"""`konnx codegen`: a converted model written out as a readable Keras 3 module.

The code is generated from the converted model itself, never from the ONNX graph: every layer's
class and `get_config()` become one statement (built-in layers as `keras.layers.X(...)` with the
arguments that differ from the class's defaults, konnx's own layers imported from `konnx.layers`),
and the layers are connected by walking the functional model's config (`inbound_nodes`), in its
topological order. Comments name the ONNX node a layer came from (the tensor map records it
per layer) and, for padded convolutions and pools, konnx's padding decision. `build()` in the generated
module returns the model with the converted weights loaded from the `.weights.h5` file next to it.
"""
from __future__ import annotations

import builtins
import inspect
import keyword
import math
import re
from pathlib import Path

from ._version import __version__
from .errors import ConversionError

MODULE_FILE = "model.py"
WEIGHTS_FILE = "model.weights.h5"
_WIDTH = 110  # a statement longer than this gets one argument per line
_NAME_RE = re.compile(r"[^A-Za-z0-9_\-]+")  # how konnx turns ONNX node names into layer names
_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | {"keras", "np", "numpy", "Path", "WEIGHTS", "build",
                                                        "create_model", "model", "weights"}
_SKIPPED = {"build_config", "compile_config"}


class CodegenError(ConversionError):
    """The converted model holds something konnx cannot write as code (names the layer)."""


# ----------------------------------------------------------------------------- literals
def literal(value) -> str:
    """Python source that evaluates to `value` (configs hold JSON-like values)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else '-float("inf")'
        return repr(value)
    if isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return literal(value.tolist())
    raise CodegenError(f"cannot write a {type(value).__name__} value ({value!r}) as Python source")


def _is_serialized_object(value) -> bool:
    return isinstance(value, dict) and "class_name" in value and "config" in value


# ----------------------------------------------------------------------------- names
class _Names:
    """Python identifiers derived from layer names, unique and never shadowing a builtin."""

    def __init__(self):
        self.used = set()

    def new(self, base: str) -> str:
        ident = re.sub(r"\W+", "_", base).strip("_").lower() or "x"
        if ident[0].isdigit():
            ident = "x_" + ident
        if ident in _RESERVED or ident in ("l", "o", "i"):
            ident += "_"
        name, k = ident, 1
        while name in self.used:
            k += 1
            name = f"{ident}_{k}"
        self.used.add(name)
        return name


def _node_names(onnx_model) -> dict:
    """konnx layer-name stem -> (ONNX node name, op type)."""
    stems = {}
    for node in onnx_model.graph.node if onnx_model is not None else ():
        stem = _NAME_RE.sub("_", node.name).strip("_.-") or "node"
        if not stem[0].isalpha():
            stem = "n" + stem
        stems.setdefault(stem, (node.name, node.op_type))
    return stems


def onnx_node_of(layer_name: str, stems: dict):
    """The ONNX node a layer was emitted for, for a model without the tensor map's layer record
    (konnx before module-path names): the longest stem the layer name starts with (konnx then
    named a node's layers `<node>` or `<node>_<role>`), or None."""
    parts = layer_name.split("_")
    for end in range(len(parts), 0, -1):
        hit = stems.get("_".join(parts[:end]))
        if hit is not None:
            return hit
    return None


def _short_reason(reason: str) -> str:
    reason = str(reason).split(": explicit")[0].split(" (")[0]
    return reason if len(reason) <= 90 else reason[:87] + "..."


def _padded(decision: dict) -> bool:
    """A convolution or pool that pads (explicitly, or by ceil_mode's extension)."""
    sides = list(decision.get("pads") or []) + list(decision.get("ceil_extension") or [])
    return any(any(p) if isinstance(p, (list, tuple)) else p for p in sides)


def _padding_notes(decisions) -> dict:
    notes = {}
    for d in decisions or ():
        if isinstance(d, dict) and d.get("node") and d.get("decision") and _padded(d):
            notes[d["node"]] = f"padding {d['decision']}: {_short_reason(d.get('reason', ''))}"
    return notes


# ----------------------------------------------------------------------------- layer statements
def _class_expr(layer, konnx_classes: set) -> str:
    import keras

    import konnx.layers

    cls = type(layer)
    if getattr(keras.layers, cls.__name__, None) is cls:
        return f"keras.layers.{cls.__name__}"
    if getattr(konnx.layers, cls.__name__, None) is cls:
        konnx_classes.add(cls.__name__)
        return cls.__name__
    raise CodegenError(f"layer '{layer.name}' is a {cls.__module__}.{cls.__name__}, which is neither in "
                       "keras.layers nor in konnx.layers: konnx cannot write code for it")


def _defaults(cls) -> dict:
    defaults = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        defaults.update({p.name: p.default for p in params if p.default is not inspect.Parameter.empty})
    # konnx's named layers take their function's parameters as keyword arguments
    defaults.update(getattr(cls, "argument_defaults", dict)())
    return defaults


def layer_arguments(layer, config: dict) -> list:
    """(keyword, source) for every argument of `config` that differs from the class's default.
    Initializers are left out: `build()` loads every weight from the weights file."""
    defaults = _defaults(type(layer))
    args = [("name", literal(config["name"]))]
    for key, value in config.items():
        if key in _SKIPPED or key == "name" or key.endswith("_initializer"):
            continue
        if key == "trainable" and value is True:
            continue
        if key == "format_version":  # konnx's layers: the version this konnx writes is the default
            from .layers.format import FORMAT_VERSION
            if value == FORMAT_VERSION:
                continue
        if key == "dtype" and _is_serialized_object(value) and value.get("class_name") == "DTypePolicy":
            value = value["config"]["name"]
            if value == "float32":
                continue
        if key in defaults and (_same(defaults[key], value) or (defaults[key] is None and value in ([], {}))):
            continue
        if _is_serialized_object(value):
            args.append((key, f"keras.saving.deserialize_keras_object({literal(value)})"))
        else:
            args.append((key, literal(value)))
    return args


def _same(default, value) -> bool:
    def norm(v):
        return list(v) if isinstance(v, tuple) else v

    try:
        return bool(norm(default) == norm(value))
    except (TypeError, ValueError):
        return False


def _call(head: str, args: list, indent: str) -> str:
    """`head(k=v, ...)` on one line, or one argument per line when long."""
    one = f"{head}({', '.join(f'{k}={v}' for k, v in args)})"
    if len(indent) + len(one) <= _WIDTH:
        return one
    inner = "".join(f"{indent}    {k}={v},\n" for k, v in args)
    return f"{head}(\n{inner}{indent})"


# ----------------------------------------------------------------------------- the graph
class _Graph:
    """Walks the model config's layers (topological order) and writes one statement per call."""

    def __init__(self, model, stems: dict, notes: dict):
        self.model, self.stems, self.notes = model, stems, notes
        # the tensor map's record of each layer's ONNX node (konnx.naming); stems: older models
        record = getattr(model, "konnx_tensor_map", None)
        self.layer_nodes = (record.get("layers") or {}) if isinstance(record, dict) else {}
        self.names = _Names()
        self.outputs = {}            # (layer name, node index) -> (variable, number of outputs)
        self.konnx_classes = set()
        self.lines = []
        self._last_node = None

    def tensor(self, history) -> str:
        layer_name, node_index, tensor_index = history
        var, count = self.outputs[(layer_name, node_index)]
        return f"{var}[{tensor_index}]" if count > 1 else var

    def argument(self, value) -> str:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            return self.tensor(value["config"]["keras_history"])
        if isinstance(value, (list, tuple)):
            return literal(type(value)(_Src(self.argument(v)) for v in value))
        return literal(value)

    def comment(self, layer_name: str) -> None:
        known = self.layer_nodes.get(layer_name)
        hit = (known["node"], known["op_type"]) if known else onnx_node_of(layer_name, self.stems)
        if hit is None or hit[0] == self._last_node:
            return
        self._last_node = hit[0]
        note = self.notes.get(hit[0])
        self.lines.append(f"    # ONNX {hit[1]} node {hit[0]!r}" + (f"; {note}" if note else ""))

    def input_layer(self, layer_config: dict) -> None:
        cfg = layer_config["config"]
        var = self.names.new(cfg["name"])
        args = [("batch_shape", literal(tuple(cfg["batch_shape"]))), ("dtype", literal(cfg.get("dtype"))),
                ("name", literal(cfg["name"]))]
        if cfg.get("sparse"):
            args.append(("sparse", "True"))
        self.lines.append(f"    {var} = {_call('keras.Input', args, '    ')}")
        self.outputs[(layer_config["name"], 0)] = (var, 1)

    def layer(self, layer_config: dict) -> None:
        layer = self.model.get_layer(layer_config["name"])
        head = _class_expr(layer, self.konnx_classes)
        ctor = _call(head, layer_arguments(layer, layer_config["config"]), "    ")
        nodes = layer_config.get("inbound_nodes") or []
        self.comment(layer.name)
        var = self.names.new(layer.name)
        if len(nodes) != 1:
            self.lines.append(f"    {var}_layer = {ctor}")
        for i, node in enumerate(nodes):
            out = var if len(nodes) == 1 else self.names.new(f"{layer.name}_{i}")
            args = [self.argument(a) for a in node.get("args", [])]
            args += [f"{k}={self.argument(v)}" for k, v in node.get("kwargs", {}).items()]
            callee = ctor if len(nodes) == 1 else f"{var}_layer"
            self.lines.append(f"    {out} = {callee}({', '.join(args)})")
            self.outputs[(layer.name, i)] = (out, len(layer._inbound_nodes[i].outputs))

    def endpoints(self, spec) -> str:
        if spec and isinstance(spec[0], str):
            return self.tensor(spec)
        return "[" + ", ".join(self.tensor(s) for s in spec) + "]"


class _Src(str):
    """Source text that `literal` writes as is."""

    def __repr__(self):
        return str(self)


def _body(model, onnx_model, decisions) -> _Graph:
    config = model.get_config()
    graph = _Graph(model, _node_names(onnx_model), _padding_notes(decisions))
    for layer_config in config["layers"]:
        if layer_config["class_name"] == "InputLayer":
            graph.input_layer(layer_config)
        else:
            graph.layer(layer_config)
    inputs, outputs = graph.endpoints(config["input_layers"]), graph.endpoints(config["output_layers"])
    graph.lines.append(f"    return keras.Model(inputs={inputs}, outputs={outputs}, name={config['name']!r})")
    return graph


_HEADER = '''"""Keras 3 model generated by konnx {version} from {source}.

`build()` returns the model with the converted weights (model.weights.h5, next to this file);
`create_model()` only the architecture, freshly initialized. Edit freely: this is plain Keras.
"""
from pathlib import Path

import keras
{konnx_import}
WEIGHTS = Path(__file__).with_name({weights!r})


def create_model():
    """The architecture: one statement per layer, in the converted model's order."""
'''

_FOOTER = '''

def build(weights=WEIGHTS):
    """The model with its weights loaded from `weights` (a .weights.h5 file)."""
    model = create_model()
    model.load_weights(weights)
    return model
'''


def _import_line(module: str, names: list) -> str:
    """`from module import names` as ruff's isort writes it: one line up to 88 characters,
    else one name per line in parentheses (empty when there are no names)."""
    if not names:
        return ""
    one = f"from {module} import {', '.join(names)}"
    if len(one) <= 88:
        return f"\n{one}\n"
    inner = "".join(f"    {n},\n" for n in names)
    return f"\nfrom {module} import (\n{inner})\n"


def generate(conversion, source: str = "an ONNX model", weights_file: str = WEIGHTS_FILE) -> str:
    """The module's source for a `konnx.convert_detailed(...)` result (or a bare keras.Model)."""
    model = getattr(conversion, "model", conversion)
    graph = _body(model, getattr(conversion, "onnx_model", None), getattr(conversion, "decisions", ()))
    classes = sorted(graph.konnx_classes)
    konnx_import = _import_line("konnx.layers", classes)
    header = _HEADER.format(version=__version__, source=source, konnx_import=konnx_import, weights=weights_file)
    return header + "\n".join(graph.lines) + "\n" + _FOOTER


def write(conversion, folder, source: str = "an ONNX model") -> Path:
    """Write `folder/model.py` and `folder/model.weights.h5` (the folder must exist)."""
    folder = Path(folder)
    text = generate(conversion, source)
    (folder / MODULE_FILE).write_text(text)
    getattr(conversion, "model", conversion).save_weights(str(folder / WEIGHTS_FILE))
    return folder / MODULE_FILE


def load_generated(folder):
    """Import `folder/model.py` (under a name of its own) and return its `build()` result."""
    import importlib.util

    path = Path(folder) / MODULE_FILE
    spec = importlib.util.spec_from_file_location(f"_konnx_generated_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


def foreign_files(folder) -> list:
    """What in `folder` is not a codegen output (the CLI replaces the folder as a whole)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name not in (MODULE_FILE, WEIGHTS_FILE))
