"""MaxPool, AveragePool (pads, ceil_mode, count_include_pad, dilations), global pooling."""
from __future__ import annotations

import keras

from .. import layout as L
from .. import padding as P
from .conv import same_upper_dynamic, spatial_geometry, zero_pad
from .registry import converter

_MAXPOOL = {1: keras.layers.MaxPooling1D, 2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D}
_AVGPOOL = {1: keras.layers.AveragePooling1D, 2: keras.layers.AveragePooling2D, 3: keras.layers.AveragePooling3D}
_GAP = {1: keras.layers.GlobalAveragePooling1D, 2: keras.layers.GlobalAveragePooling2D,
        3: keras.layers.GlobalAveragePooling3D}
_GMP = {1: keras.layers.GlobalMaxPooling1D, 2: keras.layers.GlobalMaxPooling2D, 3: keras.layers.GlobalMaxPooling3D}


def _check_maxpool(node):
    if len(node.outputs) > 1 and node.outputs[1] and node.opset < 8:
        return "the Indices output of MaxPool needs opset >= 8"
    return None


def _pool_geometry(ctx, node, x):
    kernel = [int(k) for k in node.attr("kernel_shape")]
    nsp = len(kernel)
    if x.rank != nsp + 2:
        raise ctx.error(f"kernel_shape has {nsp} axes but the input has rank {x.rank}")
    sizes, strides, dilations = spatial_geometry(node, x, kernel)
    pads = P.node_pads(node.attrs, sizes, kernel, strides, dilations, clamp=False)
    ceil_mode = bool(node.attr("ceil_mode", 0))
    auto = node.attr("auto_pad", "NOTSET") or "NOTSET"
    if any(p is None for p in pads):
        if ceil_mode or (node.op_type == "AveragePool" and int(node.attr("count_include_pad", 0) or 0)):
            raise ctx.error(f"auto_pad={auto} with strides {strides} needs static spatial sizes for ceil_mode "
                            "or count_include_pad=1; pass input_shapes")
        same_upper_dynamic(ctx, node, pads, strides, dilations, kernel)  # raises unless proven
        return kernel, sizes, strides, dilations, None, [0] * nsp, [None] * nsp
    if auto in ("SAME_UPPER", "SAME_LOWER") and (any(d > 1 for d in dilations) or any(sum(p) < 0 for p in pads)):
        raise ctx.error(
            f"auto_pad={auto} with dilations {dilations} or a kernel smaller than the stride "
            f"(kernel {kernel}, strides {strides}): onnxruntime and the ONNX reference implementation "
            "disagree on this pooling, so konnx refuses rather than guess; use explicit pads")
    ext, outs = [], []
    for i in range(nsp):
        if sizes[i] is None:
            if ceil_mode and auto in ("NOTSET", "VALID") and strides[i] > 1:
                if dilations[i] != 1:
                    raise ctx.error("ceil_mode with dilations needs static spatial sizes; pass input_shapes")
                ext.append(strides[i] - 1)  # the most ceil_mode can add; cropped at run time
                outs.append(None)
                continue
            ext.append(0)
            outs.append(None)
            continue
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-sizes[i] // strides[i])
        else:
            out = P.conv_out_size(sizes[i], kernel[i], strides[i], dilations[i], pads[i], ceil_mode)
        need = (out - 1) * strides[i] + P.effective_kernel(kernel[i], dilations[i]) - (sizes[i] + sum(pads[i]))
        ext.append(max(need, 0))
        outs.append(out)
    return kernel, sizes, strides, dilations, pads, ext, outs


def _crop_sizes(outs, no_ext, dilations):
    """Output sizes the pooling function must crop to; None when 'valid' pooling of the padded
    input already has exactly the ONNX size (no ceil extension, undilated windows)."""
    if all(o is None for o in outs) or (no_ext and all(d == 1 for d in dilations)):
        return None  # (a None entry: that axis is not cropped statically)
    return outs


def _static_outs(ctx, outs):
    if any(o is None for o in outs):
        raise ctx.error("this padding needs static spatial sizes; pass input_shapes")
    return outs


