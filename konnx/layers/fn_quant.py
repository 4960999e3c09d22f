"""Quantization functions (keras.ops only): QuantizeLinear / DequantizeLinear (per tensor, per
axis, blocked), DynamicQuantizeLinear, MatMulInteger / QLinearMatMul, ConvInteger / QLinearConv.
Integer products are computed exactly in float64."""
from __future__ import annotations

from keras import ops
from keras.backend import standardize_dtype

from .functions import function

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
    # NaN saturates to the low end, as onnxruntime gives it (MLAS' max/min take the bound; the
    # reference's numpy cast of NaN is platform-defined, and so is a backend's)
    y = ops.where(ops.isnan(y), ops.full_like(y, lo), ops.clip(y, lo, hi))
    return ops.cast(y, out_dtype)


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
    """uint8 DynamicQuantizeLinear: the range [min(x, 0), max(x, 0)] mapped onto 0..255, with
    the edge semantics of the spec's arithmetic as the reference and onnxruntime compute it: a
    NaN anywhere makes the scale NaN (numpy's min/max propagate it, whatever the backend's
    reductions do); a NaN zero point (inf / inf) saturates to 255, as `max(qmin, min(qmax, zp))`
    does in C++ and Python; a NaN quantized value becomes 0. An all-zero x gets the reference's
    scale 1 / 255 (onnxruntime gives 1, the spec's formula 0 and a NaN zero point); y and the
    zero point are 0 either way."""
    has_nan = ops.any(ops.isnan(x))
    lo = ops.minimum(ops.min(x), 0.0)
    hi = ops.maximum(ops.max(x), 0.0)
    nan = ops.full_like(lo, float("nan"))
    lo, hi = ops.where(has_nan, nan, lo), ops.where(has_nan, nan, hi)
    scale = ops.where(ops.equal(hi, lo), ops.ones_like(hi), hi - lo) / 255.0
    zp = 0.0 - lo / scale
    zp = ops.round(ops.where(ops.isnan(zp), ops.full_like(zp, 255.0), ops.clip(zp, 0.0, 255.0)))
    y = ops.round(x / scale) + zp
    y = ops.where(ops.isnan(y), ops.zeros_like(y), ops.clip(y, 0.0, 255.0))
    return [ops.cast(y, "uint8"), scale, ops.cast(zp, "uint8")]


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
