"""Input checks shared by many ops or on Reshape (konnx/ops/attr_rules.py `_required_inputs`,
konnx/ops/tensor.py `_check_reshape`; issue 14): a refused bad model names the node and the
expectation, onnxruntime refuses it too, and the valid neighbour still matches onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx
from konnx.errors import ConversionError

from ..util import assert_matches_ort, make_model, rand, run_ort

I64 = np.int64


def _concat(inputs):
    node = helper.make_node("Concat", inputs, ["y"], name="cat", axis=0)
    ins = [(n, np.float32, [2, 3]) for n in inputs if n]
    return make_model([node], ins, [("y", np.float32, None)], opset=13), {n: rand(2, 3, seed=i) for i, (n, _, _) in
                                                                         enumerate(ins)}


def test_variadic_input_given_as_empty_name():
    model, feeds = _concat(["a", "", "b"])
    with pytest.raises(konnx.UnsupportedOpError, match=r"'cat'.*input 1 \(inputs\) is required but given as ''"):
        konnx.convert(model)
    with pytest.raises(Exception):
        run_ort(model, feeds)
    assert_matches_ort(*_concat(["a", "b"]))


def _reshape_by_shape_of(k_shape):
    """Reshape x (2, 3, 4) to k's shape, computed by the graph (Shape -> Reshape): only shape
    inference knows the target, so onnx's strict inference does not refuse it."""
    nodes = [helper.make_node("Shape", ["k"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["y"], name="resh")]
    model = make_model(nodes, [("x", np.float32, [2, 3, 4]), ("k", np.float32, list(k_shape))],
                       [("y", np.float32, None)], opset=14)
    return model, {"x": rand(2, 3, 4), "k": rand(*k_shape, seed=1)}


def test_reshape_that_changes_the_element_count():
    model, feeds = _reshape_by_shape_of((5, 5))
    with pytest.raises(ConversionError, match=r"'resh'.*\(24 elements\).*\(25 elements\): the element count must not change"):
        konnx.convert(model)
    with pytest.raises(Exception):
        run_ort(model, feeds)
    assert_matches_ort(*_reshape_by_shape_of((6, 4)))
