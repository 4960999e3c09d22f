"""Transformer ops: LayerNormalization (MEAN, SUB, MUL, RSQRT, ADD), Gelu (ONNX opset 20 and
onnxruntime's com.microsoft Gelu / FastGelu: the GELU builtin), MatMul of two computed operands
(BATCH_MATMUL), Split (STRIDED_SLICE per output, as TensorFlow's converter writes it), Gather of
one constant index and Slice with constant bounds (STRIDED_SLICE then RESHAPE), each in the
layouts the plan decided."""
from __future__ import annotations

import numpy as np

from .. import layout as L
from ..graph import Node
from .lower import Lowering


def _schema():
    from ai_edge_litert import schema_py_generated as S

    return S


def _input(lw: Lowering, name: str) -> tuple:
    if name not in lw.vals:
        raise lw.unsupported(f"input '{name}' is not a tensor the writer computed")
    return lw.vals[name]


def layer_norm(lw: Lowering, node: Node) -> None:
    """(x - mean) * rsqrt(mean((x - mean)^2) + eps) * scale + bias over axes [axis, rank)."""
    if any(node.outputs[1:]):
        raise lw.unsupported("LayerNormalization's Mean / InvStdDev outputs")
    if int(node.attr("stash_type", 1)) != 1:
        raise lw.unsupported("LayerNormalization with a stash_type other than float32")
    out = node.outputs[0]
    perm = lw.planned(out)
    rank = len(perm)
    axis = int(node.attr("axis", -1)) % rank
    x = lw.view(node.inputs[0], perm)
    shape, S = lw.b.shape(x), _schema()
    stored = sorted(L.keras_axis(perm, a) for a in range(axis, rank))
    reduced = [1 if a in stored else d for a, d in enumerate(shape)]
    o = S.ReducerOptionsT()
    o.keepDims = True
    axes = lw.int32(stored, f"{out}/axes")

    def step(op, ins, shp, tag, options=None):
        t = lw.b.tensor(shp, f"{out}/{tag}")
        lw.b.op(op, ins, [t], options)
        return t

    mean = step("MEAN", [x, axes], reduced, "mean", o)
    d = step("SUB", [x, mean], shape, "centered", S.SubOptionsT())
    var = step("MEAN", [step("MUL", [d, d], shape, "squared", S.MulOptionsT()), axes], reduced, "variance", o)
    eps = lw.b.constant(np.asarray(float(node.attr("epsilon", 1e-5)), np.float32), f"{out}/epsilon")
    r = step("RSQRT", [step("ADD", [var, eps], reduced, "var_eps", S.AddOptionsT())], reduced, "rsqrt")
    # a constant scale of ones or bias of zeros (a freshly initialised LayerNorm) is left out: exact
    steps = [(op, node.inputs[i]) for op, i, neutral in (("MUL", 1, 1.0), ("ADD", 2, 0.0))
             if node.has_input(i) and node.inputs[i] and not _all_equal(lw, node.inputs[i], neutral)]
    ins = [d, r]
    for k, (op, name) in enumerate([("MUL", None)] + steps):
        o = S.MulOptionsT() if op == "MUL" else S.AddOptionsT()
        target = lw.new(out, perm) if k == len(steps) else lw.b.tensor(shape, f"{out}/{op.lower()}{k}")
        lw.b.op(op, ins, [target], o)
        if k < len(steps):
            ins = [target, lw.operand(steps[k][1], perm)]


def _all_equal(lw: Lowering, name: str, value: float) -> bool:
    return lw.is_const(name) and bool(np.all(lw.const(name) == value))


def gelu(lw: Lowering, node: Node) -> None:
    """ONNX Gelu (approximate none / tanh), com.microsoft Gelu (exact) and FastGelu (tanh)."""
    if node.op_type == "FastGelu":
        if len(node.inputs) > 1 and any(node.inputs[1:]):
            raise lw.unsupported("FastGelu with a bias input (the input alone is written directly)")
        approximate = True
    elif node.domain == "com.microsoft":
        approximate = False
    else:
        mode = node.string("approximate") or "none"
        if mode not in ("none", "tanh"):
            raise lw.unsupported(f"Gelu approximate={mode!r} (expected 'none' or 'tanh')")
        approximate = mode == "tanh"
    perm = lw.planned(node.outputs[0])
    o = _schema().GeluOptionsT()
    o.approximate = approximate
    lw.b.op("GELU", [lw.view(node.inputs[0], perm)], [lw.new(node.outputs[0], perm)], o)


