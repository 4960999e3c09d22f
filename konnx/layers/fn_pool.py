"""Pooling functions Keras has no layer for: exact -inf / divisor-map pooling, dilated windows,
MaxPool with indices, LpPool and MaxUnpool."""
from __future__ import annotations

import itertools

import numpy as np
from keras import ops

from .functions import function, safe_add


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


def _crop(y, out_sizes, x=None, ceil_crop=None):
    """Crop to out_sizes (None entries: no static crop). ceil_crop[a] = (pad_begin, pad_end,
    effective kernel, stride) computes axis a's ceil_mode output size from x's size at run time
    (the input was padded by stride - 1 extra at the end, the most ceil_mode can add)."""
    if ceil_crop is not None and any(c is not None for c in ceil_crop):
        out_sizes = list(out_sizes) if out_sizes is not None else [None] * len(ceil_crop)
        for a, c in enumerate(ceil_crop):
            if c is not None:
                pb, pe, k, st = c
                n = ops.cast(ops.shape(x)[1 + a], "int64")
                out = (n + pb + pe - k + st - 1) // st + 1
                # PyTorch's rule: a last window starting inside the end padding is dropped
                out_sizes[a] = out - ops.cast((out - 1) * st >= n + pb, "int64")
    if out_sizes is None:
        return y
    return y[(slice(None),) + tuple(slice(0, n) for n in out_sizes) + (slice(None),)]


def _separable(x, kernel, strides, dilations, out_sizes, combine):
    """Reduce channels-last `x` over dilated, strided windows one spatial axis at a time
    (max and sum are separable): sum(kernel) strided slices instead of prod(kernel)."""
    rank = len(x.shape)
    for a, (k, s, d, n) in enumerate(zip(kernel, strides, dilations, out_sizes)):
        acc = None
        for o in range(k):
            idx = [slice(None)] * rank
            idx[1 + a] = slice(o * d, o * d + (n - 1) * s + 1, s)
            part = x[tuple(idx)]
            acc = part if acc is None else combine(acc, part)
        x = acc
    return x


def _edge_pad(x, pads):
    """Repeat each spatial axis' first and last slice. For max pooling this equals -inf padding when
    every window touching the padding also holds the edge element it repeats: undilated windows
    and pads smaller than the kernel (a window starting at -b < k reaches index 0; one ending in
    the end padding starts at or before the last element)."""
    rank = len(x.shape)
    for a, (b, e) in enumerate(pads):
        axis = 1 + a
        first = [slice(None)] * rank
        last = [slice(None)] * rank
        first[axis], last[axis] = slice(0, 1), slice(-1, None)
        parts = [x[tuple(first)]] * b + [x] + [x[tuple(last)]] * e
        if len(parts) > 1:
            x = ops.concatenate(parts, axis=axis)
    return x


@function("max_pool")
def max_pool(x, *, kernel, strides, dilations, pads, out_sizes, ceil_crop=None):
    """Max pooling of channels-last x with -inf padding (pads may include the ceil_mode
    extension); out_sizes crops to the ONNX output size (ceil_crop: computed at run time)."""
    x_in = x
    x, pads = _crop_negative(x, pads)
    if any(p != (0, 0) for p in pads):
        if all(d == 1 for d in dilations) and all(max(p) < k for p, k in zip(pads, kernel)):
            x = _edge_pad(x, pads)  # no -inf constant: it would wreck int8 quantization (scale ~1e36)
        else:
            x = ops.pad(x, _spatial_pad(pads), constant_values=float("-inf"))
    if all(d == 1 for d in dilations):
        y = ops.max_pool(x, tuple(kernel), tuple(strides), padding="valid")
        return _crop(y, out_sizes, x_in, ceil_crop)
    return _separable(x, kernel, strides, dilations, out_sizes, ops.maximum)


@function("avg_pool")
def avg_pool(x, *, kernel, strides, dilations, pads, counted, out_sizes, ceil_crop=None):
    """Average pooling of channels-last x with an exact divisor.

    pads: zeros added per axis (explicit pads plus the ceil_mode extension).
    counted: per axis, how many of those padded positions count in the divisor
    (count_include_pad=1: the explicit pads; 0: none)."""
    x_in = x
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
        return _crop(num / den, out_sizes, x_in, ceil_crop)
    num = _separable(xp, kernel, strides, dilations, out_sizes, safe_add)
    den = _separable(mask, kernel, strides, dilations, out_sizes, safe_add)
    return num / den


