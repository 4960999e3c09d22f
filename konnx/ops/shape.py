"""Shape values and constants: Constant, Shape, Size, ConstantOfShape, EyeLike, Identity,
OptionalGetElement, Dropout, Range.

Shape returns a shape value whose unknown entries are `Dim`s (a dynamic batch, ...). The
tensor ops' `fold` functions (next to each converter: Gather in tensor_index.py, Unsqueeze,
Concat, Slice in axes.py, Reshape in tensor.py, ...) work on such object arrays, so a PyTorch
export's ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` chain folds to a constant shape
whose only unknown entries are Dims, which Reshape resolves. The helpers below are shared.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..dims import runtime_shape, shape_spec
from ..values import Const, Dim, Tensor, has_dims, static_dim
from .args import static_shape
from .elementwise import dtype_of
from . import spec_checks
from .registry import FOLLOWS, converter

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


# ---------------------------------------------------------------------------- helpers
def normalize(arr):
    """An object array holding only ints becomes int64 (shape values are int64)."""
    arr = np.asarray(arr)
    if arr.dtype == object and not has_dims(arr):
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr.flat):
            return arr.astype(np.int64)
    return arr


def ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def axes_arg(node, arrays, input_index: int, attr_until: int):
    """`axes` as an attribute before opset `attr_until`, as input `input_index` from it on."""
    if node.opset < attr_until:
        a = node.attr("axes")
        return None if a is None else [int(v) for v in a]
    if len(arrays) > input_index and arrays[input_index] is not None:
        return ints(arrays[input_index])
    return None


def dim_for(name_or_none, tensor_name: str, axis: int):
    if isinstance(name_or_none, str) and name_or_none:
        return Dim(name=name_or_none, source=(tensor_name, axis))
    return Dim(source=(tensor_name, axis))


def shape_entries(tensor_name: str, onnx_shape) -> list:
    """An ONNX shape as a list of ints and Dims (dim_param names carried over)."""
    return [int(d) if static_dim(d) is not None else dim_for(d, tensor_name, i)
            for i, d in enumerate(onnx_shape)]


def dim_axis(dim, tensor_name: str, onnx_shape):
    """The axis of the tensor `tensor_name` (shape `onnx_shape`) that Dim `dim` stands for,
    or None: matched by dim_param name, else by the (tensor, axis) it was read from."""
    if not isinstance(dim, Dim):
        return None
    if dim.name:
        hits = [i for i, d in enumerate(onnx_shape) if d == dim.name]
        if len(hits) == 1:
            return hits[0]
    if dim.source is not None and dim.source[0] == tensor_name:
        return int(dim.source[1])
    return None


# ---------------------------------------------------------------------------- Constant
def _fold_constant(node):
    a = node.attrs
    if "value" in a:
        return [np.asarray(a["value"])]
    if "sparse_value" in a:
        sp = a["sparse_value"]
        values = numpy_helper.to_array(sp.values)
        indices = numpy_helper.to_array(sp.indices).astype(np.int64)
        dense = np.zeros(tuple(sp.dims), values.dtype)
        if indices.ndim == 1:
            dense.reshape(-1)[indices] = values
        else:
            dense[tuple(indices.T)] = values
        return [dense]
    if "value_float" in a:
        return [np.array(a["value_float"], np.float32)]
    if "value_floats" in a:
        return [np.array(a["value_floats"], np.float32)]
    if "value_int" in a:
        return [np.array(a["value_int"], np.int64)]
    if "value_ints" in a:
        return [np.array(a["value_ints"], np.int64)]
    if "value_string" in a:
        return [np.array(a["value_string"], dtype=object)]
    if "value_strings" in a:
        return [np.array(a["value_strings"], dtype=object)]
    raise ValueError("Constant node has no value attribute")


@converter("Constant", since=1, fold=_fold_constant)
def constant(ctx, node):
    return Const(_fold_constant(node)[0])


# ---------------------------------------------------------------------------- Shape / Size
def _shape_range(node, rank):
    start = int(node.attr("start") or 0) if node.opset >= 15 else 0
    end = node.attr("end") if node.opset >= 15 else None
    return slice(start, None if end is None else int(end))


def _fold_shape(node, x):
    return [np.asarray(np.shape(x), np.int64)[_shape_range(node, np.ndim(x))]]


def shape_value(node, onnx_shape):
    """Shape's output for an input of ONNX shape `onnx_shape`: ints, and Dims for the dynamic
    dims (values.Dim, measured from the built tensor at run time)."""
    entries = shape_entries(node.inputs[0], onnx_shape)
    out = np.empty(len(entries), dtype=object)
    out[:] = entries
    return normalize(out[_shape_range(node, len(entries))])


def _planned_shape(node, facts):
    s = facts.shape(0)
    return None if s is None else [shape_value(node, s)]


def _size_value(onnx_shape):
    """Size's output for an input of ONNX shape `onnx_shape`, or None when a dim is dynamic."""
    if onnx_shape is None or any(static_dim(d) is None for d in onnx_shape):
        return None
    return np.asarray(int(np.prod([int(d) for d in onnx_shape], dtype=np.int64)), np.int64)


