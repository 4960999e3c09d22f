"""Resize along one axis whose input or output size is known only at run time (nearest and
linear; the coordinate arithmetic in float32 as konnx.ops.resize_math.original_coords)."""
from __future__ import annotations

from keras import ops

from .functions import function


def _runtime_coords(x_out, coord, scale, in_len, out_len):
    """Source coordinates (float32) of output positions `x_out`, as resize_math.original_coords."""
    half, one = 0.5, 1.0
    if coord == "asymmetric":
        return x_out / scale
    if coord == "tf_half_pixel_for_nn":
        return (x_out + half) / scale
    if coord == "align_corners":
        den = ops.maximum(out_len - one, one)
        return ops.where(out_len > one, x_out * (in_len - one) / den, ops.zeros_like(x_out))
    orig = (x_out + half) / scale - half
    if coord == "pytorch_half_pixel":
        return ops.where(out_len > one, orig, ops.zeros_like(x_out))
    return orig  # half_pixel


def _runtime_nearest(orig, nearest, downsample):
    if nearest == "simple":
        return ops.where(downsample, ops.ceil(orig), ops.trunc(orig))
    away = ops.sign(orig) * ops.floor(ops.abs(orig) + 0.5)
    if nearest == "round_prefer_ceil":
        return away
    if nearest == "floor":
        return ops.floor(orig)
    if nearest == "ceil":
        return ops.ceil(orig)
    tie = ops.equal(ops.trunc(orig) + 0.5, orig)
    return ops.where(tie, ops.floor(orig), away)  # round_prefer_floor


@function("resize_axis_runtime")
def _resize_axis_runtime(x, size=None, *, axis, mode, coord, nearest, scale=None):
    """Resize along `axis` with sizes known at run time: output length `size` (int64 (1,)) or
    int(float32(scale) * in); nearest or linear, the coordinate arithmetic in float32 as
    onnxruntime (linear clamps the source coordinate into [0, in - 1])."""
    in_i = ops.cast(ops.shape(x)[axis], "int64")
    in_f = ops.cast(in_i, "float32")
    if size is None:
        out_i = ops.cast(ops.floor(ops.cast(scale, "float32") * in_f), "int64")
    else:
        out_i = ops.cast(ops.reshape(size, ()), "int64")
    out_f = ops.cast(out_i, "float32")
    s = ops.cast(scale, "float32") if scale is not None else out_f / in_f
    x_out = ops.cast(ops.arange(out_i, dtype="int64"), "float32")
    orig = _runtime_coords(x_out, coord, s, in_f, out_f)
    last = in_i - 1
    if mode == "nearest":
        idx = ops.cast(_runtime_nearest(orig, nearest, s < 1.0), "int64")
        return ops.take(x, ops.clip(idx, 0, last), axis=axis)
    orig = ops.clip(orig, 0.0, ops.cast(last, "float32"))
    i0 = ops.cast(ops.floor(orig), "int64")
    i1 = ops.minimum(i0 + 1, last)
    w1 = orig - ops.cast(i0, "float32")
    rank = len(x.shape)
    bshape = (-1,) + (1,) * (rank - axis - 1)
    w1 = ops.cast(ops.reshape(w1, bshape), x.dtype)
    a, b = ops.take(x, i0, axis=axis), ops.take(x, i1, axis=axis)
    return a + (b - a) * w1
