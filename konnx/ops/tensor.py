"""Ops that rearrange a tensor's elements into a new shape: Reshape, Flatten, Transpose (with
their conversion-time folds). Concat, Split, Slice, Squeeze, Unsqueeze, Expand and Tile are in
axes.py; Gather*, Trilu, OneHot, CumSum in tensor_index.py; Pad and DepthToSpace in tensor_pad.py."""
from __future__ import annotations

import numpy as np
from ..lazy_keras import keras

from .. import layout as L
from ..dims import shape_spec
from ..values import Dim, Tensor, has_dims, static_dim
from . import keras_exact
from .registry import AXIS, converter
from .shape import dim_axis, ints



# ----------------------------------------------------------------------------- Reshape
def reshape_target(node, in_shape, target):
    """ONNX Reshape's output shape from a static target (0 copies unless allowzero, -1 infers)."""
    allowzero = node.opset >= 14 and int(node.attr("allowzero") or 0)
    out = [int(in_shape[i]) if (int(t) == 0 and not allowzero) else int(t) for i, t in enumerate(target)]
    return out


def fold_reshape(node, x, shp):
    if has_dims(np.asarray(shp, dtype=object)):
        return None
    x = np.asarray(x)
    target = reshape_target(node, x.shape, ints(shp)) if node.opset >= 5 else list(node.attr("shape"))
    return [x.reshape(target)]


def fold_flatten(node, x):
    x = np.asarray(x)
    axis = int(node.attr("axis")) % (x.ndim + 1) if x.ndim else 0
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [x.reshape(lead, -1) if x.size else x.reshape(lead, int(np.prod(x.shape[axis:])))]


def fold_transpose(node, x):
    x = np.asarray(x)
    perm = node.attr("perm")
    return [np.transpose(x, None if perm is None else [int(p) for p in perm])]


def _reshape_entries(node, in_shape, target):
    """Target entries as int (static), -1, or ("axis", onnx_axis) = copy that input dim."""
    allowzero = node.opset >= 14 and int(node.attr("allowzero") or 0)
    entries = []
    for i, t in enumerate(target):
        if isinstance(t, Dim):
            entries.append(t)
            continue
        t = int(t)
        if t == 0 and not allowzero:
            d = static_dim(in_shape[i])
            entries.append(d if d is not None else ("axis", i))
        else:
            entries.append(t)
    dims = [e for e in entries if isinstance(e, Dim)]
    if len(dims) == 1 and -1 not in entries:
        return [-1 if isinstance(e, Dim) else e for e in entries]
    out = []
    for e in entries:
        if isinstance(e, Dim):
            a = dim_axis(e, node.inputs[0], in_shape)
            e = ("axis", a) if a is not None else e
        out.append(e)
    left = [e for e in out if isinstance(e, Dim)]
    if len(left) == 1 and -1 not in out:
        out = [-1 if isinstance(e, Dim) else e for e in out]
    return out


def _direct(x) -> bool:
    """Can a reshape act on the Keras tensor as stored (same row-major element order)?"""
    return _direct_perm(x.perm, x.onnx_shape)


def _direct_perm(perm, onnx_shape) -> bool:
    return L.is_identity(perm) or L.order_preserving(perm, onnx_shape)


def _groups(in_shape, out):
    """Split a reshape into groups (input axes, output axes) whose sizes multiply to the same
    product, or None. Dynamic dims only as a 1:1 copy ("axis", i)."""
    groups, i, j, rin, rout = [], 0, 0, len(in_shape), len(out)
    while i < rin or j < rout:
        if j < rout and isinstance(out[j], tuple):
            if out[j][1] != i:
                return None
            groups.append(([i], [j]))
            i, j = i + 1, j + 1
            continue
        gi, gj, pi, pj = [], [], 1, 1
        while True:
            if (not gi or pi < pj) and i < rin and not (gj and pi == pj):
                if in_shape[i] is None:
                    return None
                gi.append(i)
                pi *= in_shape[i]
                i += 1
            elif (not gj or pj < pi) and j < rout and not isinstance(out[j], tuple):
                gj.append(j)
                pj *= out[j]
                j += 1
            else:
                break
        if pi != pj or not gi or not gj:
            return None
        groups.append((gi, gj))
    return groups


