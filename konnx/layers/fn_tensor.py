"""Whitelisted functions for the tensor, shape and resize converters (keras.ops only): shape
arithmetic, reshape/broadcast/fill/range, slice, gather, pad, cumulative sums and products,
depth/space rearrangement, resize."""
from __future__ import annotations

import math
import operator

import numpy as np
from keras import ops
from keras.backend import standardize_dtype

from .functions import dynamic_shape, function, output_spec, resolve_shape


# ----------------------------------------------------------------------------- shapes
_DIM_OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "floordiv": operator.floordiv,
            "mod": operator.mod}


def _spec_values(refs, spec):
    """The entries of a shape spec as sizes: Python ints where static, the backend's own size
    values where not (a scalar tensor in a TensorFlow graph, a symbolic dim under JAX, an int
    in eager PyTorch/JAX). Kept as such, not stacked into a tensor, so that reshape/broadcast/
    full/arange receive what every backend accepts as a size."""
    def value(s):
        if isinstance(s, dict) and "op" in s:
            a, b = (value(v) for v in s["args"])
            return _DIM_OPS[s["op"]](a, b)
        if isinstance(s, dict):
            ref = refs[s["t"]]
            n = ref.shape[s["axis"]]
            if n is None:
                return ops.shape(ref)[s["axis"]]
            return int(n) if isinstance(n, (int, np.integer)) else n  # JAX: a symbolic dim
        return int(s)

    return [value(s) for s in spec]


def _as_int64(v):
    return ops.cast(ops.convert_to_tensor(v), "int64")


def _static_values(refs, spec):
    """The entries of a shape spec as ints, None where a size is unknown before run time."""
    def value(s):
        if isinstance(s, dict) and "op" in s:
            a, b = (value(v) for v in s["args"])
            return None if a is None or b is None else _DIM_OPS[s["op"]](a, b)
        if isinstance(s, dict):
            n = refs[s["t"]].shape[s["axis"]]
            return int(n) if isinstance(n, (int, np.integer)) else None
        return int(s)

    return [value(s) for s in spec]


@output_spec("reshape_spec")
def _reshape_spec_out(x, *refs, spec):
    out = _static_values(refs, spec)
    same = [(j, s["axis"]) for j, s in enumerate(spec)
            if out[j] is None and isinstance(s, dict) and "t" in s and refs[s["t"]] is x]
    return resolve_shape(x.shape, out, same), x.dtype


@output_spec("broadcast_spec")
def _broadcast_spec_out(x, *refs, spec):
    return tuple(_static_values(refs, spec)), x.dtype


@output_spec("fill_spec")
def _fill_spec_out(*refs, spec, value, dtype):
    return tuple(_static_values(refs, spec)), dtype


@function("shape_vector")
def _shape_vector(*refs, spec):
    """An int64 vector: ints are literal, {"t": i, "axis": k} is refs[i]'s size on axis k,
    {"op": name, "args": [a, b]} integer arithmetic on two such entries."""
    return ops.stack([_as_int64(v) for v in _spec_values(refs, spec)])


@function("reshape_spec")
def _reshape_spec(x, *refs, spec):
    """Reshape x to a shape given as a shape_vector spec over refs. Computing the shape inside
    the same layer keeps its literal entries static in the output's shape."""
    return ops.reshape(x, tuple(_spec_values(refs, spec)))


@function("broadcast_spec")
def _broadcast_spec(x, *refs, spec):
    """broadcast_to a shape given as a shape_vector spec over refs (static entries stay static)."""
    return ops.broadcast_to(x, tuple(_spec_values(refs, spec)))


@function("fill_spec")
def _fill_spec(*refs, spec, value, dtype):
    """ConstantOfShape of a shape given as a shape_vector spec over refs."""
    return ops.full(tuple(_spec_values(refs, spec)), value, dtype=dtype)


@function("range_spec")
def _range_spec(*refs, specs, dtype):
    """Range whose start, limit and delta are shape_vector spec entries over refs."""
    start, limit, delta = _spec_values(refs, specs)
    return ops.arange(start, limit, delta, dtype=dtype)


