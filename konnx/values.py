"""What flows between converters: constants (numpy) and Keras tensors with a layout perm."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .layout import Perm, identity

_dim_ids = itertools.count()


class Dim:
    """An unknown dimension value inside a shape constant (e.g. the dynamic batch size).

    `name` is the ONNX dim_param it came from when there is one; `source` optionally records
    (tensor_name, onnx_axis). Integer arithmetic on a Dim gives a Dim whose `expr` is
    ``(op, a, b)`` (a, b: Dims or ints), so shape arithmetic such as ``H // 7 * 49`` stays
    symbolic at conversion time and is evaluated at run time (dims.runtime_shape).
    Shape values are integers: division is integer division, as for int64 ONNX shapes."""

    __slots__ = ("name", "source", "uid", "expr")

    def __init__(self, name: Optional[str] = None, source=None, expr=None):
        self.name = name
        self.source = source
        self.expr = expr
        self.uid = next(_dim_ids)

    def __repr__(self) -> str:
        if self.expr is not None:
            op, a, b = self.expr
            return f"Dim({op}({a!r}, {b!r}))" if b is not None else f"Dim({op}({a!r}))"
        return f"Dim({self.name or '?'})"

    def key(self):
        """A structural identity: equal keys mean equal values at run time."""
        if self.expr is not None:
            op, a, b = self.expr
            return (op, dim_key(a), dim_key(b))
        if self.name:
            return ("name", self.name)
        if self.source is not None:
            return ("source",) + tuple(self.source)
        return ("uid", self.uid)

    @staticmethod
    def _bin(op, a, b):
        for v in (a, b):
            if not isinstance(v, (Dim, int, np.integer)) or isinstance(v, (bool, np.bool_)):
                return NotImplemented
        a = a if isinstance(a, Dim) else int(a)
        b = b if isinstance(b, Dim) else int(b)
        # identities keep expressions short
        if op in ("add", "sub") and isinstance(b, int) and b == 0:
            return a
        if op == "add" and isinstance(a, int) and a == 0:
            return b
        if op in ("mul", "floordiv") and isinstance(b, int) and b == 1:
            return a
        if op == "mul" and isinstance(a, int) and a == 1:
            return b
        return Dim(expr=(op, a, b))

    def __add__(self, o): return Dim._bin("add", self, o)
    def __radd__(self, o): return Dim._bin("add", o, self)
    def __sub__(self, o): return Dim._bin("sub", self, o)
    def __rsub__(self, o): return Dim._bin("sub", o, self)
    def __mul__(self, o): return Dim._bin("mul", self, o)
    def __rmul__(self, o): return Dim._bin("mul", o, self)
    def __floordiv__(self, o): return Dim._bin("floordiv", self, o)
    def __rfloordiv__(self, o): return Dim._bin("floordiv", o, self)
    __truediv__, __rtruediv__ = __floordiv__, __rfloordiv__
    def __mod__(self, o): return Dim._bin("mod", self, o)
    def __rmod__(self, o): return Dim._bin("mod", o, self)
    def __neg__(self): return Dim._bin("sub", 0, self)

    def __int__(self):
        raise TypeError("dynamic dimension has no static value")

    def __index__(self):
        raise TypeError("dynamic dimension has no static value")


def dim_key(v):
    return v.key() if isinstance(v, Dim) else ("int", int(v)) if v is not None else None


def has_dims(array: np.ndarray) -> bool:
    return array.dtype == object and any(isinstance(v, Dim) for v in array.flat)


@dataclass
class Const:
    """A value known at conversion time. Object arrays may hold Dim entries (shape values).

    A constant is always held in the ONNX layout (`perm` is the identity): a converter that
    reads `perm` / `onnx_shape` / `dtype` may treat a Const like a Tensor, and `ctx.keras(c, p)`
    transposes it at conversion time. Where a converter needs a Keras tensor (no other tensor
    operand to combine it with), `Context.tensor_of` materializes it."""

    value: np.ndarray

    @property
    def rank(self) -> int:
        return self.value.ndim

    @property
    def shape(self) -> tuple:
        return tuple(self.value.shape)

    @property
    def perm(self) -> Perm:
        return identity(self.value.ndim)

    @property
    def onnx_shape(self) -> tuple:
        return tuple(self.value.shape)

    @property
    def dtype(self) -> str:
        return "int64" if self.value.dtype == object else str(self.value.dtype)


@dataclass
class Tensor:
    """A Keras tensor plus its layout perm and its ONNX shape (ints, dim_param strings, None)."""

    kt: Any
    perm: Perm
    onnx_shape: tuple = field(default=())
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.perm)

    @property
    def shape(self) -> tuple:
        return self.onnx_shape


Value = Any  # Const | Tensor | None


def static_dim(d) -> Optional[int]:
    return d if isinstance(d, (int, np.integer)) and not isinstance(d, bool) else None


def onnx_shape_from_keras(kt, perm: Perm) -> tuple:
    kshape = tuple(kt.shape)
    out = [None] * len(perm)
    for j, p in enumerate(perm):
        out[p] = kshape[j]
    return tuple(out)