_PLACEHOLDER = 2 ** 12 * 3 ** 6 * 5 ** 4 * 7 ** 3 * 11 * 13 * 1_000_003
_PLACEHOLDER_DIM = 1_000_033   # a dynamic output dim given as a Dim (a prime, not a factor of the above)


def grouped_reshape(ctx, x, entries):
    """Reshape a tensor stored in another layout without moving data, when the reshape only
    merges/splits groups of axes that are contiguous (and in order) in the Keras layout, e.g.
    NCHW -> (N, C, H*W) on a channels-last tensor gives (N, H*W, C) with perm (0, 2, 1).

    One dynamic input dim that is not copied as is may be split or merged (B*H -> (B, H),
    (B*nW, ...) -> (B, nW, ...) with nW computed from H and W): it gets a placeholder size
    with many small factors and large primes, so that only the true grouping can match it."""
    sized = _sized_target([static_dim(d) for d in x.onnx_shape], list(entries))
    if sized is None:
        return None
    shp, out, inferred, symbolic = sized
    planned = stored_order_spec(x.perm, shp, out, inferred, symbolic)
    if planned is None:
        return None
    spec, perm = planned
    dims = list(symbolic)
    if symbolic:
        # a dim computed at run time: the whole target shape is built inside the reshape layer
        refs, dspec = shape_spec(ctx, np.array([symbolic[j] for j in dims], dtype=object), "target shape")
        shifted = _shift_refs(dspec[0], 1)
        full = [shifted if isinstance(e, Dim) else {"t": 0, "axis": e["axis"]} if isinstance(e, dict) else e
                for e in spec]
        y = ctx.op("reshape_spec", [ctx.keras(x)] + refs, spec=full)
    else:
        y = keras_exact.reshape(ctx, ctx.keras(x), spec)
    ctx.record(kind="reshape", decision="keep_layout", perm=perm,
               reason="the reshape merges/splits axis groups that are contiguous in the stored layout")
    return ctx.tensor(y, tuple(perm))


def _sized_target(shp: list, out: list):
    """(input sizes, target sizes, index of the -1 entry or None, {index: Dim}) with every
    unknown size replaced by the one value that makes the element counts agree (placeholders
    for a dynamic dim); None when the reshape has no unique such sizing."""
    dims = [j for j, e in enumerate(out) if isinstance(e, Dim)]
    if len(dims) > 1 or out.count(-1) > 1:
        return None
    symbolic = {j: out[j] for j in dims}
    for j in dims:
        out[j] = _PLACEHOLDER_DIM
    inferred = out.index(-1) if -1 in out else None
    copied = {e[1] for e in out if isinstance(e, tuple)}
    free = [k for k, d in enumerate(shp) if k not in copied]
    unknown = [k for k in free if shp[k] is None]
    if len(unknown) > 1 or (dims and not unknown):
        return None
    known_out = [e for e in out if isinstance(e, int) and e != -1]
    if 0 in known_out:
        return None
    part = int(np.prod(known_out, dtype=object))
    if unknown:
        shp = list(shp)
        if inferred is not None:
            shp[unknown[0]] = _PLACEHOLDER * (_PLACEHOLDER_DIM if dims else 1)
        else:
            rest = int(np.prod([shp[k] for k in free if k != unknown[0]], dtype=object))
            if rest == 0 or part % rest:
                return None
            shp[unknown[0]] = part // rest
    if inferred is not None:
        total = int(np.prod([shp[k] for k in free], dtype=object))
        if part == 0 or total % part:
            return None
        out[inferred] = total // part
    return shp, out, inferred, symbolic


