"""Small helpers converters share to read their inputs."""
from __future__ import annotations

import numpy as np

from ..values import Const, static_dim


def input_arg(ctx, i, dtype=None):
    """Input i as a numpy array (a constant, optionally cast) or a Keras tensor in the ONNX layout;
    None when the input is absent."""
    v = ctx.input(i)
    if v is None:
        return None
    if isinstance(v, Const):
        a = np.asarray(v.value)
        return a.astype(dtype) if dtype else a
    return ctx.onnx_layout(v)


def static_shape(ctx, v, what="input"):
    """The static ONNX shape of a value; a konnx error when a dim is dynamic."""
    shape = v.shape if isinstance(v, Const) else v.onnx_shape
    dims = [static_dim(d) for d in shape]
    if None in dims:
        raise ctx.error(f"the {what} needs a static shape; fix it with input_shapes")
    return dims


def int_scalar(ctx, i, what):
    """Input i, a conversion-time constant, as one int."""
    return int(np.asarray(ctx.const(i, what)).reshape(-1)[0])
