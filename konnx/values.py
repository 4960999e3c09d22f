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

    `name` is the ONNX dim_param it came from when there is one; arithmetic on a Dim gives
    a new anonymous Dim. `source` optionally records (tensor_name, onnx_axis)."""

    __slots__ = ("name", "source", "uid")

    def __init__(self, name: Optional[str] = None, source=None):
        self.name = name
        self.source = source
        self.uid = next(_dim_ids)

    def __repr__(self) -> str:
        return f"Dim({self.name or '?'})"

    def _new(self, *_):
        return Dim()

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _new
    __floordiv__ = __rfloordiv__ = __truediv__ = __rtruediv__ = __mod__ = __rmod__ = _new
    __neg__ = _new

    def __int__(self):
        raise TypeError("dynamic dimension has no static value")

    def __index__(self):
        raise TypeError("dynamic dimension has no static value")


def has_dims(array: np.ndarray) -> bool:
    return array.dtype == object and any(isinstance(v, Dim) for v in array.flat)


@dataclass
class Const:
    """A value known at conversion time. Object arrays may hold Dim entries (shape values)."""

    value: np.ndarray

    @property
    def rank(self) -> int:
        return self.value.ndim

    @property
    def shape(self) -> tuple:
        return tuple(self.value.shape)

    @property
    def is_static(self) -> bool:
        return not has_dims(self.value)


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


def const_tensor(value) -> Const:
    return Const(np.asarray(value))


def ident(rank: int) -> Perm:
    return identity(rank)
