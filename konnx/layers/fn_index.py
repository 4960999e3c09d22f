"""Indexing, selection and scatter functions (keras.ops only): TopK, ReverseSequence, Compress,
NonZero, Unique, ScatterElements / ScatterND (with reductions), TensorScatter, and the masks
built from row/column indices (EyeLike, Trilu on dynamic matrix axes)."""
from __future__ import annotations

from keras import ops
from keras.backend import standardize_dtype

from .functions import function
from .fn_tensor import product, runtime_dims


def _last_axis(x, axis):
    """Transpose `axis` to the end; returns (x, inverse permutation or None)."""
    rank = len(x.shape)
    axis %= rank
    if axis == rank - 1:
        return x, None
    perm = [i for i in range(rank) if i != axis] + [axis]
    inv = [perm.index(i) for i in range(rank)]
    return ops.transpose(x, perm), inv


# ----------------------------------------------------------------------------- TopK
@function("top_k")
def top_k(x, *, k, axis, largest=1):
    """Values and int64 indices of the k largest (smallest) entries along `axis`, sorted, the
    lower index first among equal values."""
    x, inv = _last_axis(x, axis)
    dt = standardize_dtype(x.dtype)
    if dt.startswith(("float", "bfloat")):
        idx = _float_top_k(x, k, largest)
        vals = ops.take_along_axis(x, idx, axis=-1)
    elif largest:
        vals, idx = ops.top_k(x, k, sorted=True)
    elif dt == "bool" or dt.startswith("u"):
        wide = ops.cast(x, "int64")
        vals, idx = ops.top_k(ops.negative(wide), k, sorted=True)
        vals = ops.cast(ops.negative(vals), dt)
    else:
        vals, idx = ops.top_k(ops.negative(x), k, sorted=True)
        vals = ops.negative(vals)
    idx = ops.cast(idx, "int64")
    if inv is not None:
        vals, idx = ops.transpose(vals, inv), ops.transpose(idx, inv)
    return [vals, idx]


def _float_top_k(x, k, largest):
    """Indices of the k largest (smallest) floats along the last axis, NaN ranking strictly above
    +inf (the ONNX reference's sort; onnxruntime agrees): NaN first for largest, last for smallest.
    top_k on a key where NaN is +inf (largest) or -inf under -x (smallest) ties NaN with +inf; the
    run of tied positions (at the start for largest, at the end for smallest) is rewritten as the
    NaN positions then the +inf ones (largest) or the reverse, each in index order."""
    isnan = ops.isnan(x)
    posinf = ops.logical_and(ops.isinf(x), ops.greater(x, 0))
    inf = ops.full_like(x, float("inf"))
    key = ops.where(isnan, inf, x) if largest else ops.where(isnan, -inf, ops.negative(x))
    _, base = ops.top_k(key, k, sorted=True)
    # positions of each class in index order (top_k puts the lower index first among equals)
    _, nan_at = ops.top_k(ops.cast(isnan, "float32"), k, sorted=True)
    _, inf_at = ops.top_k(ops.cast(posinf, "float32"), k, sorted=True)
    n_nan = ops.sum(ops.cast(isnan, "int32"), axis=-1, keepdims=True)
    n_inf = ops.sum(ops.cast(posinf, "int32"), axis=-1, keepdims=True)
    tied = n_nan + n_inf
    start = 0 if largest else ops.cast(ops.shape(x)[-1], "int32") - tied
    first, n_first, second = (nan_at, n_nan, inf_at) if largest else (inf_at, n_inf, nan_at)
    base, first, second = (ops.cast(v, "int32") for v in (base, first, second))
    t = ops.zeros_like(base) + ops.cast(ops.arange(k), "int32") - start  # output slot, from the run's start
    from_first = ops.take_along_axis(first, ops.clip(t, 0, k - 1), axis=-1)
    from_second = ops.take_along_axis(second, ops.clip(t - n_first, 0, k - 1), axis=-1)
    in_first = ops.logical_and(ops.greater_equal(t, 0), ops.less(t, n_first))
    in_second = ops.logical_and(ops.greater_equal(t, n_first), ops.less(t, tied))
    return ops.where(in_first, from_first, ops.where(in_second, from_second, base))


# ----------------------------------------------------------------------------- sequences
@function("reverse_sequence")
def reverse_sequence(x, lens, *, batch_axis, time_axis):
    """Reverse the first lens[b] steps of every batch entry b along time_axis."""
    n_t = x.shape[time_axis] if x.shape[time_axis] is not None else ops.shape(x)[time_axis]
    t = ops.arange(n_t, dtype="int64")
    lens = ops.cast(lens, "int64")
    shape = [1] * len(x.shape)
    shape[time_axis] = -1
    t = ops.reshape(t, shape)
    shape = [1] * len(x.shape)
    shape[batch_axis] = -1
    lens = ops.reshape(lens, shape)
    idx = ops.where(ops.less(t, lens), lens - 1 - t, t)
    idx = ops.broadcast_to(idx, ops.shape(x))
    return ops.take_along_axis(x, idx, axis=time_axis)


