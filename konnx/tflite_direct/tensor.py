"""Layout-sensitive and axis ops: Flatten/Reshape (on the stored tensor when its element order
is the planned output's, else in the ONNX layout: a TRANSPOSE first when the stored order
differs, one after when the planned layout reorders elements), Gemm/MatMul with a constant 2D
weight (FULLY_CONNECTED; other MatMuls: sequence.batch_matmul), Concat, Softmax, Transpose (no
data moved: the perm composes)."""
from __future__ import annotations

import numpy as np

from .. import layout as L
from ..graph import Node
from .lower import Lowering


def _schema():
    from ai_edge_litert import schema_py_generated as S

    return S


def _onnx_order(lw: Lowering, name: str) -> int:
    """Tensor `name` holding its elements in the ONNX row-major order: itself when its layout
    only moves size-1 axes (layout.order_preserving), else a TRANSPOSE to the ONNX layout."""
    index, perm = lw.vals[name]
    if L.order_preserving(perm, lw.shape(name)):
        return index
    return lw.view(name, L.identity(len(perm)))


def reshape(lw: Lowering, node: Node) -> None:
    """Flatten / Reshape / Squeeze / Unsqueeze to the inferred static output shape: on the stored
    tensor when the plan kept a layout in which the reshape only merges/splits contiguous axis
    groups (konnx.ops.tensor's grouped reshape, e.g. NCHW -> (N, C, H*W) stored (N, H*W, C)),
    else in the ONNX element order, then a TRANSPOSE when the planned layout reorders elements."""
    out = node.outputs[0]
    perm = lw.planned(out)
    shape = lw.shape(out)
    src = lw.vals[node.inputs[0]][1] if node.inputs[0] in lw.vals else None
    if src is not None and not L.order_preserving(perm, shape) and _grouped(lw, node.inputs[0], out, src, perm):
        x = lw.vals[node.inputs[0]][0]
        index = lw.new(out, perm)
    else:
        x = _onnx_order(lw, node.inputs[0])
        perm = perm if L.order_preserving(perm, shape) else L.identity(len(shape))
        index = lw.computed(out, perm)
    stored = [shape[p] for p in perm]
    o = _schema().ReshapeOptionsT()
    o.newShape = list(stored)
    lw.b.op("RESHAPE", [x, lw.int32(stored, f"{out}/shape")], [index], o)
    lw.settle(out)


_ORDER_CHECK_LIMIT = 1 << 24  # elements: above, only the grouped-reshape rule is checked


def _grouped(lw: Lowering, x: str, out: str, src: tuple, planned: tuple) -> bool:
    """Does a RESHAPE of `x` as stored (with `src`) give `out` stored as planned? True when the two
    stored tensors hold the elements in the same order (checked on the element indices; above
    _ORDER_CHECK_LIMIT elements, by konnx.ops.tensor's grouped-reshape rule)."""
    in_shape, out_shape = lw.shape(x), lw.shape(out)
    size = int(np.prod(in_shape))
    if size <= _ORDER_CHECK_LIMIT:
        ids = np.arange(size, dtype=np.int32)
        stored_in = np.transpose(ids.reshape(in_shape), src).reshape(-1)
        stored_out = np.transpose(ids.reshape(out_shape), planned).reshape(-1)
        return bool(np.array_equal(stored_in, stored_out))
    from ..ops.tensor import stored_order_spec

    found = stored_order_spec(tuple(src), list(in_shape), list(out_shape), None, {})
    return found is not None and tuple(found[1]) == tuple(planned)


