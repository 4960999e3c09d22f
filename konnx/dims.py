"""Shape values at run time: a shape constant whose entries are ints and `Dim`s (unknown sizes
such as a dynamic batch, or expressions like ``H // 7``) becomes a Keras int64 vector computed
from the sizes of tensors already converted. Core emit machinery (no converter imports)."""
from __future__ import annotations

import numpy as np

from . import layout as L
from .values import Dim, Tensor


def shape_spec(ctx, values, what: str = "shape"):
    """(refs, spec) describing the shape `values` (ints and Dims) for the `shape_vector` family
    of functions: refs are the Keras tensors whose sizes it reads. A Dim must name a dim of a
    tensor already converted (by dim_param or by its source), or be an expression (Dim.expr)
    over such dims and ints."""
    refs, spec = [], []

    def leaf(v):
        if not isinstance(v, Dim):
            return int(v)
        if v.expr is not None:
            op, a, b = v.expr
            return {"op": op, "args": [leaf(a), leaf(b)]}
        found = _find_dim(ctx, v)
        if found is None:
            raise ctx.error(f"the {what} holds a dynamic dimension ({v!r}) that is not the size of "
                            "a tensor konnx has converted; fix the input sizes with input_shapes")
        tensor, axis = found
        if not any(r is tensor.kt for r in refs):
            refs.append(tensor.kt)
        t = next(i for i, r in enumerate(refs) if r is tensor.kt)
        return {"t": t, "axis": L.keras_axis(tensor.perm, axis)}

    for v in np.asarray(values, dtype=object).reshape(-1):
        spec.append(leaf(v))
    return refs, spec


def runtime_shape(ctx, values, what: str = "shape"):
    """A Keras int64 vector holding the shape `values` (ints and Dims) at run time, or None
    when no entry is dynamic."""
    refs, spec = shape_spec(ctx, values, what)
    if not refs:
        return None
    return ctx.op("shape_vector", refs, suffix="shape", spec=spec)


def _find_dim(ctx, dim):
    if dim.source is not None:
        v = ctx.values.get(dim.source[0])
        if isinstance(v, Tensor):
            return v, int(dim.source[1])
    if dim.name:
        for v in ctx.values.values():
            if isinstance(v, Tensor) and dim.name in v.onnx_shape:
                return v, list(v.onnx_shape).index(dim.name)
    return None
