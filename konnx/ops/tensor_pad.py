"""Pad (constant with any value, reflect, edge, wrap; negative pads crop), CenterCropPad,
DepthToSpace and SpaceToDepth on channels-last tensors."""
from __future__ import annotations

import numpy as np
from ..lazy_keras import keras

from .. import layout as L
from ..values import Const, static_dim
from .args import static_shape
from .elementwise import dtype_of
from .registry import AXIS, SPATIAL, converter
from .shape import ints

_ZEROPAD = {1: keras.layers.ZeroPadding1D, 2: keras.layers.ZeroPadding2D, 3: keras.layers.ZeroPadding3D}


def pad_spec(ctx, node, rank):
    """(per-ONNX-axis (begin, end) pads, mode, constant value: number | Const | Tensor | None)."""
    mode = node.attr("mode") or "constant"
    if node.opset < 11:
        pads = node.attr("pads") if node.attr("pads") is not None else node.attr("paddings")
        pads = [int(p) for p in pads]
        value = float(node.attr("value") or 0.0)
        axes = list(range(rank))
    else:
        pads = ints(ctx.const(1, "pads"))
        value = ctx.input(2) if node.has_input(2) else None
        if isinstance(value, Const):
            arr = np.asarray(value.value).reshape(-1)
            value = arr[0].item() if arr.size else 0
        axes = ints(ctx.const(3, "axes")) if node.opset >= 18 and node.has_input(3) else list(range(rank))
    n = len(axes)
    per_axis = [(0, 0)] * rank
    for i, a in enumerate(axes):
        per_axis[a % rank] = (pads[i], pads[i + n])
    return per_axis, mode, (0 if value is None else value)


def _fold_pad(node, x, *rest):
    x = np.asarray(x)
    if x.dtype == object:
        return None
    rank = x.ndim
    mode = node.attr("mode") or "constant"
    if node.opset < 11:
        pads = [int(p) for p in (node.attr("pads") if node.attr("pads") is not None else node.attr("paddings"))]
        value, axes = node.attr("value") or 0.0, list(range(rank))
    else:
        pads = ints(rest[0])
        value = rest[1].reshape(-1)[0] if len(rest) > 1 and rest[1] is not None and rest[1].size else 0
        axes = ints(rest[2]) if len(rest) > 2 and rest[2] is not None else list(range(rank))
    n = len(axes)
    per = [(0, 0)] * rank
    for i, a in enumerate(axes):
        per[a % rank] = (pads[i], pads[i + n])
    x = x[tuple(slice(max(-b, 0), x.shape[j] - max(-e, 0)) for j, (b, e) in enumerate(per))]
    pos = [(max(b, 0), max(e, 0)) for b, e in per]
    np_mode = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode]
    if np_mode == "constant":
        return [np.pad(x, pos, mode="constant", constant_values=np.asarray(value).astype(x.dtype))]
    return [np.pad(x, pos, mode=np_mode)]


def _check_pad(node, facts):
    mode = node.string("mode") or "constant"
    if mode not in ("constant", "reflect", "edge", "wrap"):
        return f"unknown Pad mode {mode!r}"
    rank = facts.rank(0)
    if node.opset < 11:
        pads = node.ints("pads") if node.attr("pads") is not None else node.ints("paddings")
        n = rank
    else:
        v = facts.value(1)
        pads = None if v is None else ints(v)
        axes = facts.value(3) if node.opset >= 18 and node.has_input(3) else None
        n = len(ints(axes)) if axes is not None else None if node.opset >= 18 and node.has_input(3) else rank
    if pads is not None and n is not None and len(pads) != 2 * n:
        return f"pads has {len(pads)} values, expected {2 * n}"
    return None


@converter("Pad", layout=AXIS, since=1, consts=(1, 3), check=_check_pad, fold=_fold_pad, limits="pads and axes known at conversion time")
def pad(ctx, node):
    x = ctx.tensor_of(ctx.input(0))  # a constant padded by a run-time amount or value
    per_axis, mode, value = pad_spec(ctx, node, x.rank)
    kt = ctx.keras(x)
    kpads = [per_axis[p] for p in x.perm]
    # ONNX (and onnxruntime) crop first, then pad what is left
    if any(b < 0 or e < 0 for b, e in kpads):
        sl = [[-b if b < 0 else None, e if e < 0 else None, None] for b, e in kpads]
        kt = ctx.op("slice", [kt], suffix="crop", slices=sl)
    pos = [[max(b, 0), max(e, 0)] for b, e in kpads]
    if not any(b or e for b, e in pos):
        return ctx.tensor(kt, x.perm) if kt is not x.kt else x
    ksizes = [static_dim(x.onnx_shape[p]) for p in x.perm]
    ksizes = [None if s is None else s - max(-b, 0) - max(-e, 0) for s, (b, e) in zip(ksizes, kpads)]
    if mode == "constant":
        if not isinstance(value, (int, float, bool)):
            y = ctx.op("pad_constant", [kt, ctx.keras(value)], pads=pos)
            ctx.record(kind="pad", decision="runtime_value", reason="constant pad with a value computed by the graph")
            return ctx.tensor(y, x.perm)
        integral = np.issubdtype(np.dtype(x.dtype), np.integer)
        value = int(value) if integral else float(value)
        nsp = x.rank - 2
        spatial_only = (x.rank in (3, 4, 5) and tuple(x.perm) == L.channels_last(x.rank)
                        and pos[0] == [0, 0] and pos[-1] == [0, 0])
        if value == 0 and spatial_only:
            arg = tuple(tuple(p) for p in pos[1:-1]) if nsp > 1 else tuple(pos[1])
            kw = {} if nsp == 1 else {"data_format": "channels_last"}
            y = ctx.layer(_ZEROPAD[nsp](arg, name=ctx.name(), **kw), kt)
        else:
            y = ctx.op("pad_constant", [kt], pads=pos, constant=value)
        return ctx.tensor(y, x.perm)
    if mode == "reflect":
        for (b, e), s in zip(pos, ksizes):
            if s is not None and (b >= s or e >= s):
                raise ctx.error(f"reflect pad ({b}, {e}) must be smaller than the axis size {s}")
    if mode == "wrap" and any(s is None and (b or e) for (b, e), s in zip(pos, ksizes)):
        ctx.record(kind="pad", decision="wrap_dynamic", reason="wrap pads of a dynamic axis assume pads <= size")
    y = ctx.op("pad_mode", [kt], pads=pos, mode=mode, sizes=ksizes)
    return ctx.tensor(y, x.perm)