def _matrix(lw: Lowering, name: str, rank: int) -> tuple:
    """(tensor, adjoint) of a BATCH_MATMUL operand in the ONNX layout (rank-extended), or with its
    last two axes swapped (adjoint) when it is stored so: no TRANSPOSE for that."""
    if lw.is_const(name):
        c = np.asarray(lw.const(name), np.float32)
        return lw.b.constant(c.reshape((1,) * (rank - c.ndim) + c.shape), name), False
    _, perm = _input(lw, name)
    r = len(perm)
    swapped = L.identity(r)[:-2] + (r - 1, r - 2)
    if perm == swapped:
        return lw.view(name, swapped), True
    return lw.view(name, L.identity(r)), False


def batch_matmul(lw: Lowering, node: Node) -> None:
    """MatMul of rank >= 2 operands (BATCH_MATMUL, broadcasting the batch axes), computed in the
    ONNX layout and stored as planned (a TRANSPOSE when the plan stores the product otherwise)."""
    a, b = node.inputs[:2]
    ranks = [len(lw.shape(a)), len(lw.shape(b))]
    if min(ranks) < 2:
        raise lw.unsupported(f"MatMul of rank-{ranks} operands (rank >= 2 is written directly)")
    for name in (a, b):
        if lw.is_const(name) and lw.const(name).dtype not in (np.float32, np.float64):
            raise lw.unsupported(f"MatMul operand '{name}' of dtype {lw.const(name).dtype} (float32 is direct)")
    rank = len(lw.shape(node.outputs[0]))
    (x, adj_x), (y, adj_y) = _matrix(lw, a, rank), _matrix(lw, b, rank)
    o = _schema().BatchMatMulOptionsT()
    o.adjX, o.adjY = adj_x, adj_y
    lw.b.op("BATCH_MATMUL", [x, y], [lw.computed(node.outputs[0], L.identity(rank))], o)
    lw.settle(node.outputs[0])


def _strided_slice(lw: Lowering, x: int, begin, end, strides, name: str) -> int:
    shape = [len(range(b, e, s)) for b, e, s in zip(begin, end, strides)]
    out = lw.b.tensor(shape, name)
    lw.b.op("STRIDED_SLICE", [x, lw.int32(begin, f"{name}/begin"), lw.int32(end, f"{name}/end"),
                              lw.int32(strides, f"{name}/strides")], [out], _schema().StridedSliceOptionsT())
    return out