def stored_order_spec(x_perm, shp, out, inferred, symbolic):
    """(reshape spec in the stored layout, output perm) when the reshape only merges/splits axis
    groups that are contiguous and in order in the stored layout; else None."""
    groups = _groups(shp, out)
    if groups is None:
        return None
    pos = {p: j for j, p in enumerate(x_perm)}
    order = []
    for gi, gj in groups:
        ks = [pos[a] for a in gi]
        if ks != list(range(ks[0], ks[0] + len(ks))):
            return None
        order.append((ks[0], gi, gj))
    order.sort()
    spec, perm = [], []
    for k0, gi, gj in order:
        for j in gj:
            if j in symbolic:
                spec.append(symbolic[j])
            else:
                spec.append({"axis": k0} if isinstance(out[j], tuple) else -1 if j == inferred else int(out[j]))
            perm.append(j)
    return spec, perm


def _shift_refs(spec, k):
    """A shape_vector spec entry with its tensor references moved by k."""
    if isinstance(spec, dict) and "op" in spec:
        return {"op": spec["op"], "args": [_shift_refs(a, k) for a in spec["args"]]}
    if isinstance(spec, dict):
        return {"t": spec["t"] + k, "axis": spec["axis"]}
    return spec


def reshape_to(ctx, x, entries, suffix=""):
    """Reshape Tensor x to `entries` (int, -1, ("axis", onnx_axis), Dim); result in ONNX layout."""
    direct = _direct(x)
    kt = ctx.keras(x) if direct else ctx.onnx_layout(x)
    perm = x.perm if direct else L.identity(x.rank)
    if any(isinstance(e, Dim) for e in entries):
        name = ctx.node.inputs[0]
        full = [Dim(source=(name, e[1])) if isinstance(e, tuple) else e for e in entries]
        refs, spec = shape_spec(ctx, np.array(full, dtype=object), "target shape")
        return ctx.op("reshape_spec", [kt] + refs, suffix=suffix, spec=spec)
    spec = [{"axis": L.keras_axis(perm, e[1])} if isinstance(e, tuple) else int(e) for e in entries]
    return keras_exact.reshape(ctx, kt, spec, suffix)


def _static_inferred(inferred, entries):
    """A -1 entry whose size ONNX shape inference knows (`inferred`: the output's inferred
    shape; e.g. the channels of ``x.reshape(B, H, W, -1)`` with H, W dynamic) becomes that
    size: Keras cannot infer it from a shape holding dynamic entries, and a later Conv/Dense
    needs it static."""
    if -1 not in entries or not inferred or len(inferred) != len(entries):
        return entries
    j = entries.index(-1)
    d = static_dim(inferred[j])
    if d is None or d <= 0:
        return entries
    out = list(entries)
    out[j] = int(d)
    return out


def _is_noop(entries, in_shape) -> bool:
    """Reshape entries that give every axis its own size back."""
    return len(entries) == len(in_shape) and all(
        (isinstance(e, tuple) and e[1] == i) or (isinstance(e, int) and e == static_dim(in_shape[i]))
        for i, e in enumerate(entries))


def _reshape_perm(node, perms, facts):
    """The layout of Reshape's output (the converter's decisions, on the inferred shapes): the
    input's when the reshape is a no-op, a kept stored layout when it only merges/splits axis
    groups contiguous in it, else the ONNX layout. None when the target is not known yet."""
    x, shape = perms[0], facts.shape(0)
    if facts.computed(1):
        out = facts.out_shape(0)
        return [None if out is None else L.identity(len(out))]
    target = node.attr("shape") if node.opset < 5 else facts.value(1)
    if x is None or shape is None or target is None:
        return [None]
    target = [t if isinstance(t, Dim) else int(t) for t in np.asarray(target, dtype=object).reshape(-1)]
    entries = _static_inferred(facts.out_shape(0), _reshape_entries(node, shape, target))
    if _is_noop(entries, shape):
        return [tuple(x)]
    if not _direct_perm(x, shape):
        sized = _sized_target([static_dim(d) for d in shape], list(entries))
        planned = stored_order_spec(x, *sized) if sized is not None else None
        if planned is not None:
            return [tuple(planned[1])]
    return [L.identity(len(entries))]


def _elements(shape):
    """The element count of a fully static ONNX shape, else None."""
    if shape is None or any(static_dim(d) is None for d in shape):
        return None
    return int(np.prod([static_dim(d) for d in shape], dtype=np.int64))


