"""Resize (opsets 10, 11, 13, 18, 19) and Upsample (opsets 7, 9).

Every mode is computed exactly the same way: resize is separable, so for each resized axis
konnx computes at conversion time (static sizes needed on the resized axes) the source
indices and weights of every output position (resize_math.py, following onnxruntime's
arithmetic) and applies ``out = sum_t w[t] * take(x, idx[t], axis)`` on the channels-last
tensor. Nearest upsampling by integer factors that repeats every pixel (asymmetric/floor,
half_pixel/round_prefer_floor x2, ...) becomes keras.layers.UpSampling*D instead.
"""
from __future__ import annotations

import numpy as np
from ..lazy_keras import keras

from .. import layout as L
from ..values import Dim, static_dim
from . import resize_math as RM
from .registry import SPATIAL, converter
from .shape import dim_axis

_UPSAMPLING = {1: keras.layers.UpSampling1D, 2: keras.layers.UpSampling2D, 3: keras.layers.UpSampling3D}


def _antialias(node) -> bool:
    return (node.op_type == "Resize" and node.opset >= 18 and bool(int(node.attr("antialias") or 0))
            and node.attr("mode") != "nearest")


def _check_params(node, facts):
    """scales/sizes: one of them given, one entry per resized axis (when known before building)."""
    rank = facts.rank(0)
    if node.op_type == "Upsample" and node.opset < 9:
        return None
    idx = (1,) if node.op_type == "Upsample" or node.opset < 11 else (2, 3)
    given = {}
    for i in idx:
        if node.has_input(i):
            v = facts.value(i)
            if v is None or np.size(v):
                given[i] = v
    if not given:
        return "neither scales nor sizes is given"
    axes = node.attr("axes") if node.opset >= 18 and node.op_type == "Resize" else None
    n = len(axes) if axes else rank
    i = min(given)
    what = "scales" if i == idx[0] else "sizes"
    if n is not None and given[i] is not None and np.size(given[i]) != n:
        return f"{np.size(given[i])} {what} for {n} axes"
    return None


def _check_resize(node, facts):
    if _antialias(node) and node.attr("coordinate_transformation_mode") == "tf_crop_and_resize":
        return "antialias=1 together with tf_crop_and_resize is not supported"
    mode = node.attr("mode")
    if mode not in ("nearest", "linear", "cubic"):
        return f"unknown mode {mode!r}"
    if node.opset >= 11 and node.attr("coordinate_transformation_mode") not in RM.COORD_MODES:
        return f"unknown coordinate_transformation_mode {node.attr('coordinate_transformation_mode')!r}"
    nearest = node.attr("nearest_mode")
    if node.opset >= 11 and mode == "nearest" and nearest is not None and nearest not in RM.NEAREST_MODES[:4]:
        return f"unknown nearest_mode {nearest!r}: expected one of {list(RM.NEAREST_MODES[:4])}"
    return _check_params(node, facts)


def _nonempty(ctx, i, what, allow_dims=False):
    if not ctx.node.has_input(i):
        return None
    v = ctx.const(i, what, allow_dims=allow_dims)
    return None if v.size == 0 else np.asarray(v).reshape(-1)


