"""Sequence-model ops with dynamic dims (issue 6): shape arithmetic that stays symbolic,
Slice with run-time bounds (roll), Range-built masks, Trilu, RNN/GRU/LSTM over a dynamic
length and Attention-23 with a dynamic sequence length. Each model is converted once and run
at several sizes against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import konnx
from konnx.errors import ConversionError

from ..util import assert_matches_ort, rand
from .cl_helpers import model

I64 = np.int64


def _run(m, feeds_list):
    km = konnx.convert(m)
    for feeds in feeds_list:
        assert_matches_ort(m, feeds, keras_model=km)
    return km


def test_window_partition_with_computed_sizes():
    """(N, H, W, C) -> (N, H//4, 4, W//4, 4, C) -> windows (-1, 16, C), H and W dynamic."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
        helper.make_node("Gather", ["s", "i1"], ["h"], axis=0),
        helper.make_node("Gather", ["s", "i2"], ["w"], axis=0),
        helper.make_node("Div", ["h", "four"], ["hb"]),
        helper.make_node("Div", ["w", "four"], ["wb"]),
        *[helper.make_node("Unsqueeze", [a, "ax"], [a + "1"]) for a in ("n", "hb", "wb")],
        helper.make_node("Concat", ["n1", "hb1", "four1", "wb1", "four1", "c1"], ["shp"], axis=0),
        helper.make_node("Reshape", ["x", "shp"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 1, 3, 2, 4, 5]),
        helper.make_node("Reshape", ["t", "win"], ["y"]),
    ]
    inits = [("i0", np.array(0, I64)), ("i1", np.array(1, I64)), ("i2", np.array(2, I64)),
             ("four", np.array(4, I64)), ("four1", np.array([4], I64)), ("c1", np.array([6], I64)),
             ("ax", np.array([0], I64)), ("win", np.array([-1, 16, 6], I64))]
    m = model(nodes, [("x", np.float32, ["N", "H", "W", 6])], ["y"], inits, opset=13)
    km = _run(m, [{"x": rand(n, h, w, 6, seed=n + h)} for n, h, w in ((1, 8, 12), (3, 12, 8))])
    assert tuple(km.inputs[0].shape) == (None, None, None, 6)


@pytest.mark.parametrize("cast", ["Cast", "CastLike"])
def test_dynamic_dim_cast_to_float_uses_float_arithmetic(cast):
    """x * (H / 2.0), x / sqrt(float(L)): a dim cast to float is divided as a float (H odd and even)."""
    to_float = (helper.make_node("Cast", ["h"], ["hf"], to=TensorProto.FLOAT) if cast == "Cast"
                else helper.make_node("CastLike", ["h", "two"], ["hf"]))
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "i2"], ["h"], axis=0),
             to_float, helper.make_node("Div", ["hf", "two"], ["q"]), helper.make_node("Sqrt", ["hf"], ["r"]),
             helper.make_node("Mul", ["x", "q"], ["a"]), helper.make_node("Div", ["a", "r"], ["y"])]
    inits = [("i2", np.array(2, I64)), ("two", np.array(2.0, np.float32))]
    m = model(nodes, [("x", np.float32, ["N", 3, "H"])], ["y"], inits, opset=15)
    _run(m, [{"x": rand(n, 3, h, seed=h)} for n, h in ((1, 5), (2, 8))])


def test_roll_as_slices_at_computed_starts():
    """torch.roll(x, -2, dim=1) as dynamo exports it: Slice at shift % L, then Concat."""
    nodes = [
        helper.make_node("Shape", ["x"], ["L"], start=1, end=2),
        helper.make_node("Mod", ["shift", "L"], ["s"]),
        helper.make_node("Slice", ["x", "zero", "s", "ax1"], ["head"]),
        helper.make_node("Slice", ["x", "s", "L", "ax1"], ["tail"]),
        helper.make_node("Concat", ["tail", "head"], ["y"], axis=1),
    ]
    inits = [("shift", np.array([2], I64)), ("zero", np.array([0], I64)), ("ax1", np.array([1], I64))]
    m = model(nodes, [("x", np.float32, ["N", "L", 4])], ["y"], inits, opset=18)
    _run(m, [{"x": rand(n, length, 4, seed=length)} for n, length in ((2, 5), (1, 9), (3, 2))])


