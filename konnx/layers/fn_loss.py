"""Loss, bit and quantization functions (keras.ops only): NegativeLogLikelihoodLoss,
SoftmaxCrossEntropyLoss, BitShift, QuantizeLinear / DequantizeLinear and friends."""
from __future__ import annotations

import numpy as np
from keras import ops
from keras.backend import standardize_dtype

from .functions import function, via_int64


# ----------------------------------------------------------------------------- losses
@function("nll_loss")
def nll_loss(x, target, weight=None, *, ignore_index=None, reduction="mean", log_softmax=False):
    """ONNX NegativeLogLikelihoodLoss on x (N, C, d1, ...) and target (N, d1, ...); with
    log_softmax=True, SoftmaxCrossEntropyLoss (x holds scores; also returns the log-probs)."""
    dt = standardize_dtype(x.dtype)
    logp = None
    if log_softmax:
        m = ops.max(x, axis=1, keepdims=True)
        e = ops.exp(x - m)
        logp = ops.log(e / ops.sum(e, axis=1, keepdims=True))
        x = logp
    c = x.shape[1]
    t = ops.cast(target, "int64")
    valid = ops.ones_like(t, dtype="bool") if ignore_index is None else ops.not_equal(t, ignore_index)
    safe = ops.clip(ops.where(valid, t, ops.zeros_like(t)), 0, c - 1)
    picked = ops.squeeze(ops.take_along_axis(x, ops.expand_dims(safe, 1), axis=1), 1)
    loss = ops.where(valid, ops.negative(picked), ops.zeros_like(picked))
    w = None
    if weight is not None:
        w = ops.where(valid, ops.take(weight, safe, axis=0), ops.zeros_like(picked))
    elif ignore_index is not None:
        w = ops.cast(valid, dt)
    if w is not None:
        loss = loss * w
    if reduction == "sum":
        loss = ops.sum(loss)
    elif reduction == "mean":
        loss = ops.sum(loss) / ops.sum(w) if w is not None else ops.mean(loss)
    loss = ops.cast(loss, dt)
    return loss if logp is None else [loss, logp]


# ----------------------------------------------------------------------------- bits
@function("bit_shift")
def bit_shift(x, y, *, left):
    return via_int64(_bit_shift, x, y, left=left)


def _bit_shift(x, y, *, left):
    """Shifts by a negative amount or by >= the bit width give 0 (or the sign for a right
    shift of a signed value), as the ONNX reference; backends leave those undefined."""
    dt = standardize_dtype(x.dtype)
    width = np.dtype(dt).itemsize * 8
    y = ops.cast(y, "int64") if standardize_dtype(y.dtype) != "uint64" else y
    out_of_range = ops.logical_or(ops.greater_equal(y, width), ops.less(y, 0))
    safe = ops.cast(ops.where(out_of_range, ops.zeros_like(y), y), dt)
    if left:
        return ops.where(out_of_range, ops.zeros_like(x), ops.left_shift(x, safe))
    fill = ops.zeros_like(x) if dt.startswith("u") else ops.where(ops.less(x, 0), -ops.ones_like(x), ops.zeros_like(x))
    return ops.where(out_of_range, fill, ops.right_shift(x, safe))


# ----------------------------------------------------------------------------- quantization
_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535),
           "int32": (-2 ** 31, 2 ** 31 - 1), "uint32": (0, 2 ** 32 - 1)}


def _per_axis(p, rank, axis, block, n):
    """A scale / zero point: scalar, 1-D per `axis`, or blocked along `axis` (block size)."""
    if p is None or len(p.shape) == 0:
        return p
    if block:
        p = ops.repeat(p, block, axis=axis)
        if n is not None and p.shape[axis] != n:
            p = ops.take(p, ops.arange(n), axis=axis)
        return p
    if len(p.shape) == 1:
        shape = [1] * rank
        shape[axis] = -1
        return ops.reshape(p, shape)
    return p


@function("quantize_linear")
def quantize_linear(x, scale, zero=None, *, axis=1, block=0, out_dtype="uint8", saturate=True):
    rank = len(x.shape)
    axis = axis % rank if rank else 0
    n = x.shape[axis] if rank else None
    scale = _per_axis(scale, rank, axis, block, n)
    zero = _per_axis(zero, rank, axis, block, n)
    dts = {standardize_dtype(x.dtype), standardize_dtype(scale.dtype)}
    calc = "float64" if "float64" in dts else (dts.pop() if len(dts) == 1 else "float32")
    y = ops.round(ops.cast(x, calc) / ops.cast(scale, calc))
    calc = "float64" if calc == "float64" else "float32"
    y = ops.cast(y, calc)
    if zero is not None:
        y = y + ops.cast(zero, calc)
    lo, hi = _RANGES[out_dtype]
    return ops.cast(ops.clip(y, lo, hi), out_dtype)


@function("dequantize_linear")
def dequantize_linear(x, scale, zero=None, *, axis=1, block=0, out_dtype="float32"):
    rank = len(x.shape)
    axis = axis % rank if rank else 0
    n = x.shape[axis] if rank else None
    scale = _per_axis(scale, rank, axis, block, n)
    zero = _per_axis(zero, rank, axis, block, n)
    calc = "float64" if out_dtype == "float64" else "float32"
    y = ops.cast(x, calc)
    if zero is not None:
        y = y - ops.cast(zero, calc)
    return ops.cast(y * ops.cast(scale, calc), out_dtype)


