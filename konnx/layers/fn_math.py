"""Math functions for element-wise arithmetic, bitwise ops, normalizations, reductions, matmul
and linear algebra, written with keras.ops only (activations: fn_activation.py). Most names are
prefixed "math." to keep the whitelist collision-free; bit_shift and det keep the names they
were saved under elsewhere."""
from __future__ import annotations

import functools

import numpy as np
from keras import ops
from keras.backend import standardize_dtype

from .functions import choices, function, safe_add, via_int64

_UNARY = {
    "neg": ops.negative, "abs": ops.abs, "sqrt": ops.sqrt, "exp": ops.exp, "log": ops.log,
    "reciprocal": ops.reciprocal, "floor": ops.floor, "ceil": ops.ceil, "round": ops.round,
    "sign": ops.sign, "sin": ops.sin, "cos": ops.cos, "tan": ops.tan, "asin": ops.arcsin,
    "acos": ops.arccos, "atan": ops.arctan, "sinh": ops.sinh, "cosh": ops.cosh,
    "asinh": ops.arcsinh, "acosh": ops.arccosh, "atanh": ops.arctanh, "erf": ops.erf,
    "not": ops.logical_not, "isnan": ops.isnan, "tanh": ops.tanh, "sigmoid": ops.sigmoid,
    "softplus": ops.softplus, "softsign": ops.softsign, "relu": ops.relu, "mish": lambda x: x * ops.tanh(ops.softplus(x)),
    "hard_swish": ops.hard_silu, "bitwise_not": ops.bitwise_not,
}


choices("math.unary", "op", _UNARY)
_EXACT = {"neg", "abs", "floor", "ceil", "round", "sign", "relu", "not", "isnan", "bitwise_not"}
HALF_DTYPES = ("float16", "bfloat16")  # computed in float32 and rounded once


def float32_inside(fn):
    """Half-precision operands computed in float32 and every output rounded once to x's dtype,
    as onnxruntime (float32 kernels behind casts) and the reference (float32 attributes promote
    numpy's float16) do: a float attribute rounded to float16 first changes the result (Celu's
    alpha=-1e-30 becomes -0 and x / alpha inf or NaN; a normalization's epsilon 1e-30 becomes 0
    and 7e4 inf)."""
    @functools.wraps(fn)
    def wrapped(x, *rest, **params):
        dt = standardize_dtype(x.dtype)
        if dt not in HALF_DTYPES:
            return fn(x, *rest, **params)
        rest = [r if r is None else ops.cast(r, "float32") for r in rest]
        out = fn(ops.cast(x, "float32"), *rest, **params)
        return [ops.cast(o, dt) for o in out] if isinstance(out, (list, tuple)) else ops.cast(out, dt)
    return wrapped


@function("math.unary")
def unary(x, *, op):
    dt = standardize_dtype(x.dtype)
    if dt in HALF_DTYPES and op not in _EXACT:  # float32 inside, one rounding (as onnxruntime's kernels)
        return ops.cast(_UNARY[op](ops.cast(x, "float32")), dt)
    return _UNARY[op](x)


@function("math.int_div")
def int_div(a, b):
    return via_int64(_int_div, a, b)


def _int_div(a, b):
    """Integer division truncating toward zero (C semantics, as onnxruntime)."""
    q = ops.floor_divide(a, b)
    r = ops.subtract(a, ops.multiply(q, b))
    fix = ops.logical_and(ops.not_equal(r, 0), ops.not_equal(ops.less(a, 0), ops.less(b, 0)))
    return ops.add(q, ops.cast(fix, q.dtype))


@function("math.mod")
def mod(a, b, *, fmod=0):
    return via_int64(_mod, a, b, fmod=fmod)


def _mod(a, b, *, fmod=0):
    if fmod:
        # C fmod: the sign of the dividend
        return ops.multiply(ops.sign(a), ops.mod(ops.abs(a), ops.abs(b)))
    return ops.mod(a, b)


