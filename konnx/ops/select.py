"""Selection: TopK, Unique, NonZero, Compress, ReverseSequence."""
from __future__ import annotations

import numpy as np

from .. import layout as L
from ..values import Const
from .args import input_arg, int_scalar, static_shape
from .elementwise import dtype_of
from .registry import AXIS, converter


@converter("TopK", layout=AXIS, since=1, consts=(1,), limits="K known at conversion time; sorted output (also for sorted=0)")
def top_k(ctx, node):
    x = ctx.input(0)
    k = int(node.attr("k")) if node.opset < 10 else int_scalar(ctx, 1, "K")
    axis = int(node.attr("axis")) % x.rank
    largest = int(node.attr("largest")) if node.opset >= 11 else 1
    kx = ctx.keras(x)
    vals, idx = ctx.op("top_k", [kx], k=k, axis=L.keras_axis(x.perm, axis), largest=largest)
    return [ctx.tensor(vals, x.perm, dtype=dtype_of(x)), ctx.tensor(idx, x.perm, dtype="int64")]


@converter("ReverseSequence", layout=AXIS, since=10)
def reverse_sequence(ctx, node):
    x = ctx.input(0)
    y = ctx.op("reverse_sequence", [ctx.onnx_layout(x), input_arg(ctx, 1)],
               batch_axis=int(node.attr("batch_axis")), time_axis=int(node.attr("time_axis")))
    return ctx.tensor(y, dtype=dtype_of(x))


@converter("Compress", layout=AXIS, since=9, limits="output length known only at run time (TensorFlow backend)")
def compress(ctx, node):
    x, cond = ctx.input(0), ctx.input(1)
    axis = node.attr("axis")
    axis = None if axis is None else int(axis) % x.rank
    if isinstance(cond, Const):  # a constant condition: a plain gather
        keep = np.flatnonzero(np.asarray(cond.value).reshape(-1))
        if axis is None:
            flat = ctx.op("reshape", [ctx.onnx_layout(x)], suffix="flat", shape=[-1])
            return ctx.tensor(ctx.op("gather", [flat, keep.astype(np.int64)], axis=0), dtype=dtype_of(x))
        y = ctx.op("gather", [ctx.keras(x), keep.astype(np.int64)], axis=L.keras_axis(x.perm, axis))
        return ctx.tensor(y, x.perm, dtype=dtype_of(x))
    y = ctx.op("compress", [ctx.onnx_layout(x), ctx.onnx_layout(cond)], axis=axis)
    return ctx.tensor(y, dtype=dtype_of(x))


@converter("NonZero", since=9, limits="output length known only at run time (TensorFlow backend)")
def nonzero(ctx, node):
    return ctx.tensor(ctx.op("nonzero", [ctx.onnx_layout(ctx.input(0))]), dtype="int64")


def _check_unique(node, facts):
    axis, rank = node.attr("axis"), facts.rank(0)
    if axis is not None and rank is not None and facts.dim(0, int(axis) % rank) == 0:
        return "Unique of an empty axis"
    return None


@converter("Unique", since=11, check=_check_unique, limits="static element count; O(n^2) comparisons; output length known at run time")
def unique(ctx, node):
    x = ctx.input(0)
    axis = node.attr("axis")
    axis = None if axis is None else int(axis) % x.rank
    static_shape(ctx, x)
    outs = ctx.op("unique", [ctx.onnx_layout(x)], axis=axis, sort=bool(int(node.attr("sorted"))))
    return [ctx.tensor(outs[0], dtype=dtype_of(x))] + [ctx.tensor(o, dtype="int64") for o in outs[1:]]
