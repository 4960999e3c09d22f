"""The whitelist of functions a KonnxOp layer may apply. Written with keras.ops only, so a
converted model runs on the TensorFlow, JAX and PyTorch Keras backends.

Each function takes the operands positionally (tensors, possibly None for missing optional
operands) and JSON-serializable keyword parameters."""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np
from keras import ops
from keras.backend import standardize_dtype

FUNCTIONS: dict[str, Callable] = {}
# name -> fn(*args, **params) -> (shape, dtype): the output spec of a function whose output
# shape follows from its parameters. Keras' JAX and PyTorch backends otherwise infer it by
# running the function on placeholder sizes, which fails for reshapes of dynamic dims.
OUTPUT_SPECS: dict[str, Callable] = {}
# name -> {parameter -> the values a config may hold}: a string parameter that selects an
# operation by name is part of the file format like the function names are
# (tests/golden/konnx_functions.json pins both; docs/file-format.md)
CHOICES: dict[str, dict[str, list]] = {}


def function(name: str):
    def deco(fn):
        if name in FUNCTIONS:
            raise ValueError(f"duplicate konnx function {name!r}")
        FUNCTIONS[name] = fn
        return fn
    return deco


def choices(name: str, param: str, values) -> None:
    """Declare the values parameter `param` of the konnx function `name` may take."""
    CHOICES.setdefault(name, {})[param] = sorted(values)


def output_spec(name: str):
    """Register the output-spec function of the konnx function `name`."""
    def deco(fn):
        OUTPUT_SPECS[name] = fn
        return fn
    return deco


def resolve_shape(in_shape, out, same=()) -> tuple:
    """`out` (ints, None for unknown sizes, at most one -1) as a static shape. `same` pairs
    (output index, input axis) of unknown output sizes that are the input's size on that axis:
    they cancel, so -1 is resolved whenever the remaining sizes are known (as TensorFlow's own
    shape inference does), else it is None."""
    out = list(out)
    if -1 in out:
        i = out.index(-1)
        cancelled_out, cancelled_in = set(), set()
        for j, k in same:  # each input axis cancels one output entry at most
            if k not in cancelled_in:
                cancelled_out.add(j)
                cancelled_in.add(k)
        rest = [d for j, d in enumerate(out) if j != i and j not in cancelled_out]
        rest_in = [d for k, d in enumerate(in_shape) if k not in cancelled_in]
        if None in rest or None in rest_in:
            out[i] = None
        else:
            known = int(np.prod(rest)) if rest else 1
            out[i] = int(np.prod(rest_in)) // known if known else 0
    return tuple(out)


def dynamic_shape(x, spec):
    """Build a shape from a spec: ints are literal, {"axis": k} is x's (dynamic) size on axis k."""
    if all(isinstance(s, int) for s in spec):
        return tuple(spec)
    shp = ops.shape(x)
    return tuple(shp[s["axis"]] if isinstance(s, dict) else s for s in spec)


def safe_add(a, b):
    """a + b. Keras' TensorFlow backend turns an add whose second operand squeezes to a vector
    into a BiasAdd, and picks the wrong axis when both candidate axes have that size
    ((3, 4, 4) + (1, 4, 1) adds along the last axis). a - (-b) is exact and never takes that
    path (unsigned integers go through int64, which wraps back identically)."""
    dt = standardize_dtype(getattr(b, "dtype", None) or getattr(a, "dtype", "float32"))
    if dt in ("uint8", "uint16", "uint32"):
        wide = ops.subtract(ops.cast(a, "int64"), ops.negative(ops.cast(b, "int64")))
        return ops.cast(wide, dt)
    if dt in ("bool", "uint64"):
        return ops.add(a, b)
    return ops.subtract(a, ops.negative(b))