@function("math.pow")
def power(a, b, *, out_dtype):
    dt = out_dtype
    if "int" in dt and "int" not in str(b.dtype):
        return ops.cast(ops.power(ops.cast(a, b.dtype), b), dt)
    return ops.power(a, ops.cast(b, dt))


_BITWISE = {"bitwise_and": ops.bitwise_and, "bitwise_or": ops.bitwise_or, "bitwise_xor": ops.bitwise_xor}
choices("math.bitwise", "op", _BITWISE)


@function("math.bitwise")
def bitwise(a, b, *, op):
    return via_int64(_BITWISE[op], a, b)


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


@function("math.where")
def where(c, x, y):
    return ops.where(c, x, y)


@function("math.mean")
def mean(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = safe_add(out, x)
    return ops.divide(out, ops.cast(len(xs), out.dtype))


@function("math.is_inf")
def is_inf(x, *, positive=1, negative=1):
    inf = ops.isinf(x)
    if positive and negative:
        return inf
    if positive:
        return ops.logical_and(inf, ops.greater(x, 0))
    if negative:
        return ops.logical_and(inf, ops.less(x, 0))
    return ops.logical_and(inf, ops.not_equal(x, x))


@function("math.clip")
def clip(x, lo=None, hi=None):
    """min(max(x, lo), hi), as onnxruntime (hi wins when lo > hi)."""
    if lo is not None:
        x = ops.maximum(x, ops.cast(lo, x.dtype))
    if hi is not None:
        x = ops.minimum(x, ops.cast(hi, x.dtype))
    return x


# ---------------------------------------------------------------- normalization
@function("math.affine")
def affine(x, a, b):
    return safe_add(ops.multiply(x, a), b)


@function("math.batch_norm")
@float32_inside
def batch_norm(x, scale, bias, mean_, var, *, epsilon):
    inv = ops.divide(scale, ops.sqrt(ops.add(var, epsilon)))
    return safe_add(ops.multiply(ops.subtract(x, mean_), inv), bias)


@function("math.moments_norm")
@float32_inside
def moments_norm(x, scale=None, bias=None, *, axes, epsilon, outputs=1):
    """(x - mean) / sqrt(var + eps) * scale + bias over `axes`; optionally also returns
    the mean and 1/sqrt(var + eps) (LayerNormalization's extra outputs)."""
    axes = tuple(axes)
    m = ops.mean(x, axis=axes, keepdims=True)
    d = ops.subtract(x, m)
    inv = ops.rsqrt(ops.add(ops.mean(ops.square(d), axis=axes, keepdims=True), epsilon))
    y = ops.multiply(d, inv)
    if scale is not None:
        y = ops.multiply(y, scale)
    if bias is not None:
        y = safe_add(y, bias)
    if outputs == 1:
        return y
    return [y, m, inv]


@function("math.rms_norm")
@float32_inside
def rms_norm(x, scale=None, *, axes, epsilon):
    inv = ops.rsqrt(ops.add(ops.mean(ops.square(x), axis=tuple(axes), keepdims=True), epsilon))
    y = ops.multiply(x, inv)
    return y if scale is None else ops.multiply(y, scale)


@function("math.group_norm")
@float32_inside
def group_norm(x, scale, bias, *, groups, epsilon):
    """Group normalization of channels-last x (scale/bias per channel, broadcastable)."""
    shape = ops.shape(x)
    g = ops.reshape(x, tuple(shape[:-1]) + (groups, -1))
    axes = tuple(range(1, len(x.shape) - 1)) + (len(x.shape),)
    m = ops.mean(g, axis=axes, keepdims=True)
    d = ops.subtract(g, m)
    inv = ops.rsqrt(ops.add(ops.mean(ops.square(d), axis=axes, keepdims=True), epsilon))
    y = ops.reshape(ops.multiply(d, inv), shape)
    return safe_add(ops.multiply(y, scale), bias)


@function("math.lrn")
def lrn(x, *, size, alpha, beta, bias, axis):
    sq = ops.square(x)
    rank = len(x.shape)
    axis = axis % rank
    lo, hi = (size - 1) // 2, (size - 1) - (size - 1) // 2
    if x.shape[axis] is not None:  # a window reaching past every channel sums them all
        reach = max(x.shape[axis] - 1, 0)
        lo, hi = min(lo, reach), min(hi, reach)
    pads = [(0, 0)] * rank
    pads[axis] = (lo, hi)
    sq = ops.pad(sq, pads)
    n = x.shape[axis] if x.shape[axis] is not None else ops.shape(x)[axis]
    total = None
    for k in range(lo + hi + 1):
        idx = [slice(None)] * rank
        idx[axis] = slice(k, k + n)
        part = sq[tuple(idx)]
        total = part if total is None else safe_add(total, part)
    return ops.divide(x, ops.power(ops.add(bias, ops.multiply(alpha / size, total)), beta))


@function("math.lp_norm")
def lp_norm(x, *, axis, p):
    if p == 1:
        n = ops.sum(ops.abs(x), axis=axis, keepdims=True)
    else:
        n = ops.sqrt(ops.sum(ops.square(x), axis=axis, keepdims=True))
    safe = ops.where(ops.equal(n, 0), ops.ones_like(n), n)
    return ops.where(ops.equal(n, 0), ops.zeros_like(x), ops.divide(x, safe))


@function("math.mvn")
def mvn(x, *, axes):
    axes = tuple(axes)
    m = ops.mean(x, axis=axes, keepdims=True)
    var = ops.subtract(ops.mean(ops.square(x), axis=axes, keepdims=True), ops.square(m))
    return ops.divide(ops.subtract(x, m), ops.add(ops.sqrt(ops.maximum(var, 0.0)), 1e-9))


# ---------------------------------------------------------------- reductions
def _empty_extreme(op, x, kw):
    """Max/Min over an empty set: the identity element (-inf / +inf, or the dtype's bounds)."""
    dt = standardize_dtype(x.dtype)
    if dt == "bool":
        fill = op == "min"
    elif "int" in dt:
        info = np.iinfo(dt)
        fill = int(info.min if op == "max" else info.max)
    else:
        fill = float("-inf") if op == "max" else float("inf")
    zeros = ops.sum(ops.zeros_like(x, dtype="int32"), **kw)
    return ops.full_like(zeros, fill, dtype=dt)


def reduce_extreme(x, op, axis=None, keepdims=False):
    """ops.max / ops.min (op "max" / "min") that also take an empty input, which Keras refuses
    (eagerly) even when the reduced axes are not empty: the identity over an empty reduced
    axis, an empty output otherwise."""
    if any(d == 0 for d in x.shape):
        return _empty_extreme(op, x, dict(axis=axis, keepdims=keepdims))
    return (ops.max if op == "max" else ops.min)(x, axis=axis, keepdims=keepdims)


_REDUCTIONS = ("mean", "sum", "max", "min", "prod", "l1", "l2", "log_sum", "log_sum_exp", "sum_square")
choices("math.reduce", "op", _REDUCTIONS)
choices("math.arg", "op", ("max", "min"))


def _reduce_fn(op, x, axes, keepdims):
    kw = dict(axis=axes, keepdims=keepdims)
    if op in ("max", "min"):
        return reduce_extreme(x, op, axes, keepdims)
    if op == "mean":
        if "int" in str(x.dtype):
            return ops.cast(ops.mean(ops.cast(x, "float64"), **kw), x.dtype)
        return ops.mean(x, **kw)
    if op == "sum":
        return ops.sum(x, **kw)
    if op == "prod":
        return ops.prod(x, **kw)
    if op == "l1":
        return ops.sum(ops.abs(x), **kw)
    if op == "l2":
        return ops.sqrt(ops.sum(ops.square(x), **kw))
    if op == "log_sum":
        return ops.log(ops.sum(x, **kw))
    if op == "log_sum_exp":
        return ops.logsumexp(x, **kw)
    if op == "sum_square":
        return ops.sum(ops.square(x), **kw)
    raise ValueError(f"unknown reduction {op!r}, expected one of {_REDUCTIONS}")


def first_index(x, axis, *, op="max", last=False, keepdims=False):
    """Index of the first (or last) maximum/minimum along `axis`, exact on ties (as
    onnxruntime), unlike backend argmax kernels whose tie order is unspecified."""
    axis = axis % len(x.shape)
    ext = reduce_extreme(x, op, axis, True)
    hit = ops.equal(x, ext)
    if standardize_dtype(x.dtype).startswith(("float", "bfloat")):
        # a NaN is the extreme (the reduction propagates it): its first position wins, as in the
        # ONNX reference implementation (numpy's argmax); never the out-of-range index n
        hit = ops.logical_or(hit, ops.logical_and(ops.isnan(x), ops.isnan(ext)))
    n = x.shape[axis] if x.shape[axis] is not None else ops.shape(x)[axis]
    shape = [1] * len(x.shape)
    shape[axis] = -1
    pos = ops.reshape(ops.arange(n, dtype="int32"), shape)
    if last:
        idx = reduce_extreme(ops.where(hit, pos, -1), "max", axis, keepdims)
    else:
        idx = reduce_extreme(ops.where(hit, pos, n), "min", axis, keepdims)
    return idx


@function("math.reduce")
def reduce(x, *, op, axes, keepdims):
    return _reduce_fn(op, x, tuple(axes), bool(keepdims))


@function("math.arg")
def arg(x, *, op, axis, keepdims, last=0):
    idx = first_index(x, axis, op=op, last=bool(last), keepdims=bool(keepdims))
    return ops.cast(idx, "int64")


# ---------------------------------------------------------------- matmul, linear algebra
@function("math.matmul")
def matmul(a, b):
    """numpy matmul semantics, including 1-D operands and broadcast batch dims."""
    va, vb = len(a.shape) == 1, len(b.shape) == 1
    if va:
        a = ops.expand_dims(a, 0)
    if vb:
        b = ops.expand_dims(b, -1)
    ra, rb = len(a.shape), len(b.shape)
    if ra != rb:
        r = max(ra, rb)
        a = ops.reshape(a, (1,) * (r - ra) + tuple(ops.shape(a))) if ra < r else a
        b = ops.reshape(b, (1,) * (r - rb) + tuple(ops.shape(b))) if rb < r else b
    if len(a.shape) > 2:
        sa, sb = ops.shape(a), ops.shape(b)
        batch = [sb[i] if a.shape[i] == 1 else sa[i] for i in range(len(a.shape) - 2)]
        a = ops.broadcast_to(a, tuple(batch) + tuple(sa[-2:]))
        b = ops.broadcast_to(b, tuple(batch) + tuple(sb[-2:]))
    y = ops.matmul(a, b)
    if va:
        y = ops.squeeze(y, -2)
    if vb:
        y = ops.squeeze(y, -1)
    return y


@function("math.gemm")
def gemm(a, b, c=None, *, alpha, beta, trans_a, trans_b):
    if trans_a:
        a = ops.transpose(a)
    if trans_b:
        b = ops.transpose(b)
    y = ops.matmul(a, b)
    if alpha != 1.0:
        y = ops.multiply(y, alpha)
    if c is not None and beta != 0.0:
        y = safe_add(y, ops.multiply(c, beta) if beta != 1.0 else c)
    return y


@function("math.einsum")
def einsum(*xs, equation):
    return ops.einsum(equation, *xs)


@function("det")
def det(x):
    return ops.det(x)
