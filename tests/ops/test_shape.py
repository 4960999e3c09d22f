"""Shape values and their folds: Constant, Shape, Size, ConstantOfShape, Identity, Dropout, Range,
and shape arithmetic chains with dynamic dims."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import konnx
from konnx.errors import ConversionError

from ..util import assert_matches_ort, rand
from .cl_helpers import check, check_reload, model

I64 = np.int64


def chain_model(opset=13, shape=("N", 3, 4, 5)):
    """x -> Shape -> Gather(0) -> Unsqueeze -> Concat([N], [-1]) -> Reshape(x)."""
    unsq = (helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]) if opset >= 13
            else helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]))
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
        unsq,
        helper.make_node("Concat", ["n1", "tail"], ["shp"], axis=0),
        helper.make_node("Reshape", ["x", "shp"], ["y"]),
    ]
    inits = [("i0", np.array(0, I64)), ("tail", np.array([-1], I64))]
    if opset >= 13:
        inits.append(("ax", np.array([0], I64)))
    return model(nodes, [("x", np.float32, list(shape))], ["y"], inits, opset=opset)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("opset", [11, 13])
def test_dynamic_batch_chain(opset, channels_last):
    m = chain_model(opset)
    km = konnx.convert(m, channels_last_io=channels_last)
    for n in (1, 3):
        x = rand(n, 3, 4, 5, seed=n)
        if channels_last:
            from .cl_helpers import ChannelsLastIO
            assert_matches_ort(m, {"x": x}, keras_model=ChannelsLastIO(km))
        else:
            assert_matches_ort(m, {"x": x}, keras_model=km)


def test_chain_with_slice_squeeze_cast():
    """Shape -> Slice[0:2] -> Cast(float) -> Cast(int64) -> Squeeze/Unsqueeze pieces -> Reshape."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "z", "two"], ["nc"]),
        helper.make_node("Cast", ["nc"], ["ncf"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["ncf"], ["nci"], to=TensorProto.INT64),
        helper.make_node("Slice", ["nci", "one", "two"], ["c1"]),
        helper.make_node("Squeeze", ["c1", "z"], ["c"]),
        helper.make_node("Unsqueeze", ["c", "z"], ["c2"]),
        helper.make_node("Slice", ["s", "z", "one"], ["n1"]),
        helper.make_node("Concat", ["n1", "c2", "m1"], ["shp"], axis=0),
        helper.make_node("Reshape", ["x", "shp"], ["y"]),
    ]
    inits = [("z", np.array([0], I64)), ("one", np.array([1], I64)), ("two", np.array([2], I64)),
             ("m1", np.array([-1], I64))]
    m = model(nodes, [("x", np.float32, ["N", 3, 4, 5])], ["y"], inits, opset=13)
    km = konnx.convert(m)
    for n in (2, 5):
        assert_matches_ort(m, {"x": rand(n, 3, 4, 5, seed=n)}, keras_model=km)


