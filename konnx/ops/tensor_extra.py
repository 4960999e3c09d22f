"""Selection, scatter and misc tensor ops: TopK, ReverseSequence, Compress, NonZero, EyeLike,
ScatterElements/Scatter/ScatterND (reductions), TensorScatter, CenterCropPad, CumProd, LpPool,
GlobalLpPool, Swish, SwiGLU, Shrink, Det, OptionalGetElement on a tensor."""
from __future__ import annotations

import numpy as np
import onnx

from .. import layout as L
from ..layers import fn_index  # noqa: F401  (registers the functions used here)
from ..values import Const, Tensor, static_dim
from .elementwise import broadcast, dtype_of
from .pool import _pool_geometry
from .registry import converter


def _arg(ctx, i):
    v = ctx.input(i)
    if v is None:
        return None
    return np.asarray(v.value) if isinstance(v, Const) else ctx.onnx_layout(v)


def _static_shape(ctx, v, what="input"):
    shape = v.shape if isinstance(v, Const) else v.onnx_shape
    dims = [static_dim(d) for d in shape]
    if None in dims:
        raise ctx.error(f"the {what} needs a static shape; fix it with input_shapes")
    return dims


def _int_scalar(ctx, i, what):
    return int(np.asarray(ctx.const(i, what)).reshape(-1)[0])


# ----------------------------------------------------------------------------- TopK
@converter("TopK", since=1, limits="K known at conversion time; sorted output (also for sorted=0)")
def top_k(ctx, node):
    x = ctx.input(0)
    k = int(node.attr("k")) if node.opset < 10 else _int_scalar(ctx, 1, "K")
    axis = int(node.attr("axis", -1)) % x.rank
    largest = int(node.attr("largest", 1)) if node.opset >= 11 else 1
    kx = ctx.keras(x)
    vals, idx = ctx.op("top_k", [kx], k=k, axis=L.keras_axis(x.perm, axis), largest=largest)
    return [ctx.tensor(vals, x.perm, dtype=dtype_of(x)), ctx.tensor(idx, x.perm, dtype="int64")]


# ----------------------------------------------------------------------------- sequences
@converter("ReverseSequence", since=10)
def reverse_sequence(ctx, node):
    x = ctx.input(0)
    y = ctx.op("reverse_sequence", [ctx.onnx_layout(x), _arg(ctx, 1)],
               batch_axis=int(node.attr("batch_axis", 1)), time_axis=int(node.attr("time_axis", 0)))
    return ctx.tensor(y, dtype=dtype_of(x))


@converter("Compress", since=9, limits="output length known only at run time (TensorFlow backend)")
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


@converter("EyeLike", since=9)
def eye_like(ctx, node):
    x = ctx.input(0)
    rows, cols = _static_shape(ctx, x)
    dt = node.attr("dtype")
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(dt))).name if dt is not None else dtype_of(x)
    y = ctx.op("eye_like", [ctx.onnx_layout(x)], k=int(node.attr("k", 0)), dtype=dtype)
    return ctx.tensor(y, dtype=dtype)


# ----------------------------------------------------------------------------- scatter
def _check_scatter(node):
    r = node.attr("reduction", "none") or "none"
    return None if r in ("none", "add", "mul", "max", "min") else f"unknown reduction {r!r}"


@converter("ScatterElements", "Scatter", since=9, check=_check_scatter,
           limits="mul/max/min reductions build an updates x data mask")
def scatter_elements(ctx, node):
    data = ctx.input(0)
    shape = [static_dim(d) for d in data.onnx_shape]  # None: read at run time
    axis = int(node.attr("axis", 0)) % len(shape)
    y = ctx.op("scatter_elements", [_arg(ctx, 0), _arg(ctx, 1), _arg(ctx, 2)], axis=axis, data_shape=shape,
               reduction=node.attr("reduction", "none") or "none")
    return ctx.tensor(y, dtype=dtype_of(data))


@converter("ScatterND", since=11, check=_check_scatter,
           limits="mul/max/min reductions build an updates x data mask")
def scatter_nd(ctx, node):
    data = ctx.input(0)
    shape = [static_dim(d) for d in data.onnx_shape]  # None: read at run time
    y = ctx.op("scatter_nd", [_arg(ctx, 0), _arg(ctx, 1), _arg(ctx, 2)], data_shape=shape,
               reduction=node.attr("reduction", "none") or "none")
    return ctx.tensor(y, dtype=dtype_of(data))


