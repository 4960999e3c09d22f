"""Pooling functions Keras has no layer for: exact -inf / divisor-map pooling, dilated windows."""
from __future__ import annotations

import itertools

from keras import ops

from .functions import function


def _spatial_pad(pads):
    return [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)]


def _crop_negative(x, pads):
    """Apply the negative parts of `pads` as crops; return x and the non-negative pads."""
    if all(p[0] >= 0 and p[1] >= 0 for p in pads):
        return x, [tuple(p) for p in pads]
    idx = [slice(None)]
    for b, e in pads:
        idx.append(slice(max(-b, 0), e if e < 0 else None))
    idx.append(slice(None))
    return x[tuple(idx)], [(max(b, 0), max(e, 0)) for b, e in pads]


def _crop(y, out_sizes):
    if out_sizes is None:
        return y
    return y[(slice(None),) + tuple(slice(0, n) for n in out_sizes) + (slice(None),)]


def _windows(x, kernel, strides, dilations, out_sizes):
    """Yield one strided slice of channels-last `x` per kernel offset."""
    for offs in itertools.product(*[range(k) for k in kernel]):
        idx = [slice(None)]
        for o, s, d, n in zip(offs, strides, dilations, out_sizes):
            start = o * d
            idx.append(slice(start, start + (n - 1) * s + 1, s))
        idx.append(slice(None))
        yield x[tuple(idx)]


@function("max_pool")
def max_pool(x, *, kernel, strides, dilations, pads, out_sizes):
    """Max pooling of channels-last x with -inf padding (pads may include the ceil_mode
    extension); out_sizes crops to the ONNX output size."""
    x, pads = _crop_negative(x, pads)
    if any(p != (0, 0) for p in pads):
        x = ops.pad(x, _spatial_pad(pads), constant_values=float("-inf"))
    if all(d == 1 for d in dilations):
        y = ops.max_pool(x, tuple(kernel), tuple(strides), padding="valid")
        return _crop(y, out_sizes)
    out = None
    for w in _windows(x, kernel, strides, dilations, out_sizes):
        out = w if out is None else ops.maximum(out, w)
    return out


@function("avg_pool")
def avg_pool(x, *, kernel, strides, dilations, pads, counted, out_sizes):
    """Average pooling of channels-last x with an exact divisor.

    pads: zeros added per axis (explicit pads plus the ceil_mode extension).
    counted: per axis, how many of those padded positions count in the divisor
    (count_include_pad=1: the explicit pads; 0: none)."""
    x, pads = _crop_negative(x, pads)
    counted = [(max(b, 0), max(e, 0)) for b, e in counted]
    xp = ops.pad(x, _spatial_pad(pads), constant_values=0.0)
    ones = ops.ones_like(x[..., :1])
    mask = ops.pad(ones, _spatial_pad(counted), constant_values=1.0)
    rest = [(p[0] - c[0], p[1] - c[1]) for p, c in zip(pads, counted)]
    mask = ops.pad(mask, _spatial_pad(rest), constant_values=0.0)
    if all(d == 1 for d in dilations):
        num = ops.average_pool(xp, tuple(kernel), tuple(strides), padding="valid")
        den = ops.average_pool(mask, tuple(kernel), tuple(strides), padding="valid")
        return _crop(num / den, out_sizes)
    num = den = None
    for wx, wm in zip(_windows(xp, kernel, strides, dilations, out_sizes),
                      _windows(mask, kernel, strides, dilations, out_sizes)):
        num = wx if num is None else num + wx
        den = wm if den is None else den + wm
    return num / den