@function("slice_dynamic")
def _slice_dynamic(x, starts, ends, *, axes):
    """ONNX Slice with step 1 whose starts/ends (int64 vectors, one entry per axis in `axes`)
    are known only at run time: bounds wrap once when negative and clamp to [0, dim]."""
    starts = ops.cast(ops.reshape(starts, (-1,)), "int64")
    ends = ops.cast(ops.reshape(ends, (-1,)), "int64")
    shape = ops.shape(x)
    begin, size = [], []
    for k in range(len(x.shape)):
        n = x.shape[k] if x.shape[k] is not None else shape[k]
        n = ops.cast(n, "int64")
        if k not in axes:
            begin.append(ops.convert_to_tensor(0, "int64"))
            size.append(n)
            continue
        i = axes.index(k)

        def clamp(v):
            v = ops.where(ops.less(v, 0), v + n, v)
            return ops.minimum(ops.maximum(v, 0), n)

        b, e = clamp(starts[i]), clamp(ends[i])
        begin.append(b)
        size.append(ops.maximum(e - b, 0))
    return ops.slice(x, ops.stack(begin), ops.stack(size))


@function("fill")
def _fill(shape, *, value, dtype):
    return ops.full(ops.cast(shape, "int64"), value, dtype=dtype)


@function("full_like")
def _full_like(x, *, value, dtype):
    return ops.full_like(x, value, dtype=dtype)


@function("range")
def _range(start, limit, delta, *, dtype):
    """The spec's max(ceil((limit - start) / delta), 0) elements: a limit behind start gives an
    empty output (TensorFlow's range raises on it), as do a zero delta and a non-finite count
    (an inf or NaN bound), whose size the spec leaves undefined: onnxruntime gives an empty
    output for an infinite count and refuses a zero delta when run."""
    start, limit, delta = (ops.reshape(ops.cast(v, dtype), ()) for v in (start, limit, delta))
    span = limit - start
    ok = ops.logical_or(ops.logical_and(delta > 0, span > 0), ops.logical_and(delta < 0, span < 0))
    if "float" in str(dtype):
        ok = ops.logical_and(ok, ops.isfinite(span / delta))
    limit = ops.where(ok, limit, start)
    delta = ops.where(ok, delta, ops.ones_like(delta))
    return ops.arange(start, limit, delta, dtype=dtype)


# no converter emits "reshape_dynamic" since shape arithmetic on dynamic dims became symbolic
# (shape_vector / reshape_spec): kept so that .keras files written before still load
@function("reshape_dynamic")
def _reshape_dynamic(x, shape):
    return ops.reshape(x, ops.cast(shape, "int64"))


@function("reshape_runtime")
def _reshape_runtime(x, shape, *, allowzero):
    """ONNX Reshape to a shape tensor known only at run time (0 copies the input dim)."""
    shape = ops.cast(ops.reshape(shape, (-1,)), "int64")
    if not allowzero:
        n, rank = int(shape.shape[0]), len(x.shape)
        dims = [ops.cast(ops.shape(x)[i], "int64") if i < rank else ops.convert_to_tensor(0, "int64")
                for i in range(n)]
        shape = ops.where(ops.equal(shape, 0), ops.stack(dims), shape)
    return ops.reshape(x, shape)


@function("broadcast")
def _broadcast(x, *, shape):
    return ops.broadcast_to(x, dynamic_shape(x, shape))


# no converter emits "broadcast_dynamic" since shape arithmetic on dynamic dims became symbolic
# (shape_vector / broadcast_spec): kept so that .keras files written before still load
@function("broadcast_dynamic")
def _broadcast_dynamic(x, shape):
    return ops.broadcast_to(x, ops.cast(shape, "int64"))


@function("tile")
def _tile(x, *, repeats):
    return ops.tile(x, repeats)


# ----------------------------------------------------------------------------- indexing
@function("gather")
def _gather(x, indices, *, axis):
    return ops.take(x, indices, axis=axis)


@function("gather_elements")
def _gather_elements(x, indices, *, axis):
    indices = ops.cast(indices, "int64")
    n = ops.cast(ops.shape(x)[axis], "int64")
    indices = ops.where(indices < 0, indices + n, indices)
    return ops.take_along_axis(x, indices, axis=axis)


