"""konnx/ops/tensor_pad.py (Pad, DepthToSpace, SpaceToDepth) against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ..util import rand
from .cl_helpers import check, model, one

I64 = np.int64
CL = [False, True]


# ----------------------------------------------------------------------------- Pad
PADS = {
    "positive": [0, 1, 2, 0, 0, 2, 1, 3],
    "negative": [0, -1, 1, -2, 0, 1, -2, 2],
    "crop": [0, 0, -1, -1, 0, 0, -2, -1],
}


@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("pads", list(PADS))
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad(mode, pads, channels_last):
    m = one("Pad", [1, 3, 4, 5], [("p", np.array(PADS[pads], I64)), ("v", np.array(-1.5, np.float32))],
            opset=19, mode=mode)
    check(m, {"x": rand(1, 3, 4, 5)}, channels_last=channels_last)


@pytest.mark.parametrize("mode", ["edge", "wrap"])
def test_pad_larger_than_axis(mode):
    m = one("Pad", [2, 3], [("p", np.array([0, 7, 0, 8], I64))], opset=19, mode=mode)
    check(m, {"x": rand(2, 3)})


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_opset7_attrs(mode):
    m = one("Pad", [1, 2, 3, 4], opset=7, mode=mode, pads=[0, 0, 1, 2, 0, 0, 2, 1], value=3.0)
    check(m, {"x": rand(1, 2, 3, 4)}, channels_last=True)


def test_pad_runtime_value_and_axes():
    nodes = [helper.make_node("Pad", ["x", "p", "v", "ax"], ["y"], mode="constant")]
    m = model(nodes, [("x", np.float32, [1, 3, 4, 5]), ("v", np.float32, [])], ["y"],
              [("p", np.array([1, 2, 0, 1], I64)), ("ax", np.array([2, -1], I64))], opset=18)
    check(m, {"x": rand(1, 3, 4, 5), "v": np.array(7.25, np.float32)}, channels_last=True)


def test_pad_int_and_zero_padding_layer():
    m = one("Pad", [1, 2, 3, 4], [("p", np.array([0, 0, 1, 2, 0, 0, 1, 0], I64))], opset=13,
            dtype=np.int32, inputs=["x", "p"])
    check(m, {"x": np.arange(24, dtype=np.int32).reshape(1, 2, 3, 4)}, channels_last=True)
    m = one("Pad", [1, 2, 3, 4], [("p", np.array([0, 0, 1, 2, 0, 0, 1, 0], I64))], opset=13)
    km = check(m, {"x": rand(1, 2, 3, 4)}, channels_last=True)
    assert any(type(l).__name__ == "ZeroPadding2D" for l in km.layers)


# ----------------------------------------------------------------------------- DepthToSpace & co
@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space(mode, channels_last):
    m = one("DepthToSpace", [2, 8, 3, 4], blocksize=2, mode=mode)
    check(m, {"x": rand(2, 8, 3, 4)}, channels_last=channels_last)


@pytest.mark.parametrize("channels_last", CL)
def test_space_to_depth(channels_last):
    m = one("SpaceToDepth", [2, 3, 4, 6], blocksize=2)
    check(m, {"x": rand(2, 3, 4, 6)}, channels_last=channels_last)