def _fully_connected(lw: Lowering, node: Node, x_name: str, weight: np.ndarray, bias) -> None:
    """y = x @ weight.T + bias with weight [out, in] (FULLY_CONNECTED, fused ReLU/ReLU6), over
    the last axis of an input of any rank (keep_num_dims), in the planned layout when it keeps
    that axis last, else in the ONNX layout then a TRANSPOSE."""
    rank = len(lw.shape(x_name))
    out_name = node.outputs[0]
    if bias is None:
        out_name, bias = _bias_add(lw, out_name, weight.shape[0])
    out_name, act = lw.fused_activation(out_name)
    planned = lw.planned(out_name)
    perm = planned if planned[-1] == rank - 1 else L.identity(rank)
    o = _schema().FullyConnectedOptionsT()
    o.fusedActivationFunction = act
    o.keepNumDims = rank > 2
    ins = [lw.view(x_name, perm), lw.b.constant(np.ascontiguousarray(weight, np.float32), f"{node.name}/weight")]
    ins.append(-1 if bias is None else lw.b.constant(np.asarray(bias, np.float32), f"{node.name}/bias"))
    lw.b.op("FULLY_CONNECTED", ins, [lw.computed(out_name, perm)], o)
    lw.settle(out_name)


def _bias_add(lw: Lowering, name: str, n: int) -> tuple:
    """(output, bias): an Add of a constant per-output bias (shape [n], or 1s then n) that alone
    reads the product `name` merged into the FULLY_CONNECTED, as TensorFlow's converter does."""
    r = lw.sole_reader(name)
    if r is None or r.op_type != "Add" or r.domain not in ("", "ai.onnx") or len(r.input) != 2:
        return name, None
    other = r.input[1] if r.input[0] == name else r.input[0]
    if other == name or not lw.is_const(other):
        return name, None
    c = lw.const(other)
    if c.dtype not in (np.float32, np.float64) or c.size != n or c.shape[-1:] != (n,) \
            or c.ndim > len(lw.shape(name)):
        return name, None
    lw.absorbed.add(r.output[0])
    return r.output[0], c.reshape(-1).astype(np.float32)


def gemm(lw: Lowering, node: Node) -> None:
    a, b = node.inputs[:2]
    if node.int("transA") or lw.is_const(a) or not lw.is_const(b):
        raise lw.unsupported("Gemm needs a computed A (not transposed) and a constant B")
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    w = lw.const(b)
    w = w if node.int("transB") else w.T
    if alpha != 1.0:
        raise lw.unsupported(f"Gemm alpha={alpha} (1 is written directly)")
    bias = None
    if node.has_input(2):
        c = lw.const(node.inputs[2]).astype(np.float64) * beta
        if c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise lw.unsupported(f"Gemm C of shape {c.shape} (a per-output bias is written directly)")
        bias = np.broadcast_to(c.reshape(-1), (w.shape[0],)).astype(np.float32)
    _fully_connected(lw, node, a, w, bias)


def matmul(lw: Lowering, node: Node) -> None:
    """A constant 2D right operand: FULLY_CONNECTED (keep_num_dims above rank 2); else BATCH_MATMUL."""
    a, b = node.inputs[:2]
    w = lw.const(b) if lw.is_const(b) and not lw.is_const(a) else None
    if w is None or w.ndim != 2 or len(lw.shape(a)) < 2:
        from .sequence import batch_matmul

        batch_matmul(lw, node)
        return
    _fully_connected(lw, node, a, w.T, None)


def concat(lw: Lowering, node: Node) -> None:
    perm = lw.planned(node.outputs[0])
    axis = L.keras_axis(perm, int(node.attr("axis")))
    ins = [lw.operand(i, perm) for i in node.inputs if i]
    o = _schema().ConcatenationOptionsT()
    o.axis = axis
    lw.b.op("CONCATENATION", ins, [lw.new(node.outputs[0], perm)], o)


def softmax(lw: Lowering, node: Node) -> None:
    perm = lw.planned(node.outputs[0])
    rank = len(perm)
    axis = int(node.attr("axis", -1 if node.opset >= 13 else 1)) % rank
    if node.opset < 13 and axis != rank - 1:
        raise lw.unsupported(f"Softmax (opset {node.opset}) over axes {axis}.. (only the last axis is direct)")
    if L.keras_axis(perm, axis) != rank - 1:
        raise lw.unsupported(f"Softmax over axis {axis}, not the last stored axis of layout {perm}")
    o = _schema().SoftmaxOptionsT()
    o.beta = 1.0
    lw.b.op("SOFTMAX", [lw.view(node.inputs[0], perm)], [lw.new(node.outputs[0], perm)], o)


