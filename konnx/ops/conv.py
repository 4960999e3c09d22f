"""Conv and ConvTranspose (1D/2D/3D, groups, depthwise, dilations, every auto_pad)."""
from __future__ import annotations

import numpy as np
from ..lazy_keras import keras

from .. import layout as L
from .. import padding as P
from ..values import static_dim
from ..weights import initial_values
from . import conv_checks
from .registry import SPATIAL, converter

_CONV = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_DEPTHWISE = {1: keras.layers.DepthwiseConv1D, 2: keras.layers.DepthwiseConv2D}
_CONVT = {1: keras.layers.Conv1DTranspose, 2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}
_ZEROPAD = {1: keras.layers.ZeroPadding1D, 2: keras.layers.ZeroPadding2D, 3: keras.layers.ZeroPadding3D}
_CROP = {1: keras.layers.Cropping1D, 2: keras.layers.Cropping2D, 3: keras.layers.Cropping3D}


def spatial_geometry(node, x, kernel):
    n = len(kernel)
    strides = list(node.attr("strides") or [1] * n)
    dilations = list(node.attr("dilations") or [1] * n)
    sizes = [static_dim(d) for d in x.onnx_shape[2:]] if x.onnx_shape else [None] * n
    return sizes, strides, dilations


def zero_pad(ctx, kt, pads, nsp):
    arg = tuple(tuple(p) for p in pads) if nsp > 1 else tuple(pads[0])
    return ctx.layer(_ZEROPAD[nsp](arg, name=ctx.name("pad")), kt)


def crop(ctx, kt, crops, nsp):
    arg = tuple(tuple(c) for c in crops) if nsp > 1 else tuple(crops[0])
    return ctx.layer(_CROP[nsp](arg, name=ctx.name("crop")), kt)


def check_conv(node, facts):
    """Conv/ConvTranspose convolve a 1D/2D/3D input."""
    rank = facts.rank(0)
    if rank is not None and rank not in (3, 4, 5):
        return f"expected a 1D/2D/3D convolution input (rank 3-5), got rank {rank}"
    return (conv_checks.conv if node.op_type == "Conv" else conv_checks.conv_transpose)(node, facts)


def same_upper_dynamic(ctx, node, pads, strides, dilations, kernel=None):
    """auto_pad=SAME_UPPER on a dynamic size with stride > 1: ONNX's pads are TF's 'same' pads
    (the odd one at the end) for every size, so Keras 'same' is proven exact. Pooling windows
    smaller than the stride would get a negative total that TF clamps: refused, as SAME_LOWER."""
    auto = node.string("auto_pad") or "NOTSET"
    small = kernel is not None and any(k < s_ for k, s_ in zip(kernel, strides))
    if auto != "SAME_UPPER" or small or (any(s_ > 1 for s_ in strides) and any(d > 1 for d in dilations)):
        raise ctx.error(f"auto_pad={auto} with strides {list(strides)} needs static spatial sizes "
                        "(only SAME_UPPER is the same for every size); pass input_shapes")
    return P.PaddingDecision("same", [p or (None, None) for p in pads],
                             "auto_pad=SAME_UPPER: Keras 'same' pads the same for every input size",
                             strides=list(strides))


def pin_channels(ctx, kt, channels: int):
    """The channels-last tensor with its channel axis static: the weights fix it, but a reshape
    to a shape with dynamic entries (``x.reshape(B, H, W, -1)``) can leave it unknown to Keras,
    whose conv layers need it to build."""
    if kt.shape[-1] is not None:
        return kt
    spec = [{"axis": j} if d is None else int(d) for j, d in enumerate(kt.shape[:-1])] + [int(channels)]
    return ctx.op("reshape", [kt], suffix="channels", shape=spec)