@function("compress")
def compress(x, condition, *, axis=None):
    if axis is None:
        x, axis = ops.reshape(x, (-1,)), 0
    cond = ops.cast(ops.reshape(condition, (-1,)), "bool")
    keep = ops.cast(ops.nonzero(cond)[0], "int64")
    return ops.take(x, keep, axis=axis)


@function("nonzero")
def nonzero(x):
    parts = ops.nonzero(ops.not_equal(x, ops.zeros_like(x)))
    return ops.stack([ops.cast(p, "int64") for p in parts], axis=0)


# ----------------------------------------------------------------------------- scatter
def _scatter_rows(d2, rows, u2, reduction):
    """Write rows `u2` (K, S) into `d2` (N, S) at row indices `rows` (K,) with a reduction."""
    n = d2.shape[0] if d2.shape[0] is not None else ops.shape(d2)[0]
    if reduction == "none":
        return ops.scatter_update(d2, ops.expand_dims(rows, 1), u2)
    if reduction == "add":
        return d2 + ops.scatter(ops.expand_dims(rows, 1), u2, ops.shape(d2))
    hit = ops.equal(ops.expand_dims(rows, 1), ops.expand_dims(ops.arange(n, dtype="int64"), 0))  # (K, N)
    hit = ops.expand_dims(hit, 2)
    upd = ops.expand_dims(u2, 1)                                                             # (K, 1, S)
    if reduction == "mul":
        return d2 * ops.prod(ops.where(hit, upd, ops.ones_like(upd)), axis=0)
    base = ops.expand_dims(d2, 0)                                                            # (1, N, S)
    picked = ops.where(hit, upd, base)
    if reduction == "max":
        return ops.maximum(d2, ops.max(picked, axis=0))
    if reduction == "min":
        return ops.minimum(d2, ops.min(picked, axis=0))
    raise ValueError(f"unknown scatter reduction {reduction!r}")


def _strides(shape):
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return list(reversed(out))


@function("scatter_nd")
def scatter_nd(data, indices, updates, *, data_shape, reduction="none"):
    """ONNX ScatterND; dims given as None in data_shape are read at run time."""
    k = int(indices.shape[-1])
    shape = runtime_dims(data, data_shape)
    lead, tail = shape[:k], shape[k:]
    n0, s = product(lead), product(tail)
    idx = ops.cast(indices, "int64")
    dims = ops.stack([ops.cast(d, "int64") for d in lead])
    idx = ops.where(ops.less(idx, 0), idx + dims, idx)
    strides = ops.stack([ops.cast(d, "int64") for d in _strides(lead)])
    rows = ops.reshape(ops.sum(idx * strides, axis=-1), (-1,))
    out = _scatter_rows(ops.reshape(data, (n0, s)), rows, ops.reshape(updates, (-1, s)), reduction)
    return ops.reshape(out, tuple(shape))


@function("scatter_elements")
def scatter_elements(data, indices, updates, *, axis, data_shape, reduction="none"):
    """ONNX ScatterElements; dims given as None in data_shape are read at run time."""
    rank = len(data_shape)
    shape = runtime_dims(data, data_shape)
    idx = ops.cast(indices, "int64")
    idx = ops.where(ops.less(idx, 0), idx + shape[axis], idx)
    ishape = ops.shape(idx)
    strides = _strides(shape)
    flat = None
    for d in range(rank):
        if d == axis:
            coord = idx
        else:
            sh = [1] * rank
            sh[d] = -1
            coord = ops.broadcast_to(ops.reshape(ops.arange(ishape[d], dtype="int64"), sh), ishape)
        term = coord * strides[d]
        flat = term if flat is None else flat + term
    out = _scatter_rows(ops.reshape(data, (product(shape), 1)), ops.reshape(flat, (-1,)),
                        ops.reshape(updates, (-1, 1)), reduction)
    return ops.reshape(out, tuple(shape))


@function("tensor_scatter")
def tensor_scatter(cache, update, write=None, *, axis, circular):
    """Write `update` into `cache` along `axis` from position write[b] of each batch entry b
    (modulo the cache length in circular mode): a gather from update, no scatter."""
    rank = len(cache.shape)
    n_cache, n_upd = cache.shape[axis], update.shape[axis]
    shape = [1] * rank
    shape[axis] = -1
    s = ops.reshape(ops.arange(n_cache, dtype="int64"), shape)
    if write is None:
        w = ops.zeros((1,) * rank, dtype="int64")
    else:
        w = ops.reshape(ops.cast(write, "int64"), (-1,) + (1,) * (rank - 1))
    t = s - w
    if circular:
        t = ops.mod(t, n_cache)
    valid = ops.logical_and(ops.greater_equal(t, 0), ops.less(t, n_upd))
    t = ops.where(valid, t, ops.zeros_like(t))
    bshape = list(ops.shape(cache))
    bshape[axis] = n_cache
    t = ops.broadcast_to(t, bshape)
    gathered = ops.take_along_axis(update, t, axis=axis) if n_upd else cache
    return ops.where(ops.broadcast_to(valid, bshape), gathered, cache)


