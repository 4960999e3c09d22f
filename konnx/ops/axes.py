"""Ops that join, cut, drop, add or repeat axes: Concat, Split, Slice, Squeeze, Unsqueeze, Expand,
Tile, with the conversion-time folds that shape arithmetic goes through."""
from __future__ import annotations

from collections import Counter

import numpy as np
from ..lazy_keras import keras

from .. import layout as L
from ..dims import shape_spec
from ..values import Const, Dim, Tensor, has_dims, static_dim
from . import keras_exact
from .registry import AXIS, converter
from .shape import axes_arg, ints, normalize


def const_inputs(ctx, start: int):
    """Inputs from `start` on as numpy arrays (constants required), None where absent."""
    return [ctx.const(i) if ctx.node.has_input(i) else None for i in range(start, ctx.n_inputs)]


# ----------------------------------------------------------------------------- folds
def fold_concat(node, *xs):
    axis = int(node.attr("axis"))
    arrays = [np.asarray(x) for x in xs if x is not None]
    if any(a.dtype == object for a in arrays):
        arrays = [a.astype(object) for a in arrays]
    return [normalize(np.concatenate(arrays, axis=axis))]


def squeeze_axes(node, shape, arrays):
    axes = axes_arg(node, arrays, 1, 13)
    if axes is None:
        return [i for i, d in enumerate(shape) if d == 1]
    return sorted(a % len(shape) for a in axes)


def fold_squeeze(node, x, *rest):
    x = np.asarray(x)
    return [np.squeeze(x, axis=tuple(squeeze_axes(node, x.shape, (x,) + rest)))]


def fold_unsqueeze(node, x, *rest):
    axes = axes_arg(node, (x,) + rest, 1, 13)
    x = np.asarray(x)
    r = x.ndim + len(axes)
    for a in sorted(a % r for a in axes):
        x = np.expand_dims(x, a)
    return [x]


def slice_params(node, rank, arrays):
    """Per ONNX axis (start, end, step) lists from attributes (opset < 10) or inputs."""
    if node.opset < 10:
        starts, ends = list(node.attr("starts")), list(node.attr("ends"))
        axes = node.attr("axes")
        axes = list(axes) if axes is not None else list(range(len(starts)))
        steps = [1] * len(starts)
    else:
        starts, ends = ints(arrays[1]), ints(arrays[2])
        axes = ints(arrays[3]) if len(arrays) > 3 and arrays[3] is not None else list(range(len(starts)))
        steps = ints(arrays[4]) if len(arrays) > 4 and arrays[4] is not None else [1] * len(starts)
    return [(int(a) % rank, int(s), int(e), int(st)) for a, s, e, st in zip(axes, starts, ends, steps)]


def onnx_slice(start: int, end: int, step: int, dim):
    """ONNX Slice semantics as a Python slice. With a static `dim` the bounds are clamped
    exactly as ONNX does; with an unknown dim Python's own clamping (identical for step > 0)
    is used and the INT64 sentinels become None."""
    if step == 0:
        raise ValueError("Slice step cannot be 0")
    if dim is None:
        big = 2 ** 31 - 1
        if step > 0:
            s = None if start <= -big else start
            e = None if end >= big else end
        else:
            s = None if start >= big else start
            e = None if end <= -big else end
        return slice(s, e, step)
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        return slice(start, end, step)
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return slice(start, None if end < 0 else end, step)


def fold_slice(node, x, *rest):
    if any(r is not None and has_dims(np.asarray(r, dtype=object)) for r in rest):
        return None
    x = np.asarray(x)
    idx = [slice(None)] * x.ndim
    for axis, s, e, st in slice_params(node, x.ndim, (x,) + rest):
        idx[axis] = onnx_slice(s, e, st, x.shape[axis])
    return [normalize(x[tuple(idx)])]


# ----------------------------------------------------------------------------- Concat / Split
def _majority(perms):
    """The layout most tensor inputs are stored in (the ONNX layout on a tie)."""
    counts = Counter(tuple(p) for p in perms)
    return max(counts, key=lambda p: (counts[p], L.is_identity(p)))


def _concat_perm(node, perms, facts):
    tensors = [p for p in perms if p is not None]
    return [_majority(tensors) if tensors else None]