@converter("TensorScatter", since=24)
def tensor_scatter(ctx, node):
    cache = ctx.input(0)
    mode = node.attr("mode", "linear")
    if mode not in ("linear", "circular"):
        raise ctx.error(f"unknown mode {mode!r}")
    _static_shape(ctx, cache, "past_cache")
    axis = int(node.attr("axis", -2)) % cache.rank
    if axis == 0:
        raise ctx.error("axis 0 is the batch axis; TensorScatter writes along a later axis")
    y = ctx.op("tensor_scatter", [_arg(ctx, 0), _arg(ctx, 1), _arg(ctx, 2)], axis=axis,
               circular=mode == "circular")
    return ctx.tensor(y, dtype=dtype_of(cache))


# ----------------------------------------------------------------------------- crop / pad
@converter("CenterCropPad", since=18, limits="static input shape")
def center_crop_pad(ctx, node):
    x = ctx.input(0)
    dims = _static_shape(ctx, x)
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


# ----------------------------------------------------------------------------- CumProd
@converter("CumProd", since=26, limits="axis known at conversion time")
def cumprod(ctx, node):
    x = ctx.input(0)
    axis = _int_scalar(ctx, 1, "axis") % x.rank
    y = ctx.op("cumprod", [ctx.keras(x)], axis=L.keras_axis(x.perm, axis),
               exclusive=bool(node.attr("exclusive", 0)), reverse=bool(node.attr("reverse", 0)))
    return ctx.tensor(y, x.perm, dtype=dtype_of(x))


# ----------------------------------------------------------------------------- LpPool
@converter("LpPool", since=2, limits="p >= 1")
def lp_pool(ctx, node):
    x = ctx.input(0)
    p = int(node.attr("p", 2))
    kernel, sizes, strides, dilations, pads, ext, outs = _pool_geometry(ctx, node, x)
    cl = L.channels_last(x.rank)
    full = [[b, e + x_] for (b, e), x_ in zip(pads, ext)]
    y = ctx.op("lp_pool", [ctx.keras(x, cl)], p=p, kernel=kernel, strides=strides, dilations=dilations,
               pads=full, out_sizes=None if None in outs else outs)
    return ctx.tensor(y, cl, dtype=dtype_of(x))


@converter("GlobalLpPool", since=2)
def global_lp_pool(ctx, node):
    x = ctx.input(0)
    p = int(node.attr("p", 2))
    axes = [L.keras_axis(x.perm, a) for a in range(2, x.rank)]
    kt = ctx.keras(x)
    a = ctx.op("math.unary", [kt], suffix="abs", op="abs")
    powed = ctx.op("math.pow", [a, np.asarray(float(p), dtype_of(x))], out_dtype=dtype_of(x))
    s = ctx.op("math.reduce", [powed], op="sum", axes=sorted(axes), keepdims=1)
    y = ctx.op("math.pow", [s, np.asarray(1.0 / p, dtype_of(x))], out_dtype=dtype_of(x))
    return ctx.tensor(y, x.perm, dtype=dtype_of(x))


# ----------------------------------------------------------------------------- activations
@converter("Swish", since=24)
def swish(ctx, node):
    x = ctx.input(0)
    y = ctx.op("swish", [ctx.keras(x)], alpha=float(node.attr("alpha", 1.0)))
    return ctx.tensor(y, x.perm, dtype=dtype_of(x))


@converter("SwiGLU", since=28)
def swiglu(ctx, node):
    args, perm, _ = broadcast(ctx, [ctx.input(0), ctx.input(1)])
    y = ctx.op("swiglu", args, alpha=float(node.attr("alpha", 1.0)))
    return ctx.tensor(y, perm, dtype=dtype_of(ctx.input(0)))


@converter("Shrink", since=9)
def shrink(ctx, node):
    x = ctx.input(0)
    y = ctx.op("shrink", [ctx.keras(x)], lambd=float(node.attr("lambd", 0.5)), bias=float(node.attr("bias", 0.0)))
    return ctx.tensor(y, x.perm, dtype=dtype_of(x))