def via_int64(fn, *xs, **params):
    """fn(*xs) with uint64 operands computed as int64 and the result cast back: Keras' dtype
    promotion turns uint64 arithmetic into uint32. Exact modulo 2^64 for add, sub, mul and
    bitwise ops; exact below 2^63 for comparisons, division, modulo and shifts."""
    if not any(getattr(x, "dtype", None) is not None and standardize_dtype(x.dtype) == "uint64" for x in xs):
        return fn(*xs, **params)
    ys = [ops.cast(x, "int64") if x is not None and standardize_dtype(getattr(x, "dtype", "float32")) == "uint64"
          else x for x in xs]
    out = fn(*ys, **params)
    return ops.cast(out, "uint64") if standardize_dtype(out.dtype) == "int64" else out


@function("transpose")
def _transpose(x, *, axes):
    return ops.transpose(x, axes)


@function("reshape")
def _reshape(x, *, shape):
    return ops.reshape(x, dynamic_shape(x, shape))


@output_spec("reshape")
def _reshape_out(x, *, shape):
    out = [x.shape[s["axis"]] if isinstance(s, dict) else s for s in shape]
    same = [(j, s["axis"]) for j, s in enumerate(shape) if isinstance(s, dict) and x.shape[s["axis"]] is None]
    return resolve_shape(x.shape, out, same), x.dtype


@function("expand_dims")
def _expand_dims(x, *, axes):
    for a in sorted(axes):
        x = ops.expand_dims(x, a)
    return x


@function("squeeze")
def _squeeze(x, *, axes):
    return ops.squeeze(x, axis=tuple(axes))


@function("cast")
def _cast(x, *, dtype):
    return ops.cast(x, dtype)


@function("identity")
def _identity(x):
    return x


@function("slice")
def _slice(x, *, slices):
    """slices: one [start, stop, step] per axis (entries may be None)."""
    index = [slice(*s) for s in slices]
    if keras.backend.backend() == "torch":
        # torch tensors cannot be sliced with a negative step: flip the axis, then slice forward
        # (torch shapes are always concrete, symbolic tracing included)
        for axis, sl in enumerate(index):
            if sl.step is not None and sl.step < 0:
                n = int(x.shape[axis])
                start, stop, step = sl.indices(n)
                x = ops.flip(x, axis=axis)
                index[axis] = slice(n - 1 - start, n - 1 - stop, -step)
    return x[tuple(index)]


@function("concat")
def _concat(*xs, axis):
    return ops.concatenate(list(xs), axis=axis)


@function("split")
def _split(x, *, sizes, axis):
    out, start = [], 0
    idx = [slice(None)] * len(x.shape)
    for s in sizes:
        idx[axis] = slice(start, start + s)
        out.append(x[tuple(idx)])
        start += s
    return out


@function("pad_constant")
def _pad_constant(x, value=None, *, pads, constant=0.0):
    if value is not None:
        # a runtime scalar pad value: pad with zeros, then fill the padded region
        padded = ops.pad(x, pads, constant_values=0)
        mask = ops.pad(ops.ones_like(x, dtype="bool"), pads, constant_values=False)
        return ops.where(mask, padded, ops.cast(ops.reshape(value, ()), x.dtype))
    return ops.pad(x, pads, constant_values=constant)


_BINARY = {
    "add": safe_add, "sub": ops.subtract, "mul": ops.multiply, "div": ops.divide,
    "max": ops.maximum, "min": ops.minimum, "pow": ops.power,
    "equal": ops.equal, "less": ops.less, "less_equal": ops.less_equal,
    "greater": ops.greater, "greater_equal": ops.greater_equal,
    "and": ops.logical_and, "or": ops.logical_or, "xor": ops.logical_xor,
}


choices("binary", "op", _BINARY)
choices("variadic", "op", _BINARY)


@function("binary")
def _binary_op(a, b, *, op):
    return via_int64(_BINARY[op], a, b)


@function("variadic")
def _variadic(*xs, op):
    out = xs[0]
    for x in xs[1:]:
        out = via_int64(_BINARY[op], out, x)
    return out


@function("constant")
def _constant(anchor, value):
    """A constant model output; `anchor` (a model input) only ties it into the graph."""
    return value