def _split_sizes(lw: Lowering, node: Node, size: int) -> list:
    n = len(node.outputs)
    if node.has_input(1) and node.inputs[1]:
        if not lw.is_const(node.inputs[1]):
            raise lw.unsupported("Split sizes computed by the graph")
        return [int(v) for v in lw.const(node.inputs[1]).reshape(-1)]
    if node.ints("split"):
        return list(node.ints("split"))
    part = -(-size // n)  # opset 18 num_outputs: the last part may be smaller
    return [min(part, size - k * part) for k in range(n)]


def split(lw: Lowering, node: Node) -> None:
    """Each output a STRIDED_SLICE of the input in its stored layout, stored as planned."""
    name = node.inputs[0]
    _, perm = _input(lw, name)
    shape = lw.shape(name)
    axis = int(node.attr("axis", 0)) % len(shape)
    sizes = _split_sizes(lw, node, shape[axis])
    if len(sizes) != len(node.outputs) or sum(sizes) != shape[axis] or min(sizes) < 0:
        raise lw.unsupported(f"Split sizes {sizes} of axis {axis} (size {shape[axis]}) into "
                             f"{len(node.outputs)} outputs (expected non-negative sizes summing to the axis)")
    x, k = lw.vals[name][0], L.keras_axis(perm, axis)
    stored, start = list(lw.b.shape(x)), 0
    for out, size in zip(node.outputs, sizes):
        begin, end = [0] * len(stored), list(stored)
        begin[k], end[k] = start, start + size
        start += size
        if not out:
            continue
        index = lw.computed(out, perm)
        lw.b.op("STRIDED_SLICE", [x, lw.int32(begin, f"{out}/begin"), lw.int32(end, f"{out}/end"),
                                  lw.int32([1] * len(stored), f"{out}/strides")], [index],
                _schema().StridedSliceOptionsT())
        lw.settle(out)


def gather(lw: Lowering, node: Node) -> None:
    """Gather of one constant index (a scalar, or a 1-element vector) along an axis: a
    STRIDED_SLICE of the stored tensor, then a RESHAPE dropping the axis for a scalar index."""
    data, idx = node.inputs[:2]
    if not lw.is_const(idx) or lw.const(idx).size != 1 or lw.const(idx).ndim > 1:
        raise lw.unsupported("Gather needs one constant index (a scalar or a 1-element vector)")
    _, perm = _input(lw, data)
    shape = lw.shape(data)
    axis = int(node.attr("axis", 0)) % len(shape)
    i = int(lw.const(idx).reshape(-1)[0])
    if not -shape[axis] <= i < shape[axis]:
        raise lw.unsupported(f"Gather index {i} out of range for axis {axis} of size {shape[axis]}")
    i %= shape[axis]
    x, k = lw.vals[data][0], L.keras_axis(perm, axis)
    stored = list(lw.b.shape(x))
    begin, end = [0] * len(stored), list(stored)
    begin[k], end[k] = i, i + 1
    out = node.outputs[0]
    if lw.const(idx).ndim == 1:
        index = lw.computed(out, perm)
        lw.b.op("STRIDED_SLICE", [x, lw.int32(begin, f"{out}/begin"), lw.int32(end, f"{out}/end"),
                                  lw.int32([1] * len(stored), f"{out}/strides")], [index],
                _schema().StridedSliceOptionsT())
        lw.settle(out)
        return
    picked = _strided_slice(lw, x, begin, end, [1] * len(stored), f"{out}/slice")
    dropped = L.drop_axes(perm, [axis])
    _reshape_into(lw, picked, out, dropped)


def _reshape_into(lw: Lowering, x: int, out: str, perm: tuple) -> None:
    """RESHAPE of x (same elements in the same order) into ONNX tensor `out` stored with perm."""
    shape = lw.shape(out)
    stored = [shape[p] for p in perm]
    o = _schema().ReshapeOptionsT()
    o.newShape = list(stored)
    lw.b.op("RESHAPE", [x, lw.int32(stored, f"{out}/shape")], [lw.computed(out, perm)], o)
    lw.settle(out)


def slice_(lw: Lowering, node: Node) -> None:
    """Slice with constant starts / ends / axes / steps (positive steps): a STRIDED_SLICE of
    the stored tensor, stored as planned."""
    data = node.inputs[0]
    _, perm = _input(lw, data)
    shape = lw.shape(data)
    rank = len(shape)
    if node.opset < 10:
        starts, ends = node.ints("starts"), node.ints("ends")
        axes, steps = node.ints("axes") or list(range(len(starts))), [1] * len(starts)
    else:
        vals = []
        for k in range(1, 5):
            if node.has_input(k) and node.inputs[k]:
                if not lw.is_const(node.inputs[k]):
                    raise lw.unsupported("Slice bounds computed by the graph")
                vals.append([int(v) for v in lw.const(node.inputs[k]).reshape(-1)])
            else:
                vals.append(None)
        starts, ends, axes, steps = vals
        axes = axes if axes is not None else list(range(len(starts)))
        steps = steps if steps is not None else [1] * len(starts)
    begin, end, stride = [0] * rank, list(shape), [1] * rank
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st <= 0:
            raise lw.unsupported(f"Slice step {st} (positive steps are written directly)")
        a %= rank
        n = shape[a]
        s = min(max(s + n if s < 0 else s, 0), n)
        e = min(max(e + n if e < 0 else e, 0), n)
        begin[a], end[a], stride[a] = s, max(e, s), st
    x = lw.vals[data][0]
    out = node.outputs[0]
    index = lw.computed(out, perm)
    lw.b.op("STRIDED_SLICE", [x, lw.int32([begin[p] for p in perm], f"{out}/begin"),
                              lw.int32([end[p] for p in perm], f"{out}/end"),
                              lw.int32([stride[p] for p in perm], f"{out}/strides")], [index],
            _schema().StridedSliceOptionsT())
    lw.settle(out)
