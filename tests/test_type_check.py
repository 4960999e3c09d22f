"""The op schemas' type constraints, checked after shape inference (konnx/type_check.py): a model
onnxruntime refuses for its element types is refused by konnx too, naming the node, the input
and the types; its valid neighbour converts and matches onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx
from tests.util import assert_matches_ort, make_model, rand, run_ort


def _nms(score_type):
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "k"], ["sel"], name="nms")
    m = make_model([node], [("boxes", np.float32, [1, 4, 4]), ("scores", score_type, [1, 1, 4])],
                   [("sel", np.int64, None)], [("k", np.array([2], np.int64))], opset=11)
    boxes = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, 2, 1, 3], [0, 5, 1, 6]]], np.float32)
    return m, {"boxes": boxes, "scores": np.array([[[0.9, 0.8, 0.7, 0.6]]], score_type)}


def _add(b_type):
    m = make_model([helper.make_node("Add", ["a", "b"], ["y"], name="add")],
                   [("a", np.float32, [2, 3]), ("b", b_type, [2, 3])], [("y", np.float32, None)])
    return m, {"a": rand(2, 3), "b": rand(2, 3).astype(b_type)}


@pytest.mark.parametrize("bad, good, expect", [
    (_nms(np.float64), _nms(np.float32), "input 1 'scores' is DOUBLE, but the op's schema wants tensor(float)"),
    (_add(np.int64), _add(np.float32), "binds both to one type 'T'"),
], ids=["fixed_type_formal", "one_type_parameter"])
def test_type_constraints_refused_like_onnxruntime(bad, good, expect):
    model, feeds = bad
    with pytest.raises(konnx.InvalidModelError) as info:
        konnx.convert(model)
    msg = " ".join(str(info.value).split())
    assert "'nms'" in msg or "'add'" in msg
    assert expect in msg, msg
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises several types
        run_ort(model, feeds)
    assert_matches_ort(*good)
