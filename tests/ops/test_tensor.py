"""konnx/ops/tensor.py (Reshape, Flatten, Transpose) against onnxruntime, in ONNX layout and
on channels-last tensors; a save/reload of several tensor ops."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx

from ..util import assert_matches_ort, rand
from .cl_helpers import check, check_reload, model, one

I64 = np.int64
BIG = np.iinfo(np.int64).max
CL = [False, True]


# ----------------------------------------------------------------------------- Reshape / Flatten
@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("target", [[2, -1], [0, 3, 20], [2, 12, 5], [-1], [0, 0, -1], [2, 3, 4, 5, 1]])
def test_reshape(target, channels_last):
    m = one("Reshape", [2, 3, 4, 5], [("s", np.array(target, I64))])
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


@pytest.mark.parametrize("opset", [7, 13, 14])
def test_reshape_opsets_allowzero(opset):
    m = one("Reshape", [2, 0, 3], [("s", np.array([3, 0, 2], I64))], opset=opset,
            **({"allowzero": 1} if opset >= 14 else {}))
    if opset < 14:  # without allowzero, 0 copies the input dim
        m = one("Reshape", [2, 4, 3], [("s", np.array([3, 0, 2], I64))], opset=opset)
        check(m, {"x": rand(2, 4, 3)})
    else:
        check(m, {"x": rand(2, 0, 3)})


def test_reshape_after_channels_last_input_order_preserving():
    # a 1x1 spatial map: the channels-last tensor holds the same element order -> no transpose
    m = one("Reshape", [2, 8, 1, 1], [("s", np.array([2, 8], I64))])
    km = check(m, {"x": rand(2, 8, 1, 1)}, channels_last=True)
    assert not any("transpose" in l.name or "permute" in l.name for l in km.layers)


@pytest.mark.parametrize("batch", [2, "N"])
def test_reshape_keeps_channels_last_layout(batch):
    """ViT-style (N,C,H,W) -> (N,C,HW) -> transpose -> (N, HW*C) on channels-last: no data moves."""
    nodes = [helper.make_node("Reshape", ["x", "s1"], ["a"]),
             helper.make_node("Transpose", ["a"], ["b"], perm=[0, 2, 1]),
             helper.make_node("Reshape", ["b", "s2"], ["y"])]
    inits = [("s1", np.array([0, 3, -1], I64)), ("s2", np.array([0, -1], I64))]
    m = model(nodes, [("x", np.float32, [batch, 3, 4, 5])], ["y"], inits, opset=13)
    km = konnx.convert(m, channels_last_io=True)
    assert not any(type(l).__name__ == "Permute" or getattr(l, "fn", "") == "transpose" for l in km.layers)
    from .cl_helpers import ChannelsLastIO
    for n in ((2,) if batch == 2 else (1, 3)):
        assert_matches_ort(m, {"x": rand(n, 3, 4, 5, seed=n)}, keras_model=ChannelsLastIO(km))


@pytest.mark.parametrize("target", [[2, 3, 2, 2, 5], [2, 3, 20], [6, 4, 5], [2, 12, 5]])
def test_reshape_grouped_on_channels_last(target):
    m = one("Reshape", [2, 3, 4, 5], [("s", np.array(target, I64))])
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=True)


def test_reshape_dynamic_batch_channels_last():
    m = one("Reshape", ["N", 3, 4, 5], [("s", np.array([0, 3, -1], I64))])
    km = konnx.convert(m, channels_last_io=True)
    from .cl_helpers import ChannelsLastIO
    for n in (1, 3):
        assert_matches_ort(m, {"x": rand(n, 3, 4, 5, seed=n)}, keras_model=ChannelsLastIO(km))


@pytest.mark.parametrize("allowzero", [0, 1])
def test_reshape_runtime_shape(allowzero):
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], allowzero=allowzero)]
    m = model(nodes, [("x", np.float32, [2, 3, 4]), ("s", np.int64, [3])], ["y"], opset=14)
    for s in ([0, 4, 3] if not allowzero else [2, 4, 3], [4, -1, 2], [2, 12, 1]):
        check(m, {"x": rand(2, 3, 4), "s": np.array(s, I64)})


def test_squeeze_and_gather_on_dynamic_axis():
    nodes = [helper.make_node("Squeeze", ["x", "a"], ["s"]),
             helper.make_node("Gather", ["x", "i"], ["g"], axis=0)]
    m = model(nodes, [("x", np.float32, ["N", 3])], ["s", "g"], [("a", np.array([0], I64)),
                                                                ("i", np.array(-1, I64))], opset=13)
    nodes2 = [helper.make_node("Gather", ["x", "i"], ["g"], axis=0)]
    m2 = model(nodes2, [("x", np.float32, ["N", 3])], ["g"], [("i", np.array(-1, I64))], opset=13)
    check(m, {"x": rand(1, 3)})
    km = konnx.convert(m2)
    for n in (2, 5):
        assert_matches_ort(m2, {"x": rand(n, 3, seed=n)}, keras_model=km)


@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, 4])
def test_flatten(axis, channels_last):
    m = one("Flatten", [2, 3, 4, 5], axis=axis)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


def test_flatten_dynamic_batch():
    m = one("Flatten", ["N", 3, 2, 2], axis=1)
    km = konnx.convert(m, channels_last_io=True)
    from .cl_helpers import ChannelsLastIO
    for n in (1, 4):
        assert_matches_ort(m, {"x": rand(n, 3, 2, 2, seed=n)}, keras_model=ChannelsLastIO(km))


# ----------------------------------------------------------------------------- Transpose
@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("perm", [None, [0, 2, 3, 1], [3, 1, 0, 2], [0, 1, 2, 3]])
def test_transpose(perm, channels_last):
    m = one("Transpose", [2, 3, 4, 5], **({} if perm is None else {"perm": perm}))
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


def test_transpose_moves_no_data():
    """Transposes compose into the layout perm: x -> T(0,2,3,1) -> T(0,3,1,2) moves nothing."""
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("Transpose", ["t"], ["y"], perm=[0, 3, 1, 2])]
    m = model(nodes, [("x", np.float32, [1, 3, 4, 5])], ["y"], opset=13)
    for cl in CL:
        km = check(m, {"x": rand(1, 3, 4, 5)}, channels_last=cl)
        assert not any(type(l).__name__ == "Permute" or getattr(l, "fn", "") == "transpose" for l in km.layers)


# ----------------------------------------------------------------------------- save / reload
def test_save_reload(tmp_path):
    nodes = [
        helper.make_node("Pad", ["x", "p"], ["a"], mode="wrap"),
        helper.make_node("Slice", ["a", "st", "en", "ax", "sp"], ["b"]),
        helper.make_node("Transpose", ["b"], ["c"], perm=[0, 2, 3, 1]),
        helper.make_node("Gather", ["c", "gi"], ["d"], axis=1),
        helper.make_node("DepthToSpace", ["x"], ["e0"], blocksize=2, mode="CRD"),
        helper.make_node("Reshape", ["e0", "rs"], ["e"]),
    ]
    inits = [("p", np.array([0, 0, 1, 2, 0, 0, 2, 1], I64)), ("st", np.array([-1], I64)),
             ("en", np.array([-BIG], I64)), ("ax", np.array([3], I64)), ("sp", np.array([-2], I64)),
             ("gi", np.array([[0, 2]], I64)), ("rs", np.array([1, -1], I64))]
    m = model(nodes, [("x", np.float32, [1, 4, 3, 4])], ["d", "e"], inits, opset=19)
    check_reload(m, {"x": rand(1, 4, 3, 4)}, tmp_path, channels_last_io=False)
