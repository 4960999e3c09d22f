"""Constants and shape values reaching converters that expect a tensor (issue 12: the
`'Const' object has no attribute 'perm'` crash). Each graph computes a shape value holding a
dynamic dim (Shape of a dynamic input, concatenated with constants: konnx folds it to a Const
with a symbolic entry) or slices a constant buffer by a dynamic length, then feeds it to an op
that usually sees tensors; compared with onnxruntime at two sizes of the dynamic axis."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import konnx

from ..util import assert_matches_ort, make_model

I64 = TensorProto.INT64


def _shape_value_graph(op_nodes, out_type=I64, extra_inits=()):
    """x: (N, 3) float with N dynamic; s = Concat([300], Shape(x)[0:1], [5]) is a folded shape
    value [300, N, 5]; `op_nodes` read 's' and produce 'y'."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"]),
        helper.make_node("Slice", ["shp", "zero", "one"], ["n"]),
        helper.make_node("Concat", ["c300", "n", "c5"], ["s"], axis=0),
    ] + op_nodes
    inits = [("zero", np.array([0], np.int64)), ("one", np.array([1], np.int64)),
             ("c300", np.array([300], np.int64)), ("c5", np.array([5], np.int64))] + list(extra_inits)
    return make_model(nodes, [("x", np.float32, ["N", 3])], [("y", out_type, None)], inits)


CASES = {
    # the detector case: min(300, num_anchors)
    "ReduceMin": ([helper.make_node("ReduceMin", ["s"], ["y"], keepdims=0)], ()),
    "ReduceMax": ([helper.make_node("ReduceMax", ["s"], ["y"], keepdims=1)], ()),
    "ReduceSum": ([helper.make_node("ReduceSum", ["s"], ["y"], keepdims=0)], ()),
    "ArgMin": ([helper.make_node("ArgMin", ["s"], ["y"], keepdims=0)], ()),
    "Min": ([helper.make_node("Min", ["s", "c7"], ["y"])], [("c7", np.array([7], np.int64))]),
    "Gather": ([helper.make_node("Gather", ["s", "i"], ["y"])], [("i", np.array([1, 0], np.int64))]),
    "Unsqueeze": ([helper.make_node("Unsqueeze", ["s", "a"], ["y"])], [("a", np.array([0], np.int64))]),
    "Cast": ([helper.make_node("Cast", ["s"], ["y"], to=I64)], ()),
    "Neg": ([helper.make_node("Neg", ["s"], ["y"])], ()),
    "Tile": ([helper.make_node("Tile", ["s", "r"], ["y"])], [("r", np.array([2], np.int64))]),
    "Equal": ([helper.make_node("Equal", ["s", "c300"], ["b"]),
               helper.make_node("Cast", ["b"], ["y"], to=I64)], ()),
    "CumSum": ([helper.make_node("CumSum", ["s", "ax"], ["y"])], [("ax", np.array(0, np.int64))]),
    "Pad": ([helper.make_node("Pad", ["s", "p", "v"], ["y"])], [("p", np.array([1, 2], np.int64)),
                                                              ("v", np.array(9, np.int64))]),
    "Transpose": ([helper.make_node("Unsqueeze", ["s", "a"], ["s2"]),
                   helper.make_node("Transpose", ["s2"], ["y"], perm=[1, 0])], [("a", np.array([0], np.int64))]),
    "Reshape": ([helper.make_node("Reshape", ["s", "shape"], ["y"])], [("shape", np.array([3, 1], np.int64))]),
    "Expand": ([helper.make_node("Expand", ["s", "shape"], ["y"])], [("shape", np.array([2, 3], np.int64))]),
    "Concat": ([helper.make_node("Concat", ["s", "c5"], ["y"], axis=0)], ()),
    "Mul": ([helper.make_node("Mul", ["s", "s"], ["y"])], ()),
}


@pytest.mark.parametrize("op", sorted(CASES))
def test_shape_value_into_tensor_op(op):
    nodes, inits = CASES[op]
    m = _shape_value_graph(nodes, extra_inits=inits)
    km = konnx.convert(m)
    for n in (4, 9):
        assert_matches_ort(m, {"x": np.ones((n, 3), np.float32)}, keras_model=km)


def test_static_constant_materialized_for_a_run_time_pad_value():
    """Pad of a constant by a pad value computed by the graph: the constant becomes a tensor."""
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
             helper.make_node("Pad", ["c", "p", "m"], ["y"])]
    inits = [("c", np.arange(6, dtype=np.float32).reshape(2, 3)), ("p", np.array([0, 1, 1, 0], np.int64))]
    m = make_model(nodes, [("x", np.float32, ["N", 3])], [("y", np.float32, None)], inits)
    km = konnx.convert(m)
    for n in (2, 5):
        assert_matches_ort(m, {"x": np.random.default_rng(n).standard_normal((n, 3)).astype(np.float32)},
                           keras_model=km)


def test_constant_buffer_sliced_by_dynamic_length():
    """BERT's registered position_ids buffer: position_ids[:, 0:seq_len], seq_len dynamic."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"]),
        helper.make_node("Slice", ["shp", "one", "two"], ["len"]),
        helper.make_node("Slice", ["buf", "zero", "len", "one"], ["pos"]),
        helper.make_node("Gather", ["emb", "pos"], ["pe"]),
        helper.make_node("Add", ["x", "pe"], ["y"]),
    ]
    inits = [("zero", np.array([0], np.int64)), ("one", np.array([1], np.int64)), ("two", np.array([2], np.int64)),
             ("buf", np.arange(16, dtype=np.int64)[None]),
             ("emb", np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32))]
    m = make_model(nodes, [("x", np.float32, ["B", "L", 4])], [("y", np.float32, None)], inits)
    km = konnx.convert(m)
    for b, length in ((2, 5), (3, 11)):
        x = np.random.default_rng(length).standard_normal((b, length, 4)).astype(np.float32)
        assert_matches_ort(m, {"x": x}, keras_model=km)