@converter("Conv", layout=SPATIAL, check=check_conv, since=1, consts=(1, 2), limits="constant weights and bias")
def conv(ctx, node):
    x = ctx.input(0)
    w = ctx.const(1, "weights")
    b = ctx.const(2, "bias") if node.has_input(2) else None
    nsp = x.rank - 2
    kernel = [int(k) for k in w.shape[2:]]
    group = int(node.attr("group"))
    sizes, strides, dilations = spatial_geometry(node, x, kernel)
    pads = P.node_pads(node.attrs, sizes, kernel, strides, dilations)
    if any(p is None for p in pads):
        decision = same_upper_dynamic(ctx, node, pads, strides, dilations)
    else:
        decision = ctx.planned_padding(node, sizes, kernel, strides, dilations, pads)
    onnx_strides, strides = strides, decision.strides  # single strided windows: stride 1 + crop
    cl = L.channels_last(x.rank)
    kt = ctx.keras(x, cl)
    if decision.mode == "explicit":
        grow, cut = decision.grow_crop
        kt = zero_pad(ctx, kt, grow, nsp) if any(map(any, grow)) else kt
        kt = crop(ctx, kt, cut, nsp) if any(map(any, cut)) else kt
    padding = "same" if decision.mode == "same" else "valid"

    # Keras refuses strides > 1 together with dilation > 1: convolve densely, then subsample.
    subsample = None
    if any(s > 1 for s in strides) and any(d > 1 for d in dilations):
        if padding == "same":
            kt = zero_pad(ctx, kt, decision.pads, nsp)
            padding = "valid"
        subsample, strides = strides, [1] * nsp

    c_out, c_in_g = int(w.shape[0]), int(w.shape[1])
    c_in = c_in_g * group
    use_bias = b is not None
    common = dict(kernel_size=tuple(kernel), strides=tuple(strides), padding=padding,
                  dilation_rate=tuple(dilations), use_bias=use_bias, name=ctx.name(),
                  kernel_initializer="zeros", bias_initializer="zeros")
    if group > 1 and group == c_in and c_in_g == 1 and nsp in _DEPTHWISE and P.depthwise_strides_portable(strides):
        mult = c_out // c_in
        common.pop("kernel_initializer")
        layer = _DEPTHWISE[nsp](depth_multiplier=mult, depthwise_initializer="zeros", **common)
        # ONNX out channel o = c * mult + m  ->  Keras kernel[..., c, m]
        kernel_w = w.reshape((c_in, mult) + tuple(kernel))
        kernel_w = np.transpose(kernel_w, tuple(range(2, 2 + nsp)) + (0, 1))
        kind = "depthwise"
    else:
        layer = _CONV[nsp](filters=c_out, groups=group, **common)
        kernel_w = np.transpose(w, tuple(range(2, 2 + nsp)) + (1, 0))
        kind = "grouped" if group > 1 else "dense"
    kernel_attr = "depthwise_initializer" if kind == "depthwise" else "kernel_initializer"
    with initial_values(layer, **{kernel_attr: kernel_w, "bias_initializer": b if use_bias else None}):
        y = ctx.layer(layer, pin_channels(ctx, kt, c_in))  # variables made from the values (konnx.weights)
    if subsample is not None:
        slices = [[None, None, None]] + [[None, None, s] for s in subsample] + [[None, None, None]]
        y = ctx.op("slice", [y], suffix="subsample", slices=slices)
    ctx.record(kind="conv", conv_kind=kind, pads=decision.pads, strides=onnx_strides,
               kernel=kernel, dilations=dilations, input_size=sizes, decision=decision.mode,
               reason=decision.reason + (" (dilated conv with stride: dense conv, then subsample)" if subsample else ""))
    return ctx.tensor(y, cl)


