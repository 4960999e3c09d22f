"""Scatter: ScatterElements/Scatter, ScatterND (with reductions) and TensorScatter (a KV-cache update)."""
from __future__ import annotations

from .args import input_arg, static_shape
from ..values import static_dim
from .elementwise import dtype_of
from . import spec_checks
from .registry import converter


def _check_scatter(node, facts):
    r = node.attr("reduction", "none") or "none"
    if r not in ("none", "add", "mul", "max", "min"):
        return f"unknown reduction {r!r}"
    if node.op_type not in ("ScatterElements", "Scatter"):
        return None
    return spec_checks.scatter_elements(node, facts)


@converter("ScatterElements", "Scatter", since=9, check=_check_scatter,
           limits="mul/max/min reductions build an updates x data mask")
def scatter_elements(ctx, node):
    data = ctx.input(0)
    shape = [static_dim(d) for d in data.onnx_shape]  # None: read at run time
    axis = int(node.attr("axis", 0)) % len(shape)
    y = ctx.op("scatter_elements", [input_arg(ctx, 0), input_arg(ctx, 1), input_arg(ctx, 2)], axis=axis, data_shape=shape,
               reduction=node.attr("reduction", "none") or "none")
    return ctx.tensor(y, dtype=dtype_of(data))


@converter("ScatterND", since=11, check=_check_scatter,
           limits="mul/max/min reductions build an updates x data mask")
def scatter_nd(ctx, node):
    data = ctx.input(0)
    shape = [static_dim(d) for d in data.onnx_shape]  # None: read at run time
    y = ctx.op("scatter_nd", [input_arg(ctx, 0), input_arg(ctx, 1), input_arg(ctx, 2)], data_shape=shape,
               reduction=node.attr("reduction", "none") or "none")
    return ctx.tensor(y, dtype=dtype_of(data))


def _check_tensor_scatter(node, facts):
    if node.string("mode") not in ("linear", "circular"):
        return f"unknown mode {node.string('mode')!r}"
    rank = facts.rank(0)
    if rank is not None and node.int("axis") % rank == 0:
        return "axis 0 is the batch axis; TensorScatter writes along a later axis"
    return None


@converter("TensorScatter", since=24, check=_check_tensor_scatter)
def tensor_scatter(ctx, node):
    cache = ctx.input(0)
    mode = node.string("mode")
    static_shape(ctx, cache, "past_cache")
    axis = node.int("axis") % cache.rank
    y = ctx.op("tensor_scatter", [input_arg(ctx, 0), input_arg(ctx, 1), input_arg(ctx, 2)], axis=axis,
               circular=mode == "circular")
    return ctx.tensor(y, dtype=dtype_of(cache))
