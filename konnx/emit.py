"""Emit: walk the (normalized) ONNX graph in order, call each node's converter on Keras tensors.

`Context` is what a converter sees: its node's inputs as `Const` or `Tensor` values, helpers to
get a Keras tensor in a wanted layout, and `layer()` / `op()` to add Keras layers.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional, Sequence

import keras
import numpy as np
from onnx import numpy_helper

from . import layout as L
from . import padding as P
from .dims import runtime_shape
from .errors import ConversionError, NodeConversionError
from .evaluate import fold_node
from .graph import Node
from .layers.named import PROMOTED
from .layers.op import KonnxOp, make_slots
from .loader import NONDETERMINISTIC
from .naming import Namer
from .ops.registry import Facts, lookup
from .values import Const, Tensor, has_dims, onnx_shape_from_keras


def merge_shapes(a: Optional[tuple], b: Optional[tuple]) -> tuple:
    """Combine an ONNX-inferred shape and a Keras-derived one, preferring known ints."""
    if not a:
        return tuple(b or ())
    if not b:
        return tuple(a)
    if len(a) != len(b):
        # the built tensor is the fact (its perm has its rank); an inferred shape of another
        # rank comes from a declared shape shape inference could not check
        return tuple(b)
    out = []
    for x, y in zip(a, b):
        if isinstance(x, (int, np.integer)):
            out.append(int(x))
        elif isinstance(y, (int, np.integer)):
            out.append(int(y))
        else:
            out.append(x if x is not None else y)
    return tuple(out)


def keep_float_dtype(layer, inputs) -> None:
    """Keras layers compute in float32 and cast float16/bfloat16/float64 inputs to it: give an
    unbuilt layer the dtype of its float inputs instead, so the model keeps the ONNX dtype."""
    kts = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    dts = {keras.backend.standardize_dtype(t.dtype) for t in kts if hasattr(t, "dtype")}
    if len(dts) == 1 and not layer.built:
        dt = dts.pop()
        if dt in ("float16", "bfloat16", "float64"):
            layer.dtype_policy = dt


class Context:
    """Per-conversion state shared by converters through a narrow API."""

    def __init__(self, value_shapes: dict, value_types: dict, plan=None):
        self.plan = plan  # the plan's records (konnx.plan.Plan), read by converters
        self.values: dict[str, Any] = {}
        self.value_shapes = value_shapes
        self.value_types = value_types
        self.decisions: list[dict] = []
        self.node: Optional[Node] = None
        self.namer = Namer()  # api._emit gives it the graph (module paths, reserved I/O names)
        self._perm_cache: dict[tuple[int, tuple], Any] = {}
        self._depth = 0  # > 0 inside an If/Loop/Scan body (the plan covers the main graph)
        # a converter building another layout than the plan decided is a konnx bug: the tests
        # raise on it (KONNX_STRICT_PLAN=1); a user's conversion moves the tensor to the planned
        # layout and goes on, recording the deviation
        self.strict_plan = os.environ.get("KONNX_STRICT_PLAN", "") not in ("", "0")

    def planned_perm(self, k: int = 0) -> Optional[L.Perm]:
        """The layout the plan decided for the current node's output k (None: not decided, e.g.
        a constant, a node inside an If/Loop/Scan body)."""
        if self.plan is None or self._depth or k >= len(self.node.outputs):
            return None
        return self.plan.perms.get(self.node.outputs[k])

    # ----------------------------------------------------------------- inputs
    def input(self, i: int):
        node = self.node
        if not node.has_input(i):
            return None
        return self.values[node.inputs[i]]

    @property
    def n_inputs(self) -> int:
        return len(self.node.inputs)

    def const(self, i: int, what: str = "", allow_dims: bool = False) -> Optional[np.ndarray]:
        """Input i as a numpy array; it must be known at conversion time."""
        v = self.input(i)
        if v is None:
            return None
        if not isinstance(v, Const):
            origin = getattr(getattr(getattr(v, "kt", None), "_keras_history", None), "operation", None)
            source = "a graph input" if isinstance(origin, keras.layers.InputLayer) else "computed by the graph"
            raise self.error(
                f"input {i} ('{self.node.inputs[i]}'{', ' + what if what else ''}) must be a constant "
                f"known at conversion time, but it is {source}"
            )
        if not allow_dims and has_dims(v.value):
            raise self.error(
                f"input {i} ('{self.node.inputs[i]}') depends on a dynamic dimension; "
                "fix it with input_shapes={...}"
            )
        return v.value

    def error(self, message: str) -> NodeConversionError:
        return NodeConversionError(self.node, message)

    # ----------------------------------------------------------------- naming
    def name(self, suffix: str = "") -> str:
        """A unique layer name for the current node: its module path (konnx.naming), with
        `_<suffix>` for a helper layer (`features_0_0_pad`)."""
        return self.namer.name(self.node, suffix)

    # ----------------------------------------------------------------- layout
    def keras(self, value, perm: Optional[L.Perm] = None):
        """`value` as a Keras tensor (or numpy array for a constant) stored with `perm`.
        perm=None keeps a tensor's current layout."""
        if isinstance(value, Const) and has_dims(value.value):
            value = self.materialize(value)
        if isinstance(value, Const):
            arr = value.value
            if perm is not None and not L.is_identity(perm):
                arr = np.transpose(arr, perm)
            return arr
        if perm is None or tuple(perm) == tuple(value.perm):
            return value.kt
        # a view is a function of the stored tensor AND its stored layout: two values may share
        # one Keras tensor under different perms (Transpose moves no data)
        key = (id(value.kt), tuple(value.perm), tuple(perm))
        if key in self._perm_cache:
            return self._perm_cache[key][1]
        t = L.transition(value.perm, perm)
        moved = self._unit_move(value, t)
        if moved is not None:
            out = moved
        elif t[0] == 0:
            permute = keras.layers.Permute(t[1:], name=self.name("permute"))
            keep_float_dtype(permute, value.kt)
            out = permute(value.kt)
        else:
            out = self.op("transpose", [value.kt], axes=list(t), suffix="transpose")
        # keep the source alive so id() stays unique for this cache entry
        self._perm_cache[key] = (value.kt, out)
        return out

    def _unit_move(self, value, t):
        """When transposition `t` only moves size-1 axes, the same reshape (no data movement).
        An axis counts as size 1 only when the built tensor says so: a dynamic axis the ONNX
        shape calls 1 may come from a declared graph-output shape that inference could not
        check (a declared 1 where the input's 0 flows), and a reshape over it would be wrong."""
        kshape = list(value.kt.shape)
        for j, p in enumerate(value.perm):
            if kshape[j] is None and len(value.onnx_shape) == len(value.perm):
                d = value.onnx_shape[p]
                kshape[j] = d if isinstance(d, int) and d != 1 else None
        big = [a for a in t if kshape[a] != 1]
        if big != sorted(big) or len(big) == len(t):
            return None
        spec = [1 if kshape[a] == 1 else (int(kshape[a]) if kshape[a] is not None else {"axis": a}) for a in t]
        return self.op("reshape", [value.kt], suffix="unit_axes", shape=spec)

    def materialize(self, value: Const) -> Tensor:
        """A shape value holding dynamic dims (e.g. ``H // 7``) as an int64 Keras tensor computed
        at run time from the sizes of converted tensors (dims.runtime_shape)."""
        key = (id(value.value), "materialize")
        if key in self._perm_cache:
            return self._perm_cache[key][1]
        arr = value.value
        kt = runtime_shape(self, arr.reshape(-1), "shape value")
        if arr.ndim != 1:
            kt = self.op("reshape", [kt], suffix="shape_value", shape=[int(d) for d in arr.shape])
        out = Tensor(kt, L.identity(arr.ndim), tuple(arr.shape), "int64")
        self._perm_cache[key] = (value.value, out)
        return out

    def tensor_of(self, value) -> Tensor:
        """Any value as a Tensor, for a converter that needs a Keras tensor: a shape value with
        dynamic dims is computed at run time, a static constant becomes a constant layer tied to
        the model's first input (a Keras graph needs a tensor to hang it on)."""
        if isinstance(value, Tensor):
            return value
        if has_dims(value.value):
            return self.materialize(value)
        anchor = next((v.kt for v in self.values.values() if isinstance(v, Tensor)), None)
        if anchor is None:
            raise self.error("internal: a constant needs a model input to be materialized")
        arr = np.asarray(value.value)
        kt = self.op("constant", [anchor, arr], suffix="const")
        return Tensor(kt, L.identity(arr.ndim), tuple(arr.shape), str(arr.dtype))

    def onnx_layout(self, value):
        """`value` in plain ONNX layout."""
        if isinstance(value, Const):
            return self.keras(value)
        return self.keras(value, L.identity(value.rank))

    # ----------------------------------------------------------------- building
    def layer(self, layer: keras.layers.Layer, inputs):
        keep_float_dtype(layer, inputs)
        return layer(inputs)

    def op(self, fn: str, args: Sequence, suffix: str = "", **params):
        """Apply whitelisted function `fn` (konnx.layers.functions) as a layer: its named layer
        class where it has one (konnx/layers/named.py: Slice, Einsum, Recurrent, ...), else a
        KonnxOp naming the function. `args` are Keras tensors, numpy constants or None, in the
        function's order."""
        tensors, slots, specs, consts = make_slots(args)
        if not tensors:
            raise self.error(f"internal: op {fn!r} got no tensor operand")
        cls = PROMOTED.get(fn)
        if cls is not None:
            plain = slots == [{"t": i} for i in range(len(tensors))]
            layer = cls(slots=None if plain else slots, weight_specs=specs, consts=consts,
                        name=self.name(suffix or fn), **params)
        else:
            layer = KonnxOp(fn, params=params, slots=slots, weight_specs=specs, consts=consts,
                            name=self.name(suffix or fn))
        return layer(tensors if len(tensors) > 1 else tensors[0])

    def tensor(self, kt, perm: Optional[L.Perm] = None, dtype: Optional[str] = None) -> Tensor:
        rank = len(kt.shape)
        perm = tuple(perm) if perm is not None else L.identity(rank)
        if len(perm) != rank:
            raise self.error(f"internal: perm {perm} does not match rank {rank}")
        return Tensor(kt, perm, onnx_shape_from_keras(kt, perm), dtype or str(kt.dtype))

    # ----------------------------------------------------------------- nodes and subgraphs
    def convert_node(self, node: Node) -> None:
        """Convert one node: fold it when its inputs are constants, else call its converter;
        its outputs join the values in scope."""
        self.node = node
        _assign(self, node, _node_outputs(self, node))

    def subgraph(self, graph, opset: int, bindings: dict) -> list:
        """Convert the nodes of `graph` (an If branch, a Loop/Scan body) with `bindings`
        (name -> value) in scope and return its outputs. The names the subgraph defines leave
        the scope afterwards; the caller's node stays the current one."""
        saved_node = self.node
        shadowed = {n: self.values[n] for n in bindings if n in self.values}
        defined = set(bindings)
        self.values.update(bindings)
        self._depth += 1
        for init in graph.initializer:
            self.values[init.name] = Const(numpy_helper.to_array(init))
            defined.add(init.name)
        try:
            for i, proto in enumerate(graph.node):
                node = Node(proto, opset, i)
                self.convert_node(node)
                defined.update(o for o in node.outputs if o)
            return [self.values[o.name] for o in graph.output]
        finally:
            self._depth -= 1
            self.node = saved_node
            for n in defined:
                self.values.pop(n, None)
            self.values.update(shadowed)

    def planned_padding(self, node: Node, sizes, kernel, strides, dilations, pads) -> P.PaddingDecision:
        """The padding decision a Conv / MaxPool / AveragePool converter builds with: the plan's
        (the very object it reports) when the plan decided on this geometry, else decided now
        on the built sizes, once, with the plan's function (padding.decide_for)."""
        planned = self.plan.padding.get(node.name) if self.plan is not None else None
        if (planned is not None and planned.decision is not None and planned.op_type == node.op_type
                and planned.decided_on == P.geometry_key(sizes, kernel, strides, dilations, pads)):
            return planned.decision
        return P.decide_for(node.op_type, sizes, kernel, strides, dilations, pads)

    def record(self, **decision):
        decision.setdefault("node", self.node.name)
        decision.setdefault("op_type", self.node.op_type)
        self.decisions.append(decision)


