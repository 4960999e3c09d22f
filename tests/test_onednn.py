"""Geometries TensorFlow's kernels compute wrong (docs/onednn.md, tools/onednn_probe.py): konnx
must never emit a layer in one of them, and its conversions there must match onnxruntime on the
TensorFlow build the tests run on (oneDNN on by default in the `tensorflow` wheel on x86).

- oneDNN dense convolution: Conv2D/Conv3D with one input channel whose last spatial axis has a
  single strided output window while another axis slides with stride 1 returns garbage (1e24,
  zeros), for 'same' and 'valid' alike. konnx uses stride 1 on single-window axes (exact).
- Without oneDNN, TensorFlow's 3D convolution / pooling kernels shift 'same' windows where the
  kernel is shorter than the stride (negative SAME total). konnx pads explicitly there.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper

import konnx
from konnx import padding as P
from konnx.padding_explain import explain
from tests.util import make_model, rand, run_keras, run_ort, tolerance

SETTINGS = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ the pure predicates

def test_single_window_axes_and_their_exact_rewrite():
    # 6x1 input, 3x2 kernel, strides (1, 2), SAME_UPPER pads: one window along the width
    pads = [P.tf_same_pads(6, 3, 1), P.tf_same_pads(1, 2, 2)]
    assert P.single_window_strided_axes([6, 1], [3, 2], [1, 2], [1, 1], pads) == [1]
    strides, new_pads, axes = P.single_window_geometry([6, 1], [3, 2], [1, 2], [1, 1], pads)
    assert axes == [1] and strides == [1, 1] and new_pads == [(1, 1), (0, 1)]
    # 'valid' with an input longer than the one window: the rest is cropped
    strides, new_pads, _ = P.single_window_geometry([5, 7], [3, 4], [1, 4], [1, 1], [(0, 0), (0, 0)])
    assert strides == [1, 1] and new_pads == [(0, 0), (0, -3)]
    assert P.single_window_strided_axes([None, 7], [3, 3], [2, 2], [1, 1], [(0, 0), (0, 0)]) == []


@given(st.integers(1, 9), st.integers(1, 5), st.integers(2, 5), st.integers(1, 3), st.integers(0, 3), st.integers(0, 3))
@settings(max_examples=300, derandomize=True, database=None)
def test_single_window_rewrite_reads_the_same_positions(size, kernel, stride, dilation, before, after):
    """The rewritten axis has one window starting at the same input position (-before) and
    covering the same taps: same function, whatever the build."""
    eff = P.effective_kernel(kernel, dilation)
    if size + before + after < eff:
        return
    single = P.conv_out_size(size, kernel, stride, dilation, (before, after)) == 1
    strides, pads, axes = P.single_window_geometry([size], [kernel], [stride], [dilation], [(before, after)])
    assert (axes == [0]) == single
    if single:
        assert strides == [1] and pads[0][0] == before
        assert P.conv_out_size(size, kernel, 1, dilation, pads[0]) == 1


def test_eigen_unsafe_same_is_3d_kernel_shorter_than_stride():
    assert P.unclamped_same_total(3, 1, 3) == -2 and P.tf_same_pads(3, 1, 3) == (0, 0)
    assert P.eigen_unsafe_same([3, 5, 5], [1, 3, 3], [3, 1, 1], [1, 1, 1]) == [0]
    assert P.eigen_unsafe_same([4, 5, 5], [1, 3, 3], [3, 1, 1], [1, 1, 1]) == []  # total 0
    assert P.eigen_unsafe_same([5, 3], [3, 1], [1, 3], [1, 1]) == []  # 2D kernels clamp
    d = P.decide([3, 5, 5], [1, 3, 3], [3, 1, 1], [1, 1, 1], [(0, 0), (1, 1), (1, 1)])
    assert d.mode == "explicit" and "shorter than the stride" in d.reason


def test_explain_names_konnx_layers_and_why():
    """`konnx padding` shows the layers konnx builds, and says why they differ from the plain ones."""
    ex = explain((6, 1), (11, 4), (1, 4), pads=[5, 1, 5, 2])  # issue 11's geometry, SAME_UPPER pads
    assert ex.keras_layers() == ["Conv2D(..., strides=(1, 1), padding='same')"]
    assert any("one output window" in a for a in ex.advice())
    ex = explain(3, 2, 2)
    assert ex.keras_layers() == ["Cropping1D(cropping=(0, 1))", "Conv1D(..., strides=1, padding='valid')"]
    ex = explain((7, 5, 4), (1, 3, 3), (4, 1, 1), pads=[0, 1, 1, 0, 1, 1])
    assert ex.same_matches and ex.keras_layers()[-1] == "Conv3D(..., padding='valid')"
    assert any("shift the windows" in a for a in ex.to_dict()["advice"])
    assert explain((5, 5), 2, 2).tf_caveats() == []


# ------------------------------------------------ conversions in those geometries vs onnxruntime

def _keras_layers_are_safe(keras_model):
    """No Keras convolution / pooling layer of the model sits in a geometry TensorFlow gets wrong."""
    from keras.src.layers.convolutional.base_conv import BaseConv
    from keras.src.layers.pooling.base_pooling import BasePooling

    for layer in keras_model.layers:
        if not isinstance(layer, (BaseConv, BasePooling)):
            continue
        strides = list(layer.strides)
        outs, ins = list(layer.output.shape[1:-1]), list(layer.input.shape[1:-1])
        kernel = list(getattr(layer, "kernel_size", None) or layer.pool_size)
        dil = list(getattr(layer, "dilation_rate", None) or [1] * len(kernel))
        assert not any(o == 1 and s > 1 for o, s in zip(outs, strides)), (layer.name, outs, strides)
        if layer.padding == "same":
            assert not P.eigen_unsafe_same(ins, kernel, strides, dil), (layer.name, ins, kernel, strides)


def _axis(draw, single_window: bool):
    size = draw(st.integers(1, 8))
    kernel = draw(st.integers(1, 5))
    if single_window:  # one strided window: the kernel covers the padded input
        stride = draw(st.integers(2, 4))
        style = draw(st.sampled_from(["same", "valid", "sym"]))
        if style == "valid":
            size = max(size, kernel)
    else:
        stride = draw(st.sampled_from([1, 1, 2]))
        style = draw(st.sampled_from(["same", "valid", "sym"]))
        size = max(size, kernel) if style == "valid" else size
    same = P.tf_same_pads(size, kernel, stride)
    pads = {"same": same, "valid": (0, 0), "sym": ((kernel - 1) // 2, (kernel - 1) // 2)}[style]
    return size, kernel, stride, pads


@st.composite
def _conv_geometry(draw, nsp):
    axes = [_axis(draw, single_window=False) for _ in range(nsp - 1)] + [_axis(draw, single_window=True)]
    c_out = draw(st.integers(1, 3))
    return axes, c_out


def _conv_model(axes, c_in, c_out, op="Conv"):
    sizes, kernel, strides, pads = zip(*axes)
    flat = [p[0] for p in pads] + [p[1] for p in pads]
    attrs = dict(kernel_shape=list(kernel), strides=list(strides), pads=flat)
    if op == "Conv":
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", **attrs)
        inits = [("w", rand(c_out, c_in, *kernel, seed=1)), ("b", rand(c_out, seed=3))]
    else:
        node = helper.make_node(op, ["x"], ["y"], name="pool", **attrs)
        inits = []
    return make_model([node], [("x", np.float32, [2, c_in, *sizes])], [("y", np.float32, None)], inits)


def _check(model, x):
    result = konnx.convert_detailed(model)
    ref, got = run_ort(model, {"x": x})[0], run_keras(result.model, {"x": x}, model)[0]
    assert ref.shape == got.shape, (ref.shape, got.shape)
    err = float(np.max(np.abs(ref - got))) if ref.size else 0.0
    assert err <= tolerance(ref), (err, result.decisions)
    _keras_layers_are_safe(result.model)
    return result


def _valid(axes):
    return all(P.conv_out_size(n, k, s, 1, p) >= 1 and n + sum(p) >= k for n, k, s, p in axes)


@SETTINGS
@given(_conv_geometry(2))
def test_conv2d_one_channel_single_strided_window_matches_ort(geom):
    axes, c_out = geom
    if _valid(axes):
        _check(_conv_model(axes, 1, c_out), rand(2, 1, *[a[0] for a in axes], seed=2))


@settings(SETTINGS, max_examples=25)
@given(_conv_geometry(3))
def test_conv3d_one_channel_single_strided_window_matches_ort(geom):
    axes, c_out = geom
    if _valid(axes):
        _check(_conv_model(axes, 1, c_out), rand(2, 1, *[a[0] for a in axes], seed=2))


def test_the_issue_example_and_the_report_reason():
    """6x1 input, 6x2 kernel dilated to 11x4, strides (1, 4), SAME_UPPER (issue 11), and a
    one-channel 2D conv whose width has one strided window: both match onnxruntime, and the
    decision says why the stride became 1."""
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 2], strides=[1, 2],
                            auto_pad="SAME_UPPER")
    model = make_model([node], [("x", np.float32, [2, 1, 6, 1])], [("y", np.float32, None)],
                       [("w", rand(2, 1, 3, 2, seed=1))])
    result = _check(model, rand(2, 1, 6, 1, seed=2))
    (d,) = [d for d in result.decisions if d["node"] == "conv"]
    assert "one output window: stride 1" in d["reason"] and d["strides"] == [1, 2]
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[6, 2], strides=[1, 4],
                            dilations=[2, 3], pads=[5, 1, 5, 2])  # = SAME_UPPER (onnxruntime refuses
    # auto_pad with dilations)
    model = make_model([node], [("x", np.float32, [2, 1, 6, 1])], [("y", np.float32, None)],
                       [("w", rand(1, 1, 6, 2, seed=1))])
    _check(model, rand(2, 1, 6, 1, seed=2))


@pytest.mark.parametrize("op", ["Conv", "MaxPool", "AveragePool"])
def test_3d_same_with_kernel_shorter_than_stride_is_explicit(op):
    """Pads equal to Keras 'same' on every axis, but a kernel of 1 with stride 4 on a length-7
    axis (SAME total -2): 'same' would be exact by the formula, and is wrong on TensorFlow
    without oneDNN (windows start one position late)."""
    axes = [(7, 1, 4, (0, 0)), (5, 3, 1, (1, 1)), (4, 3, 1, (1, 1))]
    c_in = 2
    model = _conv_model(axes, c_in, 2, op)
    result = _check(model, rand(2, c_in, 7, 5, 4, seed=2) - 0.5)
    (d,) = result.decisions
    assert d["decision"] != "same" and "shorter than the stride" in d["reason"], d


@pytest.mark.parametrize("strides", [[1, 2], [3, 1], [2, 2]])
def test_depthwise_with_unequal_strides_is_a_grouped_conv(strides):
    """TensorFlow without oneDNN refuses DepthwiseConv2D with unequal strides (the probe's
    'refused' rows): konnx builds a grouped Conv2D there, which every build runs."""
    import keras

    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3], strides=strides,
                            pads=[1, 1, 1, 1], group=3)
    model = make_model([node], [("x", np.float32, [2, 3, 7, 8])], [("y", np.float32, None)],
                       [("w", rand(6, 1, 3, 3, seed=1))])
    result = _check(model, rand(2, 3, 7, 8, seed=2))
    depthwise = [layer for layer in result.model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert all(layer.strides[0] == layer.strides[1] for layer in depthwise)
    assert bool(depthwise) == (strides[0] == strides[1])


# ------------------------------------- the probe's numpy reference is onnxruntime's function

def _probe_module():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "onednn_probe.py")
    spec = importlib.util.spec_from_file_location("onednn_probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@st.composite
def _probe_geometry(draw):
    nsp = draw(st.integers(1, 3))
    axes = []
    for _ in range(nsp):
        size, kernel, stride = draw(st.integers(1, 7)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
        axes.append((size, kernel, stride, 1 if stride > 1 else draw(st.integers(1, 2))))
    return axes, draw(st.sampled_from(["same", "valid"]))


@settings(SETTINGS, max_examples=30)
@given(_probe_geometry())
def test_probe_reference_matches_onnxruntime(geom):
    """tools/onednn_probe.py judges TensorFlow by its numpy reference: Conv (dense and depthwise),
    MaxPool and AveragePool (padding not counted, as in Keras 'same') must equal onnxruntime's."""
    probe = _probe_module()
    axes, padding = geom
    sizes, kernel, strides, dils = ([a[i] for a in axes] for i in range(4))
    pads = [probe.same_pads(*a) if padding == "same" else (0, 0) for a in axes]
    if any(n + sum(p) < (k - 1) * d + 1 for (n, k, _, d), p in zip(axes, pads)):
        return
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *sizes, 2)).astype(np.float32)
    w = rng.standard_normal((*kernel, 2, 3)).astype(np.float32)
    flat = [p[0] for p in pads] + [p[1] for p in pads]
    geo = dict(kernel_shape=kernel, strides=strides, pads=flat)
    x_onnx = np.moveaxis(x, -1, 1)
    dw = w[..., :1]  # depthwise: k..., C = 2, multiplier 1
    cases = [("Conv", dict(dilations=dils), np.moveaxis(w, (-1, -2), (0, 1)), probe.ref_conv(x, w, strides, dils, pads)),
             ("Conv", dict(dilations=dils, group=2), np.moveaxis(dw, (-2, -1), (0, 1)),  # ONNX 2, 1, k...
              probe.ref_depthwise(x, dw, strides, dils, pads))]
    if all(d == 1 for d in dils) and all(max(p) < k for p, k in zip(pads, kernel)):  # onnxruntime's limits
        cases += [("MaxPool", {}, None, probe.ref_pool(x, kernel, strides, pads, "max")),
                  ("AveragePool", dict(count_include_pad=0), None, probe.ref_pool(x, kernel, strides, pads, "avg"))]
    for op, attrs, weight, want in cases:
        inits = [("w", np.ascontiguousarray(weight))] if weight is not None else []
        spelled = dict(geo)
        if padding == "same" and all(d == 1 for d in dils) and all(k >= s for k, s in zip(kernel, strides)):
            del spelled["pads"]  # onnxruntime's own SAME_UPPER checks the probe's same_pads too
            spelled["auto_pad"] = "SAME_UPPER"
        node = helper.make_node(op, ["x"] + [n for n, _ in inits], ["y"], **spelled, **attrs)
        model = make_model([node], [("x", np.float32, list(x_onnx.shape))], [("y", np.float32, None)], inits)
        ref = np.moveaxis(run_ort(model, {"x": x_onnx})[0], 1, -1)
        assert ref.shape == want.shape, (op, ref.shape, want.shape)
        np.testing.assert_allclose(want, ref, rtol=0, atol=tolerance(ref), err_msg=f"{op} {axes} {padding}")