def runtime_dims(x, shape):
    """`shape` (ints, None where unknown) with the None entries read from x at run time (int64)."""
    return [int(d) if d is not None else ops.cast(ops.shape(x)[i], "int64") for i, d in enumerate(shape)]


def product(dims):
    """The product of sizes that may be symbolic (run-time) dims; 1 for none (shared with fn_index)."""
    out = 1
    for d in dims:
        out = out * d
    return out


@function("gather_nd")
def _gather_nd(data, indices, *, batch_dims, data_shape, out_shape):
    """ONNX GatherND on `data` (ONNX layout): index tuples become flat row-major offsets into
    data reshaped to [batch * indexed, rest...]. Dims given as None in data_shape / out_shape
    are read at run time (dynamic batch, sequence length)."""
    b = batch_dims
    k = int(indices.shape[-1])
    shape = runtime_dims(data, data_shape)
    dims, rest = shape[b:b + k], shape[b + k:]
    nb, nk = product(shape[:b]), product(dims)
    strides = [product(dims[i + 1:]) for i in range(k)]
    idx = ops.cast(indices, "int64")
    idx = ops.where(idx < 0, idx + ops.stack([ops.cast(d, "int64") for d in dims]), idx)
    flat = ops.sum(idx * ops.stack([ops.cast(s_, "int64") for s_ in strides]), axis=-1)
    flat = ops.reshape(flat, (nb, -1)) + ops.expand_dims(ops.arange(nb, dtype="int64") * nk, 1)
    d = ops.reshape(data, (nb * nk,) + tuple(rest))
    out = ops.take(d, ops.reshape(flat, (-1,)), axis=0)
    ishape = runtime_dims(indices, list(indices.shape))
    full = shape[:b] + ishape[b:-1] + rest
    return ops.reshape(out, tuple(f if s_ is None else s_ for f, s_ in zip(full, out_shape)))


@function("where_mask")
def _where_mask(x, mask):
    return ops.where(ops.cast(mask, "bool"), x, ops.zeros_like(x))


@function("one_hot")
def _one_hot(indices, values, *, depth, axis):
    idx = ops.cast(indices, "int64")
    idx = ops.where(idx < 0, idx + depth, idx)
    # out-of-range indices give an all-off row (ONNX); torch's one_hot refuses them, so zero them
    valid = ops.logical_and(idx >= 0, idx < depth)
    hot = ops.one_hot(ops.where(valid, idx, 0), depth, axis=axis, dtype="float32")
    hot = hot * ops.expand_dims(ops.cast(valid, "float32"), axis)
    values = ops.reshape(values, (-1,))
    return ops.where(hot > 0.5, values[1], values[0])


def cumulative(x, scan, identity, *, axis, exclusive, reverse):
    """ONNX CumSum/CumProd: `scan` (ops.cumsum or ops.cumprod) along `axis`; exclusive shifts
    the result by one, starting from `identity`; reverse scans from the end."""
    if reverse:
        x = ops.flip(x, axis=axis)
    y = scan(x, axis=axis)
    if exclusive:
        pads = [(0, 0)] * len(x.shape)
        pads[axis] = (1, 0)
        y = _axis_slice(ops.pad(y, pads, constant_values=identity), axis, 0, -1)
    if reverse:
        y = ops.flip(y, axis=axis)
    return y


@function("cumsum")
def _cumsum(x, *, axis, exclusive, reverse):
    return cumulative(x, ops.cumsum, 0, axis=axis, exclusive=exclusive, reverse=reverse)


# ----------------------------------------------------------------------------- padding
@function("cumprod")
def cumprod(x, *, axis, exclusive, reverse):
    return cumulative(x, ops.cumprod, 1, axis=axis, exclusive=exclusive, reverse=reverse)


def _axis_slice(x, axis, start, stop):
    idx = [slice(None)] * len(x.shape)
    idx[axis] = slice(start, stop)
    return x[tuple(idx)]


