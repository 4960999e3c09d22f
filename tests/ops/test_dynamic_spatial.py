"""Convolutions, pools, Resize, Pad and Slice on dynamic spatial sizes (issue 12: Segformer's
overlapping patch embeddings with dynamic H and W). Each model is converted ONCE with symbolic
H and W and run at two sizes (odd and even) against onnxruntime; the Keras model keeps None for
the dynamic axes."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx

from ..util import assert_matches_ort, make_model

SIZES = ((2, 17, 20), (1, 24, 13))


def _check(m, sizes=SIZES, c=3, extra=None):
    km = konnx.convert(m)
    assert tuple(km.inputs[0].shape) == (None, c, None, None)
    for b, h, w in sizes:
        x = np.random.default_rng(h * w).standard_normal((b, c, h, w)).astype(np.float32)
        feeds = {"x": x}
        if extra:
            feeds.update(extra(b, h, w))
        assert_matches_ort(m, feeds, keras_model=km)
    return km


def _image_model(nodes, inits=(), more_inputs=()):
    return make_model(nodes, [("x", np.float32, ["B", 3, "H", "W"])] + list(more_inputs),
                      [("y", np.float32, None)], inits)


@pytest.mark.parametrize("k,s,p", [(7, 4, 3), (3, 2, 1), (3, 2, 0), (4, 2, 1), (2, 2, 0), (3, 1, 1)])
def test_conv_explicit_pads_dynamic_size(k, s, p):
    w = np.random.default_rng(k).standard_normal((8, 3, k, k)).astype(np.float32)
    m = _image_model([helper.make_node("Conv", ["x", "w"], ["y"], strides=[s, s], pads=[p] * 4)], [("w", w)])
    _check(m)


@pytest.mark.parametrize("auto", ["SAME_UPPER", "SAME_LOWER"])
def test_conv_auto_pad_stride_one_dynamic_size(auto):
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
    m = _image_model([helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto)], [("w", w)])
    _check(m)


@pytest.mark.parametrize("k,s,d", [(3, 2, 1), (4, 2, 1), (1, 2, 1), (5, 3, 1)])  # onnxruntime refuses dilated SAME
def test_conv_same_upper_strided_dynamic_size(k, s, d):
    """SAME_UPPER is TF's 'same' for every size (the odd pad at the end): proven, so allowed."""
    w = np.random.default_rng(k).standard_normal((4, 3, k, k)).astype(np.float32)
    m = _image_model([helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[s, s],
                                       dilations=[d, d])], [("w", w)])
    _check(m, sizes=((2, 17, 20), (1, 24, 13), (1, 5, 6)))


@pytest.mark.parametrize("op,attrs", [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2])),
    ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], count_include_pad=0)),
])
def test_pool_same_upper_strided_dynamic_size(op, attrs):
    _check(_image_model([helper.make_node(op, ["x"], ["y"], auto_pad="SAME_UPPER", **attrs)]),
           sizes=((2, 17, 20), (1, 24, 13), (1, 5, 6)))


@pytest.mark.parametrize("node", [
    helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_LOWER", strides=[2, 2]),
    helper.make_node("MaxPool", ["x"], ["y"], auto_pad="SAME_UPPER", kernel_shape=[2, 2], strides=[3, 3]),
    helper.make_node("AveragePool", ["x"], ["y"], auto_pad="SAME_UPPER", kernel_shape=[3, 3], strides=[2, 2],
                     count_include_pad=1),
], ids=["conv-same-lower", "maxpool-kernel-below-stride", "avgpool-count-pad"])
def test_size_dependent_padding_refused_with_a_konnx_error(node):
    w = np.zeros((4, 3, 3, 3), np.float32)
    m = _image_model([node], [("w", w)] if node.op_type == "Conv" else [])
    with pytest.raises(konnx.ConversionError, match="static spatial sizes"):
        konnx.convert(m)


@pytest.mark.parametrize("op,attrs", [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 0, 0])),
    # ceil_mode: the output size (and whether the last window is dropped) computed at run time
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, count_include_pad=0)),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[3, 2], pads=[1, 0, 1, 1], ceil_mode=1, count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=0)),
])
def test_pool_dynamic_size(op, attrs):
    _check(_image_model([helper.make_node(op, ["x"], ["y"], **attrs)]),
           sizes=((2, 17, 20), (1, 24, 13), (1, 5, 6), (1, 4, 7)))


