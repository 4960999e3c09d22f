"""Layout and shape ops: Reshape, Flatten, Transpose, Concat, Split, Slice, Squeeze, Unsqueeze,
Expand, Tile. Gather*, Pad, DepthToSpace, Trilu, OneHot and CumSum live in tensor_index.py and
tensor_pad.py (imported here so they register with this module)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import keras

from .. import layout as L
from ..values import Const, Dim, Tensor, has_dims, static_dim
from .registry import converter
from .shape import (
    axes_arg, dim_axis, fold_concat, fold_flatten, fold_reshape, fold_slice, fold_squeeze,
    fold_transpose, fold_unsqueeze, ints, onnx_slice, runtime_shape, shape_spec, slice_params, squeeze_axes,
)
from . import tensor_index, tensor_pad  # noqa: F401  (register their converters)


def const_inputs(ctx, start: int):
    """Inputs from `start` on as numpy arrays (constants required), None where absent."""
    return [ctx.const(i) if ctx.node.has_input(i) else None for i in range(start, ctx.n_inputs)]


# ----------------------------------------------------------------------------- Reshape
def _reshape_entries(ctx, node, x, target):
    """Target entries as int (static), -1, or ("axis", onnx_axis) = copy that input dim."""
    allowzero = node.opset >= 14 and int(node.attr("allowzero", 0) or 0)
    in_shape = x.onnx_shape
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
    return L.is_identity(x.perm) or L.order_preserving(x.perm, x.onnx_shape)


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
    shp = [static_dim(d) for d in x.onnx_shape]
    out = [e for e in entries]
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
    groups = _groups(shp, out)
    if groups is None:
        return None
    pos = {p: j for j, p in enumerate(x.perm)}
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
    if symbolic:
        # a dim computed at run time: the whole target shape is built inside the reshape layer
        refs, dspec = shape_spec(ctx, np.array([symbolic[j] for j in dims], dtype=object), "target shape")
        shifted = _shift_refs(dspec[0], 1)
        full = [shifted if isinstance(e, Dim) else {"t": 0, "axis": e["axis"]} if isinstance(e, dict) else e
                for e in spec]
        y = ctx.op("reshape_spec", [ctx.keras(x)] + refs, spec=full)
    elif spec and spec[0] == {"axis": 0} and all(isinstance(s_, int) for s_ in spec[1:]):
        y = ctx.layer(keras.layers.Reshape(tuple(spec[1:]), name=ctx.name("reshape")), ctx.keras(x))
    else:
        y = ctx.op("reshape", [ctx.keras(x)], shape=spec)
    ctx.record(kind="reshape", decision="keep_layout", perm=perm,
               reason="the reshape merges/splits axis groups that are contiguous in the stored layout")
    return ctx.tensor(y, tuple(perm))


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
    if spec and spec[0] == {"axis": 0} and all(isinstance(s, int) for s in spec[1:]):
        return ctx.layer(keras.layers.Reshape(tuple(spec[1:]), name=ctx.name(suffix or "reshape")), kt)
    return ctx.op("reshape", [kt], suffix=suffix, shape=spec)


def _static_inferred(ctx, node, entries):
    """A -1 entry whose size ONNX shape inference knows (e.g. the channels of
    ``x.reshape(B, H, W, -1)`` with H, W dynamic) becomes that size: Keras cannot infer it
    from a shape holding dynamic entries, and a later Conv/Dense needs it static."""
    inferred = ctx.value_shapes.get(node.outputs[0])
    if -1 not in entries or not inferred or len(inferred) != len(entries):
        return entries
    j = entries.index(-1)
    d = static_dim(inferred[j])
    if d is None or d <= 0:
        return entries
    out = list(entries)
    out[j] = int(d)
    return out


@converter("Reshape", since=1, fold=fold_reshape)
def reshape(ctx, node):
    x = ctx.input(0)
    if isinstance(ctx.input(1), Tensor):  # a shape computed by the graph at run time
        allowzero = node.opset >= 14 and bool(int(node.attr("allowzero", 0) or 0))
        y = ctx.op("reshape_runtime", [ctx.onnx_layout(x), ctx.keras(ctx.input(1))], allowzero=allowzero)
        return ctx.tensor(y)
    if node.opset < 5:
        target = [int(v) for v in node.attr("shape")]
    else:
        target = list(np.asarray(ctx.const(1, "shape", allow_dims=True)).reshape(-1))
    entries = _static_inferred(ctx, node, _reshape_entries(ctx, node, x, target))
    if len(entries) == x.rank and all(
            (isinstance(e, tuple) and e[1] == i) or (isinstance(e, int) and e == static_dim(x.onnx_shape[i]))
            for i, e in enumerate(entries)):
        return x  # a no-op reshape keeps the layout
    if not _direct(x):
        kept = grouped_reshape(ctx, x, entries)
        if kept is not None:
            return kept
    return ctx.tensor(reshape_to(ctx, x, entries))


@converter("Flatten", since=1, fold=fold_flatten)
def flatten(ctx, node):
    x = ctx.input(0)
    axis = int(node.attr("axis", 1))
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
@converter("Transpose", since=1, fold=fold_transpose)
def transpose(ctx, node):
    x = ctx.tensor_of(ctx.input(0))  # a shape value with dynamic dims the folder left
    perm = node.attr("perm")
    t = tuple(int(p) for p in perm) if perm is not None else tuple(reversed(range(x.rank)))
    new = L.compose_transpose(x.perm, t)
    shape = tuple(x.onnx_shape[p] for p in t) if len(x.onnx_shape) == x.rank else ()
    return Tensor(x.kt, new, shape, x.dtype)


# ----------------------------------------------------------------------------- Concat / Split
@converter("Concat", since=1, fold=fold_concat)
def concat(ctx, node):
    vals = [ctx.input(i) for i in range(ctx.n_inputs)]
    tensors = [v for v in vals if isinstance(v, Tensor)]
    axis = int(node.attr("axis"))
    counts = Counter(t.perm for t in tensors)
    perm = max(counts, key=lambda p: (counts[p], L.is_identity(p)))
    args = []
    for v in vals:
        if v is None or (isinstance(v, Const) and v.value.size == 0):
            continue
        args.append(ctx.keras(v, perm))
    if len(args) == 1:
        return Tensor(args[0], perm, tensors[0].onnx_shape, tensors[0].dtype) if tensors[0].perm == perm \
            else ctx.tensor(args[0], perm)
    k = L.keras_axis(perm, axis)
    if k != 0 and not any(isinstance(a, np.ndarray) for a in args):
        y = ctx.layer(keras.layers.Concatenate(axis=k, name=ctx.name()), args)
    else:
        y = ctx.op("concat", args, axis=k)
    return ctx.tensor(y, perm)


def _split_sizes(ctx, node, x, axis, n_out):
    """Split sizes: ints, or Dims (run-time sizes) when the axis or the split input is dynamic."""
    if node.opset >= 13:
        split = ctx.const(1, "split", allow_dims=True).tolist() if node.has_input(1) else None
    else:
        split = node.attr("split")
    if split is not None and len(split):
        return [s if isinstance(s, Dim) else int(s) for s in split]
    dim = static_dim(x.onnx_shape[axis])
    if dim is None:  # an equal split of a dynamic axis: sizes computed from its run-time size
        dim = Dim(source=(node.inputs[0], axis))
    n = int(node.attr("num_outputs")) if node.opset >= 18 and node.attr("num_outputs") else n_out
    if node.opset >= 18 and node.attr("num_outputs"):
        chunk = (dim + (n - 1)) // n
        return [chunk] * (n - 1) + [dim - chunk * (n - 1)]
    return [dim // n] * n


def _fold_split(node, x, *rest):
    x = np.asarray(x)
    axis = int(node.attr("axis", 0)) % x.ndim
    split = node.attr("split") if node.opset < 13 else (rest[0] if rest and rest[0] is not None else None)
    if split is None or not len(split):
        n = int(node.attr("num_outputs")) if node.opset >= 18 and node.attr("num_outputs") else len(node.outputs)
        dim = x.shape[axis]
        chunk = -(-dim // n) if node.opset >= 18 and node.attr("num_outputs") else dim // n
        split = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
    bounds = np.cumsum([int(s) for s in split])[:-1]
    return list(np.split(x, bounds, axis=axis))


@converter("Split", since=1, fold=_fold_split, limits="split sizes known at conversion time (dynamic dims allowed)")
def split(ctx, node):
    x = ctx.input(0)
    axis = int(node.attr("axis", 0)) % x.rank
    sizes = _split_sizes(ctx, node, x, axis, len(node.outputs))
    if len(sizes) == 1:
        return [x]
    k = L.keras_axis(x.perm, axis)
    if any(isinstance(s_, Dim) for s_ in sizes):
        # sizes known at run time: one slice per output between cumulative bounds
        outs, start = [], 0
        for size in sizes:
            end = start + size
            bounds = [ctx.keras(Const(np.array([b], dtype=object))) if isinstance(b, Dim)
                      else np.array([int(b)], np.int64) for b in (start, end)]
            y = ctx.op("slice_dynamic", [ctx.keras(x)] + bounds, suffix="split", axes=[k])
            outs.append(ctx.tensor(y, x.perm))
            start = end
        return outs
    parts = ctx.op("split", [ctx.keras(x)], sizes=sizes, axis=k)
    return [ctx.tensor(p, x.perm) for p in parts]


# ----------------------------------------------------------------------------- Slice
def _bounds_dynamic(ctx, node) -> bool:
    """Slice-10+ whose starts or ends are computed at run time (or hold dynamic dims)."""
    if node.opset < 10:
        return False
    return any(isinstance(v, Tensor) or (isinstance(v, Const) and has_dims(v.value))
               for v in (ctx.input(1), ctx.input(2)))


def _slice_dynamic(ctx, node, x):
    axes = ctx.const(3, "axes") if node.has_input(3) else None
    steps = ctx.const(4, "steps") if node.has_input(4) else None
    n = int(np.prod(ctx.input(1).shape)) if ctx.input(1).shape else 1
    axes = [int(a) % x.rank for a in (ints(axes) if axes is not None else range(n))]
    if steps is not None and any(int(s) != 1 for s in ints(steps)):
        raise ctx.error("a Slice with bounds computed at run time is supported with step 1 only; "
                        f"got steps {ints(steps)}")
    bounds = []
    for i in (1, 2):
        v = ctx.input(i)
        if isinstance(v, Const) and not has_dims(v.value):
            bounds.append(np.asarray(v.value, np.int64).reshape(-1))
        else:
            bounds.append(ctx.keras(v))
    kaxes = [L.keras_axis(x.perm, a) for a in axes]
    y = ctx.op("slice_dynamic", [ctx.keras(x)] + bounds, axes=kaxes)
    return ctx.tensor(y, x.perm)


@converter("Slice", since=1, fold=fold_slice,
           limits="axes/steps known at conversion time; starts/ends computed at run time need step 1")
def slice_(ctx, node):
    x = ctx.input(0)
    if _bounds_dynamic(ctx, node):
        return _slice_dynamic(ctx, node, x)
    arrays = [None] + ([None] * 4 if node.opset < 10 else const_inputs(ctx, 1))
    slices = [[None, None, None] for _ in range(x.rank)]
    for axis, s, e, st in slice_params(node, x.rank, arrays):
        sl = onnx_slice(s, e, st, static_dim(x.onnx_shape[axis]))
        slices[L.keras_axis(x.perm, axis)] = [sl.start, sl.stop, None if sl.step == 1 else sl.step]
    if all(s == [None, None, None] for s in slices):
        return x
    return ctx.tensor(ctx.op("slice", [ctx.keras(x)], slices=slices), x.perm)


# ----------------------------------------------------------------------------- Squeeze / Unsqueeze
@converter("Squeeze", since=1, fold=fold_squeeze, limits="axes known at conversion time")
def squeeze(ctx, node):
    x = ctx.input(0)
    arrays = [None] + ([] if node.opset < 13 else const_inputs(ctx, 1))
    axes = squeeze_axes(node, x.onnx_shape, arrays)
    if not axes:
        return x
    kaxes = sorted(L.keras_axis(x.perm, a) for a in axes)
    perm = L.drop_axes(x.perm, axes)
    if all(static_dim(x.onnx_shape[a]) == 1 for a in axes):
        return ctx.tensor(ctx.op("squeeze", [ctx.keras(x)], axes=kaxes), perm)
    # a dynamic axis (1 at run time): Keras cannot prove it is 1, a reshape can drop it
    spec = [static_dim(x.onnx_shape[p]) if static_dim(x.onnx_shape[p]) is not None else {"axis": j}
            for j, p in enumerate(x.perm) if j not in kaxes]
    return ctx.tensor(ctx.op("reshape", [ctx.keras(x)], suffix="squeeze", shape=spec), perm)


def unsqueeze_perm(perm, new_axes):
    """Perm after inserting unit ONNX axes `new_axes` (of the output): each new axis goes right
    after the Keras position of the ONNX axis before it, so the layout is kept."""
    r_out = len(perm) + len(new_axes)
    old_to_new = [i for i in range(r_out) if i not in new_axes]
    order = [old_to_new[p] for p in perm]
    for a in sorted(new_axes):
        pos = 0 if a == 0 else order.index(a - 1) + 1
        order.insert(pos, a)
    return tuple(order), sorted(order.index(a) for a in new_axes)


@converter("Unsqueeze", since=1, fold=fold_unsqueeze, limits="axes known at conversion time")
def unsqueeze(ctx, node):
    x = ctx.input(0)
    arrays = [None] + ([] if node.opset < 13 else const_inputs(ctx, 1))
    axes = axes_arg(node, arrays, 1, 13)
    r_out = x.rank + len(axes)
    new_axes = sorted(a % r_out for a in axes)
    perm, positions = unsqueeze_perm(x.perm, new_axes)
    y = ctx.op("expand_dims", [ctx.keras(x)], axes=positions)
    return ctx.tensor(y, perm)


# ----------------------------------------------------------------------------- Expand / Tile
def _fold_expand(node, x, shp):
    if np.asarray(shp).dtype == object:
        return None
    x = np.asarray(x)
    return [x * np.ones(tuple(ints(shp)), dtype=x.dtype) if x.dtype != object
            else np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(ints(shp)))).copy()]


@converter("Expand", since=8, fold=_fold_expand, limits="shape known at conversion time (dynamic dims allowed)")
def expand(ctx, node):
    x = ctx.input(0)
    target = list(np.asarray(ctx.const(1, "shape", allow_dims=True)).reshape(-1))
    r, R = x.rank, max(x.rank, len(target))
    if isinstance(x, Const):  # a constant broadcast to a shape known only at run time
        arr = np.asarray(x.value).reshape((1,) * (R - r) + x.shape)
        ts = [1] * (R - len(target)) + target
        full = [t if isinstance(t, Dim) else (arr.shape[i] if int(t) == 1 else int(t)) for i, t in enumerate(ts)]
        refs, spec = shape_spec(ctx, np.array(full, dtype=object), "Expand shape")
        return ctx.tensor(ctx.op("broadcast_spec", [arr] + refs, spec=spec))
    xs = [1] * (R - r) + list(x.onnx_shape)
    ts = [1] * (R - len(target)) + target
    name = node.inputs[0]
    out, dynamic = [], False
    for i, (t, d) in enumerate(zip(ts, xs)):
        src = ("axis", i - (R - r)) if i >= R - r else None
        if isinstance(t, Dim):
            if static_dim(d) == 1:
                out.append(t)
                dynamic = True
            else:
                out.append(static_dim(d) if static_dim(d) is not None else src)
        elif int(t) == 1:
            out.append(static_dim(d) if static_dim(d) is not None else src)
        else:
            out.append(int(t))
    kt = ctx.keras(x)
    perm = x.perm
    if R > r:
        kt = ctx.op("expand_dims", [kt], suffix="rank", axes=list(range(R - r)))
        perm = tuple(range(R - r)) + tuple(p + R - r for p in perm)
    if out == [static_dim(d) for d in xs]:
        return ctx.tensor(kt, perm) if R > r else x
    if dynamic:
        full = [Dim(source=(name, e[1])) if isinstance(e, tuple) else e for e in out]
        refs, spec = shape_spec(ctx, np.array([full[p] for p in perm], dtype=object), "Expand shape")
        return ctx.tensor(ctx.op("broadcast_spec", [kt] + refs, spec=spec), perm)
    spec = []
    for p in perm:
        e = out[p]
        spec.append({"axis": L.keras_axis(perm, e[1] + (R - r))} if isinstance(e, tuple) else int(e))
    return ctx.tensor(ctx.op("broadcast", [kt], shape=spec), perm)


def _fold_tile(node, x, reps):
    return [np.tile(np.asarray(x), tuple(ints(reps)))]


@converter("Tile", since=6, fold=_fold_tile, limits="repeats known at conversion time")
def tile(ctx, node):
    x = ctx.input(0)
    reps = ints(ctx.const(1, "repeats"))
    if all(r == 1 for r in reps):
        return x
    return ctx.tensor(ctx.op("tile", [ctx.keras(x)], repeats=[reps[p] for p in x.perm]), x.perm)