@converter("Det", since=11)
def det(ctx, node):
    x = ctx.input(0)
    return ctx.tensor(ctx.op("det", [ctx.onnx_layout(x)]), dtype=dtype_of(x))


@converter("OptionalGetElement", since=15, limits="tensor inputs only")
def optional_get_element(ctx, node):
    x = ctx.input(0)
    if not isinstance(x, (Tensor, Const)):
        raise ctx.error("only a plain tensor input is supported (no optional or sequence values)")
    return x



@converter("MaxUnpool", since=9, limits="static input shape")
def max_unpool(ctx, node):
    x = ctx.input(0)
    dims = _static_shape(ctx, x)
    kernel = list(node.attr("kernel_shape"))
    nsp = len(kernel)
    strides = list(node.attr("strides") or [1] * nsp)
    pads = list(node.attr("pads") or [0] * (2 * nsp))
    inferred = dims[:2] + [(dims[2 + i] - 1) * strides[i] + kernel[i] - pads[i] - pads[i + nsp] for i in range(nsp)]
    out = inferred
    if node.has_input(2):
        out = [int(v) for v in np.asarray(ctx.const(2, "output_shape")).reshape(-1)]
    y = ctx.op("max_unpool", [_arg(ctx, 0), _arg(ctx, 1)], out_shape=out, index_shape=inferred)
    return ctx.tensor(y, dtype=dtype_of(x))


@converter("Unique", since=11, limits="static element count; O(n^2) comparisons; output length known at run time")
def unique(ctx, node):
    x = ctx.input(0)
    axis = node.attr("axis")
    axis = None if axis is None else int(axis) % x.rank
    dims = _static_shape(ctx, x)
    if axis is not None and dims[axis] == 0:
        raise ctx.error("Unique of an empty axis")
    outs = ctx.op("unique", [ctx.onnx_layout(x)], axis=axis, sort=bool(int(node.attr("sorted", 1))))
    return [ctx.tensor(outs[0], dtype=dtype_of(x))] + [ctx.tensor(o, dtype="int64") for o in outs[1:]]


def _tfidf_windows(length, min_n, max_n, max_skip):
    """Token positions of every counted window, per n-gram size (the reference's enumeration:
    unigrams once, longer grams once per skip distance)."""
    out = {n: [] for n in range(1, max_n + 1)}
    start_n = min_n
    for d in range(1, max_skip + 2):
        for n in range(max(start_n, 1), max_n + 1):
            for s in range(length):
                if s + d * (n - 1) < length:
                    out[n].append([s + d * k for k in range(n)])
        if start_n == 1:
            start_n = 2
            if start_n > max_n:
                break
    return out


@converter("TfIdfVectorizer", since=9, limits="integer pools; static sequence length")
def tfidf_vectorizer(ctx, node):
    x = ctx.input(0)
    pool = node.attr("pool_int64s")
    if pool is None:
        raise ctx.error("string pools are not supported (Keras has no string tensors)")
    length = static_dim(x.onnx_shape[-1])
    if length is None:
        raise ctx.error("TfIdfVectorizer needs a static sequence length")
    min_n, max_n = int(node.attr("min_gram_length")), int(node.attr("max_gram_length"))
    starts = list(node.attr("ngram_counts")) + [len(pool)]
    grams = []
    for n in range(1, len(starts)):
        chunk = [int(v) for v in pool[starts[n - 1]:starts[n]]]
        if chunk:
            grams.append([n, [chunk[i:i + n] for i in range(0, len(chunk), n)]])
    indexes = [int(i) for i in node.attr("ngram_indexes")]
    n_out = max(indexes) + 1
    matrix = np.zeros((len(indexes), n_out), np.float32)
    for row, col in enumerate(indexes):
        matrix[row, col] = 1.0
    weights = node.attr("weights")
    weights = [1.0] * n_out if weights is None else [float(v) for v in weights]
    win = _tfidf_windows(length, min_n, max_n, int(node.attr("max_skip_count", 0)))
    wanted = {n for n, _ in grams}
    windows = {str(n): (win[n] if min_n <= n <= max_n else []) for n in wanted}
    y = ctx.op("tfidf", [ctx.onnx_layout(x)], grams=grams, windows=windows, index_matrix=matrix.tolist(),
               weights=weights, mode=node.attr("mode"))
    return ctx.tensor(y, dtype="float32")
