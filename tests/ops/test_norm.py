"""Normalizations against onnxruntime, in ONNX layout and channels-last."""
import numpy as np
import onnx
import pytest
from onnx import helper

import konnx
from konnx.errors import ConversionError
from konnx.errors import UnsupportedOpError
from tests.ops.math_util import check, check_roundtrip
from tests.util import make_model, rand


def _bn_stats(c, seed=1, shape=None):
    shape = shape or [c]
    return [("scale", rand(*shape, seed=seed)), ("bias", rand(*shape, seed=seed + 1)),
            ("mean", rand(*shape, seed=seed + 2)), ("var", np.abs(rand(*shape, seed=seed + 3)) + 0.1)]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [[4, 3], [2, 3, 7], [2, 3, 4, 5], [2, 3, 2, 3, 4]], ids=["r2", "r3", "r4", "r5"])
@pytest.mark.parametrize("opset", [7, 9, 14, 15])
def test_batch_norm(opset, shape, channels_last):
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], epsilon=1e-3)
    m = make_model([node], [("x", np.float32, shape)], [("y", np.float32, None)], _bn_stats(shape[1]), opset=opset)
    check(m, {"x": rand(*shape)}, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norm_per_activation_opset7(channels_last):
    shape = [2, 3, 4, 5]
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], spatial=0)
    m = make_model([node], [("x", np.float32, shape)], [("y", np.float32, None)],
                   _bn_stats(3, shape=[3, 4, 5]), opset=7)
    check(m, {"x": rand(*shape)}, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norm_runtime_stats(channels_last):
    shape = [2, 3, 4, 5]
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"])
    stats = _bn_stats(3)
    m = make_model([node], [("x", np.float32, shape), ("mean", np.float32, [3]), ("var", np.float32, [3])],
                   [("y", np.float32, None)], stats[:2], opset=15)
    check(m, {"x": rand(*shape), "mean": stats[2][1], "var": stats[3][1]}, channels_last)


def test_batch_norm_training_refused():
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], training_mode=1)
    m = make_model([node], [("x", np.float32, [2, 3, 4, 5])], [("y", np.float32, [2, 3, 4, 5])], _bn_stats(3),
                   opset=15)
    # with a single output the model is invalid (training mode needs 3): onnxruntime refuses it
    # too, and konnx's strict shape inference says so before the converter's own refusal
    with pytest.raises(ConversionError, match="(?i)training_mode"):
        konnx.convert(m)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [[2, 3, 7], [2, 3, 4, 5]], ids=["r3", "r4"])
