"""Indexing ops: Gather, GatherElements, GatherND, Trilu, OneHot, CumSum, CumProd."""
from __future__ import annotations

import numpy as np

from .. import layout as L
from ..values import Const, Tensor, static_dim
from . import keras_exact
from .args import int_scalar
from .elementwise import dtype_of
from . import spec_checks
from .registry import AXIS, converter
from .shape import normalize


# ----------------------------------------------------------------------------- Gather
def fold_gather(node, data, indices):
    axis = int(node.attr("axis"))
    data = np.asarray(data)
    axis %= max(data.ndim, 1)
    idx = np.asarray(indices).astype(np.int64)
    idx = np.where(idx < 0, idx + data.shape[axis], idx)
    return [normalize(np.take(data, idx, axis=axis))]


def _gather_layout(data_perm, axis: int, q: int) -> tuple:
    """Gather's output layout: Keras puts the q index dims where `axis` is stored, the ONNX axes
    after `axis` shift by q - 1."""
    k = L.keras_axis(data_perm, axis)
    shift = [p if p < axis else p + q - 1 for p in data_perm]
    return tuple(shift[:k]) + tuple(axis + j for j in range(q)) + tuple(shift[k + 1:])


def _gather_perm(node, perms, facts):
    data, q = perms[0], facts.rank(1)
    if q is None and perms[1] is not None:
        q = len(perms[1])
    out = facts.out_shape(0)
    if data is None and not facts.computed(0):  # a constant table: the ONNX layout
        return [None if out is None else L.identity(len(out))]
    if data is None or q is None:
        return [None]
    return [_gather_layout(data, int(node.attr("axis")) % len(data), q)]


@converter("Gather", layout=AXIS, since=1, fold=fold_gather, perm=_gather_perm)
def gather(ctx, node):
    data, ind = ctx.input(0), ctx.input(1)
    axis = int(node.attr("axis"))
    if isinstance(data, Const):
        # e.g. an embedding table indexed by a runtime tensor: ONNX layout throughout
        rank = data.rank
        axis %= rank
        idx = ctx.onnx_layout(ind)
        y = ctx.op("gather", [ctx.keras(data), idx], axis=axis)
        return ctx.tensor(y)
    axis %= data.rank
    k = L.keras_axis(data.perm, axis)
    if isinstance(ind, Const):
        idx = np.asarray(ctx.const(1, "indices")).astype(np.int64)
        dim = static_dim(data.onnx_shape[axis])
        if dim is not None:
            idx = np.where(idx < 0, idx + dim, idx)
        q = idx.ndim
    else:
        idx = ctx.onnx_layout(ind)
        q = ind.rank
    perm = _gather_layout(data.perm, axis, q)
    if isinstance(idx, np.ndarray) and idx.ndim == 0 and static_dim(data.onnx_shape[axis]) is not None:
        sl = [[None, None, None] for _ in range(data.rank)]
        sl[k] = [int(idx), int(idx) + 1, None]
        y = ctx.op("slice", [ctx.keras(data)], suffix="slice", slices=sl)
        r = keras_exact.unit_axes_reshape(ctx, y, drop=[k], suffix="squeeze")
        y = r if r is not None else ctx.op("squeeze", [y], axes=[k])
    else:
        y = ctx.op("gather", [ctx.keras(data), idx], axis=k)
    return ctx.tensor(y, perm)


def _fold_gather_elements(node, data, idx):
    axis = int(node.attr("axis")) % np.ndim(data)
    idx = np.asarray(idx).astype(np.int64)
    idx = np.where(idx < 0, idx + np.shape(data)[axis], idx)
    return [np.take_along_axis(np.asarray(data), idx, axis=axis)]


def _check_gather_elements(node, facts):
    """The spec: data and indices have the same rank (onnxruntime refuses other ranks)."""
    r, ri = facts.rank(0), facts.rank(1)
    if r is not None and ri is not None and r != ri:
        return f"indices have rank {ri}, data rank {r}: GatherElements needs the same rank"
    return None


@converter("GatherElements", layout=AXIS, since=11, fold=_fold_gather_elements, check=_check_gather_elements)
def gather_elements(ctx, node):
    data, ind = ctx.input(0), ctx.input(1)
    rank = data.rank
    axis = int(node.attr("axis")) % rank
    perm = data.perm if isinstance(data, Tensor) else ind.perm
    d = ctx.keras(data, perm)
    if isinstance(ind, Const):
        idx = np.asarray(ind.value).astype(np.int64)
        dim = static_dim(data.shape[axis]) if isinstance(data, Tensor) else data.shape[axis]
        if dim is not None:
            idx = np.where(idx < 0, idx + dim, idx)
        idx = np.transpose(idx, perm)
        ishape = idx.shape
    else:
        idx = ctx.keras(ind, perm)
        ishape = tuple(ind.onnx_shape[p] for p in perm)
    dshape = tuple(static_dim(s) for s in (data.shape if isinstance(data, Const) else data.onnx_shape))
    dshape = tuple(dshape[p] for p in perm)
    k = L.keras_axis(perm, axis)
    # ONNX lets data be larger than indices on the other axes: crop it to the index shape
    crop = [[None, None, None] for _ in range(rank)]
    for j in range(rank):
        if j != k and static_dim(ishape[j]) is not None and dshape[j] is not None and dshape[j] > ishape[j]:
            crop[j] = [0, int(ishape[j]), None]
    if any(c != [None, None, None] for c in crop):
        if isinstance(d, np.ndarray):
            d = d[tuple(slice(*c) for c in crop)]
        else:
            d = ctx.op("slice", [d], suffix="crop", slices=crop)
    return ctx.tensor(ctx.op("gather_elements", [d, idx], axis=k), perm)


