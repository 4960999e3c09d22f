"""Cast and CastLike: ONNX element types mapped to Keras dtypes (refusing the ones Keras lacks)."""
from __future__ import annotations

import numpy as np
import onnx

from ..errors import NodeConversionError
from ..values import Const, has_dims
from .elementwise import dtype_of
from .registry import FOLLOWS, converter

_REFUSED_TYPES = {onnx.TensorProto.STRING, onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128,
                  onnx.TensorProto.UNDEFINED}


def onnx_to_keras_dtype(elem_type: int):
    """ONNX element type -> Keras dtype string, or None when Keras has no equivalent."""
    if elem_type in _REFUSED_TYPES:
        return None
    if elem_type == onnx.TensorProto.BFLOAT16:
        return "bfloat16"
    try:
        name = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError, ValueError):
        return None
    supported = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                 "uint16", "uint32", "uint64", "bool"}
    return name if name in supported else None


def _check_cast(node, facts):
    to = node.attr("to")
    if to is not None and int(to) not in onnx.TensorProto.DataType.values():
        return f"attribute to={to} is not an ONNX TensorProto.DataType"
    if to is not None and onnx_to_keras_dtype(int(to)) is None:
        return f"Cast to {onnx.TensorProto.DataType.Name(int(to))} has no Keras equivalent"
    return None


def _fold_cast(node, a):
    to = int(node.attr("to"))
    if has_dims(a):
        if to == onnx.TensorProto.STRING:
            raise NodeConversionError(node, "cannot cast a shape with dynamic dimensions to string")
        if not np.issubdtype(onnx.helper.tensor_dtype_to_np_dtype(to), np.integer):
            return None  # as floats, dims obey float arithmetic: computed at run time
        return a  # a shape value keeps its dynamic entries
    if a.dtype == object:
        a = a.astype(np.int64)
    return np.asarray(a).astype(onnx.helper.tensor_dtype_to_np_dtype(to))


def cast_to(ctx, x, dtype: str):
    if dtype_of(x) == dtype:
        return x
    if isinstance(x, Const):
        if not has_dims(x.value):
            return Const(np.asarray(x.value).astype(dtype))
        x = ctx.materialize(x)  # a shape value with dynamic dims, computed at run time
    return ctx.tensor(ctx.op("cast", [ctx.keras(x)], dtype=dtype), x.perm)


@converter("Cast", layout=FOLLOWS, check=_check_cast, fold=_fold_cast, limits="no string, complex or float8/4-bit targets")
def cast(ctx, node):
    return cast_to(ctx, ctx.input(0), onnx_to_keras_dtype(int(node.attr("to"))))


def _fold_cast_like(node, a, b):
    if has_dims(a):
        return a if b.dtype == object or np.issubdtype(b.dtype, np.integer) else None
    if a.dtype == object:
        a = a.astype(np.int64)
    return np.asarray(a).astype(b.dtype if b.dtype != object else np.int64)


@converter("CastLike", layout=FOLLOWS, fold=_fold_cast_like)
def cast_like(ctx, node):
    return cast_to(ctx, ctx.input(0), dtype_of(ctx.input(1)))