@function("dynamic_quantize_linear")
def dynamic_quantize_linear(x):
    """uint8 DynamicQuantizeLinear: the range [min(x, 0), max(x, 0)] mapped onto 0..255."""
    lo = ops.minimum(ops.min(x), 0.0)
    hi = ops.maximum(ops.max(x), 0.0)
    scale = (hi - lo) / 255.0
    zp = ops.cast(ops.clip(ops.round(0.0 - lo / scale), 0, 255), "uint8")
    y = ops.cast(ops.clip(ops.round(x / scale) + ops.cast(zp, "float32"), 0, 255), "uint8")
    return [y, scale, zp]


@function("int_matmul")
def int_matmul(a, b, a_zero=None, b_zero=None):
    """MatMulInteger: (a - a_zero) @ (b - b_zero) in int32 (exact in float64 for int8 ranges)."""
    a = ops.cast(a, "float64")
    b = ops.cast(b, "float64")
    if a_zero is not None:
        az = ops.cast(a_zero, "float64")
        a = a - (ops.reshape(az, (-1, 1)) if len(az.shape) == 1 else az)
    if b_zero is not None:
        b = b - ops.cast(b_zero, "float64")
    return ops.cast(ops.matmul(a, b), "int32")


@function("qlinear_matmul")
def qlinear_matmul(a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero, *, out_dtype):
    """QLinearMatMul as the reference: exact integer product, times a_scale * b_scale / y_scale
    (computed in the scales' dtype), plus the output zero point, rounded half to even."""
    acc = ops.matmul(ops.cast(a, "float64") - ops.cast(a_zero, "float64"),
                     ops.cast(b, "float64") - ops.cast(b_zero, "float64"))
    factor = ops.cast(a_scale * b_scale / y_scale, "float64")
    y = ops.round(acc * factor + ops.cast(y_zero, "float64"))
    lo, hi = _RANGES[out_dtype]
    return ops.cast(ops.clip(y, lo, hi), out_dtype)


def np_range(dtype) -> tuple:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _int_conv_core(x, w, x_zero, w_zero, *, strides, dilations, pads):
    """Exact integer convolution of NC(D)HW x with (M, C, k...) w, in float64 through a
    channels-last ops.conv: (x - x_zero) * (w - w_zero), zero padding."""
    rank = len(x.shape)
    xf = ops.cast(x, "float64")
    if x_zero is not None:
        xf = xf - ops.cast(x_zero, "float64")
    wf = ops.cast(w, "float64")
    if w_zero is not None:
        wz = ops.cast(w_zero, "float64")
        wf = wf - (ops.reshape(wz, (-1,) + (1,) * (rank - 1)) if len(wz.shape) == 1 else wz)
    nsp = rank - 2
    xf = ops.transpose(xf, (0,) + tuple(range(2, rank)) + (1,))
    xf = ops.pad(xf, [(0, 0)] + [(pads[i], pads[i + nsp]) for i in range(nsp)] + [(0, 0)])
    kernel = ops.transpose(wf, tuple(range(2, rank)) + (1, 0))
    y = ops.conv(xf, kernel, strides=tuple(strides), padding="valid", data_format="channels_last",
                 dilation_rate=tuple(dilations))
    return ops.transpose(y, (0, rank - 1) + tuple(range(1, rank - 1)))


@function("int_conv")
def int_conv(x, w, x_zero=None, w_zero=None, *, strides, dilations, pads):
    return ops.cast(_int_conv_core(x, w, x_zero, w_zero, strides=strides, dilations=dilations, pads=pads), "int32")


@function("qlinear_conv")
def qlinear_conv(x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero, bias=None, *, strides, dilations,
                 pads, out_dtype):
    acc = _int_conv_core(x, w, x_zero, w_zero, strides=strides, dilations=dilations, pads=pads)
    rank = len(x.shape)
    if bias is not None:
        acc = acc + ops.reshape(ops.cast(bias, "float64"), (1, -1) + (1,) * (rank - 2))
    ws = ops.cast(w_scale, "float32")
    if len(ws.shape) == 1:
        ws = ops.reshape(ws, (1, -1) + (1,) * (rank - 2))
    factor = ops.cast(ops.cast(x_scale, "float32") * ws / ops.cast(y_scale, "float32"), "float64")
    y = acc * factor + ops.cast(y_zero, "float64")
    lo, hi = _RANGES[out_dtype]
    return ops.cast(ops.round(ops.clip(y, lo, hi)), out_dtype)


# ----------------------------------------------------------------------------- windows
@function("window")
def window(size, *, kind, periodic, dtype):
    """Hann / Hamming / Blackman window of a run-time length."""
    n = ops.cast(ops.reshape(size, ()), "int64")
    i = ops.cast(ops.arange(n), "float64")
    denom = ops.cast(n if periodic else n - 1, "float64")
    t = 2.0 * np.pi * i / denom
    if kind == "hann":
        y = ops.square(ops.sin(np.pi * i / denom))
    elif kind == "hamming":
        alpha = 25.0 / 46.0
        y = alpha - ops.cos(t) * (1.0 - alpha)
    else:
        y = 0.42 - 0.5 * ops.cos(t) + 0.08 * ops.cos(2.0 * t)
    return ops.cast(y, dtype)