def _planned_size(node, facts):
    value = _size_value(facts.shape(0))
    return None if value is None else [value]


@converter("Shape", since=1, fold=_fold_shape, value=_planned_shape)
def shape(ctx, node):
    x = ctx.input(0)
    if len(x.onnx_shape) != x.rank:
        raise ctx.error(f"input has rank {x.rank} but its known shape is {x.onnx_shape}")
    return Const(shape_value(node, x.onnx_shape))


def _fold_size(node, x):
    return [np.asarray(np.size(x), np.int64)]


@converter("Size", since=1, fold=_fold_size, value=_planned_size)
def size(ctx, node):
    value = _size_value(ctx.input(0).onnx_shape)
    if value is None:
        raise ctx.error("Size of a tensor with dynamic dimensions is only known at run time; "
                        "fix them with input_shapes")
    return Const(value)


# ---------------------------------------------------------------------------- ConstantOfShape
def _fill_value(node):
    v = node.attr("value")
    return np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(-1)[:1]


def _fold_constant_of_shape(node, shp):
    if has_dims(shp):
        return None
    v = _fill_value(node)
    return [np.full(tuple(ints(shp)), v[0], dtype=v.dtype)]


@converter("ConstantOfShape", since=9, fold=_fold_constant_of_shape)
def constant_of_shape(ctx, node):
    v = _fill_value(node)
    src = ctx.input(0)
    if isinstance(src, Const):  # sizes of converted tensors, read inside the layer
        refs, spec = shape_spec(ctx, src.value, "shape input")
        out = ctx.op("fill_spec", refs, value=v.tolist()[0], dtype=str(v.dtype), spec=spec)
    else:
        out = ctx.op("fill", [ctx.keras(src)], value=v.tolist()[0], dtype=str(v.dtype))
    return ctx.tensor(out, dtype=str(v.dtype))


# ---------------------------------------------------------------------------- Identity / Dropout
def _fold_identity(node, x, *rest):
    return [x]


@converter("Identity", layout=FOLLOWS, since=1, fold=_fold_identity)
def identity(ctx, node):
    return ctx.input(0)


def _dropout_training(node, arrays) -> bool:
    if node.opset < 7:
        return not node.attr("is_test")
    if node.opset >= 12 and len(arrays) > 2 and arrays[2] is not None:
        return bool(np.asarray(arrays[2]).reshape(-1)[0])
    return False


def _check_dropout(node, facts):
    if node.opset >= 12 and node.has_input(2):
        training = facts.value(2)
        ratio = facts.value(1) if node.has_input(1) else np.array(0.5)
        if training is not None and bool(np.asarray(training).reshape(-1)[0]) and ratio is not None \
                and float(np.asarray(ratio).reshape(-1)[0]) != 0.0:
            return "Dropout with training_mode=True is random; export the model in eval mode"
        return None
    if node.opset < 7 and not node.attr("is_test"):
        return "Dropout in training mode (is_test=0) is random; export the model in eval mode"
    return None


