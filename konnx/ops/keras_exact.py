"""Which built-in Keras layer computes exactly what an ONNX element-wise or reshape op computes.

Each check returns the layer (or its arguments) only where the result is bit-identical to
konnx's generic function (konnx/layers/functions.py), else None, and the converter keeps the
KonnxOp. The arguments for each:

- Add / Subtract / Multiply (merge layers) call keras.ops.add / subtract / multiply on the
  operands as given: the same computation as the `binary` function (whose add is a - (-b),
  bit-identical to a + b), for float tensors of one dtype, rank and static shape (an axis may
  be unknown in all of them: ops.add broadcasts at run time as the function does). Keras'
  own shape inference would take (1, n) + (None, n) for (1, n), hence equal shapes. With
  equal shapes TensorFlow's BiasAdd shortcut in keras.ops.add (second operand squeezing to a
  vector) adds along the very axis the vector lies on.
- Rescaling computes ``cast(x, dtype) * scale + offset``. x * 1.0 is x, and -0.0 is the
  additive identity of IEEE arithmetic (x + (-0.0) is x for every x, +0.0 and -0.0 included;
  x + 0.0 would turn -0.0 into +0.0), so Rescaling(1.0, b) is exactly x + b,
  Rescaling(1.0, -b) is x - b, Rescaling(-1.0, b) is b - x, Rescaling(s, -0.0) is x * s, and
  x / c is x * (1 / c) where c is a power of two whose reciprocal is a normal number. A vector
  constant is allowed as the offset only (Rescaling reshapes a vector *scale* when the global
  image_data_format is channels_first), on the last axis; the input must be a float tensor of
  the constant's dtype (Rescaling casts its input to its compute dtype, which the converter
  gives the input's float dtype), and the constants exactly representable in float32
  (Rescaling makes a tensor of a Python float in float32 before casting it to float64).
- Reshape reshapes the axes after the first; it is used when the first (Keras batch) axis
  provably keeps its size: copied, equal known sizes, or -1 with the remaining sizes known
  and their products equal.
"""
from __future__ import annotations

import math

import numpy as np

from ..lazy_keras import keras

FLOATS = ("float16", "bfloat16", "float32", "float64")
_MERGE = {"add": "Add", "sub": "Subtract", "mul": "Multiply"}


def _dtype(a) -> str:
    return keras.backend.standardize_dtype(a.dtype)


def dtype_kw(kt) -> dict:
    """`dtype=` for a Keras layer on `kt`: its float dtype when not float32. keras.layers.Reshape
    is built in its constructor, so konnx's keep_float_dtype cannot give it the input's dtype
    afterwards, and a float32 layer would cast a float16 / float64 input to float32."""
    dt = _dtype(kt)
    return {"dtype": dt} if dt in ("float16", "bfloat16", "float64") else {}


def merge_layer(args, op: str):
    """The Keras merge layer class for `op` over `args`, or None."""
    if op not in _MERGE or len(args) != 2 or any(a is None or isinstance(a, np.ndarray) for a in args):
        return None
    dts = {_dtype(a) for a in args}
    ranks = {len(a.shape) for a in args}
    if len(dts) != 1 or dts.pop() not in FLOATS or len(ranks) != 1 or ranks.pop() < 2:
        return None
    for dims in zip(*(tuple(a.shape) for a in args)):
        if len(set(dims)) > 1:  # Keras infers (1, ...) for (None, ...) + (1, ...): sizes must agree
            return None
    return getattr(keras.layers, _MERGE[op])


# the smallest normal exponent (as math.frexp counts it) and the largest finite one per float dtype
_EXPONENTS = {"float16": (-13, 16), "bfloat16": (-125, 128), "float32": (-125, 128), "float64": (-1021, 1024)}


def _power_of_two_reciprocal(c: np.ndarray):
    """1 / c when every entry of c is the same power of two whose reciprocal is a normal number
    of c's dtype, else None."""
    flat = np.unique(c.reshape(-1).astype(np.float64))
    if flat.size != 1 or not np.isfinite(flat[0]) or flat[0] == 0:
        return None
    mant, exp = math.frexp(float(flat[0]))
    low, high = _EXPONENTS[str(c.dtype)]
    inv_exp = 2 - exp  # 1 / (0.5 * 2**exp) = 0.5 * 2**(2 - exp)
    if abs(mant) != 0.5 or not low <= inv_exp <= high:
        return None
    return 1.0 / float(flat[0])


