"""plan: a pure pass over the normalized ONNX graph, before any Keras object exists.

    load -> check -> normalize -> plan -> emit -> (verify) -> save

For every node the plan looks up its converter and runs the converter's declared contract
(ops/registry.py): the inputs that must be known at conversion time, the `check` over
attributes and inferred shapes, the layout the op wants. It decides each padding the spatial
ops will use (padding.py's pure functions) and returns typed records:

- `Refusal`: a node konnx cannot convert, and why (no converter, a check's reason, an input
  that must be constant but is computed by the graph);
- `PaddingDecision`: how a Conv/ConvTranspose/pooling node's padding is realised, as far as
  the inferred shapes tell (the converters build with it: emit.Context.planned_padding, which
  decides again only when the built sizes differ from the inferred ones);
- `LayoutDecision`: the layout a node wants and the layout (`perm`) each of its outputs is
  stored in (layout_plan.py decides them; emit checks the converters follow), and `Move`: a
  transpose the plan asks for, where a tensor's layout differs from what its consumer wants.

`Plan.raise_refusals()` raises every refusal at once, in one UnsupportedOpError. This module
imports neither Keras nor TensorFlow (`konnx check` runs on it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import onnx
from onnx import numpy_helper

from . import layout_plan as LP
from . import padding as P
from . import loader
from .errors import ConversionError, InvalidModelError, UnsupportedNode, UnsupportedOpError
from .evaluate import fold_node
from .graph import Node
from .loader import NONDETERMINISTIC
from .limits import INPUT_GROWTH, TENSOR_BUDGET, elements, output_budget_reason
from .ops import load_all
from .ops.registry import AXIS, FOLLOWS, ONNX, SPATIAL, Facts, lookup

# ops whose outputs can be conversion-time values even when an input is computed by the graph
# (they read only its shape, or run a branch/body chosen at conversion time)
_SHAPE_READERS = frozenset({"Shape", "Size", "If", "Loop", "Scan"})
_POOLS = ("MaxPool", "AveragePool", "LpPool")


@dataclass(frozen=True)
class Refusal:
    node: str
    op_type: str
    opset: int
    reason: str
    domain: str = ""

    def unsupported(self) -> UnsupportedNode:
        return UnsupportedNode(self.op_type, self.node, self.opset, self.reason, self.domain)


@dataclass(frozen=True)
class PaddingDecision:
    """The padding of one spatial node. `mode` is 'same' | 'valid' | 'explicit' from
    padding.decide (None when the pads depend on sizes the inferred shapes do not know)."""
    node: str
    op_type: str
    input_size: tuple
    kernel: tuple
    strides: tuple
    dilations: tuple
    pads: Optional[tuple]
    auto_pad: str
    mode: Optional[str]
    reason: str
    ceil_mode: bool = False
    count_include_pad: bool = False
    output_padding: tuple = ()
    # what the converter builds with (padding.decide_for's answer), and the geometry it was
    # decided on: emit takes it when its built geometry is the same (Context.planned_padding)
    decision: Optional[P.PaddingDecision] = field(default=None, compare=False, repr=False)
    decided_on: Optional[tuple] = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class LayoutDecision:
    node: str
    op_type: str
    wants: str  # registry.SPATIAL | FOLLOWS | AXIS | ONNX
    output: str  # "channels-last" | "onnx" | "as input"
    outputs: tuple = ()  # each output's planned perm (None: a constant, or left to emit)


@dataclass(frozen=True)
class Move:
    """A transpose the plan asks for: `tensor` (stored with `src`) is used by `node` (its input
    `input`, or the graph output when node is "") in layout `dst`."""
    node: str
    op_type: str
    input: int
    tensor: str
    src: tuple
    dst: tuple


@dataclass
class Plan:
    nodes: list = field(default_factory=list)  # (Node, status) with status "supported" | "folded" | "refused"
    refusals: list = field(default_factory=list)
    padding: dict = field(default_factory=dict)  # node name -> PaddingDecision
    layout: dict = field(default_factory=dict)  # node name -> LayoutDecision
    perms: dict = field(default_factory=dict)  # tensor name -> planned perm (computed tensors only)
    undecided: list = field(default_factory=list)  # computed tensors whose layout emit decides
    moves: list = field(default_factory=list)  # Move, in graph order

    def raise_refusals(self) -> None:
        if self.refusals:
            raise UnsupportedOpError([r.unsupported() for r in self.refusals])


def plan(model: onnx.ModelProto, opset: int, weights: Optional[dict] = None, folded: tuple = (),
         channels_last_io: bool = False) -> Plan:
    """Plan the conversion of a normalized model (shape inference already run); `folded`: the
    nodes normalize evaluated away (listed with status "folded")."""
    load_all()
    g = model.graph
    weights = weights or {}
    shapes, types = _value_shapes(model)
    inits = {i.name: i for i in g.initializer}
    inits.update(weights)
    known = _KnownValues(inits)
    data = {i.name for i in g.input if i.name not in inits}  # values computed at run time
    graph_inputs = set(data)
    foldable = set(inits) | {""}
    out = Plan(nodes=[(node, "folded") for node in folded])
    domain_opset = {("" if imp.domain == "ai.onnx" else imp.domain): imp.version for imp in model.opset_import}
    # a node may create a tensor up to the budget, or in proportion to the user's largest input
    ceiling = max([TENSOR_BUDGET] + [INPUT_GROWTH * (elements(shapes.get(n)) or 0) for n in graph_inputs])
    for name in graph_inputs:
        if shapes.get(name) is not None:
            out.perms[name] = LP.io_perm(len(shapes[name]), channels_last_io)
    for idx, proto in enumerate(g.node):
        node = Node(proto, opset, idx)
        spec = lookup(node.op_type, opset, node.domain)
        folds = all(i in foldable for i in node.inputs) and node.op_type not in NONDETERMINISTIC
        if folds:
            foldable.update(node.outputs)
            if node.op_type == "Constant" and "value" in node.attrs:
                known.add(node.outputs[0], node.attrs["value"])
        if node.op_type in NONDETERMINISTIC or (
                node.op_type not in _SHAPE_READERS and any(i in data for i in node.inputs if i)):
            data.update(o for o in node.outputs if o)
        facts = Facts(node, shapes, known, data, types=types)
        if (not folds and spec is not None and node.op_type not in ("If", "Loop", "Scan")
                and not any(o in data for o in node.outputs)):
            _evaluate(node, spec, facts, known)
        reasons = [] if folds and (spec is not None or node.domain == "") else \
            _reasons(node, spec, facts, data, graph_inputs)
        too_big = output_budget_reason([facts.out_shape(k) for k in range(len(node.outputs))], ceiling)
        reasons = ([too_big] if too_big else []) + reasons
        if reasons:
            out.refusals.append(Refusal(node.name, node.op_type, domain_opset.get(node.domain, opset),
                                        "; ".join(reasons), node.domain))
        out.nodes.append((node, "refused" if reasons else "folded" if folds else "supported"))
        if spec is not None and not folds and not reasons:  # a refused node's layout rule may not hold
            _plan_layout(out, node, spec, facts, data)
            if node.op_type in ("Conv", "ConvTranspose") + _POOLS and not reasons:
                decision = padding_decision(node, facts)
                if decision is not None:
                    out.padding[node.name] = decision
    for k, vo in enumerate(g.output):
        src = out.perms.get(vo.name)
        if src is not None and src != LP.io_perm(len(src), channels_last_io):
            out.moves.append(Move("", "output", k, vo.name, src, LP.io_perm(len(src), channels_last_io)))
    return out


def _evaluate(node: Node, spec, facts: Facts, known) -> None:
    """The values of a node's outputs that emit will fold at conversion time (shape arithmetic:
    `Shape(x)`, Gather/Concat/... of shape values, with `values.Dim` entries for dynamic dims),
    so the layout rules see a Reshape target computed from shapes. Left unknown when a value
    cannot be evaluated here (emit then decides, and reports what is wrong)."""
    try:
        if spec.value is not None:
            values = spec.value(node, facts)
        else:
            arrays = [facts.value(i) if node.has_input(i) else None for i in range(len(node.inputs))]
            if any(a is None and node.has_input(i) for i, a in enumerate(arrays)):
                return
            values = fold_node(node, spec, arrays)
    except ConversionError:
        return
    if values is None:
        return
    if not isinstance(values, (list, tuple)):
        values = [values]
    for name, v in zip(node.outputs, values):
        if name and v is not None:
            known.add(name, v)


def _plan_layout(out: Plan, node: Node, spec, facts: Facts, data: set) -> None:
    """Decide the layout of the node's computed outputs and the moves of its inputs."""
    in_perms = [out.perms.get(n) if n in data else None for n in node.inputs]
    perms = LP.output_perms(spec, node, in_perms, facts)
    for name, perm in zip(node.outputs, perms):
        if name and name in data:
            if perm is not None:
                out.perms[name] = tuple(perm)
            else:
                out.undecided.append(name)
    out.layout[node.name] = LayoutDecision(node.name, node.op_type, spec.layout, _planned_layout(spec.layout),
                                           tuple(perms))
    if node.op_type in _SHAPE_READERS:
        return
    for i, (name, src) in enumerate(zip(node.inputs, in_perms)):
        dst = LP.wanted_input_perm(spec, i, src, perms[0] if perms else None)
        if dst is not None and tuple(dst) != tuple(src):
            out.moves.append(Move(node.name, node.op_type, i, name, tuple(src), tuple(dst)))


