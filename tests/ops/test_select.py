"""konnx/ops/select.py (TopK, Unique, NonZero, Compress, ReverseSequence) against onnxruntime,
on tensors stored in the ONNX layout and channels-last (channels_last_io)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from ..util import rand
from .cl_helpers import check, model

I64 = np.int64


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("axis,largest", [(1, 1), (-1, 0), (2, 1)])
def test_topk_on_any_layout(axis, largest, channels_last):
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, largest=largest)
    m = model([node], [("x", np.float32, [2, 5, 4, 6])], [("v", np.float32), ("i", TensorProto.INT64)],
              [("k", np.array([3], I64))], opset=11)
    check(m, {"x": rand(2, 5, 4, 6)}, channels_last=channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("axis", [1, 3])
def test_compress_with_constant_condition(axis, channels_last):
    cond = np.array([True, False, True, True, False, True])[: [2, 5, 4, 6][axis]]
    node = helper.make_node("Compress", ["x", "c"], ["y"], axis=axis)
    m = model([node], [("x", np.float32, [2, 5, 4, 6])], ["y"], [("c", cond)], opset=11)
    check(m, {"x": rand(2, 5, 4, 6)}, channels_last=channels_last)


def test_reverse_sequence():
    node = helper.make_node("ReverseSequence", ["x", "lens"], ["y"], batch_axis=1, time_axis=0)
    m = model([node], [("x", np.float32, [4, 3, 2])], ["y"], [("lens", np.array([4, 2, 1], I64))], opset=10)
    check(m, {"x": rand(4, 3, 2)})


def test_unique_sorted_with_indices():
    node = helper.make_node("Unique", ["x"], ["y", "idx", "inv", "cnt"], sorted=1)
    outs = [("y", np.float32), ("idx", TensorProto.INT64), ("inv", TensorProto.INT64), ("cnt", TensorProto.INT64)]
    m = model([node], [("x", np.float32, [8])], outs, opset=11)
    check(m, {"x": np.array([2, 1, 1, 3, 4, 3, 2, 2], np.float32)})


def test_unique_of_an_empty_axis_is_refused_before_building():
    import konnx

    node = helper.make_node("Unique", ["x"], ["y"], axis=1, name="uniq")
    m = model([node], [("x", np.float32, [3, 0])], ["y"], opset=11)
    with pytest.raises(konnx.UnsupportedOpError, match="uniq.*empty axis"):
        konnx.convert(m)
