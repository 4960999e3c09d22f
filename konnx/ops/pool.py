"""Pooling: MaxPool, AveragePool (pads, ceil_mode, count_include_pad, dilations), LpPool, global
pooling and MaxUnpool."""
from __future__ import annotations

import numpy as np

from ..lazy_keras import keras

from .. import layout as L
from .. import padding as P
from .args import input_arg, static_shape
from . import conv_checks
from .conv import same_upper_dynamic, spatial_geometry, zero_pad
from .elementwise import dtype_of
from .registry import SPATIAL, converter

_MAXPOOL = {1: keras.layers.MaxPooling1D, 2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D}
_AVGPOOL = {1: keras.layers.AveragePooling1D, 2: keras.layers.AveragePooling2D, 3: keras.layers.AveragePooling3D}
_GAP = {1: keras.layers.GlobalAveragePooling1D, 2: keras.layers.GlobalAveragePooling2D,
        3: keras.layers.GlobalAveragePooling3D}
_GMP = {1: keras.layers.GlobalMaxPooling1D, 2: keras.layers.GlobalMaxPooling2D, 3: keras.layers.GlobalMaxPooling3D}


def check_pool(node, facts):
    """Refusals of MaxPool/AveragePool/LpPool known from attributes and the input's shape."""
    kernel = node.ints("kernel_shape") or []
    nsp, rank = len(kernel), facts.rank(0)
    if rank is not None and rank != nsp + 2:
        return f"kernel_shape has {nsp} axes but the input has rank {rank}"
    why = conv_checks.pool(node, facts)
    if why:
        return why
    auto = node.string("auto_pad") or "NOTSET"
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        return None
    strides, dilations = node.ints("strides") or [1] * nsp, node.ints("dilations") or [1] * nsp
    sizes = [facts.dim(0, 2 + a) for a in range(nsp)]
    pads = P.node_pads(node.attrs, sizes, kernel, strides, dilations, clamp=False)
    if any(d > 1 for d in dilations) or any(p is not None and sum(p) < 0 for p in pads):
        return (f"auto_pad={auto} with dilations {dilations} or a kernel smaller than the stride "
                f"(kernel {kernel}, strides {strides}): onnxruntime and the ONNX reference implementation "
                "disagree on this pooling, so konnx refuses rather than guess; use explicit pads")
    return None


def _check_maxpool(node, facts):
    if len(node.outputs) > 1 and node.outputs[1] and node.opset < 8:
        return "the Indices output of MaxPool needs opset >= 8"
    return check_pool(node, facts)


def _check_global(node, facts):
    rank = facts.rank(0)
    if rank is not None and rank < 3:
        return f"expected an input of rank >= 3, got rank {rank}"
    if rank is not None and rank - 2 > 3:
        return f"global pooling over {rank - 2} spatial axes is not supported (1 to 3 are)"
    return None


def pool_geometry(ctx, node, x):
    kernel = node.ints("kernel_shape")
    nsp = len(kernel)
    sizes, strides, dilations = spatial_geometry(node, x, kernel)
    pads = P.node_pads(node.attrs, sizes, kernel, strides, dilations, clamp=False)
    ceil_mode = bool(node.attr("ceil_mode"))
    auto = node.attr("auto_pad") or "NOTSET"
    if any(p is None for p in pads):
        if ceil_mode or (node.op_type == "AveragePool" and node.flag("count_include_pad")):
            raise ctx.error(f"auto_pad={auto} with strides {strides} needs static spatial sizes for ceil_mode "
                            "or count_include_pad=1; pass input_shapes")
        same_upper_dynamic(ctx, node, pads, strides, dilations, kernel)  # raises unless proven
        return kernel, sizes, strides, dilations, None, [0] * nsp, [None] * nsp
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


def _max_pool_perm(node, perms, facts):
    """Channels-last, but with the Indices output (flat NC... positions) both in the ONNX layout."""
    rank = facts.rank(0) or (len(perms[0]) if perms[0] else None)
    if rank is None:
        return [None] * len(node.outputs)
    if len(node.outputs) > 1 and node.outputs[1]:
        return [L.identity(rank), L.identity(rank)]
    return [L.channels_last(rank)]


@converter("MaxPool", since=1, check=_check_maxpool, layout=SPATIAL, perm=_max_pool_perm,
           limits="Indices output: static spatial sizes")
def max_pool(ctx, node):
    x = ctx.input(0)
    kernel, sizes, strides, dilations, pads, ext, outs = pool_geometry(ctx, node, x)
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
    decision = ctx.planned_padding(node, sizes, kernel, strides, dilations, pads)
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
               dilations=dilations, ceil_mode=bool(node.attr("ceil_mode")),
               input_size=sizes, decision=mode, reason=P.with_caveat(reason, decision))
    return ctx.tensor(y, cl)