def plan_model(proto: onnx.ModelProto, opset: int, weights: dict, input_shapes=None,
               channels_last_io: bool = False) -> tuple:
    """check -> normalize (with constant folding) -> plan: the normalized model and its Plan.
    Nodes without a converter are reported even when shape inference cannot run on the model.
    `weights` receives the large initializers constant folding creates."""
    load_all()
    missing = loader.unsupported_nodes(proto, opset, weights)
    try:
        proto = loader.normalize(proto, input_shapes)
    except InvalidModelError:
        if missing:
            raise UnsupportedOpError(missing) from None
        raise
    folded = loader.fold_constants(proto, opset, weights)
    return proto, plan(proto, opset, weights, folded, channels_last_io)


def _reasons(node: Node, spec, facts: Facts, data: set, graph_inputs: set) -> list[str]:
    if spec is None:
        return ["no converter for this op" if node.domain == ""
                else f"custom domain '{node.domain}' is not supported"]
    reasons = []
    for i in spec.consts:
        name = node.inputs[i] if node.has_input(i) else None
        if name in data:
            where = "a graph input" if name in graph_inputs else "computed by the graph"
            reasons.append(f"input {i} ('{name}', {_input_label(node, i)}) must be a constant known at "
                           f"conversion time, but it is {where}")
    if spec.check is not None:
        why = spec.check(node, facts)
        if why:
            reasons.append(why)
    return reasons


