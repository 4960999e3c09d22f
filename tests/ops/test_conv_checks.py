"""ConvInteger, QLinearConv and DeformConv input checks (konnx/ops/conv_checks.py) and LRN's
(spec_checks.lrn), issue 14: each spec rule onnxruntime enforces refuses a bad model in the plan
with a konnx error naming the node and the expected shape, the valid neighbour converts and
matches onnxruntime; what the spec allows and onnxruntime does not implement is computed as the
ONNX reference implementation computes it."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import konnx

from ..util import assert_matches_ort, assert_refused_like_ort, make_model, run_keras, run_ort, tolerance

F, U8, I32 = np.float32, np.uint8, np.int32
RNG = np.random.default_rng(0)


def _model(op, feeds: dict, out, opset, **attrs):
    """One `op` node named 'n' whose inputs are all graph inputs ('' skips an optional one)."""
    names = [k if v is not None else "" for k, v in feeds.items()]
    node = helper.make_node(op, names, ["y"], name="n", **attrs)
    ins = [(k, v.dtype, list(v.shape)) for k, v in feeds.items() if v is not None]
    model = make_model([node], ins, [("y", out, None)], opset=opset)
    return model, {k: v for k, v in feeds.items() if v is not None}


def _u8(*shape):
    return RNG.integers(0, 255, shape).astype(U8)


def _conv_int(x=(1, 2, 5, 5), w=(3, 2, 3, 3), xz=(), wz=(), **attrs):
    feeds = dict(x=_u8(*x), w=_u8(*w), xz=_u8(*xz), wz=_u8(*wz))
    return _model("ConvInteger", feeds, I32, 10, **attrs)


CONV_INT = {  # bad model, expected words
    "x_zero_point": (_conv_int(xz=(2,)), "x_zero_point has shape [2]: the spec wants a scalar"),
    "x_zero_point_rank": (_conv_int(xz=(1, 1)), "x_zero_point has shape [1, 1]"),
    "w_zero_point": (_conv_int(wz=(2,)), "w_zero_point has shape [2]: the spec wants a scalar or one entry per output channel (3,)"),
    "channels": (_conv_int(w=(3, 3, 3, 3)), "X has 2 channels, W [3, 3, 3, 3] expects 3 x group 1 = 3"),
    "kernel_longer_than_input": (_conv_int(x=(1, 2, 3, 1)), "spatial axis 1 of X (1, padded 1) is shorter than the dilated kernel (3)"),
    "kernel_shape": (_conv_int(kernel_shape=[2, 2]), "kernel_shape=[2, 2] does not match W's spatial sizes [3, 3]"),
    "group": (_conv_int(w=(3, 1, 3, 3), group=2), "group=2 does not divide the 3 output channels"),
}


@pytest.mark.parametrize("name", sorted(CONV_INT))
def test_conv_integer_inputs(name):
    bad, expect = CONV_INT[name]
    assert_refused_like_ort(bad, _conv_int(), expect)


def test_conv_integer_without_output_channels_refused():
    """W with no output channel: onnxruntime gives an empty output, konnx (Keras has no empty
    convolution) refuses it saying so."""
    model, feeds = _conv_int(w=(0, 2, 3, 3))
    assert run_ort(model, feeds)[0].size == 0
    with pytest.raises(konnx.UnsupportedOpError, match="'n'.*W \\[0, 2, 3, 3\\] has no output channel"):
        konnx.convert(model)


def test_conv_integer_padding_reaches_the_kernel():
    """The padded axis equal to the dilated kernel is fine: one output position."""
    assert_refused_like_ort(_conv_int(x=(1, 2, 1, 5)), _conv_int(x=(1, 2, 1, 5), pads=[1, 1, 1, 1]), "shorter than the dilated kernel")


def _f(*shape):
    return RNG.standard_normal(shape).astype(F)


def _qconv(**over):
    feeds = dict(x=_u8(1, 2, 5, 5), xs=np.array(0.1, F), xz=np.array(3, U8), w=_u8(3, 2, 3, 3), ws=np.array(0.2, F),
                 wz=np.array(4, U8), ys=np.array(0.5, F), yz=np.array(5, U8), B=np.array([1, -2, 3], I32))
    feeds.update(over)
    return _model("QLinearConv", feeds, U8, 10)


QCONV = {
    "x_scale": (dict(xs=_f(2)), "x_scale has shape [2]: the spec wants a scalar"),
    "y_zero_point": (dict(yz=np.array([[5]], U8)), "y_zero_point has shape [1, 1]"),
    "w_scale": (dict(ws=np.abs(_f(2))), "w_scale has shape [2]: the spec wants a scalar or one entry per output channel (3,)"),
    "w_zero_point": (dict(wz=_u8(2)), "w_zero_point has shape [2]"),
    "bias": (dict(B=np.array([1, 2], I32)), "bias B has shape [2], expected (3,)"),
    "channels": (dict(w=_u8(3, 1, 3, 3)), "X has 2 channels, W [3, 1, 3, 3] expects 1 x group 1 = 1"),
}


@pytest.mark.parametrize("name", sorted(QCONV))
def test_qlinear_conv_inputs(name):
    over, expect = QCONV[name]
    good = _qconv(ws=np.abs(_f(3)), wz=_u8(3)) if name.startswith("w_") else _qconv()  # per channel is fine
    assert_refused_like_ort(_qconv(**over), good, expect)


def _deform(x=(1, 4, 5, 5), w=(6, 2, 3, 3), offset=(1, 36, 3, 3), b=(6,), mask=(1, 18, 3, 3), **attrs):
    feeds = dict(X=_f(*x), W=_f(*w), offset=_f(*offset), B=_f(*b) if b else None, mask=_f(*mask) if mask else None)
    return _model("DeformConv", feeds, F, 19, **dict(dict(group=2, offset_group=2), **attrs))


DEFORM = {
    "mask_width": (_deform(mask=(1, 18, 3, 2)), "mask has shape [1, 18, 3, 2], expected (1, 18, 3, 3)"),
    "mask_channels": (_deform(mask=(1, 9, 3, 3)), "mask has shape [1, 9, 3, 3], expected (1, 18, 3, 3)"),
    "offset_channels": (_deform(offset=(1, 18, 3, 3)), "offset has shape [1, 18, 3, 3], expected (1, 36, 3, 3)"),
    "offset_batch": (_deform(offset=(2, 36, 3, 3)), "offset has shape [2, 36, 3, 3], expected (1, 36, 3, 3)"),
    "offset_vs_strides": (_deform(strides=[2, 2]), "offset has shape [1, 36, 3, 3], expected (1, 36, 2, 2)"),
    "bias": (_deform(b=(5,)), "bias B has shape [5], expected (6,)"),
    "weight_channels": (_deform(w=(6, 3, 3, 3)), "X has 4 channels, W [6, 3, 3, 3] expects 3 x group 2 = 6"),
    "group": (_deform(w=(5, 2, 3, 3), b=(5,)), "group=2 does not divide the 5 output channels"),
    "offset_group": (_deform(offset=(1, 54, 3, 3), mask=(1, 27, 3, 3), offset_group=3), "offset_group=3 does not divide the 4 input channels"),
    "kernel_shape": (_deform(kernel_shape=[2, 2]), "kernel_shape=[2, 2] does not match W's spatial sizes [3, 3]"),
    "rank": (_deform(x=(1, 4, 5), w=(6, 2, 3), offset=(1, 12, 3), mask=(1, 6, 3)), "X has rank 3: DeformConv takes"),
}


@pytest.mark.parametrize("name", sorted(DEFORM))
def test_deform_conv_inputs(name):
    bad, expect = DEFORM[name]
    good = _deform(offset=(1, 36, 2, 2), mask=(1, 18, 2, 2), strides=[2, 2]) if name == "offset_vs_strides" else _deform()
    assert_refused_like_ort(bad, good, expect)


def _lrn(shape, **attrs):
    x = _f(*shape)
    return _model("LRN", dict(x=x), F, 13, **attrs)


def test_lrn_size_positive():
    assert_refused_like_ort(_lrn((2, 5, 4, 4), size=-(1 << 31)), _lrn((2, 5, 4, 4), size=3), "attribute size=-2147483648: must be a positive")
    assert_refused_like_ort(_lrn((2, 5, 4, 4), size=0), _lrn((2, 5, 4, 4), size=1), "attribute size=0")


def test_lrn_window_wider_than_the_channels_matches_ort():
    """An odd size above the channel count sums every channel (onnxruntime's answer); konnx
    sums at most the channels there are (a size of 2**31 - 1 no longer loops that often)."""
    assert_matches_ort(*_lrn((2, 5, 4, 4), size=1001, alpha=0.5))


@pytest.mark.parametrize("size,attrs", [(4, {}), (6, {}), (3, dict(alpha=0.0)), (3, dict(beta=-1.0)), ((1 << 31) - 2, {})])
def test_lrn_spec_cases_onnxruntime_refuses(size, attrs):
    """Even sizes (up to 2**31 - 2) and non-positive alpha/beta are valid ONNX that onnxruntime's
    kernel refuses; konnx computes them as the reference implementation does (whose loop runs
    over axis 0, so N = C keeps it right)."""
    model, feeds = _lrn((5, 5, 3, 3), size=size, **attrs)
    ref = ReferenceEvaluator(model).run(None, feeds)[0]
    got = run_keras(konnx.convert(model), feeds, model)[0]
    assert float(np.max(np.abs(got - ref))) <= tolerance(ref)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 3e38])
def test_deform_conv_non_finite_offsets_match_ort(value):
    """A tap moved to a NaN/inf position samples nothing (as onnxruntime): no gather at a garbage index."""
    model, feeds = _deform()
    feeds["offset"].reshape(-1)[[0, 7, 40, 101]] = value
    assert_matches_ort(model, feeds)


def _float_conv(op, x, w, b=None, **attrs):
    """A Conv/ConvTranspose with constant weights (and bias), as exporters write them."""
    inits = [("w", _f(*w))] + ([("b", _f(*b))] if b else [])
    node = helper.make_node(op, ["x"] + [n for n, _ in inits], ["y"], name="n", **attrs)
    model = make_model([node], [("x", F, list(x))], [("y", F, None)], initializers=inits, opset=13)
    return model, {"x": _f(*x)}


FLOAT_CONV = {  # op, bad (x, w, b, attrs), expected words; the good neighbour is the first of its op
    "conv_channels": ("Conv", ((1, 2, 5, 5), (3, 3, 3, 3), None, {}), "X has 2 channels, W [3, 3, 3, 3] expects 3"),
    "conv_kernel_longer": ("Conv", ((1, 2, 2, 5), (3, 2, 3, 3), None, {}), "spatial axis 0 of X (2, padded 2) is shorter"),
    "conv_kernel_shape": ("Conv", ((1, 2, 5, 5), (3, 2, 3, 3), None, dict(kernel_shape=[2, 2])), "kernel_shape=[2, 2] does not match"),
    "conv_bias": ("Conv", ((1, 2, 5, 5), (3, 2, 3, 3), (2,), {}), "bias B has shape [2], expected (3,)"),
    "convt_channels": ("ConvTranspose", ((1, 2, 5, 5), (3, 3, 3, 3), None, {}), "X has 2 channels, W [3, 3, 3, 3] takes 3"),
    "convt_bias": ("ConvTranspose", ((1, 4, 5, 5), (4, 3, 3, 3), (3,), dict(group=2)), "bias B has shape [3], expected (6,)"),
    "convt_kernel_shape": ("ConvTranspose", ((1, 2, 5, 5), (2, 3, 3, 3), None, dict(kernel_shape=[2, 2])), "kernel_shape=[2, 2] does not match"),
}
GOOD = {"Conv": ((1, 2, 5, 5), (3, 2, 3, 3), (3,), {}), "ConvTranspose": ((1, 4, 5, 5), (4, 3, 3, 3), (6,), dict(group=2))}


@pytest.mark.parametrize("name", sorted(FLOAT_CONV))
def test_float_conv_weights(name):
    op, (x, w, b, attrs), expect = FLOAT_CONV[name]
    gx, gw, gb, gattrs = GOOD[op]
    assert_refused_like_ort(_float_conv(op, x, w, b, **attrs), _float_conv(op, gx, gw, gb, **gattrs), expect)


def _pool(op, x, **attrs):
    return _model(op, dict(x=_f(*x)), F, 18, **dict(dict(kernel_shape=[3, 3]), **attrs))


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
def test_pool_pads_smaller_than_kernel(op):
    assert_refused_like_ort(_pool(op, (1, 2, 5, 5), pads=[3, 0, 3, 0]), _pool(op, (1, 2, 5, 5), pads=[2, 0, 2, 0]),
                            "axis 0 pads (3, 3) must be smaller than its kernel (3)")


@pytest.mark.parametrize("op", ["MaxPool", "LpPool"])
def test_pool_dilated_window_longer_than_input(op):
    assert_refused_like_ort(_pool(op, (1, 2, 5, 5), dilations=[4, 1]), _pool(op, (1, 2, 5, 5), dilations=[2, 1]),
                            "spatial axis 0 of X (5, padded 5) is shorter than the dilated kernel (9)")


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
def test_pool_empty_output_refused(op):
    """A window longer than the input: onnxruntime gives an empty output, which Keras cannot
    build; konnx says so instead of failing inside Keras. With ceil_mode and stride 2 the one
    partial window is computed as onnxruntime does."""
    model, feeds = _pool(op, (1, 2, 2, 5))
    assert run_ort(model, feeds)[0].size == 0
    with pytest.raises(konnx.UnsupportedOpError, match="'n'.*spatial axis 0 of X \\(2, padded 2\\) is shorter"):
        konnx.convert(model)
    assert_matches_ort(*_pool(op, (1, 2, 2, 5), ceil_mode=1, strides=[2, 2]))


@pytest.mark.parametrize("op,attrs", [("LpPool", dict(kernel_shape=[3, 3])), ("GlobalLpPool", {})])
@pytest.mark.parametrize("p", [0, -1])
def test_lp_pool_order(op, attrs, p):
    """p <= 0 is no Lp norm (p=0 divided by zero inside konnx): refused with konnx's reason;
    p >= 1 matches onnxruntime."""
    with pytest.raises(konnx.UnsupportedOpError, match=f"'n'.*attribute p={p}: konnx computes the Lp norms of order p >= 1"):
        konnx.convert(_model(op, dict(x=_f(1, 2, 5, 5)), F, 18, p=p, **attrs)[0])
    assert_matches_ort(*_model(op, dict(x=_f(1, 2, 5, 5)), F, 18, p=3, **attrs))