def test_slice_with_runtime_bounds_needs_step_one():
    nodes = [
        helper.make_node("Shape", ["x"], ["L"], start=1, end=2),
        helper.make_node("Slice", ["x", "zero", "L", "ax1", "two"], ["y"]),
    ]
    inits = [("zero", np.array([0], I64)), ("ax1", np.array([1], I64)), ("two", np.array([2], I64))]
    # the end is the axis size itself, folded to a Dim: still a run-time bound
    m = model(nodes, [("x", np.float32, ["N", "L", 4])], ["y"], inits, opset=18)
    with pytest.raises(ConversionError, match="step 1"):
        konnx.convert(m)


def test_mask_from_range_and_shape_arithmetic():
    """y = x + (arange(L) >= L - 3): a shape value used as data (materialized at run time)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["L"], axis=0),
        helper.make_node("Range", ["zero", "L", "one"], ["r"]),
        helper.make_node("Sub", ["L", "three"], ["lim"]),
        helper.make_node("GreaterOrEqual", ["r", "lim"], ["ge"]),
        helper.make_node("Cast", ["ge"], ["gf"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "gf"], ["y"]),
    ]
    inits = [("zero", np.array(0, I64)), ("one", np.array(1, I64)), ("three", np.array(3, I64))]
    m = model(nodes, [("x", np.float32, ["N", "L"])], ["y"], inits, opset=13)
    _run(m, [{"x": rand(n, length, seed=length)} for n, length in ((2, 5), (1, 8))])


@pytest.mark.parametrize("upper,k", [(1, 1), (0, 0), (1, -1)])
def test_trilu_on_dynamic_matrix(upper, k):
    nodes = [helper.make_node("Trilu", ["x", "k"], ["y"], upper=upper)]
    m = model(nodes, [("x", np.float32, ["N", "L", "L"])], ["y"], [("k", np.array(k, I64))], opset=14)
    _run(m, [{"x": rand(n, length, length, seed=length)} for n, length in ((2, 5), (1, 7))])


def _rnn_model(cell, direction, layout, states, lens, hidden=5, inp=3):
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[cell]
    d = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(0)
    inits = [("W", rng.standard_normal((d, gates * hidden, inp)).astype(np.float32) * 0.5),
             ("R", rng.standard_normal((d, gates * hidden, hidden)).astype(np.float32) * 0.5),
             ("B", rng.standard_normal((d, 2 * gates * hidden)).astype(np.float32) * 0.2)]
    seq_shape = ["N", "T", inp] if layout else ["T", "N", inp]
    st_shape = ["N", d, hidden] if layout else [d, "N", hidden]
    inputs = [("x", np.float32, seq_shape)]
    names = ["x", "W", "R", "B", "lens" if lens else "", "h0" if states else ""]
    if lens:
        inputs.append(("lens", np.int32, ["N"]))
    if states:
        inputs.append(("h0", np.float32, st_shape))
    if cell == "LSTM":
        names.append("c0" if states else "")
        if states:
            inputs.append(("c0", np.float32, st_shape))
    kw = {"linear_before_reset": 1} if cell == "GRU" else {}
    outs = ["y", "yh"] + (["yc"] if cell == "LSTM" else [])
    node = helper.make_node(cell, [n for n in names], outs, hidden_size=hidden, direction=direction,
                            layout=layout, **kw)
    return model([node], inputs, outs, inits, opset=14), d


# layout=1 (batch-major) is not run: onnxruntime refuses it for LSTM/GRU/RNN
@pytest.mark.parametrize("cell,direction,layout,states,lens", [
    ("LSTM", "bidirectional", 0, True, False),
    ("LSTM", "forward", 0, False, True),
    ("GRU", "bidirectional", 0, True, True),
    ("RNN", "reverse", 0, True, False),
])
def test_recurrent_over_dynamic_length(cell, direction, layout, states, lens):
    m, d = _rnn_model(cell, direction, layout, states, lens)
    km = konnx.convert(m)
    for n, t in ((2, 4), (3, 7)):
        feeds = {"x": rand(*((n, t, 3) if layout else (t, n, 3)), seed=t)}
        if lens:
            feeds["lens"] = np.array([t - i % t for i in range(n)], np.int32)
        if states:
            st = (n, d, 5) if layout else (d, n, 5)
            feeds["h0"] = rand(*st, seed=1)
            if cell == "LSTM":
                feeds["c0"] = rand(*st, seed=2)
        assert_matches_ort(m, feeds, keras_model=km)


@pytest.mark.parametrize("causal,masked", [(1, False), (0, True)])
def test_attention23_dynamic_length(causal, masked):
    inputs = [(n, np.float32, ["B", 2, "L", 4]) for n in ("q", "k", "v")]
    names = ["q", "k", "v"]
    if masked:
        inputs.append(("mask", np.float32, ["B", 1, "L", "L"]))
        names.append("mask")
    node = helper.make_node("Attention", names, ["y"], is_causal=causal)
    m = model([node], inputs, ["y"], [], opset=23)
    km = konnx.convert(m)
    for b, length in ((1, 3), (2, 6)):
        feeds = {n: rand(b, 2, length, 4, seed=i + length) for i, n in enumerate(("q", "k", "v"))}
        if masked:
            feeds["mask"] = rand(b, 1, length, length, seed=9)
        assert_matches_ort(m, feeds, keras_model=km)


@pytest.mark.parametrize("length", ["T", 6])
def test_recurrent_on_batch_first_input(length):
    """A batch-first (N, T, I) input transposed to time-major in front of a GRU with
    sequence_lens: konnx runs the GRU on the stored (N, T, I) tensor (unrolled for a static T,
    scanned for a dynamic one) and the output Transpose back costs nothing."""
    m, _ = _rnn_model("GRU", "bidirectional", 0, False, True)
    g = m.graph
    g.node[0].input[0] = "xt"
    g.node.insert(0, helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]))
    g.node.append(helper.make_node("Transpose", ["y"], ["yb"], perm=[2, 0, 1, 3]))
    g.input[0].CopyFrom(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", length, 3]))
    g.output[0].CopyFrom(helper.make_tensor_value_info("yb", TensorProto.FLOAT, None))
    km = konnx.convert(m)
    for n in (2, 3):
        t = 6 if length == 6 else n + 3
        feeds = {"x": rand(n, t, 3, seed=n), "lens": np.array([t - i for i in range(n)], np.int32)}
        assert_matches_ort(m, feeds, keras_model=km)
    from ..models.checks import transposes
    assert not transposes(km), [layer.name for layer in transposes(km)]


@pytest.mark.parametrize("opset,form", [(13, "equal"), (18, "num_outputs"), (13, "computed")])
def test_split_of_a_dynamic_axis(opset, form):
    """Split along a dynamic axis: equally (sizes from its run-time size, ONNX-18's uneven last
    chunk included) or by sizes computed from shape arithmetic (L - 2, 2)."""
    nodes, inits, outs = [], [], ["a", "b"]
    if form == "equal":
        nodes.append(helper.make_node("Split", ["x"], outs, axis=1))
    elif form == "num_outputs":
        outs = ["a", "b", "c"]
        nodes.append(helper.make_node("Split", ["x"], outs, axis=1, num_outputs=3))
    else:
        nodes += [helper.make_node("Shape", ["x"], ["L"], start=1, end=2) if opset >= 15 else None,
                  helper.make_node("Sub", ["L", "two"], ["first"]),
                  helper.make_node("Concat", ["first", "two"], ["sizes"], axis=0),
                  helper.make_node("Split", ["x", "sizes"], outs, axis=1)]
        nodes = [n for n in nodes if n is not None]
        if opset < 15:
            nodes = [helper.make_node("Shape", ["x"], ["s"]),
                     helper.make_node("Slice", ["s", "one", "two_"], ["L"])] + nodes
            inits += [("one", np.array([1], I64)), ("two_", np.array([2], I64))]
        inits.append(("two", np.array([2], I64)))
    m = model(nodes, [("x", np.float32, ["N", "L", 3])], outs, inits, opset=opset)
    lengths = (4, 8) if form == "equal" else (5, 7)
    _run(m, [{"x": rand(n, length, 3, seed=length)} for n, length in zip((2, 1), lengths)])
