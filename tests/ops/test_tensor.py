"""Layout/shape/index ops against onnxruntime, in ONNX layout and on channels-last tensors."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx

from ..util import assert_matches_ort, rand
from .cl_helpers import check, check_reload, model

I64 = np.int64
BIG = np.iinfo(np.int64).max
CL = [False, True]


def one(op, x_shape, inits=(), opset=13, inputs=None, outputs=("y",), dtype=np.float32, **attrs):
    """A one-node model: x (+ constant inputs by name) -> op -> outputs."""
    names = inputs if inputs is not None else ["x"] + [n for n, _ in inits]
    node = helper.make_node(op, names, list(o if isinstance(o, str) else o[0] for o in outputs), **attrs)
    return model([node], [("x", dtype, list(x_shape))], list(outputs), list(inits), opset=opset, out_dtype=dtype)


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


# ----------------------------------------------------------------------------- Gather family
@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("axis,idx", [(0, 1), (1, -1), (1, [[0, 2], [-1, 1]]), (3, [4, 0, -2]), (-2, [])])
def test_gather(axis, idx, channels_last):
    m = one("Gather", [2, 3, 4, 5], [("i", np.array(idx, I64))], axis=axis)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


@pytest.mark.parametrize("axis", [0, 1])
def test_gather_runtime_indices(axis):
    # an embedding-style lookup (constant table, runtime ids) and data+ids both runtime
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], axis=axis),
             helper.make_node("Gather", ["x", "ids"], ["y"], axis=axis)]
    m = model(nodes, [("x", np.float32, [4, 5, 2]), ("ids", np.int64, [2, 3])], ["e", "y"],
              [("table", rand(4, 5, seed=3))], opset=13)
    ids = np.array([[0, 3, -1], [2, 1, -4]], I64)
    check(m, {"x": rand(4, 5, 2), "ids": ids})


@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("axis", [0, 1, 3])
def test_gather_elements(axis, channels_last):
    ishape = [2, 3, 4, 5]
    ishape[(axis + 1) % 4] -= 1  # indices smaller than data on another axis
    n = [2, 3, 4, 5][axis]
    idx = np.random.default_rng(axis).integers(-n, n, size=ishape)
    m = one("GatherElements", [2, 3, 4, 5], [("i", idx.astype(I64))], axis=axis)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


@pytest.mark.parametrize("batch_dims,idx", [
    (0, [[0, 1], [1, -1]]),
    (0, [[[1]], [[0]]]),
    (1, [[1], [0]]),
    (1, [[[0, 2]], [[1, -1]]]),
])
def test_gather_nd(batch_dims, idx):
    m = one("GatherND", [2, 3, 4], [("i", np.array(idx, I64))], batch_dims=batch_dims)
    check(m, {"x": rand(2, 3, 4)})


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


@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("upper,k", [(1, 0), (0, 0), (1, -1), (0, 2)])
def test_trilu(upper, k, channels_last):
    m = one("Trilu", [2, 3, 4, 5], [("k", np.array(k, I64))], opset=14, upper=upper)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot(axis):
    nodes = [helper.make_node("OneHot", ["ids", "d", "v"], ["y"], axis=axis)]
    m = model(nodes, [("ids", np.int64, [2, 3])], ["y"],
              [("d", np.array(4, I64)), ("v", np.array([-2.0, 5.0], np.float32))], opset=11)
    check(m, {"ids": np.array([[0, 3, -1], [5, -4, 2]], I64)})


@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumsum(exclusive, reverse, channels_last):
    m = one("CumSum", [2, 3, 4, 5], [("a", np.array(1, I64))], opset=14, exclusive=exclusive, reverse=reverse)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


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