@pytest.mark.parametrize("mode,coord,nearest", [
    ("linear", "half_pixel", None), ("linear", "pytorch_half_pixel", None), ("linear", "align_corners", None),
    ("linear", "asymmetric", None), ("nearest", "asymmetric", "floor"),
    ("nearest", "half_pixel", "round_prefer_floor"), ("nearest", "tf_half_pixel_for_nn", "round_prefer_ceil"),
])
def test_resize_to_another_tensors_size(mode, coord, nearest):
    """F.interpolate(f2, size=f1.shape[2:]): sizes taken from another tensor's dynamic shape."""
    attrs = dict(mode=mode, coordinate_transformation_mode=coord)
    if nearest:
        attrs["nearest_mode"] = nearest
    nodes = [
        helper.make_node("MaxPool", ["x"], ["small"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Shape", ["x"], ["shp"]),
        helper.make_node("Slice", ["shp", "two", "four"], ["hw"]),
        helper.make_node("Shape", ["small"], ["sshp"]),
        helper.make_node("Slice", ["sshp", "zero", "two"], ["bc"]),
        helper.make_node("Concat", ["bc", "hw"], ["sizes"], axis=0),
        helper.make_node("Resize", ["small", "", "", "sizes"], ["up"], **attrs),
        helper.make_node("Add", ["up", "x"], ["y"]),
    ]
    inits = [("zero", np.array([0], np.int64)), ("two", np.array([2], np.int64)), ("four", np.array([4], np.int64))]
    _check(_image_model(nodes, inits))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_scales_dynamic_size(mode):
    scales = np.array([1, 1, 2, 0.5], np.float32)
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode)]
    _check(_image_model(nodes, [("scales", scales)]), sizes=((2, 9, 20), (1, 6, 14)))


def test_resize_static_size_of_dynamic_input():
    nodes = [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear")]
    _check(_image_model(nodes, [("sizes", np.array([1, 3, 8, 11], np.int64))]), sizes=((1, 17, 20), (1, 5, 13)))


def test_pad_and_slice_dynamic_size():
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"),
        helper.make_node("Slice", ["p", "starts", "ends", "axes"], ["s"]),
        helper.make_node("Pad", ["s", "pads2", "cval"], ["y"], mode="constant"),
    ]
    inits = [("pads", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)),
             ("starts", np.array([1, 0], np.int64)), ("ends", np.array([-1, -2], np.int64)),
             ("axes", np.array([2, 3], np.int64)),
             ("pads2", np.array([0, 0, 0, 1, 0, 0, 3, 0], np.int64)), ("cval", np.array(0.5, np.float32))]
    _check(_image_model(nodes, inits))


def test_overlapping_patch_embed_then_tokens():
    """Segformer's patch embedding: Conv(7, stride 4, pad 3) -> flatten(2) -> transpose ->
    reshape(B, H, W, -1) -> permute back -> Conv(3, stride 2, pad 1): the channels of the
    reshape with dynamic H, W are unknown to Keras until the conv's weights pin them."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], strides=[4, 4], pads=[3, 3, 3, 3]),
        helper.make_node("Shape", ["c1"], ["shp"]),
        helper.make_node("Slice", ["shp", "zero", "one"], ["b"]),
        helper.make_node("Slice", ["shp", "two", "four"], ["hw"]),
        helper.make_node("Concat", ["b", "minus1"], ["flat_shape"], axis=0),
        helper.make_node("Reshape", ["c1", "bc_1"], ["f"]),
        helper.make_node("Transpose", ["f"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Concat", ["b", "hw", "minus1"], ["s4"], axis=0),
        helper.make_node("Reshape", ["t", "s4"], ["r"]),
        helper.make_node("Transpose", ["r"], ["img"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["img", "w2"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1]),
    ]
    inits = [("w1", rng.standard_normal((8, 3, 7, 7)).astype(np.float32) * 0.2),
             ("w2", rng.standard_normal((6, 8, 3, 3)).astype(np.float32) * 0.2),
             ("zero", np.array([0], np.int64)), ("one", np.array([1], np.int64)),
             ("two", np.array([2], np.int64)), ("four", np.array([4], np.int64)),
             ("minus1", np.array([-1], np.int64)), ("bc_1", np.array([0, 8, -1], np.int64))]
    m = make_model(nodes, [("x", np.float32, ["B", 3, "H", "W"])], [("y", np.float32, None)], inits)
    _check(m)


def test_flatten_dynamic_both_sides():
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=2),
             helper.make_node("Unsqueeze", ["f", "zero"], ["y"])]
    m = make_model(nodes, [("x", np.float32, ["B", 3, "H", "W"])], [("y", np.float32, None)],
                   [("zero", np.array([0], np.int64))])
    _check(m)