@pytest.mark.parametrize("const", [True, False])
def test_instance_norm(shape, const, channels_last):
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-4)
    s, b = rand(3, seed=2), rand(3, seed=3)
    if const:
        m = make_model([node], [("x", np.float32, shape)], [("y", np.float32, None)], [("s", s), ("b", b)])
        feeds = {"x": rand(*shape) * 2 + 1}
    else:
        m = make_model([node], [("x", np.float32, shape), ("s", np.float32, [3]), ("b", np.float32, [3])],
                       [("y", np.float32, None)])
        feeds = {"x": rand(*shape) * 2 + 1, "s": s, "b": b}
    check(m, feeds, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("groups", [1, 3, 6])
@pytest.mark.parametrize("opset", [18, 21])
def test_group_norm(opset, groups, channels_last, monkeypatch):
    if opset < 21:
        # onnx's checker refuses the deprecated GroupNormalization-18 that onnxruntime still runs
        real = onnx.checker.check_model

        def lenient(model, *args, **kwargs):
            try:
                real(model, *args, **kwargs)
            except onnx.checker.ValidationError as e:
                if "deprecated" not in str(e):
                    raise
        monkeypatch.setattr(onnx.checker, "check_model", lenient)
    c = 6
    n = groups if opset < 21 else c
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=groups, epsilon=1e-4)
    # (onnx infers no output shape for this function op: declare it)
    m = make_model([node], [("x", np.float32, [2, c, 4, 5])], [("y", np.float32, [2, c, 4, 5])],
                   [("s", rand(n, seed=2)), ("b", rand(n, seed=3))], opset=opset)
    check(m, {"x": rand(2, c, 4, 5)}, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_layer_norm(axis, bias, channels_last):
    shape = [2, 3, 4, 5]
    pshape = shape[axis:]
    ins = ["x", "s"] + (["b"] if bias else [])
    inits = [("s", rand(*pshape, seed=2))] + ([("b", rand(*pshape, seed=3))] if bias else [])
    node = helper.make_node("LayerNormalization", ins, ["y"], axis=axis, epsilon=1e-3)
    m = make_model([node], [("x", np.float32, shape)], [("y", np.float32, None)], inits, opset=17)
    check(m, {"x": rand(*shape)}, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
def test_layer_norm_stats_outputs_and_runtime_scale(channels_last):
    shape = [2, 3, 4, 5]
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y", "mean", "inv"], axis=2)
    m = make_model([node], [("x", np.float32, shape), ("s", np.float32, [4, 5])],
                   [("y", np.float32, None), ("mean", np.float32, None), ("inv", np.float32, None)],
                   [("b", rand(5, seed=3))], opset=17)
    check(m, {"x": rand(*shape), "s": rand(4, 5, seed=2)}, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("axis", [-1, 1])
def test_rms_norm(axis, channels_last):
    shape = [2, 3, 4, 5]
    node = helper.make_node("RMSNormalization", ["x", "s"], ["y"], axis=axis, epsilon=1e-4)
    m = make_model([node], [("x", np.float32, shape)], [("y", np.float32, None)],
                   [("s", rand(*shape[axis:], seed=2))], opset=23)
    check(m, {"x": rand(*shape)}, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn(size, channels_last):
    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=0.01, beta=0.6, bias=1.5)
    m = make_model([node], [("x", np.float32, [2, 6, 4, 5])], [("y", np.float32, None)], opset=13)
    check(m, {"x": rand(2, 6, 4, 5)}, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("axis", [-1, 1])
def test_lp_norm(axis, p, channels_last):
    x = rand(2, 3, 4, 5)
    x[0, :, 0, :] = 0  # a zero norm along axis 1
    x[1, 0, 1, :] = 0  # and along the last axis
    node = helper.make_node("LpNormalization", ["x"], ["y"], axis=axis, p=p)
    m = make_model([node], [("x", np.float32, [2, 3, 4, 5])], [("y", np.float32, None)], opset=13)
    check(m, {"x": x}, channels_last)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("axes", [None, [1, 2, 3], [2, 3]])
@pytest.mark.parametrize("opset", [9, 13])
def test_mvn(opset, axes, channels_last):
    attrs = {} if axes is None else {"axes": axes}
    node = helper.make_node("MeanVarianceNormalization", ["x"], ["y"], **attrs)
    m = make_model([node], [("x", np.float32, [2, 3, 4, 5])], [("y", np.float32, [2, 3, 4, 5])], opset=opset)
    check(m, {"x": rand(2, 3, 4, 5) * 3 + 1}, channels_last)


def test_roundtrip(tmp_path):
    nodes = [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["a"]),
             helper.make_node("InstanceNormalization", ["a", "scale", "bias"], ["b"]),
             helper.make_node("LayerNormalization", ["b", "ls"], ["c"], axis=-1),
             helper.make_node("LRN", ["c"], ["y"], size=3)]
    m = make_model(nodes, [("x", np.float32, [2, 3, 4, 5])], [("y", np.float32, None)],
                   _bn_stats(3) + [("ls", rand(5, seed=9))], opset=17)
    check_roundtrip(m, {"x": rand(2, 3, 4, 5)}, tmp_path)


@pytest.mark.parametrize("channels_last", [False, True])
def test_dynamic_dims(channels_last):
    shape = ["N", 3, "H", 5]
    nodes = [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["a"]),
             helper.make_node("InstanceNormalization", ["a", "scale", "bias"], ["b"]),
             helper.make_node("LayerNormalization", ["b", "ls"], ["c"], axis=-1),
             helper.make_node("MeanVarianceNormalization", ["c"], ["y"])]
    m = make_model(nodes, [("x", np.float32, shape)], [("y", np.float32, shape)],
                   _bn_stats(3) + [("ls", rand(5, seed=9))], opset=17)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last)


def test_lp_norm_bad_p_refused():
    node = helper.make_node("LpNormalization", ["x"], ["y"], p=3)
    m = make_model([node], [("x", np.float32, [2, 3])], [("y", np.float32, [2, 3])], opset=13)
    with pytest.raises(UnsupportedOpError, match="p=3"):
        konnx.convert(m)