# ----------------------------------------------------------------------------- DepthToSpace
def _fold_depth_to_space(node, x):
    x = np.asarray(x)
    b = int(node.attr("blocksize"))
    n, c, h, w = x.shape
    if (node.attr("mode") or "DCR") == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return [y.reshape(n, c // (b * b), h * b, w * b)]


def _check_depth_to_space(node, facts):
    rank = facts.rank(0)
    if rank is not None and rank != 4:
        return f"expected a 4D input, got rank {rank}"
    b, c = node.int("blocksize"), facts.dim(0, 1)
    if (c is None and facts.built) or (c is not None and c % (b * b)):
        return f"channels ({facts.shape(0)[1]}) must be static and divisible by blocksize^2 = {b * b}"
    return None


@converter("DepthToSpace", layout=SPATIAL, since=1, check=_check_depth_to_space, fold=_fold_depth_to_space)
def depth_to_space(ctx, node):
    x = ctx.input(0)
    b = int(node.attr("blocksize"))
    mode = (node.attr("mode") or "DCR") if node.opset >= 11 else "DCR"
    cl = L.channels_last(4)
    y = ctx.op("depth_to_space", [ctx.keras(x, cl)], block=b, mode=mode)
    return ctx.tensor(y, cl)


def _s2d_mode(node) -> str:
    return (node.attr("mode") or "DCR") if node.opset >= 28 else "DCR"


def _fold_space_to_depth(node, x):
    x = np.asarray(x)
    b = int(node.attr("blocksize"))
    n, c, h, w = x.shape
    order = (0, 3, 5, 1, 2, 4) if _s2d_mode(node) == "DCR" else (0, 1, 3, 5, 2, 4)
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(order)
    return [y.reshape(n, c * b * b, h // b, w // b)]


def _check_space_to_depth(node, facts):
    rank = facts.rank(0)
    if rank is not None and rank != 4:
        return f"expected a 4D input, got rank {rank}"
    if _s2d_mode(node) not in ("DCR", "CRD"):
        return f"unknown mode {_s2d_mode(node)!r}"
    return None


@converter("SpaceToDepth", layout=SPATIAL, since=1, check=_check_space_to_depth, fold=_fold_space_to_depth)
def space_to_depth(ctx, node):
    x = ctx.input(0)
    b = int(node.attr("blocksize"))
    cl = L.channels_last(4)
    mode = _s2d_mode(node)
    params = {} if mode == "DCR" else {"mode": mode}
    y = ctx.op("space_to_depth", [ctx.keras(x, cl)], block=b, **params)
    return ctx.tensor(y, cl)


@converter("CenterCropPad", layout=AXIS, since=18, consts=(1,), limits="static input shape")
def center_crop_pad(ctx, node):
    x = ctx.input(0)
    dims = static_shape(ctx, x)
    target = [int(v) for v in np.asarray(ctx.const(1, "shape")).reshape(-1)]
    axes = node.attr("axes")
    axes = list(range(x.rank)) if axes is None else [int(a) % x.rank for a in axes]
    slices = [[None, None, None] for _ in range(x.rank)]
    pads = [[0, 0] for _ in range(x.rank)]
    for a, t in zip(axes, target):
        d = dims[a]
        k = L.keras_axis(x.perm, a)
        if t < d:
            b = (d - t) // 2
            slices[k] = [b, b + t, None]
        elif t > d:
            b = (t - d) // 2
            pads[k] = [b, t - d - b]
    kt = ctx.keras(x)
    if any(s != [None, None, None] for s in slices):
        kt = ctx.op("slice", [kt], suffix="crop", slices=slices)
    if any(p != [0, 0] for p in pads):
        kt = ctx.op("pad_constant", [kt], suffix="pad", pads=pads)
    return ctx.tensor(kt, x.perm, dtype=dtype_of(x))