def _ceil_crop(sizes, kernel, strides, dilations, pads, ext):
    """Per axis, what the pooling function needs to compute a ceil_mode output size at run time
    (dynamic axes with a ceil extension), or None when every size is static."""
    crop = [(int(p[0]), int(p[1]), P.effective_kernel(k, d), s) if n is None and e else None
            for n, k, s, d, p, e in zip(sizes, kernel, strides, dilations, pads, ext)]
    return crop if any(c is not None for c in crop) else None


def _outs_for(ctx, outs, sizes, dilations, ceil):
    """Static output sizes for the crop; a dynamic ceil_mode axis is cropped at run time."""
    if ceil is not None and all(d == 1 for d in dilations):
        return [o if c is None else None for o, c in zip(outs, ceil)]
    return _static_outs(ctx, outs)


@converter("MaxPool", since=1, check=_check_maxpool, limits="Indices output: static spatial sizes")
def max_pool(ctx, node):
    x = ctx.input(0)
    kernel, sizes, strides, dilations, pads, ext, outs = _pool_geometry(ctx, node, x)
    if len(node.outputs) > 1 and node.outputs[1]:
        return _max_pool_with_indices(ctx, node, x, kernel, sizes, strides, dilations, pads, ext, outs)
    nsp = len(kernel)
    cl = L.channels_last(x.rank)
    kt = ctx.keras(x, cl)
    no_ext = not any(ext)
    if pads is None:  # SAME_UPPER on a dynamic size: 'same' (TF's max pool ignores the padding)
        y = ctx.layer(_MAXPOOL[nsp](pool_size=tuple(kernel), strides=tuple(strides), padding="same",
                                    name=ctx.name()), kt)
        ctx.record(kind="maxpool", decision="same", input_size=sizes,
                   reason="auto_pad=SAME_UPPER: Keras 'same' pads the same for every input size")
        return ctx.tensor(y, cl)
    decision = P.decide(sizes, kernel, strides, dilations, pads, op="MaxPool")
    if all(d == 1 for d in dilations) and no_ext and decision.mode in ("same", "valid"):
        y = ctx.layer(_MAXPOOL[nsp](pool_size=tuple(kernel), strides=tuple(strides), padding=decision.mode,
                                    name=ctx.name()), kt)
        mode, reason = decision.mode, decision.reason
        if mode == "same":
            reason += " (TF's 'same' max pooling ignores the padding, like -inf)"
    else:
        ceil = _ceil_crop(sizes, kernel, strides, dilations, pads, ext)
        if not no_ext or any(d > 1 for d in dilations):
            outs = _outs_for(ctx, outs, sizes, dilations, ceil)
        full = [(b, e + x_) for (b, e), x_ in zip(pads, ext)]
        y = ctx.op("max_pool", [kt], kernel=kernel, strides=strides, dilations=dilations,
                   pads=[list(p) for p in full], out_sizes=_crop_sizes(outs, no_ext, dilations),
                   **({"ceil_crop": ceil} if ceil else {}))
        mode = "explicit_-inf"
        reason = "max pooling pads with -inf (zero would beat negative inputs)"
        if any(ext):
            reason += f"; ceil_mode adds {ext} uncounted positions at the end"
        if any(d > 1 for d in dilations):
            reason += "; dilated windows are gathered explicitly"
    ctx.record(kind="maxpool", pads=pads, ceil_extension=ext, strides=strides, kernel=kernel,
               dilations=dilations, ceil_mode=bool(node.attr("ceil_mode", 0)),
               input_size=sizes, decision=mode, reason=reason)
    return ctx.tensor(y, cl)


def _max_pool_with_indices(ctx, node, x, kernel, sizes, strides, dilations, pads, ext, outs):
    """MaxPool's Indices output: flat positions in the NC... input, in the ONNX layout."""
    if any(s is None for s in sizes) or any(o is None for o in outs):
        raise ctx.error("the Indices output needs static spatial sizes; pass input_shapes")
    full = [[b, e + x_] for (b, e), x_ in zip(pads, ext)]
    y, idx = ctx.op("max_pool_argmax", [ctx.onnx_layout(x)], kernel=kernel, strides=strides, dilations=dilations,
                    pads=full, out_sizes=outs, column_major=bool(int(node.attr("storage_order", 0) or 0)))
    ctx.record(kind="maxpool", decision="argmax", reason="the Indices output is computed window by window")
    return [ctx.tensor(y, dtype=x.dtype), ctx.tensor(idx, dtype="int64")]


