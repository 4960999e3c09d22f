"""Per-op attribute rules of the spec (konnx/ops/attr_checks.py, issue 14): each bad model is
refused with a konnx error naming the node, the attribute and what the spec allows; onnxruntime
refuses it too; its valid neighbour converts and matches onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx

from ..util import assert_matches_ort, assert_refused_like_ort, make_model, rand, run_ort

F, I64 = np.float32, np.int64


def _one(op, ins, attrs, opset, outs=None, inits=()):
    """One `op` node named 'n'; ins: (name, dtype, shape) graph inputs; inits: (name, array)."""
    names = [n for n, _, _ in ins] + [n for n, _ in inits]
    outs = outs or [("y", F, None)]
    node = helper.make_node(op, names, [o[0] for o in outs], name="n", **attrs)
    model = make_model([node], ins, outs, initializers=inits, opset=opset)
    return model, {n: rand(*s, seed=i).astype(t) for i, (n, t, s) in enumerate(ins)}


def _pad(mode):
    return _one("Pad", [("x", F, [1, 3, 4, 5])], dict(mode=mode), 19,
                inits=[("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], I64))])


def _d2s(mode):
    return _one("DepthToSpace", [("x", F, [1, 8, 2, 3])], dict(blocksize=2, mode=mode), 13)


def _gelu(approximate):
    return _one("Gelu", [("x", F, [3, 4])], dict(approximate=approximate), 20)


def _lstm(direction):
    ins = [("X", F, [3, 1, 2]), ("W", F, [1, 12, 2]), ("R", F, [1, 12, 3])]
    return _one("LSTM", ins, dict(hidden_size=3, direction=direction), 14, outs=[("Y", F, None)])


def _bitshift(direction):
    model = make_model([helper.make_node("BitShift", ["a", "b"], ["y"], name="n", direction=direction)],
                       [("a", np.uint8, [4]), ("b", np.uint8, [4])], [("y", np.uint8, None)], opset=11)
    return model, {"a": np.array([1, 2, 4, 8], np.uint8), "b": np.array([1, 1, 2, 0], np.uint8)}


def _grid_sample(padding_mode):
    return _one("GridSample", [("x", F, [1, 1, 4, 4]), ("g", F, [1, 2, 2, 2])], dict(padding_mode=padding_mode), 16)


def _grid_sample_20(mode):
    # opset 20 renamed the modes: bilinear / bicubic became linear / cubic
    return _one("GridSample", [("x", F, [1, 1, 4, 4]), ("g", F, [1, 2, 2, 2])], dict(mode=mode), 20)


ENUMS = {  # name: (builder, bad value, good value, expected words)
    "pad_mode_empty": (_pad, "", "edge", "mode='': the spec (opset 19) allows 'constant', 'reflect', 'edge', 'wrap'"),
    "pad_mode_bogus": (_pad, "bogus", "reflect", "mode='bogus'"),
    "depth_to_space_mode": (_d2s, b"\xff\xfe", "CRD", "mode='\\\\xff\\\\xfe': the spec (opset 13) allows 'DCR', 'CRD'"),
    "gelu_approximate": (_gelu, "bogus", "tanh", "approximate='bogus': the spec (opset 20) allows 'none', 'tanh'"),
    "lstm_direction": (_lstm, "sideways", "reverse", "direction='sideways'"),
    "bitshift_direction": (_bitshift, "UP", "LEFT", "direction='UP': the spec (opset 11) allows 'LEFT', 'RIGHT'"),
    "grid_sample_padding": (_grid_sample, "wrap", "border", "padding_mode='wrap'"),
    "grid_sample_mode_renamed": (_grid_sample_20, "bilinear", "linear",
                                 "mode='bilinear': the spec (opset 20) allows 'linear', 'nearest', 'cubic'"),
}


@pytest.mark.parametrize("name", sorted(ENUMS))
def test_enumerated_string_attribute(name):
    build, bad, good, expect = ENUMS[name]
    assert_refused_like_ort(build(bad), build(good), expect)


def _mod(fmod, opset=28, dtype=F):
    model = make_model([helper.make_node("Mod", ["a", "b"], ["y"], name="n", fmod=fmod)],
                       [("a", dtype, [6]), ("b", dtype, [6])], [("y", dtype, None)], opset=opset)
    return model, {"a": np.array([5, -5, 3, -3, 7, 0], dtype), "b": np.array([3, 3, -2, -2, 4, 2], dtype)}


@pytest.mark.parametrize("fmod", [2, -1, 2**31])
def test_mod_fmod_is_a_flag(fmod):
    assert_refused_like_ort(_mod(fmod), _mod(1), f"fmod={fmod}: the spec allows only 0 or 1")


def test_mod_float_floor_needs_opset_28():
    # Mod-13: "If the input type is floating point, then fmod attribute must be set to 1";
    # onnxruntime refuses it when run, and runs the same model at opset 28, which defines it
    assert_refused_like_ort(_mod(0, opset=13), _mod(1, opset=13), "fmod=0 on float32 inputs: before opset 28")
    assert_matches_ort(*_mod(0, opset=28))
    assert_matches_ort(*_mod(0, opset=13, dtype=np.int64))


def _dequant(block=None, zero_shape=(2, 2), opset=21):
    attrs = dict(axis=1) if block is None else dict(axis=1, block_size=block)
    inits = [("s", rand(2, 2, seed=1) + 1.0), ("z", np.zeros(zero_shape, np.uint8))]
    model = make_model([helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], name="n", **attrs)],
                       [("x", np.uint8, [2, 4])], [("y", F, None)], initializers=inits, opset=opset)
    return model, {"x": np.arange(8, dtype=np.uint8).reshape(2, 4) * 17}


@pytest.mark.parametrize("block,expect", [
    (5, "block_size=5: for an input of 4 along axis 1 and 2 scales, the spec accepts [2, 3]"),
    (1, "block_size=1: for an input of 4 along axis 1 and 2 scales, the spec accepts [2, 3]"),
    (-2, "block_size=-2: the spec wants a positive block size")])
def test_blocked_quantization_block_size(block, expect):
    assert_refused_like_ort(_dequant(block), _dequant(2), expect)


def _dequant_axis(n, opset=13):
    inits = [("s", rand(n, seed=1) + 1.0), ("z", np.zeros(n, np.uint8))]
    model = make_model([helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], name="n", axis=1)],
                       [("x", np.uint8, [2, 4])], [("y", F, None)], initializers=inits, opset=opset)
    return model, {"x": np.arange(8, dtype=np.uint8).reshape(2, 4) * 17}


@pytest.mark.parametrize("opset", [13, 21])
def test_per_axis_scale_length(opset):
    assert_refused_like_ort(_dequant_axis(3, opset), _dequant_axis(4, opset),
                            "the scale has 3 entries: per-axis quantization wants one per entry of axis 1 (4)")
    assert_matches_ort(*_dequant_axis(1, opset))


def test_blocked_scale_shape():
    def m(scale_rows):
        inits = [("s", rand(scale_rows, 2, seed=1) + 1.0)]
        model = make_model([helper.make_node("DequantizeLinear", ["x", "s"], ["y"], name="n", axis=1, block_size=2)],
                           [("x", np.uint8, [2, 4])], [("y", F, None)], initializers=inits, opset=21)
        return model, {"x": np.arange(8, dtype=np.uint8).reshape(2, 4) * 17}
    assert_refused_like_ort(m(3), m(2), "the scale has shape [3, 2] for an input of shape [2, 4]: blocked")


def test_quantization_scale_and_zero_point_shapes():
    assert_refused_like_ort(_dequant(2, zero_shape=(2, 1, 2)), _dequant(2),
                            "the scale has shape [2, 2] and the zero point [2, 1, 2]: the spec wants them of the same shape")


def _roi_align(opset=16, **attrs):
    ins = [("X", F, [1, 1, 10, 10]), ("rois", F, [2, 4])]
    attrs = dict(output_height=3, output_width=3, sampling_ratio=2) | attrs
    model = make_model([helper.make_node("RoiAlign", ["X", "rois", "bi"], ["y"], name="n", **attrs)], ins,
                       [("y", F, None)], initializers=[("bi", np.array([0, 0], I64))], opset=opset)
    return model, {"X": rand(1, 1, 10, 10), "rois": np.array([[0, 0, 5, 5], [1, 2, 8, 9]], F)}


@pytest.mark.parametrize("attrs,expect", [
    (dict(spatial_scale=float("nan")), "spatial_scale=nan: must be finite"),
    (dict(output_width=2**31), "above konnx's budget")])
def test_roi_align_values_konnx_cannot_sample(attrs, expect):
    # onnxruntime has no RoiAlign-22 kernel, and the reference implementation fails on both (int(nan),
    # a 2**31-wide output): konnx refuses them with its reason instead of failing when run
    model, _ = _roi_align(opset=22, **attrs)
    with pytest.raises(konnx.UnsupportedOpError, match="'n'") as info:
        konnx.convert(model)
    assert expect in str(info.value), str(info.value)


def test_quantize_saturates_beyond_int32():
    # the spec's y = saturate(x / scale + zero_point): +inf and quotients beyond int32 give the
    # type's maximum, as onnxruntime's opset-21 kernels do (the reference implementation casts
    # the quotient to int32 first, so they wrap to INT32_MIN and clip to the type's minimum)
    x = np.array([np.inf, 3e38, -3e38, -np.inf, 1e10, -1e10, 2.5, -7.0], F)
    for zt in (np.uint8, np.int8, np.uint16, np.int16):
        model = make_model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="n")],
                           [("x", F, [8])], [("y", zt, None)],
                           initializers=[("s", np.array(2.0, F)), ("z", np.array(3, zt))], opset=21)
        assert_matches_ort(model, {"x": x})


# --- valid per the spec, refused by onnxruntime's kernels: konnx gives the reference's outputs
# (each is listed with its reason in tests/fuzz/known.py)

def _assert_ort_refuses_reference_matches(model, feeds, ort_says):
    from onnx.reference import ReferenceEvaluator

    with pytest.raises(Exception, match=ort_says):
        run_ort(model, feeds)
    ref = ReferenceEvaluator(model).run(None, feeds)
    names = [i.name for i in model.graph.input if i.name in feeds]
    got = konnx.convert(model)([feeds[n] for n in names] if len(names) > 1 else feeds[names[0]])
    got = got if isinstance(got, (list, tuple)) else [got]
    assert len(got) == len(ref)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(r, np.float64), rtol=1e-3, atol=1e-4)


def test_cast_saturate_outside_float8_is_ignored():
    # saturate "only applies for float 8 conversion"; onnxruntime refuses it on other targets
    model = make_model([helper.make_node("Cast", ["x"], ["y"], name="n", to=10, saturate=0)],
                       [("x", np.float64, [5])], [("y", np.float16, None)], opset=21)
    feeds = {"x": np.array([1.5, -7e4, 7e4, np.inf, 0.1], np.float64)}
    _assert_ort_refuses_reference_matches(model, feeds, "saturate is only used for cast to float 8")


def test_attention_with_value_of_another_float_type():
    # Q and K are of type T1, V of type T2: separate type parameters; onnxruntime has no kernel
    # for T1 != T2 and refuses the model (its function body's MatMul binds one type)
    node = helper.make_node("Attention", ["Q", "K", "V"], ["Y"], name="n")
    ins = [("Q", F, [2, 3, 4, 8]), ("K", F, [2, 3, 6, 8]), ("V", np.float16, [2, 3, 6, 8])]
    model = make_model([node], ins, [("Y", F, None)], opset=23)
    feeds = {n: rand(*s, seed=i).astype(t) for i, (n, t, s) in enumerate(ins)}
    _assert_ort_refuses_reference_matches(model, feeds, "bound to different types")