def test_two_dynamic_dims_map_by_name():
    """Reshape [N, T, 8] -> [N, T, 2, 4] with N and T both read from Shape (no -1)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "z", "two"], ["nt"]),
        helper.make_node("Concat", ["nt", "tail"], ["shp"], axis=0),
        helper.make_node("Reshape", ["x", "shp"], ["y"]),
    ]
    inits = [("z", np.array([0], I64)), ("two", np.array([2], I64)), ("tail", np.array([2, 4], I64))]
    m = model(nodes, [("x", np.float32, ["N", "T", 8])], ["y"], inits, opset=13)
    km = konnx.convert(m)
    for n, t in ((1, 3), (2, 5)):
        assert_matches_ort(m, {"x": rand(n, t, 8, seed=t)}, keras_model=km)


@pytest.mark.parametrize("start,end", [(1, None), (-2, None), (0, -1), (1, 3)])
def test_shape_start_end(start, end):
    attrs = {"start": start} if end is None else {"start": start, "end": end}
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], **attrs),
        helper.make_node("Concat", ["m1", "s"], ["shp"], axis=0),
        helper.make_node("Reshape", ["x", "shp"], ["y"]),
    ]
    m = model(nodes, [("x", np.float32, [2, 3, 4, 5])], ["y"], [("m1", np.array([-1], I64))], opset=15)
    check(m, {"x": rand(2, 3, 4, 5)})


def test_shape_dim_params_are_named_dims():
    from konnx.values import Dim
    m = chain_model()
    conv = konnx.convert_detailed(m)
    s = conv.values["s"].value
    assert isinstance(s[0], Dim) and s[0].name == "N"
    assert list(s[1:]) == [3, 4, 5]


def test_size():
    nodes = [
        helper.make_node("Size", ["x"], ["n"]),
        helper.make_node("Unsqueeze", ["n", "z"], ["shp"]),
        helper.make_node("Reshape", ["x", "shp"], ["y"]),
    ]
    m = model(nodes, [("x", np.float32, [2, 3, 4])], ["y"], [("z", np.array([0], I64))], opset=13)
    check(m, {"x": rand(2, 3, 4)})


@pytest.mark.parametrize("value", [None, 2.5, -3])
def test_constant_of_shape_dynamic(value):
    """ConstantOfShape(Shape(x)) with a dynamic batch: built at run time."""
    attrs = {}
    if value is not None:
        attrs["value"] = helper.make_tensor("v", TensorProto.FLOAT, [1], [value])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("ConstantOfShape", ["s"], ["c"], **attrs),
        helper.make_node("Concat", ["x", "c"], ["y"], axis=1),
    ]
    m = model(nodes, [("x", np.float32, ["N", 3, 4])], ["y"], opset=13)
    km = konnx.convert(m)
    for n in (1, 4):
        assert_matches_ort(m, {"x": rand(n, 3, 4, seed=n)}, keras_model=km)


def test_constant_of_shape_runtime_shape_tensor():
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["y"],
                              value=helper.make_tensor("v", TensorProto.INT32, [1], [7]))]
    m = model(nodes, [("s", np.int64, [2])], [("y", np.int32)], opset=13)
    km = konnx.convert(m)
    for s in ([2, 3], [1, 5]):
        assert_matches_ort(m, {"s": np.array(s, I64)}, keras_model=km)


def test_constant_of_shape_static_folds():
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["c"],
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.25])),
        helper.make_node("Concat", ["x", "c"], ["y"], axis=0),
    ]
    m = model(nodes, [("x", np.float32, [2, 3])], ["y"], [("shape", np.array([4, 3], I64))], opset=13)
    check(m, {"x": rand(2, 3)})


@pytest.mark.parametrize("form", ["value", "value_float", "value_floats", "value_int", "value_ints",
                                  "sparse_value"])
def test_constant_forms(form):
    x_shape = [2, 3]
    if form == "value":
        c = helper.make_node("Constant", [], ["c"], value=onnx.numpy_helper.from_array(rand(1, 3, seed=3)))
        use = helper.make_node("Concat", ["x", "c"], ["y"], axis=0)
    elif form == "value_float":
        c = helper.make_node("Constant", [], ["c"], value_float=-1.5)
        use = helper.make_node("Pad", ["x", "pads", "c"], ["y"])
    elif form == "value_floats":
        c = helper.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0, 3.0])
        c2 = helper.make_node("Unsqueeze", ["c", "z"], ["c2"])
        use = [c2, helper.make_node("Concat", ["x", "c2"], ["y"], axis=0)]
    elif form == "value_int":
        c = helper.make_node("Constant", [], ["c"], value_int=-1)
        use = helper.make_node("Gather", ["x", "c"], ["y"], axis=1)
    elif form == "value_ints":
        c = helper.make_node("Constant", [], ["c"], value_ints=[3, 2])
        use = helper.make_node("Reshape", ["x", "c"], ["y"])
    else:
        sp = helper.make_sparse_tensor(
            helper.make_tensor("vals", TensorProto.FLOAT, [2], [5.0, -2.0]),
            helper.make_tensor("idx", TensorProto.INT64, [2], [1, 5]), [2, 3])
        c = helper.make_node("Constant", [], ["c"], sparse_value=sp)
        use = helper.make_node("Concat", ["x", "c"], ["y"], axis=1)
    nodes = [c] + (use if isinstance(use, list) else [use])
    inits = [("pads", np.array([0, 1, 1, 0], I64)), ("z", np.array([0], I64))]
    m = model(nodes, [("x", np.float32, x_shape)], ["y"], inits, opset=13)
    check(m, {"x": rand(*x_shape)})


@pytest.mark.parametrize("channels_last", [False, True])
def test_identity(channels_last):
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Identity", ["c"], ["c2"]),
             helper.make_node("Concat", ["a", "c2"], ["y"], axis=1)]
    m = model(nodes, [("x", np.float32, [1, 2, 3, 4])], ["y"], [("c", rand(1, 1, 3, 4, seed=1))], opset=13)
    check(m, {"x": rand(1, 2, 3, 4)}, channels_last=channels_last)


@pytest.mark.parametrize("opset", [7, 10, 12, 13])
def test_dropout(opset):
    outs = ["y", ("mask", np.bool_)]
    if opset >= 12:
        node = helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"])
        inits = [("r", np.array(0.3, np.float32)), ("t", np.array(False))]
    else:
        node = helper.make_node("Dropout", ["x"], ["y", "mask"], ratio=0.3)
        inits = []
    if opset < 10:
        outs = ["y", "mask"]  # opset 7-9: the mask has the data type
    m = model([node], [("x", np.float32, [2, 3, 4])], outs, inits, opset=opset)
    check(m, {"x": rand(2, 3, 4)}, channels_last=opset == 13)


def test_range_folds_and_runs():
    # constant Range (folded) used as Gather indices, and a runtime Range over a dynamic dim
    nodes = [
        helper.make_node("Range", ["s0", "l0", "d0"], ["idx"]),
        helper.make_node("Gather", ["x", "idx"], ["g"], axis=1),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["n"]),
        helper.make_node("Range", ["zero", "n", "one"], ["r"]),
    ]
    inits = [("s0", np.array(3, I64)), ("l0", np.array(-1, I64)), ("d0", np.array(-2, I64)),
             ("i0", np.array(0, I64)), ("zero", np.array(0, I64)), ("one", np.array(1, I64))]
    m = model(nodes, [("x", np.float32, ["N", 4])], ["g", ("r", np.int64)], inits, opset=13)
    km = konnx.convert(m)
    for n in (2, 5):
        assert_matches_ort(m, {"x": rand(n, 4, seed=n)}, keras_model=km)


def test_float_range_runtime():
    nodes = [helper.make_node("Range", ["a", "x", "d"], ["y"])]
    m = model(nodes, [("x", np.float32, [])], ["y"], [("a", np.array(0.5, np.float32)),
                                                       ("d", np.array(0.75, np.float32))], opset=13)
    km = konnx.convert(m)
    for v in (3.0, 7.3):
        assert_matches_ort(m, {"x": np.array(v, np.float32)}, keras_model=km)


def test_shape_arithmetic_dim_error_is_clear():
    """A Dim that cannot be traced back to a tensor gives a ConversionError naming the node."""
    from konnx.ops.shape import runtime_shape
    from konnx.values import Dim

    class FakeCtx:
        values = {}

        def error(self, msg):
            return ConversionError(msg)

    with pytest.raises(ConversionError, match="input_shapes"):
        runtime_shape(FakeCtx(), np.array([Dim(), 3], dtype=object))


def test_save_reload(tmp_path):
    m = chain_model()
    loaded = check_reload(m, {"x": rand(2, 3, 4, 5)}, tmp_path)
    assert_matches_ort(m, {"x": rand(4, 3, 4, 5, seed=4)}, keras_model=loaded)