# ----------------------------------------------------------------------------- unique
@function("unique")
def unique(x, *, axis=None, sort=True):
    """ONNX Unique on a static number of rows (elements, or slices along `axis`): unique rows
    (sorted, or in order of first occurrence), first-occurrence indices, inverse indices and
    counts. Pairwise comparisons: O(n^2) memory. The output length is known at run time.
    NaN as numpy.unique (the spec's model, and the reference): sorted after every number;
    without `axis` all NaNs are one unique element (equal_nan), with `axis` a row holding a NaN
    equals no row, itself included, and such rows keep their input order among each other."""
    if axis is None:
        rows, rest, perm = ops.reshape(x, (-1, 1)), None, None
    else:
        rank = len(x.shape)
        perm = [axis] + [i for i in range(rank) if i != axis]
        moved = ops.transpose(x, perm)
        rest = list(moved.shape[1:])
        rows = ops.reshape(moved, (moved.shape[0], -1))
    n = rows.shape[0]
    a, b = ops.expand_dims(rows, 1), ops.expand_dims(rows, 0)                      # row i, row j
    is_float = "float" in standardize_dtype(x.dtype)
    pos = ops.arange(n)
    before = ops.less(ops.expand_dims(pos, 0), ops.expand_dims(pos, 1))           # j < i
    key_equal = _sort_equal(a, b, is_float)                                        # equal as sort keys
    same = ops.all(key_equal if axis is None else ops.equal(a, b), axis=-1)       # one unique value
    same = ops.logical_or(same, ops.eye(n, dtype="bool"))                          # a NaN row: itself
    first = ops.logical_not(ops.any(ops.logical_and(same, before), axis=1))
    if sort:
        diff = ops.logical_not(key_equal)
        k = ops.expand_dims(ops.argmax(ops.cast(diff, "int32"), axis=-1), -1)
        ai = ops.squeeze(ops.take_along_axis(ops.broadcast_to(a, ops.shape(diff)), k, axis=-1), -1)
        bj = ops.squeeze(ops.take_along_axis(ops.broadcast_to(b, ops.shape(diff)), k, axis=-1), -1)
        smaller = ops.logical_and(ops.any(diff, axis=-1), _sort_less(bj, ai, is_float))  # row j < row i
        tied = ops.logical_and(ops.logical_not(ops.any(diff, axis=-1)), ops.logical_not(same))
        smaller = ops.logical_or(smaller, ops.logical_and(tied, before))            # NaN rows: input order
    else:
        first_of = ops.argmax(ops.cast(same, "int32"), axis=1)
        smaller = ops.less(ops.expand_dims(pos, 0), ops.expand_dims(first_of, 1))   # j before i's first
    rank_of = ops.sum(ops.cast(ops.logical_and(smaller, ops.expand_dims(first, 0)), "int64"), axis=1)
    firsts = ops.nonzero(first)[0]
    order = ops.argsort(ops.take(rank_of, firsts))
    out_rows = ops.take(firsts, order)
    y = ops.take(rows, out_rows, axis=0)
    if axis is None:
        y = ops.reshape(y, (-1,))
    else:
        y = ops.reshape(y, [-1] + rest)
        y = ops.transpose(y, [perm.index(i) for i in range(len(perm))])
    counts = ops.take(ops.sum(ops.cast(same, "int64"), axis=1), out_rows)
    return [y, ops.cast(out_rows, "int64"), rank_of, counts]


def _sort_equal(a, b, is_float):
    """Elementwise a == b, NaN equal to NaN (numpy's sort order ties them)."""
    eq = ops.equal(a, b)
    return ops.logical_or(eq, ops.logical_and(ops.isnan(a), ops.isnan(b))) if is_float else eq


def _sort_less(a, b, is_float):
    """a < b in numpy's sort order: NaN after every number."""
    lt = ops.less(a, b)
    return ops.logical_or(lt, ops.logical_and(ops.isnan(b), ops.logical_not(ops.isnan(a)))) if is_float else lt


# ----------------------------------------------------------------------------- index masks
@function("eye_like")
def eye_like(x, *, k, dtype):
    rows, cols = x.shape[0], x.shape[1]
    return ops.eye(rows, cols, k=k, dtype=dtype)


@function("trilu_dynamic")
def _trilu_dynamic(x, *, k, upper, axes):
    """ONNX Trilu on a tensor whose matrix axes (Keras axes `axes` = [rows, cols]) are dynamic."""
    shape = ops.shape(x)
    rows = ops.arange(shape[axes[0]], dtype="int64")
    cols = ops.arange(shape[axes[1]], dtype="int64")
    diff = ops.expand_dims(cols, 0) - ops.expand_dims(rows, 1)            # (rows, cols): j - i
    keep = ops.greater_equal(diff, k) if upper else ops.less_equal(diff, k)
    if axes[0] > axes[1]:
        keep = ops.transpose(keep)
    for a in range(len(x.shape)):
        if a not in axes:
            keep = ops.expand_dims(keep, a)
    return ops.where(keep, x, ops.zeros_like(x))