@function("max_pool_argmax")
def max_pool_argmax(x, *, kernel, strides, dilations, pads, out_sizes, column_major=False):
    """MaxPool of N C spatial... x (ONNX layout) and the flat index of each maximum in x
    (row-major, or spatially column-major), the first one on ties."""
    nsp = len(kernel)
    sizes = list(x.shape[2:])
    xp = ops.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads], constant_values=float("-inf"))
    best, where_ = None, None
    for offs in itertools.product(*[range(k) for k in kernel]):
        idx = [slice(None), slice(None)]
        pos = None
        for a, (o, s, d, n) in enumerate(zip(offs, strides, dilations, out_sizes)):
            start = o * d
            idx.append(slice(start, start + (n - 1) * s + 1, s))
            coord = np.arange(n) * s + start - pads[a][0]
            shape = [1] * nsp
            shape[a] = n
            coord = coord.reshape(shape)
            pos = coord if pos is None else pos
            if a > 0:
                pos = _flat_pos(pos, coord, sizes, a, column_major)
        val = xp[tuple(idx)]
        pos = np.broadcast_to(pos, out_sizes).astype(np.int64)
        if best is None:
            best, where_ = val, ops.broadcast_to(ops.convert_to_tensor(pos), ops.shape(val))
            continue
        better = ops.greater(val, best)
        best = ops.where(better, val, best)
        where_ = ops.where(better, ops.convert_to_tensor(pos), where_)
    n, c = ops.shape(x)[0], x.shape[1]
    plane = int(np.prod(sizes))
    base = (ops.reshape(ops.arange(n, dtype="int64"), (-1, 1) + (1,) * nsp) * c
            + ops.reshape(ops.arange(c, dtype="int64"), (1, -1) + (1,) * nsp)) * plane
    return [best, where_ + base]


def _flat_pos(prev, coord, sizes, axis, column_major):
    """Combine the flat position over axes < axis with the coordinate on `axis`."""
    if column_major:
        stride = int(np.prod(sizes[:axis]))
        return prev + coord * stride
    return prev * sizes[axis] + coord


@function("lp_pool")
def lp_pool(x, *, p, kernel, strides, dilations, pads, out_sizes):
    """(sum over the window of |x|^p)^(1/p) on channels-last x; padding adds zeros."""
    a = ops.abs(x)
    powed = ops.square(a) if p == 2 else (a if p == 1 else ops.power(a, float(p)))
    n = 1
    for k in kernel:
        n *= k
    mean = avg_pool(powed, kernel=kernel, strides=strides, dilations=dilations, pads=pads,
                    counted=pads, out_sizes=out_sizes)
    total = mean * float(n)
    if p == 1:
        return total
    return ops.sqrt(total) if p == 2 else ops.power(total, 1.0 / p)


@function("max_unpool")
def max_unpool(x, indices, *, out_shape, index_shape=None):
    """MaxUnpool: x's values written at their flat `indices` into zeros of `out_shape`. The
    indices address a tensor of `index_shape` (the default unpooled shape) when it differs."""
    total = 1
    for d in out_shape:
        total *= d
    idx = ops.reshape(ops.cast(indices, "int64"), (-1,))
    if index_shape is not None and list(index_shape) != list(out_shape):
        sp_in, sp_out = index_shape[2:], out_shape[2:]
        plane_in, plane_out = int(np.prod(sp_in)), int(np.prod(sp_out))
        nc, rest = idx // plane_in, idx % plane_in
        flat = ops.zeros_like(idx)
        for a in range(len(sp_in)):
            inner = int(np.prod(sp_in[a + 1:]))
            coord = (rest // inner) % sp_in[a]
            flat = flat + coord * int(np.prod(sp_out[a + 1:]))
        idx = nc * plane_out + flat
    idx = ops.reshape(idx, (-1, 1))
    flat = ops.scatter(idx, ops.reshape(x, (-1,)), (total,))
    return ops.reshape(flat, tuple(out_shape))
