"""The whitelist of functions a KonnxOp layer may apply. Written with keras.ops only, so a
converted model runs on the TensorFlow, JAX and PyTorch Keras backends.

Each function takes the operands positionally (tensors, possibly None for missing optional
operands) and JSON-serializable keyword parameters."""
from __future__ import annotations

from typing import Callable

from keras import ops

FUNCTIONS: dict[str, Callable] = {}


def function(name: str):
    def deco(fn):
        if name in FUNCTIONS:
            raise ValueError(f"duplicate konnx function {name!r}")
        FUNCTIONS[name] = fn
        return fn
    return deco


def dynamic_shape(x, spec):
    """Build a shape from a spec: ints are literal, {"axis": k} is x's (dynamic) size on axis k."""
    if all(isinstance(s, int) for s in spec):
        return tuple(spec)
    shp = ops.shape(x)
    return tuple(shp[s["axis"]] if isinstance(s, dict) else s for s in spec)


@function("transpose")
def _transpose(x, *, axes):
    return ops.transpose(x, axes)


@function("reshape")
def _reshape(x, *, shape):
    return ops.reshape(x, dynamic_shape(x, shape))


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
    return x[tuple(slice(*s) for s in slices)]


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
    "add": ops.add, "sub": ops.subtract, "mul": ops.multiply, "div": ops.divide,
    "max": ops.maximum, "min": ops.minimum, "pow": ops.power,
    "equal": ops.equal, "less": ops.less, "less_equal": ops.less_equal,
    "greater": ops.greater, "greater_equal": ops.greater_equal,
    "and": ops.logical_and, "or": ops.logical_or, "xor": ops.logical_xor,
}


@function("binary")
def _binary_op(a, b, *, op):
    return _BINARY[op](a, b)


@function("variadic")
def _variadic(*xs, op):
    out = xs[0]
    for x in xs[1:]:
        out = _BINARY[op](out, x)
    return out