def _max_pool_with_indices(ctx, node, x, kernel, sizes, strides, dilations, pads, ext, outs):
    """MaxPool's Indices output: flat positions in the NC... input, in the ONNX layout."""
    if any(s is None for s in sizes) or any(o is None for o in outs):
        raise ctx.error("the Indices output needs static spatial sizes; pass input_shapes")
    full = [[b, e + x_] for (b, e), x_ in zip(pads, ext)]
    y, idx = ctx.op("max_pool_argmax", [ctx.onnx_layout(x)], kernel=kernel, strides=strides, dilations=dilations,
                    pads=full, out_sizes=outs, column_major=bool(int(node.attr("storage_order") or 0)))
    ctx.record(kind="maxpool", decision="argmax", reason="the Indices output is computed window by window")
    return [ctx.tensor(y, dtype=x.dtype), ctx.tensor(idx, dtype="int64")]


@converter("AveragePool", since=1, check=check_pool, layout=SPATIAL)
def average_pool(ctx, node):
    x = ctx.input(0)
    kernel, sizes, strides, dilations, pads, ext, outs = pool_geometry(ctx, node, x)
    nsp = len(kernel)
    include = bool(node.attr("count_include_pad"))
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
    decision = ctx.planned_padding(node, sizes, kernel, strides, dilations, pads)
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
               dilations=dilations, ceil_mode=bool(node.attr("ceil_mode")),
               count_include_pad=include, input_size=sizes, decision=mode, reason=P.with_caveat(reason, decision))
    return ctx.tensor(y, cl)


def _global(ctx, node, table):
    x = ctx.input(0)
    nsp = x.rank - 2
    cl = L.channels_last(x.rank)
    kt = ctx.keras(x, cl)
    y = ctx.layer(table[nsp](keepdims=True, name=ctx.name()), kt)
    return ctx.tensor(y, cl)


@converter("GlobalAveragePool", since=1, check=_check_global, layout=SPATIAL)
def global_average_pool(ctx, node):
    return _global(ctx, node, _GAP)


@converter("GlobalMaxPool", since=1, check=_check_global, layout=SPATIAL)
def global_max_pool(ctx, node):
    return _global(ctx, node, _GMP)


def _lp_order(node):
    p = node.attr("p")
    if not isinstance(p, int) or p < 1:
        return (f"attribute p={p}: konnx computes the Lp norms of order p >= 1 (onnxruntime runs p <= 0, "
                "where (sum |x|^p)^(1/p) is no norm and p=0 divides by zero)")
    return None


def _check_lp_pool(node, facts):
    return _lp_order(node) or check_pool(node, facts)


@converter("LpPool", layout=SPATIAL, since=2, check=_check_lp_pool, limits="p >= 1")
def lp_pool(ctx, node):
    x = ctx.input(0)
    p = int(node.attr("p"))
    kernel, sizes, strides, dilations, pads, ext, outs = pool_geometry(ctx, node, x)
    cl = L.channels_last(x.rank)
    full = [[b, e + x_] for (b, e), x_ in zip(pads, ext)]
    y = ctx.op("lp_pool", [ctx.keras(x, cl)], p=p, kernel=kernel, strides=strides, dilations=dilations,
               pads=full, out_sizes=None if None in outs else outs)
    return ctx.tensor(y, cl, dtype=dtype_of(x))


def _check_global_lp(node, facts):
    return _lp_order(node) or _check_global(node, facts)


@converter("GlobalLpPool", layout=SPATIAL, since=2, check=_check_global_lp)
def global_lp_pool(ctx, node):
    x = ctx.input(0)
    p = int(node.attr("p"))
    cl = L.channels_last(x.rank)  # SPATIAL: the plan places the output channels-last
    axes = [L.keras_axis(cl, a) for a in range(2, x.rank)]
    kt = ctx.keras(x, cl)
    a = ctx.op("math.unary", [kt], suffix="abs", op="abs")
    powed = ctx.op("math.pow", [a, np.asarray(float(p), dtype_of(x))], out_dtype=dtype_of(x))
    s = ctx.op("math.reduce", [powed], op="sum", axes=sorted(axes), keepdims=1)
    y = ctx.op("math.pow", [s, np.asarray(1.0 / p, dtype_of(x))], out_dtype=dtype_of(x))
    return ctx.tensor(y, cl, dtype=dtype_of(x))


@converter("MaxUnpool", since=9, consts=(2,), limits="static input shape")
def max_unpool(ctx, node):
    x = ctx.input(0)
    dims = static_shape(ctx, x)
    kernel = list(node.attr("kernel_shape"))
    nsp = len(kernel)
    strides = list(node.attr("strides") or [1] * nsp)
    pads = list(node.attr("pads") or [0] * (2 * nsp))
    inferred = dims[:2] + [(dims[2 + i] - 1) * strides[i] + kernel[i] - pads[i] - pads[i + nsp] for i in range(nsp)]
    out = inferred
    if node.has_input(2):
        out = [int(v) for v in np.asarray(ctx.const(2, "output_shape")).reshape(-1)]
    y = ctx.op("max_unpool", [input_arg(ctx, 0), input_arg(ctx, 1)], out_shape=out, index_shape=inferred)
    return ctx.tensor(y, dtype=dtype_of(x))
