"""Float edge semantics of single ops as the ONNX spec's arithmetic gives them, judged by the
reference implementation (onnx.reference.ReferenceEvaluator) and onnxruntime where it agrees
(issue 14, item 4): half-precision activations and normalizations computed in float32
(float attributes are float32), DynamicQuantizeLinear / QuantizeLinear on NaN and inf, Unique with NaN (numpy's
order), Softmax rows holding NaN or +inf, GridSample far outside the image."""
from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import torch
from onnx import helper
from onnx.reference import ReferenceEvaluator

import konnx
from tests.fuzz.worker import agree
from tests.util import make_model, reserialized, run_keras, run_ort

NAN, INF = np.nan, np.inf


def _reference(model, feeds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]


def _konnx(model, feeds):
    km = konnx.convert(model)
    got = run_keras(km, feeds, model)
    for label, again in reserialized(km):
        assert agree(got, run_keras(again, feeds, model)), label
    return km, got


def _assert_exact(ref, got, what):
    assert len(ref) == len(got), what
    for i, (r, g) in enumerate(zip(ref, got)):
        assert r.shape == g.shape, f"{what}, output {i}: shape {g.shape}, expected {r.shape}"
        np.testing.assert_array_equal(g.astype(np.float64), r.astype(np.float64), err_msg=f"{what}, output {i}")


# ----------------------------------------------------------------------------- float16 activations
_X16 = np.array([-65504, -3, -0.5, -1e-4, 0, 1e-4, 0.1, 0.5, 3, 11, 65504, INF, -INF, NAN], np.float16)
HALF_CASES = [  # (op, attributes, opset)
    ("Celu", {"alpha": -1e-30}, 28), ("Celu", {"alpha": 1e-30}, 28), ("Celu", {"alpha": 0.3}, 28),
    ("Elu", {"alpha": 1e-30}, 22), ("Elu", {"alpha": 7e4}, 22), ("Selu", {"alpha": 1.7, "gamma": 7e4}, 22),
    ("LeakyRelu", {"alpha": 1e-30}, 16), ("LeakyRelu", {"alpha": 7e4}, 16),
    ("HardSigmoid", {"alpha": 1e-30, "beta": 0.5}, 22), ("HardSigmoid", {"alpha": 0.1, "beta": 1e-8}, 22),
    ("ThresholdedRelu", {"alpha": 0.1}, 22), ("ThresholdedRelu", {"alpha": 1e-30}, 22),
    ("Shrink", {"lambd": 1e-30, "bias": 7e4}, 9), ("Shrink", {"lambd": 0.1, "bias": 1e-8}, 9),
]


@pytest.mark.parametrize("op,attrs,opset", HALF_CASES)
def test_float16_activation_computed_in_float32(op, attrs, opset):
    """A float attribute is float32: rounded to float16 first, alpha=1e-30 becomes 0 and e.g.
    x / alpha inf or NaN where float32 arithmetic (onnxruntime, the reference) is finite.
    konnx agrees with onnxruntime, or with the reference where onnxruntime deviates (Celu:
    onnxruntime gives 0 where alpha * expm1(x / alpha) is -inf); the reference alone is no
    judge for LeakyRelu (it computes x * float16(alpha-or-1), NaN for inf * 0)."""
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    m = make_model([node], [("x", np.float16, [_X16.size])], [("y", np.float16, None)], opset=opset)
    feeds = {"x": _X16}
    _, got = _konnx(m, feeds)
    assert got[0].dtype == np.float16
    ort_y, ref = run_ort(m, feeds), _reference(m, feeds)
    assert agree(ort_y, got) or agree(ref, got), f"konnx {got[0]}, onnxruntime {ort_y[0]}, reference {ref[0]}"


