"""Reductions (Reduce*) and ArgMax/ArgMin, with axes remapped through the layout."""
from __future__ import annotations

import numpy as np

from .. import layout as L
from . import keras_exact
from .registry import AXIS, converter

# op type -> (function op name, opset from which axes is an input)
_REDUCE = {
    "ReduceMean": ("mean", 18), "ReduceSum": ("sum", 13), "ReduceMax": ("max", 18),
    "ReduceMin": ("min", 18), "ReduceProd": ("prod", 18), "ReduceL1": ("l1", 18),
    "ReduceL2": ("l2", 18), "ReduceLogSum": ("log_sum", 18), "ReduceLogSumExp": ("log_sum_exp", 18),
    "ReduceSumSquare": ("sum_square", 18),
}


def _axes(ctx, node, axes_input_since: int):
    """The ONNX axes to reduce (normalized, sorted), or None for 'no reduction'."""
    axes = ctx.const(1, "axes") if node.opset >= axes_input_since and node.has_input(1) else None
    return _axes_of(node, ctx.input(0).rank, axes_input_since, axes)


def _axes_of(node, rank: int, axes_input_since: int, axes_input):
    if node.opset >= axes_input_since:
        axes = axes_input
        noop = int(node.attr("noop_with_empty_axes") or 0)
    else:
        axes = node.attr("axes")
        noop = 0
    axes = [] if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
    if not axes:
        return None if noop else list(range(rank))
    return sorted({a % rank if rank else 0 for a in axes})


def _check_reduce(since: int):
    def check(node, facts):
        rank = facts.rank(0)
        axes = (facts.value(1) if node.has_input(1) else None) if node.opset >= since else node.attr("axes")
        if rank is None or axes is None:
            return None
        bad = [int(a) for a in np.asarray(axes).reshape(-1) if not -rank <= int(a) < rank]
        return f"axis {bad[0]} is out of range for an input of rank {rank}" if bad else None
    return check


def _check_arg(node, facts):
    rank, axis = facts.rank(0), node.int("axis")
    if rank is not None and not -rank <= axis < rank:
        return f"axis {axis} is out of range for an input of rank {rank}"
    return None


def _reduce_perm(since: int):
    def rule(node, perms, facts):
        x = perms[0]
        if x is None or (node.opset >= since and node.has_input(1) and facts.value(1) is None):
            return [None]
        axes = _axes_of(node, len(x), since, facts.value(1) if node.has_input(1) else None)
        return [tuple(x) if axes is None or int(node.attr("keepdims")) else L.drop_axes(x, axes)]
    return rule


def _arg_perm(node, perms, facts):
    x = perms[0]
    if x is None:
        return [None]
    return [tuple(x) if int(node.attr("keepdims")) else L.drop_axes(x, [node.int("axis") % len(x)])]


def _reduce(op: str, since: int):
    def convert(ctx, node):
        x = ctx.tensor_of(ctx.input(0))  # a shape value folded to a Const (with dynamic dims)
        axes = _axes(ctx, node, since)
        if axes is None:
            return x
        keepdims = int(node.attr("keepdims"))
        kaxes = sorted(L.keras_axis(x.perm, a) for a in axes)
        y = keras_exact.global_pool(ctx, ctx.keras(x), op, kaxes, keepdims, suffix=op)
        if y is None:
            y = ctx.op("math.reduce", [ctx.keras(x)], suffix=op, op=op, axes=kaxes, keepdims=keepdims)
        perm = x.perm if keepdims else L.drop_axes(x.perm, axes)
        return ctx.tensor(y, perm)
    return convert


for _onnx, (_op, _since) in _REDUCE.items():
    converter(_onnx, consts=(1,), layout=AXIS, check=_check_reduce(_since), perm=_reduce_perm(_since),
              limits="axes known at conversion time")(_reduce(_op, _since))


def _arg(op: str):
    def convert(ctx, node):
        x = ctx.tensor_of(ctx.input(0))
        axis = node.int("axis") % x.rank
        keepdims = int(node.attr("keepdims"))
        last = int(node.attr("select_last_index", 0) or 0)
        k = L.keras_axis(x.perm, axis)
        y = ctx.op("math.arg", [ctx.keras(x)], suffix=op, op=op, axis=k, keepdims=keepdims, last=last)
        perm = x.perm if keepdims else L.drop_axes(x.perm, [axis])
        return ctx.tensor(y, perm, dtype="int64")
    return convert


converter("ArgMax", layout=AXIS, check=_check_arg, perm=_arg_perm)(_arg("max"))
converter("ArgMin", layout=AXIS, check=_check_arg, perm=_arg_perm)(_arg("min"))
