"""Resize / Upsample against onnxruntime: every mode x coordinate mode x nearest mode."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx
from konnx.errors import ConversionError

from ..util import assert_matches_ort, rand
from .cl_helpers import check, check_reload, model

COORDS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
          "tf_crop_and_resize"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
# Chosen so that no source coordinate lies within float32 rounding of a rounding tie: there
# onnxruntime 1.32's nearest index differs from its own documented float32 arithmetic by one
# ulp now and then (see resize_math.py), and neither answer is more right than the other.
SCALES = {"up": [1, 1, 2, 3], "down": [1, 1, 0.6, 0.43], "mixed": [1, 1, 1.7, 0.4]}
ROI = np.array([0, 0, 0.1, 0.2, 1, 1, 0.8, 0.9], np.float32)


def resize_model(mode, coord, nearest=None, scales=None, sizes=None, opset=19, shape=(1, 2, 5, 7),
                 roi=ROI, **attrs):
    if opset >= 11:
        attrs.update(mode=mode, coordinate_transformation_mode=coord)
        if mode == "nearest" and nearest:
            attrs["nearest_mode"] = nearest
    else:
        attrs.update(mode=mode)
    inits = []
    if opset < 11:
        ins = ["x", "scales"]
    else:
        ins = ["x", "roi" if roi is not None else "", "scales" if scales is not None else "",
               "sizes" if sizes is not None else ""]
        if roi is not None:
            inits.append(("roi", roi))
        if opset < 13 and scales is None:
            ins[2] = "noscales"
            inits.append(("noscales", np.zeros(0, np.float32)))
    if scales is not None:
        inits.append(("scales", np.array(scales, np.float32)))
    if sizes is not None:
        inits.append(("sizes", np.array(sizes, np.int64)))
    while ins and ins[-1] == "":
        ins.pop()
    node = helper.make_node("Resize", ins, ["y"], **attrs)
    return model([node], [("x", np.float32, list(shape))], ["y"], inits, opset=opset)


@pytest.mark.parametrize("direction", list(SCALES))
@pytest.mark.parametrize("nearest", NEAREST)
@pytest.mark.parametrize("coord", COORDS)
def test_nearest_grid(coord, nearest, direction):
    m = resize_model("nearest", coord, nearest, scales=SCALES[direction])
    check(m, {"x": rand(1, 2, 5, 7)})


@pytest.mark.parametrize("direction", list(SCALES))
@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_linear_cubic_grid(mode, coord, direction):
    m = resize_model(mode, coord, scales=SCALES[direction])
    check(m, {"x": rand(1, 2, 5, 7)})


@pytest.mark.parametrize("mode,nearest", [("nearest", "round_prefer_floor"), ("nearest", "floor"),
                                          ("linear", None), ("cubic", None)])
@pytest.mark.parametrize("coord", ["half_pixel", "align_corners", "tf_crop_and_resize"])
def test_sizes_channels_last(mode, nearest, coord):
    m = resize_model(mode, coord, nearest, sizes=[1, 2, 9, 4])
    check(m, {"x": rand(1, 2, 5, 7)}, channels_last=True)


@pytest.mark.parametrize("opset", [11, 13, 18, 19])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_opsets(opset, mode):
    m = resize_model(mode, "asymmetric", "floor", scales=[1, 1, 2, 2.5], opset=opset, shape=(2, 3, 4, 6))
    check(m, {"x": rand(2, 3, 4, 6)}, channels_last=opset % 2 == 1)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [[1, 1, 2, 2], [1, 1, 3, 1.5]])
def test_resize10(mode, scales):
    m = resize_model(mode, None, scales=scales, opset=10, shape=(1, 2, 4, 5))
    check(m, {"x": rand(1, 2, 4, 5)})


@pytest.mark.parametrize("opset", [7, 9])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample(opset, mode):
    scales = [1.0, 1.0, 2.0, 3.0]
    if opset == 7:
        node = helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=scales)
        inits = []
    else:
        node = helper.make_node("Upsample", ["x", "s"], ["y"], mode=mode)
        inits = [("s", np.array(scales, np.float32))]
    m = model([node], [("x", np.float32, [1, 2, 3, 4])], ["y"], inits, opset=opset)
    check(m, {"x": rand(1, 2, 3, 4)})


@pytest.mark.parametrize("a,exclude", [(-0.75, 0), (-0.5, 0), (-0.75, 1), (-0.6, 1)])
@pytest.mark.parametrize("direction", ["up", "down"])
def test_cubic_coefficients(a, exclude, direction):
    m = resize_model("cubic", "half_pixel", scales=SCALES[direction], cubic_coeff_a=a, exclude_outside=exclude)
    check(m, {"x": rand(1, 2, 5, 7)})


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_extrapolation_value(mode):
    roi = np.array([0, 0, -0.3, 0.4, 1, 1, 1.2, 1.5], np.float32)
    m = resize_model(mode, "tf_crop_and_resize", "round_prefer_ceil", sizes=[1, 2, 6, 8], roi=roi,
                     extrapolation_value=-7.5)
    check(m, {"x": rand(1, 2, 5, 7)})


@pytest.mark.parametrize("policy", ["not_larger", "not_smaller"])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_keep_aspect_ratio(policy, mode):
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode=mode, axes=[2, 3],
                            keep_aspect_ratio_policy=policy)
    m = model([node], [("x", np.float32, [1, 2, 5, 7])], ["y"], [("sizes", np.array([9, 11], np.int64))],
              opset=18)
    check(m, {"x": rand(1, 2, 5, 7)})


@pytest.mark.parametrize("axes", [[2, 3], [3, 2], [-1]])
def test_axes(axes):
    scales = {2: 2.0, 3: 1.5}
    sc = [scales[a % 4] for a in axes]
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="linear", axes=axes)
    m = model([node], [("x", np.float32, [1, 2, 4, 6])], ["y"], [("s", np.array(sc, np.float32))], opset=19)
    check(m, {"x": rand(1, 2, 4, 6)})


def test_rank3_and_nhwc_scales():
    # linear on the two inner axes of a 3D tensor, and on H/W of an NHWC-shaped 4D tensor
    m = resize_model("linear", "half_pixel", scales=[1, 2, 1.5], shape=(2, 3, 4), roi=None)
    check(m, {"x": rand(2, 3, 4)})
    m = resize_model("linear", "half_pixel", scales=[1, 2, 1.5, 1], shape=(1, 3, 4, 5), roi=None)
    check(m, {"x": rand(1, 3, 4, 5)}, channels_last=True)


def test_integer_nearest_uses_upsampling_layer():
    m = resize_model("nearest", "asymmetric", "floor", scales=[1, 1, 2, 3])
    km = check(m, {"x": rand(1, 2, 5, 7)})
    assert any(type(l).__name__ == "UpSampling2D" for l in km.layers)
    m = resize_model("nearest", "half_pixel", "round_prefer_floor", scales=[1, 1, 2, 2], opset=13)
    km = check(m, {"x": rand(1, 2, 5, 7)}, channels_last=True)
    assert any(type(l).__name__ == "UpSampling2D" for l in km.layers)


def test_int_input_nearest():
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest", nearest_mode="ceil")
    m = model([node], [("x", np.int32, [1, 1, 3, 4])], [("y", np.int32)],
              [("s", np.array([1, 1, 1.5, 0.5], np.float32))], opset=13)
    check(m, {"x": np.arange(12, dtype=np.int32).reshape(1, 1, 3, 4)})


def test_dynamic_batch_and_shape_sizes():
    """A PyTorch-style export: sizes = Concat(Shape(x)[:2], [H', W']) with a dynamic batch."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "z", "two"], ["nc"]),
        helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
                         coordinate_transformation_mode="pytorch_half_pixel"),
    ]
    inits = [("z", np.array([0], np.int64)), ("two", np.array([2], np.int64)), ("hw", np.array([10, 3], np.int64))]
    m = model(nodes, [("x", np.float32, ["N", 3, 5, 6])], ["y"], inits, opset=13)
    km = konnx.convert(m)
    for n in (1, 3):
        assert_matches_ort(m, {"x": rand(n, 3, 5, 6, seed=n)}, keras_model=km)


