"""Element-wise ops against onnxruntime: broadcasting through layouts, integer semantics, Cast."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from konnx.ops.cast import _fold_cast
from konnx.ops.elementwise import _fold_arith, _fold_div, _fold_equal, _fold_where
from konnx.graph import Node
from konnx.values import Dim, has_dims
from tests.ops.math_util import check, check_roundtrip
from tests.util import make_model, rand

X = [2, 3, 4, 5]

# (name, shape, is_constant)
BROADCASTS = [
    ("same_tensor", X, False),
    ("chan_const", [3, 1, 1], True),
    ("last_const", [5], True),
    ("scalar_const", [], True),
    ("n_c_1_1_tensor", [2, 3, 1, 1], False),
    ("chan_tensor_rank3", [3, 1, 1], False),
    ("rank3_tensor", [3, 4, 5], False),
    ("row_tensor", [4, 1], False),
    ("const_rank5", [2, 1, 1, 1, 1], True),
]


def _binary_model(op, bshape, bconst, swap=False, opset=17, dtype=np.float32, out_dtype=None, seed=1, **attrs):
    b = rand(*bshape, seed=seed).astype(dtype) if bshape else np.asarray(rand(1, seed=seed)[0], dtype)
    ins = ["x", "b"][::-1] if swap else ["x", "b"]
    node = helper.make_node(op, ins, ["y"], **attrs)
    inputs = [("x", dtype, X)] + ([] if bconst else [("b", dtype, bshape)])
    inits = [("b", b)] if bconst else []
    m = make_model([node], inputs, [("y", out_dtype or dtype, None)], inits, opset=opset)
    feeds = {"x": rand(*X).astype(dtype)}
    if not bconst:
        feeds["b"] = b
    return m, feeds


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("case", BROADCASTS, ids=[c[0] for c in BROADCASTS])
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_arith_broadcast(op, case, channels_last):
    _, shape, const = case
    m, feeds = _binary_model(op, shape, const)
    if op == "Div":
        feeds = {k: v + np.sign(v) * 0.5 for k, v in feeds.items()}
    check(m, feeds, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("case", BROADCASTS[1:5], ids=[c[0] for c in BROADCASTS[1:5]])
@pytest.mark.parametrize("op", ["Sub", "Div", "Max", "Min"])
def test_const_first(op, case, channels_last):
    _, shape, const = case
    m, feeds = _binary_model(op, shape, const, swap=True)
    check(m, feeds, channels_last)


@pytest.mark.parametrize("opset", [7, 13, 14])
def test_add_opsets(opset):
    m, feeds = _binary_model("Add", [3, 1, 1], True, opset=opset)
    check(m, feeds, True)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_int_div_truncates(dtype):
    a = np.array([[7, -7, 7, -7, 0, 9]], dtype)
    b = np.array([[2, 2, -2, -2, 3, -4]], dtype)
    m = make_model([helper.make_node("Div", ["a", "b"], ["y"])],
                   [("a", dtype, [1, 6]), ("b", dtype, [1, 6])], [("y", dtype, None)])
    check(m, {"a": a, "b": b})


@pytest.mark.parametrize("fmod,dtype", [(0, np.int64), (1, np.int32), (1, np.float32)])
def test_mod(fmod, dtype):
    a = np.array([[7, -7, 7, -7, 0, 9, 5]], dtype)
    b = np.array([[3, 3, -3, -3, 3, -4, 5]], dtype)
    if dtype == np.float32:
        a, b = a * 1.5, b * 0.7
    m = make_model([helper.make_node("Mod", ["a", "b"], ["y"], fmod=fmod)],
                   [("a", dtype, [1, 7]), ("b", dtype, [1, 7])], [("y", dtype, None)], opset=13)
    check(m, {"a": a, "b": b})


@pytest.mark.parametrize("exponent", [2.0, 0.5, 3.0, 1.0, -1.0])
@pytest.mark.parametrize("channels_last", [False, True])
def test_pow_const(exponent, channels_last):
    m = make_model([helper.make_node("Pow", ["x", "e"], ["y"])], [("x", np.float32, X)],
                   [("y", np.float32, None)], [("e", np.array(exponent, np.float32))], opset=13)
    check(m, {"x": np.abs(rand(*X)) + 0.1}, channels_last)


def test_pow_tensor_and_int_exponent():
    e = np.array([1, 2, 3], np.int64).reshape(3, 1, 1)
    m = make_model([helper.make_node("Pow", ["x", "e"], ["y"]), helper.make_node("Pow", ["y", "z"], ["w"])],
                   [("x", np.float32, X), ("z", np.float32, [5])], [("w", np.float32, None)],
                   [("e", e)], opset=15)
    check(m, {"x": rand(*X), "z": rand(5, seed=3) * 0 + 2.0}, True)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("op", ["Max", "Min", "Mean", "Sum"])
def test_variadic(op, channels_last):
    nodes = [helper.make_node(op, ["a", "b", "c"], ["y"]), helper.make_node(op, ["a"], ["z"]),
             helper.make_node(op, ["a", "a2"], ["w"])]
    m = make_model(nodes, [("a", np.float32, X), ("b", np.float32, [3, 1, 1]), ("a2", np.float32, X)],
                   [("y", np.float32, None), ("z", np.float32, None), ("w", np.float32, None)],
                   [("c", rand(5, seed=4))], opset=13)
    check(m, {"a": rand(*X), "b": rand(3, 1, 1, seed=2), "a2": rand(*X, seed=5)}, channels_last)


UNARY = {
    "Neg": rand(*X), "Abs": rand(*X), "Sqrt": np.abs(rand(*X)), "Exp": rand(*X), "Log": np.abs(rand(*X)) + 0.1,
    "Reciprocal": rand(*X) + 3, "Floor": rand(*X) * 3, "Ceil": rand(*X) * 3,
    "Round": np.array([[0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6, 3.0]], np.float32),
    "Sign": np.array([[0.0, -2.0, 3.0, -0.0]], np.float32), "Sin": rand(*X), "Cos": rand(*X),
    "Tan": rand(*X) * 0.5, "Asin": np.tanh(rand(*X)), "Acos": np.tanh(rand(*X)), "Atan": rand(*X),
    "Sinh": rand(*X), "Cosh": rand(*X), "Asinh": rand(*X), "Acosh": np.abs(rand(*X)) + 1.0,
    "Atanh": np.tanh(rand(*X)) * 0.9,
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op):
    x = UNARY[op]
    m = make_model([helper.make_node(op, ["x"], ["y"])], [("x", np.float32, list(x.shape))],
                   [("y", np.float32, None)], opset=13)
    check(m, {"x": x}, x.ndim >= 3)


def test_unary_int():
    x = np.array([[-3, 0, 4, -1]], np.int64)
    nodes = [helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["b"]),
             helper.make_node("Sign", ["b"], ["y"])]
    m = make_model(nodes, [("x", np.int64, [1, 4])], [("y", np.int64, None)], opset=13)
    check(m, {"x": x})


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("op", ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"])
def test_compare(op, channels_last):
    x = np.round(rand(*X))
    b = np.round(rand(3, 1, 1, seed=7))
    m = make_model([helper.make_node(op, ["x", "b"], ["y"])], [("x", np.float32, X), ("b", np.float32, [3, 1, 1])],
                   [("y", TensorProto.BOOL, None)], opset=16)
    check(m, {"x": x, "b": b}, channels_last)


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logic(op):
    x = rand(*X) > 0
    nodes = [helper.make_node(op, ["x", "c"], ["t"]), helper.make_node("Not", ["t"], ["y"])]
    m = make_model(nodes, [("x", np.bool_, X)], [("y", np.bool_, None)], [("c", rand(5, seed=9) > 0)])
    check(m, {"x": x}, True)


@pytest.mark.parametrize("channels_last", [False, True])
def test_where(channels_last):
    nodes = [helper.make_node("Greater", ["c", "zero"], ["cond"]),
             helper.make_node("Where", ["cond", "x", "s"], ["y"])]
    m = make_model(nodes, [("c", np.float32, [3, 1, 1]), ("x", np.float32, X)], [("y", np.float32, None)],
                   [("zero", np.array(0, np.float32)), ("s", np.array([1.5, -2.0, 3.0, 4.0, 5.0], np.float32))])
    check(m, {"c": rand(3, 1, 1, seed=3), "x": rand(*X)}, channels_last)


@pytest.mark.parametrize("to,src", [(TensorProto.INT32, np.float32), (TensorProto.FLOAT, np.int64),
                                    (TensorProto.BOOL, np.float32), (TensorProto.FLOAT, np.bool_),
                                    (TensorProto.INT64, np.int64), (TensorProto.DOUBLE, np.float32)])
def test_cast(to, src):
    x = (rand(*X) * 4).astype(src) if src != np.bool_ else rand(*X) > 0
    if src == np.float32 and to == TensorProto.BOOL:
        x[0, 0, 0, :2] = 0
    m = make_model([helper.make_node("Cast", ["x"], ["y"], to=to)], [("x", src, X)], [("y", to, None)], opset=13)
    check(m, {"x": x}, True)


def test_cast_like_and_isnan_isinf():
    x = rand(*X)
    x[0, 0, 0, :4] = [np.nan, np.inf, -np.inf, 0]
    nodes = [helper.make_node("IsNaN", ["x"], ["n"]), helper.make_node("IsInf", ["x"], ["i"]),
             helper.make_node("IsInf", ["x"], ["p"], detect_negative=0),
             helper.make_node("IsInf", ["x"], ["q"], detect_positive=0),
             helper.make_node("CastLike", ["n", "x"], ["f"])]
    outs = [("n", np.bool_, None), ("i", np.bool_, None), ("p", np.bool_, None), ("q", np.bool_, None),
            ("f", np.float32, None)]
    m = make_model(nodes, [("x", np.float32, X)], outs, opset=15)
    check(m, {"x": x}, True)


def test_roundtrip(tmp_path):
    nodes = [helper.make_node("Mul", ["x", "w"], ["a"]), helper.make_node("Add", ["a", "c"], ["b"]),
             helper.make_node("Greater", ["b", "zero"], ["g"]),
             helper.make_node("Where", ["g", "b", "x"], ["w2"]),
             helper.make_node("Cast", ["g"], ["gi"], to=TensorProto.FLOAT),
             helper.make_node("Div", ["w2", "k"], ["d"]), helper.make_node("Sum", ["d", "gi", "x"], ["y"])]
    m = make_model(nodes, [("x", np.float32, X)], [("y", np.float32, None)],
                   [("w", rand(3, 4, 5, seed=2)), ("c", rand(3, 1, 1, seed=3)), ("zero", np.array(0, np.float32)),
                    ("k", np.array(2.0, np.float32))])
    check_roundtrip(m, {"x": rand(*X)}, tmp_path)


# ----------------------------------------------------------------------------- folding with Dim
def test_fold_shape_arithmetic_with_dims():
    n = Dim("N")
    shape = np.array([n, 3, 4, 5], dtype=object)
    node = helper.make_node("Add", ["a", "b"], ["y"])
    out = _fold_arith(np.add)(node, shape, np.array([0, 1, 1, 1], np.int64))
    assert isinstance(out[0], Dim) and list(out[1:]) == [4, 5, 6]
    out = _fold_arith(np.multiply)(node, shape[1:].astype(np.int64), np.array(2, np.int64))
    assert out.dtype == np.int64 and out.tolist() == (np.array([3, 4, 5]) * 2).tolist()
    out = _fold_div(node, shape, np.array([2, -2, 2, 2], np.int64))
    assert isinstance(out[0], Dim) and out[1] == int(3 / -2)
    ints = _fold_div(node, np.array([7, -7], np.int64), np.array([2, 2], np.int64))
    assert ints.dtype == np.int64 and ints.tolist() == [int(7 / 2), int(-7 / 2)]


def test_fold_equal_where_cast_with_dims():
    n = Dim("N")
    shape = np.array([n, 3, -1], dtype=object)
    node = helper.make_node("Equal", ["a", "b"], ["y"])
    eq = _fold_equal(node, shape, np.array(-1, np.int64))
    assert eq.dtype == bool and eq.tolist() == [False, False, True]
    # N == 3 is undecidable at conversion time: not folded (compared at run time instead)
    assert _fold_equal(node, shape, np.array(3, np.int64)) is None
    w = _fold_where(node, eq, np.array(1, np.int64), shape)
    assert w[0] is n and w[1] == 3 and w[2] == 1
    cast = _fold_cast(Node(helper.make_node("Cast", ["a"], ["y"], to=TensorProto.INT64), 13), shape)
    assert has_dims(cast) and cast[0] is n
    plain = _fold_cast(Node(helper.make_node("Cast", ["a"], ["y"], to=TensorProto.FLOAT), 13),
                       np.array([1, 2], np.int64))
    assert plain.dtype == np.float32


@pytest.mark.parametrize("channels_last", [False, True])
def test_dynamic_dims(channels_last):
    nodes = [helper.make_node("Add", ["x", "c"], ["a"]), helper.make_node("Mul", ["a", "s"], ["b"]),
             helper.make_node("Where", ["m", "b", "x"], ["y"])]
    m = make_model(nodes, [("x", np.float32, ["N", 3, "H", 5]), ("s", np.float32, ["N", 3, 1, 1]),
                           ("m", np.bool_, [5])], [("y", np.float32, None)], [("c", rand(3, 1, 1, seed=3))])
    check(m, {"x": rand(2, 3, 4, 5), "s": rand(2, 3, 1, 1, seed=2), "m": rand(5, seed=4) > 0}, channels_last)


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
def test_bitwise(op):
    nodes = [helper.make_node(op, ["x", "c"], ["a"]), helper.make_node("BitwiseNot", ["a"], ["y"])]
    m = make_model(nodes, [("x", np.int32, [2, 6])], [("y", np.int32, None)], [("c", np.arange(6, dtype=np.int32))],
                   opset=18)
    check(m, {"x": np.arange(-6, 6, dtype=np.int32).reshape(2, 6)})


def test_shape_arithmetic_end_to_end():
    """Shape -> Cast/Equal/Where/Mul/Add/Div/Sub on a shape with a dynamic batch -> Reshape."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["s2"], to=TensorProto.INT64),
             helper.make_node("Equal", ["s2", "neg1"], ["eq"]), helper.make_node("Where", ["eq", "one", "s2"], ["s3"]),
             helper.make_node("Mul", ["s3", "ones"], ["s4"]), helper.make_node("Add", ["s4", "zeros"], ["s5"]),
             helper.make_node("Div", ["s5", "ones"], ["s6"]), helper.make_node("Sub", ["s6", "zeros"], ["s7"]),
             helper.make_node("Reshape", ["x", "s7"], ["r"]), helper.make_node("Add", ["r", "x"], ["y"])]
    inits = [("neg1", np.array(-1, np.int64)), ("one", np.array(1, np.int64)), ("ones", np.ones(4, np.int64)),
             ("zeros", np.zeros(4, np.int64))]
    m = make_model(nodes, [("x", np.float32, ["N", 3, 4, 5])], [("y", np.float32, ["N", 3, 4, 5])], inits, opset=13)
    check(m, {"x": rand(2, 3, 4, 5)})