def _node_outputs(ctx: Context, node: Node):
    spec = lookup(node.op_type, node.opset, node.domain)
    ins = [ctx.values.get(n) if n else None for n in node.inputs]
    for n, v in zip(node.inputs, ins):
        if n and n not in ctx.values:
            raise NodeConversionError(node, f"input '{n}' is produced by no node before it "
                                            "(the graph is not in topological order)")
    if spec is not None and spec.check is not None:
        # the declared check again, on the built values: it refuses what the plan could not
        # see (sizes only the built tensors know, nodes of If/Loop/Scan bodies)
        why = spec.check(node, _built_facts(ctx, node, ins))
        if why and not _all_const(node, ins):
            raise NodeConversionError(node, why)
    if _all_const(node, ins):
        folded = fold_node(node, spec, [None if v is None else v.value for v in ins])
        if folded is not None:
            return folded
    if spec is None:
        raise NodeConversionError(node, "no converter for this op")
    try:
        return spec.fn(ctx, node)
    except ConversionError:
        raise
    except MemoryError as e:  # a resource limit, not a bug: tables sized by the model's attributes
        raise NodeConversionError(node, "ran out of memory building this node: its attributes or constant "
                                        "inputs ask for tables or tensors too large for this machine") from e
    except Exception as e:  # noqa: BLE001 - a konnx bug: named, with the original chained
        raise NodeConversionError(node, f"conversion failed: internal error (a konnx bug, please report it): "
                                        f"{type(e).__name__}: {e}") from e