@converter("Concat", layout=AXIS, since=1, fold=fold_concat, perm=_concat_perm)
def concat(ctx, node):
    vals = [ctx.input(i) for i in range(ctx.n_inputs)]
    tensors = [v for v in vals if isinstance(v, Tensor)]
    axis = int(node.attr("axis"))
    perm = _majority([t.perm for t in tensors])
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
    axis = int(node.attr("axis")) % x.ndim
    split = node.attr("split") if node.opset < 13 else (rest[0] if rest and rest[0] is not None else None)
    if split is None or not len(split):
        n = int(node.attr("num_outputs")) if node.opset >= 18 and node.attr("num_outputs") else len(node.outputs)
        dim = x.shape[axis]
        chunk = -(-dim // n) if node.opset >= 18 and node.attr("num_outputs") else dim // n
        split = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
    bounds = np.cumsum([int(s) for s in split])[:-1]
    return list(np.split(x, bounds, axis=axis))


@converter("Split", layout=AXIS, since=1, consts=(1,), fold=_fold_split, limits="split sizes known at conversion time (dynamic dims allowed)")
def split(ctx, node):
    x = ctx.input(0)
    axis = int(node.attr("axis")) % x.rank
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


def _check_slice(node, facts):
    steps = facts.value(4) if node.has_input(4) else None
    if node.opset >= 10 and (facts.computed(1) or facts.computed(2)) and steps is not None \
            and any(int(s) != 1 for s in ints(steps)):
        return f"a Slice with bounds computed at run time is supported with step 1 only; got steps {ints(steps)}"
    return None


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


@converter("Slice", layout=AXIS, since=1, consts=(3, 4), params=(1, 2), check=_check_slice, fold=fold_slice,
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
def _known_inputs(node, facts) -> list:
    """[None, value of input 1, ...]: the conversion-time values a layout rule may read."""
    return [None] + [facts.value(i) for i in range(1, len(node.inputs))]


def _squeeze_perm(node, perms, facts):
    x, shape = perms[0], facts.shape(0)
    if x is None or (shape is None and axes_arg(node, _known_inputs(node, facts), 1, 13) is None):
        return [None]
    axes = squeeze_axes(node, shape if shape is not None else (None,) * len(x), _known_inputs(node, facts))
    return [L.drop_axes(x, axes) if axes else tuple(x)]


def _unsqueeze_perm(node, perms, facts):
    x, axes = perms[0], axes_arg(node, _known_inputs(node, facts), 1, 13)
    if x is None or axes is None:
        return [None]
    r_out = len(x) + len(axes)
    return [unsqueeze_perm(x, sorted(a % r_out for a in axes))[0]]


def _expand_perm(node, perms, facts):
    x, out = perms[0], facts.out_shape(0)
    target = facts.value(1)
    rank = len(out) if out is not None else (max(len(x), np.size(target)) if x and target is not None else None)
    return [None if x is None or rank is None else L.extend(x, rank)]


@converter("Squeeze", layout=AXIS, since=1, consts=(1,), fold=fold_squeeze, limits="axes known at conversion time",
           perm=_squeeze_perm)
def squeeze(ctx, node):
    x = ctx.input(0)
    arrays = [None] + ([] if node.opset < 13 else const_inputs(ctx, 1))
    axes = squeeze_axes(node, x.onnx_shape, arrays)
    if not axes:
        return x
    kaxes = sorted(L.keras_axis(x.perm, a) for a in axes)
    perm = L.drop_axes(x.perm, axes)
    if all(static_dim(x.onnx_shape[a]) == 1 for a in axes):
        y = keras_exact.unit_axes_reshape(ctx, ctx.keras(x), drop=kaxes, suffix="squeeze")
        return ctx.tensor(y if y is not None else ctx.op("squeeze", [ctx.keras(x)], axes=kaxes), perm)
    # a dynamic axis (1 at run time): Keras cannot prove it is 1, a reshape can drop it
    spec = [static_dim(x.onnx_shape[p]) if static_dim(x.onnx_shape[p]) is not None else {"axis": j}
            for j, p in enumerate(x.perm) if j not in kaxes]
    return ctx.tensor(keras_exact.reshape(ctx, ctx.keras(x), spec, suffix="squeeze"), perm)


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


@converter("Unsqueeze", layout=AXIS, since=1, consts=(1,), fold=fold_unsqueeze, limits="axes known at conversion time",
           perm=_unsqueeze_perm)
def unsqueeze(ctx, node):
    x = ctx.input(0)
    arrays = [None] + ([] if node.opset < 13 else const_inputs(ctx, 1))
    axes = axes_arg(node, arrays, 1, 13)
    r_out = x.rank + len(axes)
    new_axes = sorted(a % r_out for a in axes)
    perm, positions = unsqueeze_perm(x.perm, new_axes)
    y = keras_exact.unit_axes_reshape(ctx, ctx.keras(x), insert=positions, suffix="unsqueeze")
    return ctx.tensor(y if y is not None else ctx.op("expand_dims", [ctx.keras(x)], axes=positions), perm)


# ----------------------------------------------------------------------------- Expand / Tile
def _fold_expand(node, x, shp):
    if np.asarray(shp).dtype == object:
        return None
    x = np.asarray(x)
    return [x * np.ones(tuple(ints(shp)), dtype=x.dtype) if x.dtype != object
            else np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(ints(shp)))).copy()]


@converter("Expand", layout=AXIS, since=8, consts=(1,), fold=_fold_expand, limits="shape known at conversion time (dynamic dims allowed)",
           perm=_expand_perm)
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


@converter("Tile", layout=AXIS, since=6, consts=(1,), fold=_fold_tile, limits="repeats known at conversion time")
def tile(ctx, node):
    x = ctx.input(0)
    reps = ints(ctx.const(1, "repeats"))
    if all(r == 1 for r in reps):
        return x
    return ctx.tensor(ctx.op("tile", [ctx.keras(x)], repeats=[reps[p] for p in x.perm]), x.perm)
