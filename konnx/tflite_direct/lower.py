"""The walk: each ONNX node of the normalized, planned graph becomes TFLite operators, every
computed tensor stored in the layout the plan decided for it (plan.perms: stored =
transpose(onnx, perm)). A consumer that wants another layout gets a TRANSPOSE view, made once
per tensor and layout. Anything this writer does not cover raises DirectUnsupported naming the
node: the caller then takes TensorFlow's converter instead."""
from __future__ import annotations

from typing import Optional

import numpy as np
from onnx import numpy_helper

from .. import layout as L
from ..errors import ConversionError
from ..graph import Node
from .flatbuf import ModelBuilder

# TFLite ActivationFunctionType
NONE, RELU, RELU_N1_TO_1, RELU6 = 0, 1, 2, 3


class DirectUnsupported(ConversionError):
    """The direct TFLite writer does not cover this model (names the first node and why)."""

    def __init__(self, message: str, node: Optional[Node] = None):
        where = f"{node.op_type} node '{node.name}': " if node is not None else ""
        super().__init__(where + message)


class Lowering:
    """State of one conversion: the builder, each ONNX tensor's TFLite tensor and layout."""

    def __init__(self, proto, plan, weights: dict, shapes: dict, opset: int):
        self.b = ModelBuilder()
        self.proto, self.plan, self.opset = proto, plan, opset
        self.shapes = shapes
        self._protos = {i.name: i for i in proto.graph.initializer}
        self._protos.update(weights)
        self._consts: dict = {}
        self.vals: dict = {}  # ONNX name -> (tensor index, perm)
        self._views: dict = {}  # (tensor index, perm) -> tensor index
        self.absorbed: set = set()  # first outputs of nodes merged into an earlier operator
        self.entries: list = []  # the tensor map: ONNX tensor -> TFLite tensor
        self.graph_outputs = {o.name for o in proto.graph.output}
        self.readers: dict = {}
        for n in proto.graph.node:
            for i in n.input:
                if i:
                    self.readers.setdefault(i, []).append(n)
        self.node: Optional[Node] = None

    # ------------------------------------------------------------------ values
    def is_const(self, name: str) -> bool:
        return name in self._consts or name in self._protos

    def const(self, name: str) -> np.ndarray:
        """A constant's value; a weight (over 1 MiB, read once by its node) is not kept."""
        if name in self._consts:
            return self._consts[name]
        if name not in self._protos:
            raise self.unsupported(f"input '{name}' must be a constant for the direct writer")
        value = numpy_helper.to_array(self._protos[name])
        if value.nbytes <= 1 << 20:
            self._consts[name] = value
        return value

    def set_const(self, name: str, value) -> None:
        self._consts[name] = np.asarray(value)

    def shape(self, name: str) -> tuple:
        """The static ONNX shape of a tensor (DirectUnsupported when a dim is unknown)."""
        if self.is_const(name):
            return tuple(self.const(name).shape)
        s = self.shapes.get(name)
        if s is None or any(not isinstance(d, (int, np.integer)) or d <= 0 for d in s):
            raise self.unsupported(f"tensor '{name}' has no static shape ({s})")
        return tuple(int(d) for d in s)

    def unsupported(self, message: str) -> DirectUnsupported:
        return DirectUnsupported(message, self.node)

    def planned(self, name: str) -> tuple:
        perm = self.plan.perms.get(name)
        if perm is None:
            raise self.unsupported(f"the plan left the layout of '{name}' undecided")
        return tuple(perm)

    # ------------------------------------------------------------------ tensors
    def new(self, name: str, perm: Optional[tuple] = None, shape: Optional[tuple] = None) -> int:
        """A new TFLite tensor for ONNX tensor `name`, stored with `perm` (the plan's)."""
        planned = self.planned(name)
        perm = planned if perm is None else tuple(perm)
        if perm != planned:
            raise self.unsupported(f"'{name}' would be stored as {perm}, the plan decided {planned}")
        onnx_shape = self.shape(name) if shape is None else shape
        if len(perm) != len(onnx_shape):
            raise self.unsupported(f"'{name}': layout {perm} for rank {len(onnx_shape)}")
        index = self.b.tensor([onnx_shape[p] for p in perm], name)
        self.vals[name] = (index, perm)
        self._entry(name, index, perm)
        return index

    def _entry(self, name: str, index: int, perm: tuple) -> None:
        node = self.node
        self.entries.append({"onnx": name, "node": node.name or name, "op_type": node.op_type,
                             "layer": name, "node_index": 0, "tensor_index": 0,
                             "perm": [int(p) for p in perm], "tflite_index": int(index)})

    def computed(self, name: str, perm: tuple) -> int:
        """A new TFLite tensor for ONNX tensor `name` as an op computes it, stored with `perm`
        (which may differ from the plan's); `settle(name)` after the op stores it as planned."""
        perm = tuple(perm)
        shape = self.shape(name)
        if len(perm) != len(shape):
            raise self.unsupported(f"'{name}': layout {perm} for rank {len(shape)}")
        if perm == self.planned(name):
            return self.new(name, perm)
        index = self.b.tensor([shape[p] for p in perm], f"{name}/computed")
        self.vals[name] = (index, perm)
        return index

    def settle(self, name: str) -> None:
        """Tensor `name` (from `computed`) stored in the planned layout: a TRANSPOSE when the
        op wrote another layout."""
        planned = self.planned(name)
        if self.vals[name][1] == planned:
            return
        index = self.view(name, planned)
        self.vals[name] = (index, planned)
        self._entry(name, index, planned)

    def alias(self, name: str, src: str, perm: Optional[tuple] = None) -> None:
        """ONNX tensor `name` is tensor `src`'s data (Identity, a fused activation), seen with `perm`."""
        index, p = self.vals[src]
        self.vals[name] = (index, p if perm is None else tuple(perm))

    def view(self, name: str, perm: tuple) -> int:
        """Tensor `name` stored with `perm` (a TRANSPOSE when it is stored otherwise)."""
        if name not in self.vals:
            raise self.unsupported(f"input '{name}' is not a tensor the writer computed")
        index, src = self.vals[name]
        perm = tuple(perm)
        if src == perm:
            return index
        key = (index, src, perm)
        if key not in self._views:
            t = L.transition(src, perm)
            shape = self.b.shape(index)
            out = self.b.tensor([shape[a] for a in t], f"{name}/transposed")
            self.b.op("TRANSPOSE", [index, self.b.constant(np.asarray(t, np.int32), f"{name}/perm")], [out])
            self._views[key] = out
        return self._views[key]

    def operand(self, name: str, perm: tuple) -> int:
        """Input `name` of an element-wise op whose output is stored with `perm`: a tensor viewed
        in that layout (rank-extended), a constant broadcast to the rank and permuted."""
        rank = len(perm)
        if self.is_const(name):
            c = self.const(name)
            if c.dtype == np.float64:
                c = c.astype(np.float32)
            c = c.reshape((1,) * (rank - c.ndim) + c.shape)
            return self.b.constant(np.transpose(c, perm), name)
        index, src = self.vals[name]
        if len(src) == rank:
            return self.view(name, perm)
        k = rank - len(src)
        sub = tuple(p - k for p in perm if p >= k)
        if perm[:k] != tuple(range(k)):
            raise self.unsupported(f"'{name}' of rank {len(src)} broadcast into layout {perm}")
        return self.view(name, sub)

    def int32(self, values, name: str) -> int:
        return self.b.constant(np.asarray(values, np.int32), name)

    # ------------------------------------------------------------------ fusion
    def sole_reader(self, name: str):
        """The one node reading `name`, when nothing else (not the graph's outputs) does."""
        readers = self.readers.get(name, [])
        if name in self.graph_outputs or len(readers) != 1:
            return None
        return readers[0]

    def fused_activation(self, name: str) -> tuple[str, int]:
        """(the tensor the op finally produces, TFLite fused activation): a Relu or Clip(0, 6)
        that alone reads `name` is merged into the op writing it."""
        r = self.sole_reader(name)
        if r is None or r.input[0] != name:
            return name, NONE
        code = activation_code(self, r)
        if code is None:
            return name, NONE
        self.absorbed.add(r.output[0])
        return r.output[0], code


def clip_bounds(lw: Lowering, node) -> Optional[tuple]:
    """(min, max) of a Clip node as floats (None when an input bound is not a constant)."""
    n = Node(node, lw.opset) if not isinstance(node, Node) else node
    if lw.opset < 11:
        return float(n.attr("min", -np.inf)), float(n.attr("max", np.inf))
    bounds = []
    for i, default in ((1, -np.inf), (2, np.inf)):
        if not n.has_input(i):
            bounds.append(default)
        elif lw.is_const(n.inputs[i]):
            bounds.append(float(lw.const(n.inputs[i])))
        else:
            return None
    return tuple(bounds)


def activation_code(lw: Lowering, node) -> Optional[int]:
    """The fused activation a Relu / Clip node is, or None."""
    if node.op_type == "Relu":
        return RELU
    if node.op_type == "Clip":
        b = clip_bounds(lw, node)
        return {(0.0, 6.0): RELU6, (0.0, np.inf): RELU, (-1.0, 1.0): RELU_N1_TO_1}.get(b)
    return None