def test_dynamic_spatial_linear_runs():
    """Scales on dynamic H, W: sizes computed at run time (tests/ops/test_dynamic_spatial.py has more)."""
    m = resize_model("linear", "half_pixel", scales=[1, 1, 2, 2], shape=(1, 2, "H", "W"), roi=None)
    km = konnx.convert(m)
    for h, w in ((5, 6), (7, 3)):
        assert_matches_ort(m, {"x": rand(1, 2, h, w, seed=h)}, keras_model=km)


def test_dynamic_spatial_cubic_refused():
    m = resize_model("cubic", "half_pixel", scales=[1, 1, 2, 2], shape=(1, 2, "H", "W"), roi=None)
    with pytest.raises(ConversionError, match="static sizes"):
        konnx.convert(m)


@pytest.mark.parametrize("exclude", [0, 1])
@pytest.mark.parametrize("coord", ["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"])
@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_antialias(mode, coord, exclude):
    m = resize_model(mode, coord, scales=[1, 1, 0.4, 0.75], antialias=1, exclude_outside=exclude, roi=None,
                     shape=(1, 2, 11, 9))
    check(m, {"x": rand(1, 2, 11, 9)})
    m = resize_model(mode, coord, sizes=[1, 2, 17, 4], antialias=1, exclude_outside=exclude, roi=None,
                     shape=(1, 2, 7, 9))
    check(m, {"x": rand(1, 2, 7, 9)}, channels_last=True)


def test_antialias_with_crop_refused():
    m = resize_model("linear", "tf_crop_and_resize", scales=[1, 1, 0.5, 0.5], antialias=1)
    with pytest.raises(ConversionError, match="antialias"):
        konnx.convert(m)


@pytest.mark.parametrize("mode", ["nearest", "cubic"])
def test_save_reload(mode, tmp_path):
    # large enough that the index/weight tables are stored as layer weights, not inline
    m = resize_model(mode, "tf_crop_and_resize", "floor", sizes=[1, 2, 40, 33], extrapolation_value=1.5)
    check_reload(m, {"x": rand(1, 2, 5, 7)}, tmp_path)