@converter("AveragePool", since=1)
def average_pool(ctx, node):
    x = ctx.input(0)
    kernel, sizes, strides, dilations, pads, ext, outs = _pool_geometry(ctx, node, x)
    nsp = len(kernel)
    include = bool(node.attr("count_include_pad", 0))
    cl = L.channels_last(x.rank)
    kt = ctx.keras(x, cl)
    no_ext = not any(ext)
    plain = all(d == 1 for d in dilations) and no_ext
    if pads is None:  # SAME_UPPER, count_include_pad=0, dynamic size: TF's 'same' average
        y = ctx.layer(_AVGPOOL[nsp](pool_size=tuple(kernel), strides=tuple(strides), padding="same",
                                    name=ctx.name()), kt)
        ctx.record(kind="avgpool", decision="same", input_size=sizes,
                   reason="auto_pad=SAME_UPPER, count_include_pad=0: Keras 'same' for every input size")
        return ctx.tensor(y, cl)
    decision = P.decide(sizes, kernel, strides, dilations, pads, op="AveragePool")
    if plain and decision.mode == "valid":
        mode, reason = "valid", "no padding: 'valid'"
    elif plain and include:
        mode, reason = "zero_pad", "count_include_pad=1: zero padding then 'valid' counts the pads in the divisor"
    elif plain and not include and decision.mode == "same":
        mode, reason = "same", ("count_include_pad=0 and the pads equal Keras 'same', whose average "
                                "excludes the padding")
    else:
        mode = "divisor_map"
        reason = ("exact divisor map: " + ("padding counted" if include else "padding not counted")
                  + (f", ceil_mode adds {ext} uncounted positions at the end" if any(ext) else "")
                  + ("; dilated windows gathered explicitly" if any(d > 1 for d in dilations) else ""))
    if mode == "valid" or mode == "same":
        y = ctx.layer(_AVGPOOL[nsp](pool_size=tuple(kernel), strides=tuple(strides), padding=mode,
                                    name=ctx.name()), kt)
    elif mode == "zero_pad":
        kt = zero_pad(ctx, kt, pads, nsp)
        y = ctx.layer(_AVGPOOL[nsp](pool_size=tuple(kernel), strides=tuple(strides), padding="valid",
                                    name=ctx.name()), kt)
    else:
        full = [[b, e + x_] for (b, e), x_ in zip(pads, ext)]
        counted = [list(p) if include else [0, 0] for p in pads]
        ceil = _ceil_crop(sizes, kernel, strides, dilations, pads, ext)
        if not no_ext or any(d > 1 for d in dilations):
            outs = _outs_for(ctx, outs, sizes, dilations, ceil)
        y = ctx.op("avg_pool", [kt], kernel=kernel, strides=strides, dilations=dilations, pads=full,
                   counted=counted, out_sizes=_crop_sizes(outs, no_ext, dilations),
                   **({"ceil_crop": ceil} if ceil else {}))
    ctx.record(kind="avgpool", pads=pads, ceil_extension=ext, strides=strides, kernel=kernel,
               dilations=dilations, ceil_mode=bool(node.attr("ceil_mode", 0)),
               count_include_pad=include, input_size=sizes, decision=mode, reason=reason)
    return ctx.tensor(y, cl)


def _global(ctx, node, table):
    x = ctx.input(0)
    if x.rank < 3:
        raise ctx.error(f"expected an input of rank >= 3, got rank {x.rank}")
    nsp = x.rank - 2
    cl = L.channels_last(x.rank)
    kt = ctx.keras(x, cl)
    if nsp not in table:
        raise ctx.error(f"global pooling over {nsp} spatial axes is not supported (1 to 3 are)")
    y = ctx.layer(table[nsp](keepdims=True, name=ctx.name()), kt)
    return ctx.tensor(y, cl)


@converter("GlobalAveragePool", since=1)
def global_average_pool(ctx, node):
    return _global(ctx, node, _GAP)


@converter("GlobalMaxPool", since=1)
def global_max_pool(ctx, node):
    return _global(ctx, node, _GMP)