def rescaling_args(args, op: str):
    """(tensor, scale, offset) when `op` on (tensor, constant) is exactly Rescaling(scale, offset), else None."""
    if op not in ("add", "sub", "mul", "div") or len(args) != 2:
        return None
    consts = [isinstance(a, np.ndarray) for a in args]
    if consts.count(True) != 1 or any(a is None for a in args):
        return None
    swapped = consts[0]
    c, x = (args[0], args[1]) if swapped else (args[1], args[0])
    dt = _dtype(x)
    if dt not in FLOATS or str(c.dtype) != dt or c.ndim > len(x.shape) or len(x.shape) == 0:
        return None
    with np.errstate(over="ignore"):
        if not np.array_equal(c.astype(np.float32).astype(c.dtype), c, equal_nan=True):
            return None  # Rescaling takes its constants through float32 (float64 ones would round)
    vector = c.size > 1
    if vector and (c.shape[-1] != c.size or x.shape[-1] != c.size):
        return None
    value = c.reshape(-1).tolist() if vector else float(c.reshape(-1)[0]) if c.size == 1 else None
    if value is None:
        return None
    if op == "add":
        return x, 1.0, value
    if op == "sub":
        neg = (-c.reshape(-1)).tolist() if vector else -value
        return (x, -1.0, value) if swapped else (x, 1.0, neg)
    if vector:  # a vector scale: see the module docstring
        return None
    if op == "mul":
        return x, value, -0.0
    inv = None if swapped else _power_of_two_reciprocal(c)
    return None if inv is None else (x, inv, -0.0)


def reshape_target(in_shape, spec):
    """The target shape (axes after the first) of a keras.layers.Reshape equal to the `reshape`
    function with `spec` (ints, at most one -1, {"axis": k} for a copied size) on a tensor of
    `in_shape`, or None when the first axis is not provably kept."""
    if not spec or len(in_shape) == 0:
        return None
    rest = []
    for s in spec[1:]:
        if isinstance(s, dict):
            size = in_shape[s["axis"]] if "axis" in s and len(s) == 1 else None
            if size is None:
                return None
            rest.append(int(size))
        elif isinstance(s, (int, np.integer)) and s >= -1 and s != 0:
            rest.append(int(s))
        else:
            return None
    if rest.count(-1) > 1:
        return None
    head, first = spec[0], in_shape[0]
    if head == {"axis": 0} or (isinstance(head, (int, np.integer)) and first is not None and head == first):
        return tuple(rest)
    if head == -1 and -1 not in rest and None not in in_shape[1:]:
        size = int(np.prod(rest, dtype=np.int64)) if rest else 1
        if size > 0 and size == int(np.prod(in_shape[1:], dtype=np.int64)):
            return tuple(rest)
    return None


def reshape(ctx, kt, spec, suffix: str = ""):
    """`kt` reshaped to `spec` (the `reshape` function's spec): keras.layers.Reshape where it
    is exact (reshape_target), else the KonnxOp."""
    target = reshape_target(tuple(kt.shape), spec)
    if target is not None:
        return ctx.layer(keras.layers.Reshape(target, name=ctx.name(suffix or "reshape"), **dtype_kw(kt)), kt)
    return ctx.op("reshape", [kt], suffix=suffix, shape=spec)


def unit_axes_reshape(ctx, kt, drop=(), insert=(), suffix: str = ""):
    """`kt` with the size-1 Keras axes `drop` removed, or with size-1 axes inserted at the
    output positions `insert`, as a keras.layers.Reshape when the first axis is not among them
    and at most one other size is unknown (it becomes the -1); else None."""
    if 0 in drop or 0 in insert:
        return None
    shape = [d for j, d in enumerate(kt.shape) if j not in drop]
    for j in sorted(insert):
        shape.insert(j, 1)
    rest = list(shape[1:])
    if rest.count(None) > 1 or 0 in rest:
        return None
    target = tuple(-1 if d is None else int(d) for d in rest)
    return ctx.layer(keras.layers.Reshape(target, name=ctx.name(suffix or "reshape"), **dtype_kw(kt)), kt)


_GLOBAL_POOL = {"mean": "GlobalAveragePooling{}D", "max": "GlobalMaxPooling{}D"}


def global_pool(ctx, kt, op: str, kaxes, keepdims: bool, suffix: str = ""):
    """A mean / max over every spatial axis of a channels-last float tensor (rank 3 to 5) as
    keras.layers.GlobalAveragePooling*D / GlobalMaxPooling*D, which call keras.ops.mean / max
    over those axes as the `math.reduce` function does (a max only over known, non-empty sizes:
    the function gives -inf for an empty one); else None."""
    rank = len(kt.shape)
    if op not in _GLOBAL_POOL or not 3 <= rank <= 5 or list(kaxes) != list(range(1, rank - 1)):
        return None
    if keras.backend.standardize_dtype(kt.dtype) not in FLOATS:
        return None
    if op == "max" and any(kt.shape[a] in (None, 0) for a in kaxes):
        return None  # the max of an empty window: the function's -inf, a Keras error
    cls = getattr(keras.layers, _GLOBAL_POOL[op].format(rank - 2))
    return ctx.layer(cls(data_format="channels_last", keepdims=bool(keepdims), name=ctx.name(suffix or op)), kt)