def _plan(ctx, node, x):
    """Per ONNX axis: (in_len, out_len, scale, roi) with in/out None where unknown."""
    rank = x.rank
    shape = [static_dim(d) for d in x.onnx_shape]
    if node.op_type == "Upsample":
        scales = node.attr("scales") if node.opset < 9 else ctx.const(1, "scales")
        scales, sizes, roi, axes = np.asarray(scales, np.float32).reshape(-1), None, None, list(range(rank))
    elif node.opset < 11:
        scales, sizes, roi, axes = _nonempty(ctx, 1, "scales"), None, None, list(range(rank))
    else:
        roi = _nonempty(ctx, 1, "roi")
        scales = _nonempty(ctx, 2, "scales")
        sizes = _nonempty(ctx, 3, "sizes", allow_dims=True) if scales is None else None
        axes = node.attr("axes") if node.opset >= 18 else None
        axes = [int(a) % rank for a in axes] if axes else list(range(rank))
    n = len(axes)
    rois = [(0.0, 1.0)] * rank
    if roi is not None and len(roi) == 2 * n:
        for i, a in enumerate(axes):
            rois[a] = (float(roi[i]), float(roi[i + n]))
    plan = [(shape[a], shape[a], 1.0, rois[a]) for a in range(rank)]
    if scales is not None:
        for a, s in zip(axes, scales):
            s = float(np.float32(s))
            if s == 1.0:
                continue
            if shape[a] is None:  # output size computed at run time from the scale
                plan[a] = (None, ("scale", s), s, rois[a])
                continue
            plan[a] = (shape[a], RM.output_size_from_scale(s, shape[a]), s, rois[a])
        return plan
    scale_of = {}
    for a, s in zip(axes, sizes):
        if isinstance(s, Dim):
            if dim_axis(s, node.inputs[0], x.onnx_shape) == a:
                continue  # the input's own (dynamic) dim: unchanged
            plan[a] = (shape[a], s, None, rois[a])  # a size known at run time (another tensor's)
            continue
        s = int(s)
        if shape[a] is None:
            plan[a] = (None, s, None, rois[a])  # a static size from a dynamic one
            continue
        scale_of[a] = float(np.float32(s) / np.float32(shape[a])) if shape[a] else 1.0
        plan[a] = (shape[a], s, scale_of[a], rois[a])
    policy = node.attr("keep_aspect_ratio_policy") if node.opset >= 18 else "stretch"
    if policy != "stretch":
        pick = min if policy == "not_larger" else max
        if any(not isinstance(plan[a][1], int) or plan[a][0] is None for a in axes):
            raise ctx.error("keep_aspect_ratio_policy needs static sizes; fix them with input_shapes")
        ss = [scale_of.get(a, 1.0) for a in axes]
        s = pick(np.float32(v) for v in ss)
        for a in axes:
            if shape[a] is None:
                raise ctx.error("keep_aspect_ratio_policy needs static sizes; fix them with input_shapes")
            out = int(RM._round_half_away(np.float32(s) * np.float32(shape[a])))
            plan[a] = (shape[a], out, float(s), rois[a])
    return plan


def _modes(node):
    if node.op_type == "Upsample" or node.opset < 11:
        mode = node.attr("mode")
        mode = "linear" if mode in ("bilinear", "trilinear") else mode
        return mode, "asymmetric", "simple"
    mode = node.attr("mode")
    coord = node.attr("coordinate_transformation_mode")
    nearest = node.attr("nearest_mode") if mode == "nearest" else "simple"
    return mode, coord, nearest


