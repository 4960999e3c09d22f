"""Attribute rules the ONNX spec sets for many ops at once, checked before a node is built.

`registry.converter` runs `common_reason(node, facts)` before every default-domain converter's
own `check`, in the plan and again at emit (so nodes of If/Loop/Scan bodies are covered too):
flags that must be 0 or 1, window sizes, strides and dilations that must be positive, pads
that must not be negative, a `group` that must divide the channels, and axes that must lie
inside the input's rank; input shapes that cannot agree (shape_rules.py); then the per-op rules
of attr_checks.py. A refusal names the attribute or input, what it holds and what the spec allows.
Facts that are not known (None) never refuse.
"""
from __future__ import annotations

import functools
from typing import Optional

import onnx

from .attr_checks import op_reason
from .shape_rules import shape_reason

FLAGS = ("keepdims", "ceil_mode", "count_include_pad", "transA", "transB", "select_last_index",
         "noop_with_empty_axes", "largest", "sorted", "exclusive", "reverse", "center_point_box",
         "interleaved", "is_causal", "storage_order", "detect_negative", "detect_positive",
         "onesided", "inverse", "periodic", "fmod")
INT32_MAX = 2**31 - 1
WINDOW_OPS = ("Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool",
              "MaxUnpool", "DeformConv")
# ops whose single `axis` attribute addresses input 0 and must lie in [-r, r-1]
AXIS_OPS = ("Softmax", "LogSoftmax", "Hardmax", "Gather", "GatherElements", "ScatterElements", "Split",
            "ArgMax", "ArgMin", "TopK", "LpNormalization", "Compress", "Concat", "CumSum",
            "LayerNormalization", "RMSNormalization", "Unique",
            "Scatter")
# ops whose `axes` attribute addresses input 0 and must lie in [-r, r-1], without repeats
AXES_OPS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
            "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "Squeeze", "MeanVarianceNormalization")


def common_reason(node, facts) -> Optional[str]:
    for rule in (_required_inputs, _flags, _auto_pad, _windows, _group, _axis, _axes, _perm, _quant_axis, _axis_input,
                 _sequence_axes, shape_reason, op_reason):
        why = rule(node, facts)
        if why:
            return why
    return None


@functools.lru_cache(maxsize=None)
def _formal_inputs(op_type: str, opset: int) -> tuple:
    """(name, option) of each formal input of the op's schema at `opset`, () when unknown."""
    try:
        schema = onnx.defs.get_schema(op_type, opset, "")
    except onnx.defs.SchemaError:
        return ()
    return tuple((p.name, p.option) for p in schema.inputs)


# control-flow ops whose variadic inputs are loop-carried state handled by their converters
_OWN_VARIADIC = ("Loop", "Scan", "If")


def _required_inputs(node, facts) -> Optional[str]:
    """An input the schema requires (a single, non-optional input, or an element of a variadic
    list such as Concat's) given as '' (onnxruntime refuses such a node too)."""
    formal = _formal_inputs(node.op_type, node.opset)
    opt = onnx.defs.OpSchema.FormalParameterOption
    for i, name in enumerate(node.inputs):
        if name or not formal:
            continue
        pname, option = formal[min(i, len(formal) - 1)]
        if option == opt.Single or (option == opt.Variadic and i >= len(formal) - 1
                                     and node.op_type not in _OWN_VARIADIC):
            return f"input {i} ({pname}) is required but given as '' (missing)"
    return None


def _set(node, name: str) -> bool:
    return any(a.name == name for a in node.proto.attribute)


def _flags(node, facts) -> Optional[str]:
    for name in FLAGS:
        if _set(node, name):
            v = node.attr(name)
            if isinstance(v, int) and v not in (0, 1):
                return f"attribute {name}={v}: the spec allows only 0 or 1"
    return None


def _windows(node, facts) -> Optional[str]:
    if node.op_type not in WINDOW_OPS:
        return None
    for name, low in (("kernel_shape", 1), ("strides", 1), ("dilations", 1), ("pads", 0)):
        vals = node.ints(name) if _set(node, name) else None
        if vals and any(v < low for v in vals):
            return f"attribute {name}={list(vals)}: every entry must be >= {low}"
        if vals and any(v > INT32_MAX for v in vals):
            # valid ONNX, but TensorFlow's window kernels index with int32 and abort the process
            return f"attribute {name}={list(vals)}: konnx supports entries up to {INT32_MAX} (TensorFlow's int32 indexing)"
    kernel = node.ints("kernel_shape") if _set(node, "kernel_shape") else None
    spatial = facts.rank(0) - 2 if facts.rank(0) else (len(kernel) if kernel else None)
    for name in ("strides", "dilations"):
        vals = node.ints(name) if _set(node, name) else None
        if vals and spatial is not None and spatial >= 0 and len(vals) != spatial:
            return f"attribute {name}={list(vals)} has {len(vals)} entries for {spatial} spatial axes"
    pads = node.ints("pads") if _set(node, "pads") else None
    if pads and spatial is not None and spatial >= 0 and len(pads) != 2 * spatial:
        return f"attribute pads={list(pads)} has {len(pads)} entries, expected {2 * spatial} (begin and end per axis)"
    return None