def _fold_dropout(node, x, *rest):
    if _dropout_training(node, (x,) + rest):
        return None
    mask = np.full(np.shape(x), node.opset >= 12, bool if node.opset >= 10 else np.asarray(x).dtype)
    return [x, mask][:len(node.outputs)]


@converter("Dropout", layout=FOLLOWS, since=1, consts=(2,), params=(1,), check=_check_dropout, fold=_fold_dropout, limits="inference (training_mode off or ratio 0)")
def dropout(ctx, node):
    x = ctx.input(0)
    if node.opset >= 12 and node.has_input(2):
        # the declared check refuses training mode with a non-zero ratio; both must be constants
        if bool(np.asarray(ctx.const(2, "training_mode")).reshape(-1)[0]) and node.has_input(1):
            ctx.const(1, "ratio")
    outs = [x]
    if len(node.outputs) > 1 and node.outputs[1]:
        # onnxruntime's Dropout-7..11 (an identity kernel) returns an all-false / zero mask;
        # from opset 12 an inference-mode mask is all true
        dtype = "bool" if node.opset >= 10 else x.dtype
        mask = ctx.op("full_like", [ctx.keras(x)], suffix="mask", value=node.opset >= 12, dtype=dtype)
        outs.append(ctx.tensor(mask, x.perm, dtype=dtype))
    return outs


# ---------------------------------------------------------------------------- Range
def _fold_range(node, start, limit, delta):
    if any(has_dims(np.asarray(a, dtype=object)) for a in (start, limit, delta)):
        return None
    dtype = np.asarray(start).dtype
    s, l_, d = (np.asarray(a).reshape(()).item() for a in (start, limit, delta))
    n = max(int(np.ceil((l_ - s) / d)), 0)
    return [(s + np.arange(n) * d).astype(dtype)]


@converter("Range", since=11, fold=_fold_range, check=spec_checks.range_inputs)
def range_(ctx, node):
    ins = [ctx.input(i) for i in range(3)]
    if all(isinstance(v, Const) for v in ins):  # some bound is a dynamic dim: integer arithmetic
        refs, specs = shape_spec(ctx, np.array([np.asarray(v.value).reshape(()).item() for v in ins], dtype=object),
                                 "Range bound")
        dt = np.asarray(ins[0].value).dtype
        dtype = "int64" if dt == object else str(dt)
        return ctx.tensor(ctx.op("range_spec", refs, specs=specs, dtype=dtype), dtype=dtype)
    args = []
    for i in range(3):
        v = ctx.input(i)
        if isinstance(v, Const) and has_dims(v.value):
            v = runtime_shape(ctx, v.value.reshape(1), "Range bound")
            args.append(v)
        elif isinstance(v, Const):
            args.append(np.asarray(v.value))
        else:
            args.append(ctx.keras(v))
    first = ctx.input(0)
    dtype = str(np.asarray(first.value).dtype) if isinstance(first, Const) else first.dtype
    if dtype == "object":
        dtype = "int64"
    return ctx.tensor(ctx.op("range", args, dtype=dtype), dtype=dtype)


# ---------------------------------------------------------------------------- EyeLike / OptionalGetElement
@converter("EyeLike", since=9)
def eye_like(ctx, node):
    x = ctx.input(0)
    rows, cols = static_shape(ctx, x)
    dt = node.attr("dtype")
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(dt))).name if dt is not None else dtype_of(x)
    # an offset beyond the matrix gives all zeros, as the edge offsets do (TensorFlow overflows on 2**40)
    k = max(-rows, min(cols, int(node.attr("k") or 0)))
    y = ctx.op("eye_like", [ctx.onnx_layout(x)], k=k, dtype=dtype)
    return ctx.tensor(y, dtype=dtype)


@converter("OptionalGetElement", since=15, limits="tensor inputs only")
def optional_get_element(ctx, node):
    x = ctx.input(0)
    if not isinstance(x, (Tensor, Const)):
        raise ctx.error("only a plain tensor input is supported (no optional or sequence values)")
    return x