def _edge(x, axis, b, e):
    parts = []
    if b:
        parts.append(ops.repeat(_axis_slice(x, axis, 0, 1), b, axis=axis))
    parts.append(x)
    if e:
        parts.append(ops.repeat(_axis_slice(x, axis, -1, None), e, axis=axis))
    return ops.concatenate(parts, axis=axis) if len(parts) > 1 else x


def _wrap(x, axis, b, e, n):
    if n is not None and (b > n or e > n):
        before, after = math.ceil(b / n), math.ceil(e / n)
        reps = [1] * len(x.shape)
        reps[axis] = before + 1 + after
        t = ops.tile(x, reps)
        start = before * n - b
        return _axis_slice(t, axis, start, start + n + b + e)
    parts = []
    if b:
        parts.append(_axis_slice(x, axis, -b, None))
    parts.append(x)
    if e:
        parts.append(_axis_slice(x, axis, 0, e))
    return ops.concatenate(parts, axis=axis) if len(parts) > 1 else x


@function("pad_mode")
def _pad_mode(x, *, pads, mode, sizes=None):
    """Non-negative (begin, end) pads per axis in mode reflect, edge or wrap. The TF backend
    of ops.pad only has constant/reflect/symmetric, so edge and wrap are slices+concatenate."""
    if mode == "reflect":
        return ops.pad(x, [tuple(p) for p in pads], mode="reflect")
    for axis, (b, e) in enumerate(pads):
        if not b and not e:
            continue
        if mode == "edge":
            x = _edge(x, axis, b, e)
        else:
            x = _wrap(x, axis, b, e, None if sizes is None else sizes[axis])
    return x


# ----------------------------------------------------------------------------- depth/space
def _dims(x):
    dyn = ops.shape(x)
    return [s if s is not None else dyn[i] for i, s in enumerate(x.shape)]


@function("depth_to_space")
def _depth_to_space(x, *, block, mode):
    n, h, w, c = _dims(x)
    b = block
    c2 = c // (b * b)
    if mode == "DCR":
        y = ops.reshape(x, (n, h, w, b, b, c2))
        y = ops.transpose(y, (0, 1, 3, 2, 4, 5))
    else:
        y = ops.reshape(x, (n, h, w, c2, b, b))
        y = ops.transpose(y, (0, 1, 4, 2, 5, 3))
    return ops.reshape(y, (n, h * b, w * b, c2))


@function("space_to_depth")
def _space_to_depth(x, *, block, mode="DCR"):
    n, h, w, c = _dims(x)
    b = block
    y = ops.reshape(x, (n, h // b, b, w // b, b, c))
    # output channels ordered (row, col, channel) for DCR, (channel, row, col) for CRD
    y = ops.transpose(y, (0, 1, 3, 2, 4, 5) if mode == "DCR" else (0, 1, 3, 5, 2, 4))
    return ops.reshape(y, (n, h // b, w // b, b * b * c))


# ----------------------------------------------------------------------------- resize
@function("resize_axis")
def _resize_axis(x, indices, weights=None, valid=None, *, axis, fill=0.0):
    """One separable resize step along `axis`: out = sum_t weights[t] * take(x, indices[t]).
    indices/weights have shape (taps, out_len); `valid` (out_len,) marks output positions that
    take `fill` instead (tf_crop_and_resize extrapolation)."""
    rank = len(x.shape)
    bshape = (-1,) + (1,) * (rank - axis - 1)
    taps = int(indices.shape[0])
    if weights is None:
        y = ops.take(x, indices[0], axis=axis)
    else:
        # half precision weighs in float32 and rounds once, as onnxruntime: float16 weights
        # need not sum to 1 (a constant image of 300 came out 300.5 under cubic)
        dt = standardize_dtype(x.dtype)
        calc = "float32" if dt in ("float16", "bfloat16") else dt
        weights = ops.cast(weights, calc)
        y = None
        for t in range(taps):
            term = ops.cast(ops.take(x, indices[t], axis=axis), calc) * ops.reshape(weights[t], bshape)
            y = term if y is None else y + term
        y = ops.cast(y, dt)
    if valid is not None:
        y = ops.where(ops.reshape(ops.cast(valid, "bool"), bshape), y, ops.cast(fill, y.dtype))
    return y
