"""Layer names that read like the PyTorch module a layer came from.

A node's layers are named after its module path (konnx.source_names.module_path: the dynamo
exporter's name_scopes metadata, else the TorchScript scope in the node name), with "." made "_"
(the torch backend refuses "." in variable paths): `features.0.0` -> `features_0_0`. When several
nodes come from one module (a conv and its activation in one nn.Sequential block, the ops of an
attention module), or a node comes from a module that has submodules (the residual add of a
block), it is suffixed with its op kind (`features_0_0_conv`, `features_0_0_relu`, `layer1_0_add`).
A node without a module path is named after the ONNX node. Helper layers a node needs are named
`<node's name>_<role>` (`features_0_0_pad`; a role the name already ends with is not repeated). Graph input and output names are reserved for the
model's inputs and outputs, so no layer takes them.

The namer also records, for every layer name it hands out, the ONNX node it was made for and the
initializers that node reads: the tensor map keeps them (codegen comments, `konnx.weight_names`).
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Optional

from .source_names import module_path

_NAME_RE = re.compile(r"[^A-Za-z0-9_\-]+")  # no ".": the torch backend refuses it in variable paths
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def sanitize(name: str) -> str:
    """`name` as a Keras layer name: only letters, digits, "_" and "-", starting with a letter."""
    out = _NAME_RE.sub("_", name).strip("_.-") or "node"
    return out if out[0].isalpha() else "n" + out


def op_kind(op_type: str) -> str:
    """`Conv` -> `conv`, `BatchNormalization` -> `batch_normalization`, `MatMul` -> `mat_mul`."""
    return _CAMEL.sub("_", op_type).lower()


class Namer:
    """Unique layer names from module paths; one module-path lookup per node (cached)."""

    def __init__(self, nodes: Iterable = (), initializers: Iterable[str] = (), reserved: Iterable[str] = ()):
        self.used: set[str] = set()
        self.reserved = {sanitize(n) for n in reserved}
        self.initializers = set(initializers)
        self.layer_nodes: dict[str, dict] = {}  # layer name -> {"node", "op_type", "weights"}
        self._paths: dict[str, Optional[str]] = {}  # ONNX node name -> module path, one lookup each
        for proto in nodes:
            if proto.name and proto.name not in self._paths:
                self._paths[proto.name] = module_path(proto)
        self._stem_count: Counter = Counter()
        self._per_module = Counter(p for p in self._paths.values() if p)
        # a module with submodules: its own nodes are the glue of its forward (`block_add`)
        self._parents = {p[:i] for p in self._per_module for i, c in enumerate(p) if c == "."}

    def base(self, node) -> str:
        """The stem of every layer name `node` (a konnx.graph.Node) gets, cached on the node."""
        stem = getattr(node, "_konnx_layer_stem", None)
        if stem is None:
            name = node.proto.name
            path = self._paths[name] if name in self._paths else module_path(node.proto)
            if path is None:
                stem = sanitize(node.name)
            elif self._per_module[path] > 1 or path in self._parents:
                stem = f"{sanitize(path)}_{op_kind(node.op_type)}"
            else:
                stem = sanitize(path)
            self._stem_count[stem] += 1  # one stem per node: node 2's pad is `<stem>_2_pad`
            if self._stem_count[stem] > 1:
                stem = f"{stem}_{self._stem_count[stem]}"
            node._konnx_layer_stem = stem
        return stem

    def name(self, node, suffix: str = "") -> str:
        """A fresh layer name for a layer made for `node` (None: konnx's own glue)."""
        base = self.base(node) if node is not None else "konnx"
        if suffix and not (base.lower() == suffix.lower() or base.lower().endswith("_" + suffix.lower())):
            base = f"{base}_{_NAME_RE.sub('_', suffix)}"
        name = self.unique(sanitize(base))
        if node is not None:
            self.layer_nodes[name] = {"node": node.name, "op_type": node.op_type,
                                      "weights": [i for i in node.inputs if i in self.initializers]}
        return name

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.used or name in self.reserved:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def claim(self, io_name: str) -> str:
        """The name of a graph input or output (reserved): itself sanitized, once."""
        name = sanitize(io_name)
        if name in self.reserved and name not in self.used:
            self.used.add(name)
            return name
        return self.unique(name)


def weight_names(model) -> dict:
    """Keras variable path -> the ONNX initializer it was converted from, for a model konnx
    built (its tensor map): `{"layer1_0_conv1/kernel": "layer1.0.conv1.weight", ...}`. Keras
    fixes its layers' variable names (kernel, bias, gamma...), so the PyTorch parameter names
    live here. Values are in the ONNX layout (a Conv kernel is transposed to Keras' HWIO)."""
    record = getattr(model, "konnx_tensor_map", None)
    return dict(record.get("weights") or {}) if isinstance(record, dict) else {}
