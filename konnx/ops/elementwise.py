"""Element-wise ops: arithmetic, comparison, logic, Where, unary math (Cast: cast.py).

`broadcast()` is the shared helper for every op with ONNX multidirectional broadcasting:
the output follows the layout of its highest-rank tensor input, constants are expanded and
permuted at conversion time, and other tensors are brought to that layout.
"""
from __future__ import annotations

import numpy as np
from ..lazy_keras import keras

from .. import layout as L
from ..values import Const, Dim, Tensor, has_dims
from . import keras_exact
from .registry import FOLLOWS, converter


# ----------------------------------------------------------------------------- broadcasting
def out_layout(values) -> tuple:
    """(out_perm, out_rank) of a broadcast over `values` (Const | Tensor | None)."""
    vals = [v for v in values if v is not None]
    rank = max(v.rank for v in vals)
    perm = L.broadcast_perm([v.perm if isinstance(v, Tensor) else None for v in vals], [v.rank for v in vals])
    return perm, rank


def align(ctx, v, out_perm, rank: int):
    """One operand in the broadcast layout `out_perm` (rank `rank`): a numpy array for a
    constant, a Keras tensor otherwise (leading size-1 axes left to Keras broadcasting)."""
    if v is None:
        return None
    if isinstance(v, Const) and has_dims(v.value):
        v = ctx.materialize(v)
    if isinstance(v, Const):
        arr = np.asarray(v.value)
        if arr.ndim == 0:
            return arr
        arr = arr.reshape((1,) * (rank - arr.ndim) + arr.shape)
        return np.ascontiguousarray(np.transpose(arr, out_perm)) if not L.is_identity(out_perm) else arr
    k = rank - v.rank
    if v.rank == 0 or L.extend(v.perm, rank) == tuple(out_perm):
        return v.kt
    # target keras axis j holds expanded ONNX axis out_perm[j]; axes < k are new size-1 axes
    own = [p - k for p in out_perm if p >= k]          # v's ONNX axes in target order
    kt = ctx.keras(v, tuple(own))
    inserted = [j for j, p in enumerate(out_perm) if p < k]
    lead = 0
    while lead < len(inserted) and inserted[lead] == lead:
        lead += 1
    inserted = [j - lead for j in inserted[lead:]]
    if inserted:
        kt = ctx.op("expand_dims", [kt], suffix="expand", axes=inserted)
    return kt


def broadcast(ctx, values):
    """ONNX multidirectional broadcasting through layouts.

    Returns (args, out_perm, out_rank): args are Keras tensors or numpy arrays (None kept)
    in the output layout `out_perm`."""
    values = _legacy_broadcast(ctx, values)
    out_perm, rank = out_layout(values)
    return [align(ctx, v, out_perm, rank) for v in values], out_perm, rank


def _legacy_broadcast(ctx, values):
    """Opset < 7 binary ops broadcast B only with broadcast=1, aligning B's axes with A's axes
    from `axis` on (default: the trailing axes, as numpy): give B the trailing unit axes."""
    node = ctx.node
    if node is None or node.opset >= 7 or len(values) != 2 or not int(node.attr("broadcast", 0) or 0):
        return values
    a, b = values
    axis = node.attr("axis")
    if b is None or a is None or axis is None:
        return values
    axis = int(axis) % max(a.rank, 1)
    trail = a.rank - axis - b.rank
    if trail <= 0:
        return values
    if isinstance(b, Const):
        return [a, Const(np.asarray(b.value).reshape(b.shape + (1,) * trail))]
    kt = ctx.op("expand_dims", [ctx.onnx_layout(b)], suffix="legacy_bcast",
                axes=list(range(b.rank, b.rank + trail)))
    return [a, ctx.tensor(kt, L.identity(b.rank + trail), dtype=b.dtype)]


# ----------------------------------------------------------------------------- helpers
def dtype_of(v) -> str:
    if isinstance(v, Const):
        return "int64" if v.value.dtype == object else str(v.value.dtype)
    return keras.backend.standardize_dtype(v.dtype)


def is_int(dtype: str) -> bool:
    return "int" in dtype


def _is_kt(a) -> bool:
    return a is not None and not isinstance(a, np.ndarray)


_MERGE = {"add": keras.layers.Add, "sub": keras.layers.Subtract, "mul": keras.layers.Multiply,
          "max": keras.layers.Maximum, "min": keras.layers.Minimum, "mean": keras.layers.Average}


def _native_merge(args) -> bool:
    """Keras merge layers are exact for float32 tensors of one static shape."""
    if len(args) < 2 or not all(_is_kt(a) for a in args):
        return False
    shapes = {tuple(a.shape) for a in args}
    # rank >= 2: Keras merge layers fail on scalars
    return (len(shapes) == 1 and len(next(iter(shapes))) >= 2
            and all(keras.backend.standardize_dtype(a.dtype) == "float32" for a in args)
            and None not in next(iter(shapes))[1:])


