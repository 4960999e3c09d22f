"""konnx/ops/axes.py (Concat, Split, Slice, Squeeze, Unsqueeze, Expand, Tile) against
onnxruntime, in ONNX layout and on channels-last tensors."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx

from ..util import assert_matches_ort, rand
from .cl_helpers import check, model, one

I64 = np.int64
BIG = np.iinfo(np.int64).max
CL = [False, True]


# ----------------------------------------------------------------------------- Concat / Split
@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_concat(axis, channels_last):
    shp_c = [2, 3, 4, 5]
    shp_c[axis] = 2
    nodes = [helper.make_node("Concat", ["x", "c", "x"], ["y"], axis=axis)]
    m = model(nodes, [("x", np.float32, [2, 3, 4, 5])], ["y"], [("c", rand(*shp_c, seed=1))], opset=13)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


def test_concat_mixed_layouts():
    # one input channels-last (graph input), one in ONNX layout (after a Reshape)
    nodes = [helper.make_node("Reshape", ["x2", "s"], ["r"]),
             helper.make_node("Concat", ["x", "r"], ["y"], axis=1)]
    m = model(nodes, [("x", np.float32, [1, 3, 2, 2]), ("x2", np.float32, [1, 8])], ["y"],
              [("s", np.array([1, 2, 2, 2], I64))], opset=13)
    check(m, {"x": rand(1, 3, 2, 2), "x2": rand(1, 8, seed=2)}, channels_last=True)


@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("opset,split,n", [(11, [1, 3], 2), (13, [2, 1, 1], 3), (13, None, 2), (18, None, 3)])
def test_split(opset, split, n, channels_last):
    outs = [f"y{i}" for i in range(n)]
    attrs = {"axis": 1}
    inits = []
    inputs = ["x"]
    if split is not None and opset < 13:
        attrs["split"] = split
    elif split is not None:
        inits.append(("sp", np.array(split, I64)))
        inputs.append("sp")
    if opset >= 18 and split is None:
        attrs["num_outputs"] = n
    m = one("Split", [2, 4, 3, 5], inits, opset=opset, inputs=inputs, outputs=outs, **attrs)
    check(m, {"x": rand(2, 4, 3, 5)}, channels_last=channels_last)


# ----------------------------------------------------------------------------- Slice
SLICES = [
    ([0], [2], [1], [1]),
    ([1, -3], [BIG, -1], [1, 3], [1, 1]),
    ([-1], [-BIG], [2], [-1]),
    ([10], [-100], [3], [-2]),
    ([0, 1], [3, 5], [-1, 2], [2, 1]),
    ([-100], [100], [0], [1]),
    ([3], [0], [2], [-1]),
]


@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
def test_slice(starts, ends, axes, steps, channels_last):
    inits = [("st", np.array(starts, I64)), ("en", np.array(ends, I64)), ("ax", np.array(axes, I64)),
             ("sp", np.array(steps, I64))]
    m = one("Slice", [2, 3, 4, 5], inits)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


def test_slice_opset9_attrs():
    m = one("Slice", [2, 3, 4, 5], opset=9, starts=[1, 0], ends=[BIG, -1], axes=[1, 3])
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=True)


def test_slice_dynamic_dim():
    m = one("Slice", ["N", 6], [("st", np.array([1, -5], I64)), ("en", np.array([BIG, -1], I64)),
                                ("ax", np.array([0, 1], I64))])
    km = konnx.convert(m)
    for n in (3, 5):
        assert_matches_ort(m, {"x": rand(n, 6, seed=n)}, keras_model=km)


# ----------------------------------------------------------------------------- Squeeze / Unsqueeze
@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axes", [[2], [-1, 2], None])
def test_squeeze(axes, opset, channels_last):
    if axes is None:
        m = one("Squeeze", [2, 3, 1, 1], opset=opset)
    elif opset < 13:
        m = one("Squeeze", [2, 3, 1, 1], opset=opset, axes=axes)
    else:
        m = one("Squeeze", [2, 3, 1, 1], [("a", np.array(axes, I64))], opset=opset)
    check(m, {"x": rand(2, 3, 1, 1)}, channels_last=channels_last)


@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axes", [[0], [4], [1, -1], [0, 3, 6]])
def test_unsqueeze(axes, opset, channels_last):
    if opset < 13:
        m = one("Unsqueeze", [2, 3, 4, 5], opset=opset, axes=axes)
    else:
        m = one("Unsqueeze", [2, 3, 4, 5], [("a", np.array(axes, I64))], opset=opset)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


def test_unsqueeze_keeps_channels_last():
    from konnx.ops.axes import unsqueeze_perm
    assert unsqueeze_perm((0, 2, 3, 1), [4]) == ((0, 2, 3, 4, 1), [3])
    assert unsqueeze_perm((0, 1, 2), [0]) == ((0, 1, 2, 3), [0])


# ----------------------------------------------------------------------------- Expand / Tile
@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("shape", [[2, 3, 4, 5], [1, 1, 1, 1], [3, 1, 1, 1, 5], [4, 1]])
def test_expand(shape, channels_last):
    m = one("Expand", [2, 3, 4, 1], [("s", np.array(shape, I64))])
    check(m, {"x": rand(2, 3, 4, 1)}, channels_last=channels_last)


def test_expand_dynamic_shape():
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Expand", ["c", "s"], ["y"])]
    m = model(nodes, [("x", np.float32, ["N", 3])], ["y"], [("c", rand(1, 3, seed=1))], opset=13)
    nodes2 = [helper.make_node("Expand", ["x", "s"], ["y"])]
    m2 = model(nodes2, [("x", np.float32, ["N", 1])], ["y"], [("s", np.array([1, 4], I64))], opset=13)
    for mm in (m, m2):
        km = konnx.convert(mm)
        for n in (1, 3):
            assert_matches_ort(mm, {"x": rand(n, 3 if mm is m else 1, seed=n)}, keras_model=km)


@pytest.mark.parametrize("channels_last", CL)
def test_tile(channels_last):
    m = one("Tile", [2, 3, 4, 5], [("r", np.array([1, 2, 3, 1], I64))])
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)