def _as_planned(ctx: Context, k: int, v: Tensor) -> Tensor:
    """Output k in the layout the plan decided for it."""
    planned = ctx.planned_perm(k)
    if planned is None or tuple(v.perm) == tuple(planned):
        return v
    message = (f"internal: the converter built output {k} in layout {tuple(v.perm)}, the plan decided "
               f"{tuple(planned)} (a konnx bug: its declared layout rule and its converter disagree)")
    if ctx.strict_plan:
        raise ctx.error(message)
    ctx.record(kind="layout_deviation", output=k, built=tuple(v.perm), planned=tuple(planned))
    if len(planned) != v.rank:  # the inferred rank was wrong: keep what was built, it is consistent
        return v
    return Tensor(ctx.keras(v, planned), tuple(planned), v.onnx_shape, v.dtype)


def _all_const(node: Node, ins) -> bool:
    return all(v is None or isinstance(v, Const) for v in ins) and node.op_type not in NONDETERMINISTIC


def _built_facts(ctx: Context, node: Node, ins) -> Facts:
    shapes = {n: (v.onnx_shape if isinstance(v, Tensor) else v.shape)
              for n, v in zip(node.inputs, ins) if v is not None}
    shapes.update({o: ctx.value_shapes[o] for o in node.outputs if o in ctx.value_shapes})
    known = {n: v.value for n, v in zip(node.inputs, ins) if isinstance(v, Const)}
    computed = {n for n, v in zip(node.inputs, ins) if isinstance(v, Tensor)}
    types = {n: ("int64" if v.value.dtype == object else str(v.value.dtype)) if isinstance(v, Const)
             else keras.backend.standardize_dtype(v.dtype) for n, v in zip(node.inputs, ins) if v is not None}
    return Facts(node, shapes, known, computed, built=True, types=types)


def _assign(ctx: Context, node: Node, out) -> None:
    if not isinstance(out, (list, tuple)):
        out = [out]
    for k, (name, v) in enumerate(zip(node.outputs, out)):
        if not name:
            continue
        if isinstance(v, Tensor):
            v = _as_planned(ctx, k, v)
            merged = merge_shapes(ctx.value_shapes.get(name), v.onnx_shape)
            if merged != tuple(v.onnx_shape):  # a new value: v may also be an input (Identity)
                v = dataclasses.replace(v, onnx_shape=merged)
        elif isinstance(v, np.ndarray):
            v = Const(v)
        ctx.values[name] = v