def apply_nary(ctx, values, op: str, fn: str = "variadic"):
    args, perm, _ = broadcast(ctx, values)
    if op in _MERGE and _native_merge(args) and (op != "sub" or len(args) == 2):
        return ctx.tensor(ctx.layer(_MERGE[op](name=ctx.name()), args), perm)
    exact = keras_exact.merge_layer(args, op)
    if exact is not None:
        return ctx.tensor(ctx.layer(exact(name=ctx.name()), args), perm)
    rescale = keras_exact.rescaling_args(args, op)
    if rescale is not None:
        x, scale, offset = rescale
        return ctx.tensor(ctx.layer(keras.layers.Rescaling(scale, offset, name=ctx.name()), x), perm)
    if op == "mean":
        return ctx.tensor(ctx.op("math.mean", args), perm)
    if fn == "binary":
        return ctx.tensor(ctx.op("binary", args, op=op), perm)
    return ctx.tensor(ctx.op("variadic", args, op=op), perm)


def unary(ctx, x, op: str, **params):
    return ctx.tensor(ctx.op("math.unary", [ctx.keras(x)], suffix=op, op=op, **params), x.perm)


# ----------------------------------------------------------------------------- folding
def _result(out, like):
    """Back to a plain dtype when no dynamic Dim is left."""
    out = np.asarray(out)
    if out.dtype == object and not has_dims(out):
        dts = [a.dtype for a in like if a.dtype != object]
        return out.astype(dts[0] if dts else np.int64)
    return out


def _trunc_div(a, b):
    if isinstance(a, Dim) or isinstance(b, Dim):
        return a // b
    q = abs(int(a)) // abs(int(b))
    return q if (a < 0) == (b < 0) else -q


def _fold_arith(np_fn):
    def fold(node, a, b):
        if a.dtype == object or b.dtype == object:
            return _result(np_fn(a.astype(object), b.astype(object)), [a, b])
        return np.asarray(np_fn(a, b)).astype(np.result_type(a, b))
    return fold


def _fold_div(node, a, b):
    if a.dtype == object or b.dtype == object or np.issubdtype(np.result_type(a, b), np.integer):
        out = np.frompyfunc(_trunc_div, 2, 1)(a.astype(object), b.astype(object))
        return _result(out, [a, b])
    return np.asarray(np.divide(a, b)).astype(np.result_type(a, b))


def _fold_equal(node, a, b):
    if a.dtype != object and b.dtype != object:
        return np.asarray(np.equal(a, b))

    def eq(x, y):
        if isinstance(x, Dim) and isinstance(y, Dim):
            if x is y or x.key() == y.key():
                return True
        elif isinstance(x, Dim) or isinstance(y, Dim):
            other = y if isinstance(x, Dim) else x
            if other <= 0:  # a dimension of a non-empty tensor is never <= 0
                return False
        else:
            return bool(x == y)
        return None  # undecidable now: compared at run time

    out = np.frompyfunc(eq, 2, 1)(a.astype(object), b.astype(object))
    if any(v is None for v in np.asarray(out).flat):
        return None  # not foldable: the converter compares the materialized shape values
    return out.astype(bool)


def _fold_where(node, c, x, y):
    if has_dims(c):
        return None  # a condition on a dynamic dimension: selected at run time
    if x.dtype == object or y.dtype == object:
        return _result(np.where(c.astype(bool), x.astype(object), y.astype(object)), [x, y])
    return np.asarray(np.where(c, x, y)).astype(np.result_type(x, y))


# ----------------------------------------------------------------------------- arithmetic
@converter("Add", layout=FOLLOWS, fold=_fold_arith(np.add))
def add(ctx, node):
    return apply_nary(ctx, [ctx.input(0), ctx.input(1)], "add", "binary")


@converter("Sub", layout=FOLLOWS, fold=_fold_arith(np.subtract))
def sub(ctx, node):
    return apply_nary(ctx, [ctx.input(0), ctx.input(1)], "sub", "binary")


@converter("Mul", layout=FOLLOWS, fold=_fold_arith(np.multiply))
def mul(ctx, node):
    return apply_nary(ctx, [ctx.input(0), ctx.input(1)], "mul", "binary")


@converter("Div", layout=FOLLOWS, fold=_fold_div)
def div(ctx, node):
    a, b = ctx.input(0), ctx.input(1)
    if is_int(dtype_of(a)):
        args, perm, _ = broadcast(ctx, [a, b])
        return ctx.tensor(ctx.op("math.int_div", args), perm)
    return apply_nary(ctx, [a, b], "div", "binary")


