"""Reductions and ArgMax/ArgMin against onnxruntime: axes as attribute or input by opset, keepdims,
noop_with_empty_axes, and layouts (channels-last inputs)."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from tests.ops.math_util import check, check_roundtrip
from tests.util import make_model, rand

X = [2, 3, 4, 5]
OPS = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
       "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]


def _axes_as_input(op, opset):
    return opset >= (13 if op == "ReduceSum" else 18)


def _reduce_model(op, opset, axes, keepdims, noop=None, dtype=np.float32):
    attrs = {"keepdims": keepdims}
    inits, ins = [], ["x"]
    if axes is not None:
        if _axes_as_input(op, opset):
            inits.append(("axes", np.asarray(axes, np.int64)))
            ins.append("axes")
        else:
            attrs["axes"] = list(axes)
    if noop is not None:
        attrs["noop_with_empty_axes"] = noop
    node = helper.make_node(op, ins, ["y"], **attrs)
    return make_model([node], [("x", dtype, X)], [("y", dtype, None)], inits, opset=opset)


def _data(op):
    if op in ("ReduceProd", "ReduceLogSum"):
        return rand(*X) * 0.2 + 1.0
    return rand(*X)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axes", [[1], [2, 3], [-1, 0], None], ids=["c", "hw", "last_n", "all"])
@pytest.mark.parametrize("new_signature", [False, True], ids=["axes_attr", "axes_input"])
@pytest.mark.parametrize("op", OPS)
def test_reduce(op, new_signature, axes, keepdims, channels_last):
    # axes became an input at opset 13 (ReduceSum) / 18 (the others)
    opset = (13 if op == "ReduceSum" else 18) if new_signature else 11
    check(_reduce_model(op, opset, axes, keepdims), {"x": _data(op)}, channels_last)


@pytest.mark.parametrize("opset", [13, 18])
def test_reduce_opset13_attr(opset):
    check(_reduce_model("ReduceMean", opset, [0, 2], 0), {"x": rand(*X)}, True)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax"])
@pytest.mark.parametrize("noop", [0, 1])
def test_empty_axes(op, noop):
    opset = 13 if op == "ReduceSum" else 18
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=1, noop_with_empty_axes=noop)
    m = make_model([node], [("x", np.float32, X)], [("y", np.float32, None)],
                   [("axes", np.zeros([0], np.int64))], opset=opset)
    check(m, {"x": rand(*X)}, True)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_reduce_int(dtype):
    x = (rand(*X) * 10).astype(dtype)
    nodes = [helper.make_node("ReduceSum", ["x", "a"], ["s"], keepdims=0),
             helper.make_node("ReduceMax", ["x"], ["m"], axes=[1], keepdims=0)]
    m = make_model(nodes, [("x", dtype, X)], [("s", dtype, None), ("m", dtype, None)],
                   [("a", np.array([2, 3], np.int64))], opset=13)
    check(m, {"x": x}, True)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("last", [0, 1])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axis", [0, 1, -1, 2])
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg(op, axis, keepdims, last, channels_last):
    x = np.round(rand(*X))  # many ties
    node = helper.make_node(op, ["x"], ["y"], axis=axis, keepdims=keepdims, select_last_index=last)
    m = make_model([node], [("x", np.float32, X)], [("y", TensorProto.INT64, None)], opset=13)
    check(m, {"x": x}, channels_last)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_opset11(op):
    node = helper.make_node(op, ["x"], ["y"], axis=1, keepdims=0)
    m = make_model([node], [("x", np.float32, X)], [("y", TensorProto.INT64, None)], opset=11)
    check(m, {"x": rand(*X)}, True)


def test_roundtrip(tmp_path):
    nodes = [helper.make_node("ReduceMean", ["x", "a"], ["m"], keepdims=0),
             helper.make_node("ReduceLogSumExp", ["m", "b"], ["l"], keepdims=1),
             helper.make_node("ArgMax", ["l"], ["y"], axis=1, keepdims=0)]
    m = make_model(nodes, [("x", np.float32, X)], [("y", TensorProto.INT64, None)],
                   [("a", np.array([3], np.int64)), ("b", np.array([0], np.int64))], opset=18)
    check_roundtrip(m, {"x": rand(*X)}, tmp_path)


@pytest.mark.parametrize("channels_last", [False, True])
def test_dynamic_dims(channels_last):
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("ArgMax", ["x"], ["a"], axis=2, keepdims=0, select_last_index=1)]
    m = make_model(nodes, [("x", np.float32, ["N", 3, "H", 5])],
                   [("m", np.float32, None), ("a", TensorProto.INT64, None)], opset=13)
    check(m, {"x": np.round(rand(*X))}, channels_last)