NORM_CASES = [  # (op, inputs after x as (name, per-channel or per-feature length, fill), attributes, opset)
    ("LayerNormalization", [("s", 4, 1.0), ("b", 4, 0.0)], {"axis": -1}, 17),
    ("InstanceNormalization", [("s", 3, 1.0), ("b", 3, 0.0)], {}, 17),
    ("BatchNormalization", [("s", 3, 1.0), ("b", 3, 0.0), ("mu", 3, 0.0), ("var", 3, 0.0)], {}, 15),
    ("RMSNormalization", [("s", 4, 1.0)], {"axis": -1}, 23),
    ("GroupNormalization", [("s", 3, 1.0), ("b", 3, 0.0)], {"num_groups": 3}, 21),
]


@pytest.mark.parametrize("epsilon", [1e-30, 7e4])
@pytest.mark.parametrize("op,params,attrs,opset", NORM_CASES, ids=[c[0] for c in NORM_CASES])
def test_float16_normalization_epsilon_in_float32(op, params, attrs, opset, epsilon):
    """epsilon=1e-30 is 0 in float16 (a constant row then gives 0 / 0 = NaN where onnxruntime
    and the reference give 0) and 7e4 is inf (everything 0)."""
    x = np.random.default_rng(7).standard_normal((2, 3, 4)).astype(np.float16)
    x[1] = 1.0
    node = helper.make_node(op, ["x"] + [p[0] for p in params], ["y"], epsilon=epsilon, **attrs)
    inits = [(name, np.full(n, fill, np.float16)) for name, n, fill in params]
    m = make_model([node], [("x", np.float16, [2, 3, 4])], [("y", np.float16, None)], inits, opset=opset)
    feeds = {"x": x}
    _, got = _konnx(m, feeds)
    ort_y, ref = run_ort(m, feeds), _reference(m, feeds)
    assert agree(ort_y, got) or agree(ref, got), f"konnx {got[0]}, onnxruntime {ort_y[0]}, reference {ref[0]}"


@pytest.mark.parametrize("mode", ["cubic", "linear"])
def test_float16_resize_weighs_in_float32(mode):
    """float16 cubic weights need not sum to 1: a constant image of 300 came out 300.5
    (onnxruntime weighs in float32 and rounds once)."""
    x = (np.random.default_rng(8).standard_normal((2, 3, 4, 4)) * 300).astype(np.float16)
    x[1] = 300
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], mode=mode, cubic_coeff_a=-0.5)
    m = make_model([node], [("x", np.float16, [2, 3, 4, 4])], [("y", np.float16, None)],
                   [("s", np.array([1, 1, 1.5, 0.75], np.float32))], opset=19)
    _, got = _konnx(m, {"x": x})
    assert agree(run_ort(m, {"x": x}), got)
    assert np.all(got[0][1] == np.float16(300))


# ----------------------------------------------------------------------------- quantization
DQL_INPUTS = [
    [0, 2, -3, NAN, 1.34, 0.5],        # NaN: scale NaN, zero point saturates to 255, y 0
    [-INF, 2, -3, -2.5, 1.34, 0.5],    # scale inf, zero point inf / inf = NaN -> 255
    [1, -INF, 3e38, 2.5, 3.34, 4],
    [INF, 1, 2, 3, 4, 5],
    [0, 0, 0, 0, 0, 0],                # max == min: scale 1 / 255 (the reference)
    [-1, -2, -3, -4, -5, -6],
    [3e38, -3e38, 1, 0, -1, 2],        # max - min overflows to inf
]


@pytest.mark.parametrize("values", DQL_INPUTS, ids=range(len(DQL_INPUTS)))
def test_dynamic_quantize_linear_edges(values):
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    m = make_model([node], [("x", np.float32, [6])],
                   [("y", np.uint8, [6]), ("s", np.float32, []), ("z", np.uint8, [])], opset=11)
    feeds = {"x": np.array(values, np.float32)}
    _assert_exact(_reference(m, feeds), _konnx(m, feeds)[1], "DynamicQuantizeLinear vs the reference")