def resize_common(ctx, node):
    x = ctx.tensor_of(ctx.input(0))
    mode, coord, nearest = _modes(node)
    plan = _plan(ctx, node, x)
    if all(i == o for i, o, _, _ in plan):
        return x  # onnxruntime copies when no output dim changes
    runtime = [a for a, (i, o, _, _) in enumerate(plan) if i != o and (i is None or not isinstance(o, int))]
    if runtime:
        return _resize_runtime(ctx, node, x, plan, runtime, mode)
    if mode != "nearest" and not np.issubdtype(np.dtype(x.dtype), np.floating):
        raise ctx.error(f"{mode} resize of a {x.dtype} tensor is not supported (only float)")
    a_coef = float(node.attr("cubic_coeff_a", -0.75))
    excl = bool(int(node.attr("exclude_outside", 0) or 0))
    fill = float(node.attr("extrapolation_value", 0.0) or 0.0)
    taps = {}
    for a, (i, o, s, roi) in enumerate(plan):
        if i == o and s == 1.0:
            continue
        if _antialias(node):
            t = RM.antialias_taps(mode, coord, i, o, s, roi, a_coef, excl)
        else:
            t = RM.axis_taps(mode, coord, nearest, i, o, s, roi, a_coef, excl)
        if t is not None:
            taps[a] = t
    cl = L.channels_last(x.rank)
    kt = ctx.keras(x, cl)
    if not taps:
        return ctx.tensor(kt, cl) if kt is not x.kt else x
    factors = [RM.integer_upsample_factor(taps.get(a), plan[a][0], plan[a][1]) for a in range(x.rank)]
    nsp = x.rank - 2
    if (nsp in _UPSAMPLING and all(f is not None for f in factors) and factors[0] == 1 and factors[1] == 1):
        size = tuple(factors[2:])
        kw = {} if nsp == 1 else {"data_format": "channels_last"}
        arg = size[0] if nsp == 1 else size
        if nsp == 2:
            kw["interpolation"] = "nearest"
        y = ctx.layer(_UPSAMPLING[nsp](arg, name=ctx.name(), **kw), kt)
        ctx.record(kind="resize", decision="upsampling", factors=list(size),
                   reason="nearest upsampling that repeats every element: keras UpSampling layer")
        return ctx.tensor(y, cl)
    # shrinking axes first keeps the intermediate tensors small
    order = sorted(taps, key=lambda a: plan[a][1] / plan[a][0])
    for a in order:
        t = taps[a]
        y_args = [kt, t.indices, t.weights, None if t.valid is None else t.valid.astype(np.uint8)]
        kt = ctx.op("resize_axis", y_args, suffix=f"axis{a}", axis=L.keras_axis(cl, a), fill=fill)
    ctx.record(kind="resize", decision="separable", mode=mode, coordinate_transformation_mode=coord,
               nearest_mode=nearest if mode == "nearest" else None, axes=order,
               sizes=[[plan[a][0], plan[a][1]] for a in order],
               reason="per-axis source indices and weights computed at conversion time")
    return ctx.tensor(kt, cl)


def _resize_runtime(ctx, node, x, plan, runtime, mode):
    """Resize where some axis size is known only at run time: the static axes as usual first
    would need their taps, so every resized axis is computed at run time (nearest/linear with
    the usual coordinate modes; the source coordinates follow the float32 arithmetic of
    resize_math.original_coords)."""
    from ..dims import runtime_shape

    _, coord, nearest = _modes(node)
    if mode == "cubic" or _antialias(node) or coord not in RM.RUNTIME_COORD_MODES:
        raise ctx.error(f"{mode} resize with coordinate_transformation_mode {coord!r}"
                        f"{' and antialias' if _antialias(node) else ''} needs static sizes on the resized axes; "
                        "fix them with input_shapes")
    cl = L.channels_last(x.rank)
    kt = ctx.keras(x, cl)
    for a, (i, o, s, _) in enumerate(plan):
        if i == o:
            continue
        if isinstance(o, tuple):  # ("scale", s): out = int(f32(s) * f32(in))
            size = None
        elif isinstance(o, Dim):
            size = runtime_shape(ctx, np.array([o], dtype=object), "Resize sizes")
        else:
            size = np.array([int(o)], np.int64)
        kt = ctx.op("resize_axis_runtime", [kt, size], suffix=f"axis{a}", axis=L.keras_axis(cl, a),
                    mode=mode, coord=coord, nearest=nearest, scale=None if s is None else float(s))
    ctx.record(kind="resize", decision="run-time sizes", mode=mode, coordinate_transformation_mode=coord,
               axes=runtime, reason="a resized axis has a size known only at run time")
    return ctx.tensor(kt, cl)


@converter("Resize", layout=SPATIAL, since=10, consts=(1, 2, 3), check=_check_resize,
           limits="roi/scales/sizes known at conversion time (dynamic dims allowed for nearest/linear)")
def resize(ctx, node):
    return resize_common(ctx, node)


def _check_upsample(node, facts):
    mode = node.attr("mode")
    if mode not in ("nearest", "linear", "bilinear"):
        return f"unknown Upsample mode {mode!r}"
    return _check_params(node, facts)


@converter("Upsample", layout=SPATIAL, since=7, consts=(1,), check=_check_upsample, limits="scales known at conversion time")
def upsample(ctx, node):
    return resize_common(ctx, node)
