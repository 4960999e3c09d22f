"""Input checks shared by many ops or on Reshape (konnx/ops/attr_rules.py `_required_inputs`,
konnx/ops/tensor.py `_check_reshape`; issue 14): a refused bad model names the node and the
expectation, onnxruntime refuses it too, and the valid neighbour still matches onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx
from konnx.errors import ConversionError

from ..util import assert_matches_ort, assert_refused_like_ort, make_model, rand, run_ort

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


def _single(op, ins, attrs=None, opset=17, int_inputs=(), outputs=("y",)):
    """One `op` node named 'n' over float inputs (int64 for names in int_inputs)."""
    node = helper.make_node(op, [n for n, _ in ins], list(outputs), name="n", **(attrs or {}))
    vis = [(n, I64 if n in int_inputs else np.float32, list(s)) for n, s in ins]
    model = make_model([node], vis, [(o, np.float32, None) for o in outputs], opset=opset)
    feeds = {}
    for i, (n, s) in enumerate(ins):
        feeds[n] = (np.random.default_rng(i).integers(0, 2, size=s).astype(I64) if n in int_inputs
                    else rand(*s, seed=i))
    return model, feeds


def test_loss_target_shape():
    # (NegativeLogLikelihoodLoss on declared shapes is refused earlier, by onnx shape inference)
    op = "SoftmaxCrossEntropyLoss"

    def m(target):
        return _single(op, [("x", (3, 5, 2)), ("t", target)], dict(reduction="mean"), opset=13, int_inputs=("t",))
    assert_refused_like_ort(m((3, 4)), m((3, 2)), "target has shape [3, 4], expected the input's [3, 5, 2] without axis 1")


def test_loss_weight_rank():
    def m(w):
        return _single("SoftmaxCrossEntropyLoss", [("x", (3, 5)), ("t", (3,)), ("w", w)], opset=13, int_inputs=("t",))
    assert_refused_like_ort(m((1, 5)), m((5,)), "weight has rank 2 (shape [1, 5]), expected 1")


@pytest.mark.parametrize("op,opset", [("RMSNormalization", 23), ("LayerNormalization", 17)])
def test_normalization_scale_broadcasts(op, opset):
    def m(scale):
        return _single(op, [("x", (2, 3, 4)), ("s", scale)], dict(axis=1), opset=opset)
    assert_refused_like_ort(m((3, 5)), m((3, 4)), "scale has shape [3, 5]: it must broadcast to X's shape [2, 3, 4]")


def test_gather_elements_ranks():
    def m(idx):
        return _single("GatherElements", [("x", (3, 4)), ("i", idx)], dict(axis=1), opset=13, int_inputs=("i",))
    assert_refused_like_ort(m((3,)), m((3, 2)), "indices have rank 1, data rank 2")


def test_rotary_cache_size():
    def m(cache):
        ins = [("x", (2, 4, 3, 8)), ("cos", cache), ("sin", cache), ("pos", (2, 3))]
        model, feeds = _single("RotaryEmbedding", ins, opset=23, int_inputs=("pos",))
        feeds["pos"] = np.array([[0, 1, 2], [3, 4, 5]], I64)
        return model, feeds
    assert_refused_like_ort(m((50, 3)), m((50, 4)), "cos_cache has shape [50, 3]: its last axis must be rotary_dim / 2 = 4")
