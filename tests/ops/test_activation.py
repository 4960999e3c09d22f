"""Activations against onnxruntime, in ONNX layout and channels-last."""
import numpy as np
import pytest
from onnx import helper

from tests.ops.math_util import check, check_roundtrip
from tests.util import make_model, rand

X = [2, 3, 4, 5]


def _model(op, opset=17, shape=X, dtype=np.float32, inits=(), extra_inputs=(), **attrs):
    ins = ["x"] + [n for n, _ in inits] + [n for n, _, _ in extra_inputs]
    node = helper.make_node(op, ins, ["y"], **attrs)
    return make_model([node], [("x", dtype, shape)] + list(extra_inputs), [("y", dtype, None)],
                      list(inits), opset=opset)


CASES = [
    ("Relu", {}, 14), ("LeakyRelu", {}, 16), ("LeakyRelu", {"alpha": 0.3}, 16), ("LeakyRelu", {"alpha": 1.5}, 16),
    ("Elu", {}, 7), ("Elu", {"alpha": 0.5}, 7), ("Selu", {}, 7), ("Selu", {"alpha": 1.2, "gamma": 0.9}, 7),
    ("Celu", {}, 12), ("Celu", {"alpha": 2.0}, 12), ("Sigmoid", {}, 13), ("HardSigmoid", {}, 7),
    ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, 7), ("HardSwish", {}, 14), ("Tanh", {}, 13),
    ("Softplus", {}, 7), ("Softsign", {}, 7), ("Mish", {}, 18), ("Erf", {}, 13),
    ("Gelu", {}, 20), ("Gelu", {"approximate": "tanh"}, 20), ("ThresholdedRelu", {"alpha": 0.5}, 10),
]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("op,attrs,opset", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_activation(op, attrs, opset, channels_last):
    x = rand(*X) * 3
    x[0, 0, 0, :3] = [0.0, 0.5, 1.0]  # boundaries (ThresholdedRelu's alpha, zero)
    check(_model(op, opset, **attrs), {"x": x}, channels_last)


@pytest.mark.parametrize("op,attrs", [("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("Exp", {})])
def test_activation_float64(op, attrs):
    check(_model(op, 14, dtype=np.float64, **attrs), {"x": rand(*X).astype(np.float64)}, True)


SLOPES = {"chan": [3, 1, 1], "last": [5], "scalar": [1], "full": [3, 4, 5]}


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("slope", sorted(SLOPES))
@pytest.mark.parametrize("const", [True, False])
def test_prelu(slope, const, channels_last):
    s = rand(*SLOPES[slope], seed=3)
    if const:
        m = _model("PRelu", 16, inits=[("s", s)])
        feeds = {"x": rand(*X)}
    else:
        m = _model("PRelu", 16, extra_inputs=[("s", np.float32, SLOPES[slope])])
        feeds = {"x": rand(*X), "s": s}
    check(m, feeds, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bounds", [(0.0, 6.0), (-0.5, 0.5), (0.0, None), (None, 0.3), (None, None), (1.0, -1.0)])
@pytest.mark.parametrize("opset", [7, 11, 13])
def test_clip(opset, bounds, channels_last):
    lo, hi = bounds
    if opset < 11 and lo is not None and hi is not None and lo > hi:
        pytest.skip("onnxruntime refuses Clip-6 with min > max")
    if opset < 11:
        attrs = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
        m = _model("Clip", opset, **attrs)
    else:
        inits = [(n, np.array(v, np.float32)) for n, v in (("lo", lo), ("hi", hi)) if v is not None]
        names = ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""]
        while names[-1] == "":
            names.pop()
        node = helper.make_node("Clip", names, ["y"])
        m = make_model([node], [("x", np.float32, X)], [("y", np.float32, None)], inits, opset=opset)
    check(m, {"x": rand(*X) * 3}, channels_last)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_clip_int_and_runtime_bounds(dtype):
    node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"])
    m = make_model([node], [("x", dtype, [2, 6]), ("lo", dtype, []), ("hi", dtype, [])], [("y", dtype, None)],
                   opset=13)
    x = np.arange(-6, 6, dtype=dtype).reshape(2, 6)
    check(m, {"x": x, "lo": np.array(-2, dtype), "hi": np.array(3, dtype)})


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("axis", [None, 1, 2, -1, 0])
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family(op, opset, axis, channels_last):
    attrs = {} if axis is None else {"axis": axis}
    x = np.round(rand(*X) * 2) / 2  # ties for Hardmax
    check(_model(op, opset, **attrs), {"x": x}, channels_last)


def test_softmax_rank3_channels_last():
    check(_model("Softmax", 13, shape=[2, 3, 7], axis=1), {"x": rand(2, 3, 7)}, True)


def test_roundtrip(tmp_path):
    nodes = [helper.make_node("PRelu", ["x", "s"], ["a"]), helper.make_node("Clip", ["a", "lo", "hi"], ["b"]),
             helper.make_node("HardSigmoid", ["b"], ["c"], alpha=0.3),
             helper.make_node("Softmax", ["c"], ["d"], axis=1), helper.make_node("Gelu", ["d"], ["y"])]
    m = make_model(nodes, [("x", np.float32, X)], [("y", np.float32, None)],
                   [("s", rand(3, 1, 1, seed=2)), ("lo", np.array(-1, np.float32)), ("hi", np.array(0.5, np.float32))],
                   opset=20)
    check_roundtrip(m, {"x": rand(*X)}, tmp_path)


@pytest.mark.parametrize("channels_last", [False, True])
def test_dynamic_dims(channels_last):
    nodes = [helper.make_node("PRelu", ["x", "s"], ["a"]), helper.make_node("Softmax", ["a"], ["b"], axis=1),
             helper.make_node("Hardmax", ["b"], ["y"], axis=1)]
    m = make_model(nodes, [("x", np.float32, ["N", 3, "H", 5])], [("y", np.float32, None)],
                   [("s", rand(3, 1, 1, seed=2))], opset=13)
    check(m, {"x": rand(*X)}, channels_last)