@pytest.mark.parametrize("qtype,zero", [(np.uint8, 128), (np.int8, 3), (np.int8, -128)])
def test_quantize_linear_nan_and_saturation(qtype, zero):
    """NaN saturates to the type's low end and inf or huge values to their end, as onnxruntime
    gives them (the reference casts NaN and overflowing values with numpy, platform-defined)."""
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    m = make_model([node], [("x", np.float32, [7])], [("y", qtype, [7])],
                   [("s", np.array(0.5, np.float32)), ("z", np.array(zero, qtype))], opset=19)
    feeds = {"x": np.array([NAN, INF, -INF, 1e30, -1e30, 1.25, -7.75], np.float32)}
    np.testing.assert_array_equal(_konnx(m, feeds)[1][0], run_ort(m, feeds)[0])


# ----------------------------------------------------------------------------- Unique
UNIQUE_CASES = [  # (axis, values)
    (None, [2, 1, NAN, 3, 4, 3]),
    (None, [NAN, NAN, 1, -INF, INF, NAN, 0.0, -0.0, 1]),
    (0, [[1, NAN], [1, NAN], [0, 1], [1, 2], [1, 2], [NAN, 0], [INF, 0], [NAN, -1]]),
    (1, [[[1, 1], [3e38, 0], [2, 1], [1e-3, NAN]], [[1, 1], [0, 1], [2, 1], [0, 1]]]),
    (-1, [[1, NAN, 1, 0, NAN], [2, 3, 2, 0, 3]]),
]


@pytest.mark.parametrize("sort", [1, 0])
@pytest.mark.parametrize("axis,values", UNIQUE_CASES, ids=range(len(UNIQUE_CASES)))
def test_unique_with_nan_as_numpy(axis, values, sort):
    """numpy.unique's NaN: sorted last; without axis one NaN element (counted), with axis a row
    holding NaN equals no other row and counts 1."""
    if not sort and axis not in (None, 0):
        pytest.skip("the reference's unsorted Unique takes rows along axis 0 whatever the axis")
    x = np.array(values, np.float32)
    attrs = {"sorted": sort} if axis is None else {"sorted": sort, "axis": axis}
    node = helper.make_node("Unique", ["x"], ["y", "i", "inv", "c"], **attrs)
    m = make_model([node], [("x", np.float32, list(x.shape))],
                   [("y", np.float32, None), ("i", np.int64, None), ("inv", np.int64, None), ("c", np.int64, None)],
                   opset=11)
    feeds = {"x": x}
    ref, got = _reference(m, feeds), _konnx(m, feeds)[1]
    for i, (r, g) in enumerate(zip(ref, got)):
        np.testing.assert_array_equal(g, r, err_msg=f"output {i}")


# ----------------------------------------------------------------------------- Softmax
SOFTMAX_ROWS = np.array([[-1, NAN, 1, 0], [-1, INF, 1, 0], [-INF, -INF, -INF, -INF], [-INF, 0, 1, -INF],
                         [3e38, 3e38, -3e38, 0], [1, 2, 3, 4], [INF, INF, 0, 0], [NAN, NAN, NAN, NAN]], np.float32)