@converter("Pow", layout=FOLLOWS)
def pow_(ctx, node):
    a, b = ctx.input(0), ctx.input(1)
    out_dtype = dtype_of(a)
    if isinstance(b, Const) and b.value.size == 1 and not is_int(out_dtype):
        e = float(b.value.reshape(()))
        if b.rank <= a.rank and e in (1.0, 2.0, 0.5):
            kt = ctx.keras(a)
            if e == 1.0:
                return a
            if e == 2.0:
                exact = keras_exact.merge_layer([kt, kt], "mul")
                if exact is not None:
                    return ctx.tensor(ctx.layer(exact(name=ctx.name("square")), [kt, kt]), a.perm)
                return ctx.tensor(ctx.op("binary", [kt, kt], suffix="square", op="mul"), a.perm)
            return unary(ctx, a, "sqrt")
    args, perm, _ = broadcast(ctx, [a, b])
    return ctx.tensor(ctx.op("math.pow", args, out_dtype=out_dtype), perm)


def _fold_mod(node, a, b):
    fmod = int(node.attr("fmod"))
    if a.dtype == object or b.dtype == object:
        if fmod:
            return None
        # a dynamic shape value (e.g. torch.roll's shift % size): Python's % is ONNX's fmod=0
        return _result(np.mod(a.astype(object), b.astype(object)), [a, b])
    out = np.fmod(a, b) if fmod else np.mod(a, b)
    return np.asarray(out).astype(np.result_type(a, b))


@converter("Mod", layout=FOLLOWS, fold=_fold_mod)
def mod(ctx, node):
    args, perm, _ = broadcast(ctx, [ctx.input(0), ctx.input(1)])
    return ctx.tensor(ctx.op("math.mod", args, fmod=int(node.attr("fmod"))), perm)


def _variadic(op):
    def convert(ctx, node):
        vals = [ctx.input(i) for i in range(ctx.n_inputs) if node.has_input(i)]
        if len(vals) == 1:
            return vals[0]
        return apply_nary(ctx, vals, op)
    return convert


converter("Max", layout=FOLLOWS)(_variadic("max"))
converter("Min", layout=FOLLOWS)(_variadic("min"))
converter("Sum", layout=FOLLOWS)(_variadic("add"))
converter("Mean", layout=FOLLOWS)(_variadic("mean"))


# ----------------------------------------------------------------------------- unary math
_UNARY_OPS = {
    "Neg": "neg", "Abs": "abs", "Sqrt": "sqrt", "Exp": "exp", "Log": "log",
    "Reciprocal": "reciprocal", "Floor": "floor", "Ceil": "ceil", "Round": "round",
    "Sign": "sign", "Sin": "sin", "Cos": "cos", "Tan": "tan", "Asin": "asin", "Acos": "acos",
    "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh", "Asinh": "asinh", "Acosh": "acosh",
    "Atanh": "atanh", "Not": "not", "IsNaN": "isnan", "BitwiseNot": "bitwise_not",
}


def _unary_converter(op):
    def convert(ctx, node):
        return unary(ctx, ctx.input(0), op)
    return convert


for _onnx, _op in _UNARY_OPS.items():
    converter(_onnx, layout=FOLLOWS)(_unary_converter(_op))


@converter("IsInf", layout=FOLLOWS)
def is_inf(ctx, node):
    x = ctx.input(0)
    kt = ctx.op("math.is_inf", [ctx.keras(x)], positive=int(node.attr("detect_positive")),
                negative=int(node.attr("detect_negative")))
    return ctx.tensor(kt, x.perm)


# ----------------------------------------------------------------------------- comparison, logic
_BINARY_OPS = {"Less": "less", "LessOrEqual": "less_equal", "Greater": "greater",
               "GreaterOrEqual": "greater_equal", "And": "and", "Or": "or", "Xor": "xor",
               "BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor"}


def _binary_converter(op):
    def convert(ctx, node):
        args, perm, _ = broadcast(ctx, [ctx.input(0), ctx.input(1)])
        if op.startswith("bitwise"):
            return ctx.tensor(ctx.op("math.bitwise", args, op=op), perm)
        return ctx.tensor(ctx.op("binary", args, suffix=op, op=op), perm)
    return convert


for _onnx, _op in _BINARY_OPS.items():
    converter(_onnx, layout=FOLLOWS)(_binary_converter(_op))
converter("Equal", layout=FOLLOWS, fold=_fold_equal)(_binary_converter("equal"))


@converter("Where", layout=FOLLOWS, fold=_fold_where)
def where(ctx, node):
    args, perm, _ = broadcast(ctx, [ctx.input(0), ctx.input(1), ctx.input(2)])
    return ctx.tensor(ctx.op("math.where", args), perm)