def transpose(lw: Lowering, node: Node) -> None:
    """No data moves: the output is the input's tensor under the composed layout."""
    index, perm = lw.vals[node.inputs[0]]
    t = node.ints("perm") or list(reversed(range(len(perm))))
    composed = L.compose_transpose(perm, tuple(t))
    planned = lw.planned(node.outputs[0])
    if tuple(composed) == planned:
        lw.alias(node.outputs[0], node.inputs[0], composed)
        return
    lw.vals[node.outputs[0]] = (index, tuple(composed))
    lw.vals[node.outputs[0]] = (lw.view(node.outputs[0], planned), planned)


def _axes(lw: Lowering, node: Node, rank: int, since: int):
    """A reduction's ONNX axes (an attribute before opset `since`, a constant input from it);
    None: every axis."""
    if node.opset >= since:
        if not node.has_input(1):
            return None
        if not lw.is_const(node.inputs[1]):
            raise lw.unsupported("axes computed by the graph")
        values = lw.const(node.inputs[1]).reshape(-1)
    else:
        values = node.ints("axes")
        if values is None:
            return None
    return sorted(int(a) % rank for a in values)


def reduce_mean(lw: Lowering, node: Node) -> None:
    perm_in = lw.vals[node.inputs[0]][1] if node.inputs[0] in lw.vals else None
    if perm_in is None:
        raise lw.unsupported(f"input '{node.inputs[0]}' is not a tensor the writer computed")
    axes = _axes(lw, node, len(perm_in), 18)
    if axes is None and node.opset >= 18 and node.int("noop_with_empty_axes"):
        raise lw.unsupported("ReduceMean with noop_with_empty_axes")
    axes = list(range(len(perm_in))) if axes is None else axes
    perm = lw.planned(node.outputs[0])
    keep = bool(node.attr("keepdims", 1))
    if perm != (tuple(perm_in) if keep else L.drop_axes(perm_in, axes)):
        raise lw.unsupported(f"the planned layout {perm} is not the input's layout {perm_in} reduced")
    o = _schema().ReducerOptionsT()
    o.keepDims = keep
    stored = sorted(L.keras_axis(perm_in, a) for a in axes)
    lw.b.op("MEAN", [lw.vals[node.inputs[0]][0], lw.int32(stored, f"{node.outputs[0]}/axes")],
            [lw.new(node.outputs[0], perm)], o)


def pad(lw: Lowering, node: Node) -> None:
    """Pad, constant mode, non-negative constant pads, in the stored layout (PAD for zeros, else PADV2)."""
    if (node.string("mode") or "constant") != "constant":
        raise lw.unsupported(f"Pad mode {node.string('mode')!r} (constant is written directly)")
    if node.opset >= 11:
        if not lw.is_const(node.inputs[1]) or (node.has_input(3) and node.inputs[3]):
            raise lw.unsupported("Pad with computed pads or with axes")
        pads = [int(p) for p in lw.const(node.inputs[1]).reshape(-1)]
        value = float(lw.const(node.inputs[2]).reshape(-1)[0]) if node.has_input(2) and node.inputs[2] else 0.0
    else:
        pads, value = list(node.ints("pads")), float(node.attr("value", 0.0))
    perm = lw.planned(node.outputs[0])
    n = len(perm)
    per_axis = [(pads[i], pads[i + n]) for i in range(n)]
    if any(b < 0 or e < 0 for b, e in per_axis):
        raise lw.unsupported(f"negative pads {pads}")
    spec = lw.int32([list(per_axis[p]) for p in perm], f"{node.outputs[0]}/pads")
    x, out = lw.view(node.inputs[0], perm), lw.new(node.outputs[0], perm)
    if value == 0.0:
        lw.b.op("PAD", [x, spec], [out])
    else:
        lw.b.op("PADV2", [x, spec, lw.b.constant(np.asarray(value, np.float32), f"{node.outputs[0]}/value")], [out])