# ----------------------------------------------------------------------------- GatherND
def _fold_gather_nd(node, data, idx):
    b = int(node.attr("batch_dims", 0))
    data, idx = np.asarray(data), np.asarray(idx).astype(np.int64)
    k = idx.shape[-1]
    bshape = data.shape[:b]
    d = data.reshape((-1,) + data.shape[b:])
    ii = idx.reshape((d.shape[0], -1, k))
    out = []
    for n in range(d.shape[0]):
        out.append(np.stack([d[n][tuple(t)] for t in ii[n]]) if ii.shape[1] else
                   np.zeros((0,) + data.shape[b + k:], data.dtype))
    return [np.asarray(out).reshape(bshape + idx.shape[b:-1] + data.shape[b + k:])]


@converter("GatherND", since=11, fold=_fold_gather_nd, check=spec_checks.gather_nd, limits="index tuple length known at conversion time")
def gather_nd(ctx, node):
    data, ind = ctx.input(0), ctx.input(1)
    b = int(node.attr("batch_dims", 0))
    dshape = [static_dim(s) for s in (data.shape if isinstance(data, Tensor) else data.value.shape)]
    ishape = [static_dim(s) for s in (ind.shape if isinstance(ind, Tensor) else ind.value.shape)]
    if ishape[-1] is None:
        raise ctx.error("GatherND needs the length of its index tuples (the last indices dim) known at "
                        f"conversion time; got indices of shape {ind.shape}. Fix it with input_shapes")
    # dynamic data / index dims (None) are read at run time inside the gather_nd function
    out_shape = dshape[:b] + ishape[b:-1] + dshape[b + ishape[-1]:]
    args = [ctx.onnx_layout(data), ctx.onnx_layout(ind)]
    y = ctx.op("gather_nd", args, batch_dims=b, data_shape=dshape, out_shape=out_shape)
    return ctx.tensor(y)


# ----------------------------------------------------------------------------- Trilu
@converter("Trilu", layout=AXIS, since=14, consts=(1,), limits="k known at conversion time")
def trilu(ctx, node):
    x = ctx.input(0)
    k = int(np.asarray(ctx.const(1, "k")).reshape(())) if node.has_input(1) else 0
    upper = int(node.attr("upper"))
    h, w = (static_dim(d) for d in x.onnx_shape[-2:])
    if h is None or w is None:
        # e.g. a causal mask over a dynamic sequence length: the mask is built at run time
        axes = [L.keras_axis(x.perm, x.rank - 2), L.keras_axis(x.perm, x.rank - 1)]
        return ctx.tensor(ctx.op("trilu_dynamic", [ctx.keras(x)], k=k, upper=upper, axes=axes), x.perm)
    ones = np.ones((h, w), bool)
    mask = np.triu(ones, k) if upper else np.tril(ones, k)
    mask = np.transpose(mask.reshape((1,) * (x.rank - 2) + (h, w)), x.perm)
    return ctx.tensor(ctx.op("where_mask", [ctx.keras(x), mask]), x.perm)


# ----------------------------------------------------------------------------- OneHot
@converter("OneHot", since=9, consts=(1,), limits="depth known at conversion time")
def one_hot(ctx, node):
    ind = ctx.input(0)
    depth = int(np.asarray(ctx.const(1, "depth")).reshape(-1)[0])
    values = ctx.input(2)
    vals = ctx.keras(values) if isinstance(values, Tensor) else np.asarray(values.value)
    rank = ind.rank + 1
    axis = int(node.attr("axis")) % rank
    dtype = vals.dtype if isinstance(vals, np.ndarray) else values.dtype
    y = ctx.op("one_hot", [ctx.onnx_layout(ind), vals], depth=depth, axis=axis)
    return ctx.tensor(y, dtype=str(dtype))


# ----------------------------------------------------------------------------- CumSum
@converter("CumSum", layout=AXIS, since=11, consts=(1,), limits="axis known at conversion time")
def cumsum(ctx, node):
    x = ctx.input(0)
    axis = int(np.asarray(ctx.const(1, "axis")).reshape(-1)[0]) % x.rank
    y = ctx.op("cumsum", [ctx.keras(x)], axis=L.keras_axis(x.perm, axis),
               exclusive=bool(node.attr("exclusive")), reverse=bool(node.attr("reverse")))
    return ctx.tensor(y, x.perm)


@converter("CumProd", layout=AXIS, since=26, consts=(1,), check=spec_checks.cumulative, limits="axis known at conversion time")
def cumprod(ctx, node):
    x = ctx.input(0)
    axis = int_scalar(ctx, 1, "axis") % x.rank
    y = ctx.op("cumprod", [ctx.keras(x)], axis=L.keras_axis(x.perm, axis),
               exclusive=bool(node.attr("exclusive")), reverse=bool(node.attr("reverse")))
    return ctx.tensor(y, x.perm, dtype=dtype_of(x))