@pytest.mark.parametrize("shape,axis", [((8, 4), -1), ((2, 4, 4), 1), ((2, 3, 4, 4), -1), ((2, 4, 3, 4), 1)])
def test_softmax_rows_with_nan_or_inf(shape, axis):
    """The spec's exp(x - max) / sum is NaN on a whole row holding NaN or +inf (or only -inf):
    Keras' Softmax gives 0 beside the NaN there. konnx keeps the Keras layer and matches both
    oracles."""
    x = np.random.default_rng(len(shape) + axis).standard_normal(shape).astype(np.float32)
    moved = np.moveaxis(x, axis, -1)
    flat = moved.reshape(-1, 4)
    flat[:SOFTMAX_ROWS.shape[0]] = SOFTMAX_ROWS[:flat.shape[0]]
    x = np.ascontiguousarray(np.moveaxis(flat.reshape(moved.shape), -1, axis))
    node = helper.make_node("Softmax", ["x"], ["y"], axis=axis)
    m = make_model([node], [("x", np.float32, list(shape))], [("y", np.float32, None)], opset=13)
    feeds = {"x": x}
    km, got = _konnx(m, feeds)
    classes = {type(layer).__name__ for layer in km.layers}
    assert any(isinstance(layer, keras.layers.Softmax) for layer in km.layers) and "SoftmaxNaNRows" in classes
    ref = _reference(m, feeds)
    assert agree(ref, got), "konnx vs the reference"
    assert agree(run_ort(m, feeds), got), "konnx vs onnxruntime"


# ----------------------------------------------------------------------------- GridSample
def _grid():
    rng = np.random.default_rng(3)
    g = rng.uniform(-1, 1, (1, 3, 5, 2)).astype(np.float32)
    g[0, 0] = [[0.3, 1e30], [-1e30, 0.2], [5.0, 0.1], [-1.7, -1.2], [1e30, -1e30]]
    return g


@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("mode", ["linear", "cubic", "nearest"])
def test_grid_sample_far_outside_reads_zeros(mode, align):
    """With zeros padding a coordinate far outside reads 0 (every tap is padding): 1e30 gave
    inf - inf = NaN weights. The reference and PyTorch agree on finite coordinates; an inf
    coordinate (where the reference fails and PyTorch's weights are NaN) reads 0 as 1e30 does."""
    x = np.random.default_rng(4).standard_normal((1, 2, 3, 4)).astype(np.float32)
    g = _grid()
    node = helper.make_node("GridSample", ["x", "g"], ["y"], mode=mode, padding_mode="zeros", align_corners=align)
    m = make_model([node], [("x", np.float32, x.shape), ("g", np.float32, g.shape)], [("y", np.float32, None)],
                   opset=20)
    km, got = _konnx(m, {"x": x, "g": g})
    assert agree(_reference(m, {"x": x, "g": g}), got), "konnx vs the reference"
    tmode = {"linear": "bilinear", "cubic": "bicubic"}.get(mode, mode)
    torch_y = torch.nn.functional.grid_sample(torch.from_numpy(x), torch.from_numpy(g), mode=tmode,
                                              padding_mode="zeros", align_corners=bool(align)).numpy()
    assert agree([torch_y], got), "konnx vs PyTorch"
    g_inf = np.where(np.abs(g) >= 1e30, np.sign(g) * INF, g).astype(np.float32)
    assert agree(got, run_keras(km, {"x": x, "g": g_inf}, m)), "an inf coordinate reads as 1e30 does"


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_grid_sample_nan_coordinate_propagates(mode):
    """No sampling point: NaN in that output only (PyTorch agrees; the reference fails)."""
    x = np.random.default_rng(5).standard_normal((1, 1, 3, 4)).astype(np.float32)
    g = np.random.default_rng(6).uniform(-1, 1, (1, 2, 3, 2)).astype(np.float32)
    g[0, 1, 2, 0] = NAN
    node = helper.make_node("GridSample", ["x", "g"], ["y"], mode=mode, padding_mode="zeros")
    m = make_model([node], [("x", np.float32, x.shape), ("g", np.float32, g.shape)], [("y", np.float32, None)],
                   opset=20)
    got = _konnx(m, {"x": x, "g": g})[1]
    torch_y = torch.nn.functional.grid_sample(torch.from_numpy(x), torch.from_numpy(g),
                                              mode={"linear": "bilinear"}.get(mode, "bicubic"),
                                              padding_mode="zeros", align_corners=False).numpy()
    assert np.isnan(got[0][0, 0, 1, 2]) and np.isnan(got[0]).sum() == 1
    assert agree([torch_y], got)