def _group(node, facts) -> Optional[str]:
    if node.op_type not in ("Conv", "ConvTranspose") or not _set(node, "group"):
        return None
    g = node.attr("group")
    if not isinstance(g, int) or g < 1:
        return f"attribute group={g}: must be a positive integer"
    c = facts.dim(0, 1) if facts.rank(0) else None
    if isinstance(c, int) and c % g:
        return f"attribute group={g} does not divide the {c} input channels"
    w = facts.dim(1, 0) if facts.rank(1) else None
    if node.op_type == "Conv" and isinstance(w, int) and w % g:
        return f"attribute group={g} does not divide the {w} output channels of the weights"
    return None


def _in_range(axis: int, rank: int, extra: int = 0) -> bool:
    return -(rank + extra) <= axis < rank + extra


def _axis(node, facts) -> Optional[str]:
    if node.op_type == "Flatten" and _set(node, "axis"):
        r, a = facts.rank(0), node.attr("axis")
        if r is not None and not -r <= a <= r:
            return f"attribute axis={a} is outside [-{r}, {r}] for an input of rank {r}"
        return None
    if node.op_type not in AXIS_OPS or not _set(node, "axis"):
        return None
    r, a = facts.rank(0), node.attr("axis")
    if node.op_type == "Softmax" or node.op_type in ("LogSoftmax", "Hardmax"):
        if node.opset < 13 and r is not None:  # before opset 13 the axis may equal the rank
            return None if -r <= a <= r else f"attribute axis={a} is outside [-{r}, {r}] for an input of rank {r}"
    if r is not None and r > 0 and isinstance(a, int) and not _in_range(a, r):
        return f"attribute axis={a} is outside [-{r}, {r - 1}] for an input of rank {r}"
    return None


def _axes(node, facts) -> Optional[str]:
    if node.op_type not in AXES_OPS + ("Unsqueeze",) or not _set(node, "axes"):
        return None
    axes, r = node.ints("axes"), facts.rank(0)
    if r is None or axes is None:
        return None
    extra = len(axes) if node.op_type == "Unsqueeze" else 0
    bad = [a for a in axes if not _in_range(a, r + extra)]
    if bad:
        return f"attribute axes={list(axes)}: {bad} outside [-{r + extra}, {r + extra - 1}] for rank {r + extra}"
    if len({a % (r + extra) for a in axes}) != len(axes) and (r + extra) > 0:
        return f"attribute axes={list(axes)} repeats an axis"
    return None


def _perm(node, facts) -> Optional[str]:
    """Transpose's perm is a permutation of the input's axes (onnx's inference checks the
    entries' range and repeats, not the length; onnxruntime refuses a wrong length when run)."""
    if node.op_type != "Transpose" or not _set(node, "perm"):
        return None
    perm, r = list(node.ints("perm")), facts.rank(0)
    if r is not None and sorted(perm) != list(range(r)):
        return f"attribute perm={perm} is not a permutation of the {r} axes of the input (expected {r} distinct entries in [0, {r - 1}])"
    return None


def _quant_axis(node, facts) -> Optional[str]:
    """(De)QuantizeLinear with a per-axis scale (a 1-D scale of more than one entry): `axis`
    lies inside the input's rank (a per-tensor scale ignores `axis`, as onnxruntime does; the
    scale's length and blocked scales are attr_checks' rules)."""
    if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or node.attr("block_size"):
        return None
    s, r = facts.shape(1), facts.rank(0)
    if s is None or r is None or len(s) != 1 or facts.dim(1, 0) in (None, 1):
        return None
    a = node.attr("axis") if _set(node, "axis") else 1
    if not _in_range(a, r):
        return f"attribute axis={a} is outside [-{r}, {r - 1}] for an input of rank {r} (a per-axis scale)"
    return None


def _axis_input(node, facts) -> Optional[str]:
    """CumSum's axis, an input known at conversion time, lies in [-r, r-1] (onnx's inference
    does not read it; onnxruntime refuses it when run)."""
    if node.op_type != "CumSum" or facts.value(1) is None:
        return None
    vals, r = [int(v) for v in facts.value(1).reshape(-1)], facts.rank(0)
    if r is not None and r > 0 and (len(vals) != 1 or not _in_range(vals[0], r)):
        return f"input 1 (axis) holds {vals}: expected one axis in [-{r}, {r - 1}] for an input of rank {r}"
    return None


def _sequence_axes(node, facts) -> Optional[str]:
    if node.op_type != "ReverseSequence":
        return None
    b, t = node.attr("batch_axis"), node.attr("time_axis")
    if b not in (0, 1) or t not in (0, 1) or b == t:
        return f"attributes batch_axis={b}, time_axis={t}: the spec allows 0 and 1, one each"
    return None


def _auto_pad(node, facts) -> Optional[str]:
    if node.op_type not in WINDOW_OPS or not _set(node, "auto_pad"):
        return None
    mode = node.string("auto_pad")
    if mode not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        return f"attribute auto_pad={mode!r}: expected NOTSET, SAME_UPPER, SAME_LOWER or VALID"
    return None