def convtranspose_pads(node, sizes, kernel, strides, dilations, output_padding):
    """Per-axis (crop_begin, crop_end) of the full transposed-conv output, following
    onnxruntime: output_shape or auto_pad SAME_* decide the pads from the total padding."""
    n = len(kernel)
    out_shape = node.attr("output_shape")
    auto = node.attr("auto_pad") or "NOTSET"
    if out_shape is None and auto in ("NOTSET", "VALID"):
        if auto == "VALID":
            return [(0, 0)] * n
        pads = list(node.attr("pads") or [0] * (2 * n))
        return [(int(pads[i]), int(pads[i + n])) for i in range(n)]
    out_shape = list(out_shape)[-n:] if out_shape is not None else None
    res = []
    for i in range(n):
        if sizes[i] is None:
            return None
        full = strides[i] * (sizes[i] - 1) + output_padding[i] + P.effective_kernel(kernel[i], dilations[i])
        target = out_shape[i] if out_shape is not None else sizes[i] * strides[i]
        total = full - target
        if out_shape is None:
            total = max(total, 0)  # onnxruntime: SAME never grows the full output (kernel < stride)
        if auto == "SAME_UPPER":
            res.append((total // 2, total - total // 2))
        else:
            res.append((total - total // 2, total // 2))
    return res


@converter("ConvTranspose", layout=SPATIAL, check=check_conv, since=1, consts=(1, 2), limits="constant weights and bias")
def conv_transpose(ctx, node):
    x = ctx.input(0)
    w = ctx.const(1, "weights")
    b = ctx.const(2, "bias") if node.has_input(2) else None
    nsp = x.rank - 2
    kernel = [int(k) for k in w.shape[2:]]
    group = int(node.attr("group"))
    sizes, strides, dilations = spatial_geometry(node, x, kernel)
    out_pad = list(node.attr("output_padding") or [0] * nsp)
    crops = convtranspose_pads(node, sizes, kernel, strides, dilations, out_pad)
    if crops is None:
        raise ctx.error("output_shape / auto_pad SAME needs static spatial sizes; pass input_shapes")
    c_in, c_out_g = int(w.shape[0]), int(w.shape[1])
    onnx_kernel = list(kernel)
    cl = L.channels_last(x.rank)
    kt = pin_channels(ctx, ctx.keras(x, cl), c_in)
    if any(d > 1 for d in dilations):
        y = _dilated_transpose(ctx, kt, w, strides, dilations, group)
        return _finish_transpose(ctx, node, y, b, crops, out_pad, nsp, dict(
            strides=strides, kernel=onnx_kernel, dilations=dilations, group=group, input_size=sizes), cl)
    native_op = all(op < s for op, s in zip(out_pad, strides))
    # Keras: length = (in - 1) * s + k + output_padding, before our crops.
    layer_op = out_pad if native_op else [0] * nsp
    extra = [0] * nsp if native_op else out_pad

    def build(kt_in, wg, name_suffix, bias):
        layer = _CONVT[nsp](filters=wg.shape[1], kernel_size=tuple(kernel), strides=tuple(strides),
                            padding="valid", output_padding=tuple(layer_op), use_bias=bias is not None,
                            kernel_initializer="zeros", bias_initializer="zeros",
                            name=ctx.name(name_suffix))
        kw = np.transpose(wg, tuple(range(2, 2 + nsp)) + (1, 0))
        with initial_values(layer, kernel_initializer=kw, bias_initializer=bias):
            return ctx.layer(layer, kt_in)  # variables made from the values (konnx.weights)

    bias_in_layer = b is not None and not any(extra)
    if group == 1:
        y = build(kt, w, "", b if bias_in_layer else None)
    else:
        cin_g = c_in // group
        parts = ctx.op("split", [kt], suffix="groups", sizes=[cin_g] * group, axis=x.rank - 1)
        ys = []
        for g in range(group):
            wg = w[g * cin_g:(g + 1) * cin_g]
            bg = b[g * c_out_g:(g + 1) * c_out_g] if (b is not None and bias_in_layer) else None
            ys.append(build(parts[g], wg, f"g{g}", bg))
        y = ctx.layer(keras.layers.Concatenate(axis=-1, name=ctx.name("concat")), ys)
    return _finish_transpose(ctx, node, y, None if bias_in_layer else b, crops, extra, nsp, dict(
        strides=strides, kernel=onnx_kernel, dilations=dilations, group=group, input_size=sizes), cl)


def _finish_transpose(ctx, node, y, bias, crops, extra, nsp, geometry, cl):
    """The full transposed convolution `y` cropped to ONNX's pads, `extra` output padding added
    at the end as zeros, then `bias` (None when the layer added it), and the decision recorded."""
    y = _crop_to_onnx(ctx, y, crops, extra, nsp)
    if bias is not None:
        y = ctx.op("binary", [y, bias.astype(np.float32)], suffix="bias", op="add")
    out_pad = list(node.attr("output_padding") or [0] * nsp)
    nothing_to_crop = all(c == (0, 0) for c in crops) and not any(out_pad)
    ctx.record(kind="conv_transpose", pads=crops, output_padding=out_pad, **geometry,
               decision="valid" if nothing_to_crop else "crop",
               reason="full transposed convolution ('valid'), then the ONNX pads cropped from it"
                      + (" and output_padding added at the end" if any(out_pad) else "")
                      + (" (dilated: zeros inserted between the inputs, then a dilated convolution with the "
                         "flipped kernel)" if any(d > 1 for d in geometry["dilations"]) else ""))
    return ctx.tensor(y, cl)


def _dilated_transpose(ctx, kt, w, strides, dilations, group):
    """The full ('valid') dilated transposed convolution, (n - 1) * s + d * (k - 1) + 1 long: the
    input with s - 1 zeros inserted between its elements and d * (k - 1) zeros around it, through
    a stride-1 convolution dilated by d with the flipped, in/out-swapped kernel. TensorFlow on
    CPU has no dilated transposed convolution; writing the dilation into the kernel as zero taps
    would multiply an inf input by 0 (NaN where the spec's sum has no such term)."""
    nsp = len(strides)
    kernel = [int(k) for k in w.shape[2:]]
    kt = _insert_zeros(ctx, kt, strides)
    kt = zero_pad(ctx, kt, [(d * (k - 1),) * 2 for d, k in zip(dilations, kernel)], nsp)
    c_in, c_out_g = int(w.shape[0]), int(w.shape[1])
    cin_g = c_in // group
    flipped = w[(slice(None), slice(None)) + (slice(None, None, -1),) * nsp]
    # ONNX (C_in, C_out/g, k...) -> Keras (k..., C_in/g, C_out), group g's filters after g-1's
    parts = [np.transpose(flipped[g * cin_g:(g + 1) * cin_g], tuple(range(2, 2 + nsp)) + (0, 1))
             for g in range(group)]
    layer = _CONV[nsp](filters=c_out_g * group, kernel_size=tuple(kernel), padding="valid",
                       dilation_rate=tuple(dilations), groups=group, use_bias=False,
                       kernel_initializer="zeros", name=ctx.name("dilated"))
    y = ctx.layer(layer, kt)
    layer.set_weights([np.concatenate(parts, axis=-1).astype(np.float32)])
    return y


def _insert_zeros(ctx, kt, strides):
    """A channels-last tensor with s - 1 zeros between neighbours along each spatial axis of
    stride s (zeros made as zeros, never as x * 0, which is NaN for an inf input)."""
    rank = len(kt.shape)
    for i, s in enumerate(strides):
        if s == 1:
            continue
        a = i + 1
        zeros = ctx.op("full_like", [kt], suffix="zeros", value=0.0, dtype=str(kt.dtype))
        parts = [ctx.op("expand_dims", [t], suffix="expand", axes=[a + 1]) for t in [kt] + [zeros] * (s - 1)]
        merged = ctx.op("concat", parts, suffix="interleave", axis=a + 1)
        spec = [{"axis": j} if j != a else -1 for j in range(rank + 1) if j != a + 1]
        kt = ctx.op("reshape", [merged], suffix="upsample", shape=spec)
        slices = [[None, None, None]] * rank
        slices[a] = [0, -(s - 1), None]
        kt = ctx.op("slice", [kt], suffix="trim", slices=slices)
    return kt


def _crop_to_onnx(ctx, y, crops, extra, nsp):
    """Crop the full transposed-conv output to ONNX's: (begin, end - extra) per axis, where a
    negative crop means zero padding (output_padding the Keras layer could not add)."""
    final = [(cb, ce - e) for (cb, ce), e in zip(crops, extra)]
    if any(c[0] > 0 or c[1] > 0 for c in final):
        y = crop(ctx, y, [(max(c0, 0), max(c1, 0)) for c0, c1 in final], nsp)
    if any(c[0] < 0 or c[1] < 0 for c in final):
        y = zero_pad(ctx, y, [(max(-c0, 0), max(-c1, 0)) for c0, c1 in final], nsp)
    return y
