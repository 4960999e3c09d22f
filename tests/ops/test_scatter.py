"""konnx/ops/scatter.py (ScatterElements, ScatterND, TensorScatter) against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx

from ..util import rand
from .cl_helpers import check, model

I64 = np.int64


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements_reductions(reduction):
    node = helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], axis=1, reduction=reduction)
    idx = np.array([[0, 2], [1, 0], [3, 3]], I64)
    m = model([node], [("x", np.float32, [3, 4]), ("u", np.float32, [3, 2])], ["y"], [("i", idx)], opset=18)
    check(m, {"x": rand(3, 4), "u": rand(3, 2, seed=1)})


def test_scatter_nd_rows():
    node = helper.make_node("ScatterND", ["x", "i", "u"], ["y"])
    m = model([node], [("x", np.float32, [4, 3]), ("u", np.float32, [2, 3])], ["y"],
              [("i", np.array([[2], [0]], I64))], opset=16)
    check(m, {"x": rand(4, 3), "u": rand(2, 3, seed=2)})


def test_unknown_reduction_is_refused_before_building():
    node = helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], axis=0, name="sc")
    node.attribute.append(helper.make_attribute("reduction", "median"))
    m = model([node], [("x", np.float32, [3, 4]), ("u", np.float32, [1, 4])], ["y"],
              [("i", np.zeros((1, 4), I64))], opset=18)
    with pytest.raises(konnx.UnsupportedOpError, match="sc.*median"):
        konnx.convert(m)