def _input_label(node: Node, i: int) -> str:
    try:
        formal = onnx.defs.get_schema(node.op_type, node.opset, node.domain).inputs
    except onnx.defs.SchemaError:
        return f"input {i}"
    return formal[min(i, len(formal) - 1)].name if formal else f"input {i}"


def _planned_layout(wants: str) -> str:
    return {SPATIAL: "channels-last", FOLLOWS: "as input", AXIS: "as input", ONNX: "onnx"}[wants]


def padding_decision(node: Node, facts: Facts) -> Optional[PaddingDecision]:
    """The padding decision for a Conv/ConvTranspose/pooling node from its attributes and the
    inferred input shape; None when the kernel is unknown."""
    if node.op_type in ("Conv", "ConvTranspose"):
        wshape = facts.shape(1)
        kernel = node.ints("kernel_shape") or (list(wshape[2:]) if wshape else None)
    else:
        kernel = node.ints("kernel_shape")
    if not kernel or any(not isinstance(k, (int, np.integer)) for k in kernel):
        return None
    n = len(kernel)
    sizes = [facts.dim(0, 2 + a) for a in range(n)]
    strides = node.ints("strides") or [1] * n
    dilations = node.ints("dilations") or [1] * n
    auto = node.string("auto_pad") or "NOTSET"
    common = dict(node=node.name, op_type=node.op_type, input_size=tuple(sizes), kernel=tuple(kernel),
                  strides=tuple(strides), dilations=tuple(dilations), auto_pad=auto)
    if node.op_type == "ConvTranspose":
        pads = node.ints("pads")
        return PaddingDecision(**common, pads=None if pads is None else tuple(pads), mode=None,
                               reason="full transposed convolution ('valid'), then the ONNX pads cropped from it",
                               output_padding=tuple(node.ints("output_padding") or [0] * n))
    pads = P.node_pads(node.attrs, sizes, kernel, strides, dilations, clamp=node.op_type == "Conv")
    extra = dict(ceil_mode=node.flag("ceil_mode"), count_include_pad=node.flag("count_include_pad"))
    if any(p is None for p in pads):
        return PaddingDecision(**common, pads=None, mode=None, **extra,
                               reason=f"auto_pad={auto} with stride > 1 needs the static input size")
    d = P.decide_for(node.op_type, sizes, kernel, strides, dilations, pads)
    return PaddingDecision(**common, pads=tuple(tuple(p) for p in d.pads), mode=d.mode, reason=d.reason, **extra,
                           decision=d, decided_on=P.geometry_key(sizes, kernel, strides, dilations, pads))


def _value_shapes(model: onnx.ModelProto) -> tuple[dict, dict]:
    """name -> inferred ONNX shape, name -> numpy dtype name."""
    shapes, types = {}, {}
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.HasField("shape"):
            shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                    for d in tt.shape.dim)
        if vi.type.HasField("tensor_type") and tt.elem_type:
            types[vi.name] = _dtype_name(tt.elem_type)
    for init in g.initializer:
        shapes.setdefault(init.name, tuple(init.dims))
        types.setdefault(init.name, _dtype_name(init.data_type))
    return shapes, types


def _dtype_name(elem_type: int) -> Optional[str]:
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError, ValueError):
        return None


class _KnownValues(dict):
    """name -> numpy value of the inputs known before building, converted on first use (a
    model's weights are never copied unless a check asks for one)."""

    def __init__(self, protos: dict):
        super().__init__()
        self._protos = protos

    def add(self, name: str, value) -> None:
        self[name] = np.asarray(value)

    def get(self, name, default=None):
        if name not in self and name in self._protos:
            self[name] = numpy_helper.to_array(self._protos[name])
        return super().get(name, default)