def _check_reshape(node, facts):
    """The spec: at most one -1, no entry below -1, and the element count is preserved
    (onnxruntime's reshape_helper refuses the same)."""
    target = node.attr("shape") if node.opset < 5 else facts.value(1)
    if target is not None and np.asarray(target).dtype != object:
        t = [int(v) for v in np.asarray(target).reshape(-1)]
        if t.count(-1) > 1 or any(v < -1 for v in t):
            return f"target shape {t}: at most one -1 and no entry below -1"
    out = facts.out_shape(0)
    # an output of unknown rank can read as (): only a ranked inferred shape decides
    n_in, n_out = _elements(facts.shape(0)), _elements(out) if out else None
    if n_in is not None and n_out is not None and n_in != n_out:
        return (f"cannot reshape {list(facts.shape(0))} ({n_in} elements) to {list(facts.out_shape(0))} "
                f"({n_out} elements): the element count must not change")
    return None


@converter("Reshape", since=1, params=(1,), fold=fold_reshape, layout=AXIS, perm=_reshape_perm, check=_check_reshape)
def reshape(ctx, node):
    x = ctx.input(0)
    if isinstance(ctx.input(1), Tensor):  # a shape computed by the graph at run time
        allowzero = node.opset >= 14 and bool(int(node.attr("allowzero") or 0))
        y = ctx.op("reshape_runtime", [ctx.onnx_layout(x), ctx.keras(ctx.input(1))], allowzero=allowzero)
        return ctx.tensor(y)
    if node.opset < 5:
        target = [int(v) for v in node.attr("shape")]
    else:
        target = list(np.asarray(ctx.const(1, "shape", allow_dims=True)).reshape(-1))
    entries = _static_inferred(ctx.value_shapes.get(node.outputs[0]),
                               _reshape_entries(node, x.onnx_shape, target))
    if _is_noop(entries, x.onnx_shape):
        return x  # a no-op reshape keeps the layout
    if not _direct(x):
        kept = grouped_reshape(ctx, x, entries)
        if kept is not None:
            return kept
    return ctx.tensor(reshape_to(ctx, x, entries))


@converter("Flatten", since=1, fold=fold_flatten)
def flatten(ctx, node):
    x = ctx.input(0)
    axis = int(node.attr("axis"))
    if axis < 0:
        axis += x.rank
    shp = [static_dim(d) for d in x.onnx_shape]
    lead, tail = shp[:axis], shp[axis:]
    if None not in lead:
        entries = [int(np.prod(lead, dtype=np.int64)), -1]
    elif None not in tail:
        entries = [-1, int(np.prod(tail, dtype=np.int64))]
    elif axis == 1:
        entries = [("axis", 0), -1]
    else:  # dynamic dims on both sides: the leading product is computed at run time
        lead_dim = 1
        for i, d in enumerate(lead):
            lead_dim = lead_dim * (d if d is not None else Dim(source=(node.inputs[0], i)))
        entries = [lead_dim, -1]
    if axis == 1 and _direct(x) and L.keras_axis(x.perm, 0) == 0 and x.rank > 2:
        return ctx.tensor(ctx.layer(keras.layers.Flatten(name=ctx.name()), ctx.keras(x)))
    return ctx.tensor(reshape_to(ctx, x, entries))


# ----------------------------------------------------------------------------- Transpose
def _transpose_axes(node, rank: int) -> tuple:
    perm = node.attr("perm")
    return tuple(int(p) for p in perm) if perm is not None else tuple(reversed(range(rank)))


def _transpose_perm(node, perms, facts):
    """Transpose moves no data: the output is the input stored as it is, its axes renamed."""
    x = perms[0]
    return [None if x is None else L.compose_transpose(x, _transpose_axes(node, len(x)))]


@converter("Transpose", layout=AXIS, since=1, fold=fold_transpose, perm=_transpose_perm)
def transpose(ctx, node):
    x = ctx.tensor_of(ctx.input(0))  # a shape value with dynamic dims the folder left
    t = _transpose_axes(node, x.rank)
    new = L.compose_transpose(x.perm, t)
    shape = tuple(x.onnx_shape[p] for p in t) if len(x.onnx_shape) == x.rank else ()
    return Tensor(x.kt, new, shape, x.dtype)
