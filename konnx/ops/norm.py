"""Normalizations: BatchNormalization, InstanceNormalization, GroupNormalization, LayerNormalization,
RMSNormalization, LRN, LpNormalization, MeanVarianceNormalization."""
from __future__ import annotations

import numpy as np
from ..lazy_keras import keras

from .. import layout as L
from ..values import Const, Tensor, static_dim
from . import spec_checks
from .elementwise import align, dtype_of
from .registry import AXIS, SPATIAL, converter


def _f32(x) -> bool:
    return dtype_of(x) == "float32"


def _all_const(ctx, idx) -> bool:
    return all(ctx.input(i) is None or isinstance(ctx.input(i), Const) for i in idx)


def _channel_param(ctx, v, x, perm):
    """A per-channel (ONNX axis 1) parameter of shape [C] aligned with x stored in `perm`."""
    if v is None:
        return None
    if isinstance(v, Const):
        arr = np.asarray(v.value)
        arr = arr.reshape(arr.shape + (1,) * (x.rank - 2)) if arr.ndim == 1 else arr
        return align(ctx, Const(arr), perm, x.rank)
    if v.rank == 1 and x.rank > 2:
        kt = ctx.op("reshape", [ctx.keras(v)], suffix="chan", shape=[-1] + [1] * (x.rank - 2))
        v = Tensor(kt, L.identity(x.rank - 1), (None,) + (1,) * (x.rank - 2), dtype_of(v))
    return align(ctx, v, perm, x.rank)


# ----------------------------------------------------------------------------- BatchNormalization
def _check_bn(node, facts):
    if int(node.attr("training_mode", 0) or 0) == 1:
        return "training_mode=1 (batch statistics) is not supported; export the model in eval mode"
    if node.opset < 7 and int(node.attr("is_test", 0) or 0) == 0:
        return "is_test=0 (training) is not supported; export the model in eval mode"
    return None


@converter("BatchNormalization", layout=SPATIAL, check=_check_bn, limits="inference only (training_mode=0)")
def batch_norm(ctx, node):
    x = ctx.input(0)
    eps = float(node.attr("epsilon"))
    consts = _all_const(ctx, range(1, 5))
    spatial = int(node.attr("spatial") if node.opset < 9 else 1)
    per_channel = consts and (spatial or x.rank == 2) and all(np.ndim(ctx.const(i)) <= 1 for i in range(1, 5))
    static_c = bool(x.onnx_shape) and static_dim(x.onnx_shape[1]) is not None
    if per_channel and _f32(x) and x.rank >= 2 and static_c:
        perm = L.channels_last(x.rank) if x.rank >= 3 else x.perm
        kt = ctx.keras(x, perm)
        axis = L.keras_axis(perm, 1)
        # ONNX's momentum follows Keras' convention (PyTorch's 0.1 is exported as 0.9), so
        # fine-tuning updates the moving statistics as the source framework would.
        layer = keras.layers.BatchNormalization(axis=axis, epsilon=eps, momentum=float(node.attr("momentum")),
                                                name=ctx.name())
        y = ctx.layer(layer, kt)
        c = max(np.size(ctx.const(i)) for i in range(1, 5))
        w = [np.broadcast_to(np.asarray(ctx.const(i), np.float32).reshape(-1), (c,)) for i in range(1, 5)]
        layer.set_weights(w)
        ctx.record(kind="batch_norm", decision="keras.layers.BatchNormalization", reason="constant statistics")
        return ctx.tensor(y, perm)
    if consts:
        # per-activation statistics (spatial=0) or odd dtypes: one fused affine transform
        s, b, m, v = (np.asarray(ctx.const(i), np.float64) for i in range(1, 5))
        a = s / np.sqrt(v + eps)
        off = b - m * a
        dt = dtype_of(x)
        a, off = (_param_shape(t, x.rank).astype(dt) for t in (a, off))
        perm = L.channels_last(x.rank) if x.rank >= 3 else x.perm
        args = [ctx.keras(x, perm), align(ctx, Const(a), perm, x.rank), align(ctx, Const(off), perm, x.rank)]
        return ctx.tensor(ctx.op("math.affine", args), perm)
    perm = L.channels_last(x.rank) if x.rank >= 3 else x.perm
    params = [_channel_param(ctx, ctx.input(i), x, perm) for i in range(1, 5)]
    return ctx.tensor(ctx.op("math.batch_norm", [ctx.keras(x, perm)] + params, epsilon=eps), perm)


def _param_shape(t, rank):
    """A statistics array ([C] or per-activation [C, D1, ...]) shaped to broadcast over x."""
    if t.ndim == 1:
        return t.reshape((1, -1) + (1,) * (rank - 2))
    return t.reshape((1,) + t.shape)


# ----------------------------------------------------------------------------- Instance / Group norm
def _keras_group_norm(ctx, x, groups, gamma, beta, eps):
    cl = L.channels_last(x.rank)
    layer = keras.layers.GroupNormalization(groups=groups, axis=-1, epsilon=eps, name=ctx.name())
    y = ctx.layer(layer, ctx.keras(x, cl))
    layer.set_weights([gamma.astype(np.float32), beta.astype(np.float32)])
    return ctx.tensor(y, cl)


def _group_norm_fn(ctx, x, groups, scale, bias, eps):
    """Channels-last group norm through a whitelisted function (any parameter kind)."""
    cl = L.channels_last(x.rank)
    args = [ctx.keras(x, cl)]
    for p in (scale, bias):
        args.append(np.asarray(p.value, dtype_of(x)) if isinstance(p, Const) else ctx.keras(p))
    return ctx.tensor(ctx.op("math.group_norm", args, groups=int(groups), epsilon=eps), cl)


def _check_instance_norm(node, facts):
    rank = facts.rank(0)
    if rank is not None and rank < 3:
        return f"expected an input of rank >= 3 (N, C, D1, ...), got rank {rank}"
    if facts.built and facts.dim(1, 0) is None:
        return "the number of channels must be static"
    return None


@converter("InstanceNormalization", layout=SPATIAL, check=_check_instance_norm)
def instance_norm(ctx, node):
    x, scale, bias = ctx.input(0), ctx.input(1), ctx.input(2)
    eps = float(node.attr("epsilon"))
    c = int(scale.shape[0])
    static_c = bool(x.onnx_shape) and static_dim(x.onnx_shape[1]) is not None
    if isinstance(scale, Const) and isinstance(bias, Const) and _f32(x) and static_c:
        return _keras_group_norm(ctx, x, c, np.asarray(scale.value), np.asarray(bias.value), eps)
    return _group_norm_fn(ctx, x, c, scale, bias, eps)


def _check_group_norm(node, facts):
    rank = facts.rank(0)
    if (rank is not None and rank < 3) or (facts.built and facts.dim(0, 1) is None):
        return "GroupNormalization needs an input of rank >= 3 with a static channel count"
    if node.opset < 21 and (facts.computed(1) or facts.computed(2)):
        return "GroupNormalization-18 with computed scale/bias is not supported"
    return spec_checks.group_norm(node, facts)


@converter("GroupNormalization", layout=SPATIAL, since=18, check=_check_group_norm, limits="static channel count")
def group_norm(ctx, node):
    x, scale, bias = ctx.input(0), ctx.input(1), ctx.input(2)
    eps = float(node.attr("epsilon"))
    groups = int(node.attr("num_groups"))
    c = static_dim(x.onnx_shape[1])
    per_group = node.opset < 21
    if isinstance(scale, Const) and isinstance(bias, Const):
        s, b = np.asarray(scale.value), np.asarray(bias.value)
        if per_group:  # opset 18: one scale/bias per group, shared by its channels
            s, b = np.repeat(s, c // groups), np.repeat(b, c // groups)
        if _f32(x):
            return _keras_group_norm(ctx, x, groups, s, b, eps)
        return _group_norm_fn(ctx, x, groups, Const(s), Const(b), eps)
    return _group_norm_fn(ctx, x, groups, scale, bias, eps)


# ----------------------------------------------------------------------------- Layer / RMS norm
def _trailing(node, x):
    axis = int(node.attr("axis"))
    axis = axis + x.rank if axis < 0 else axis
    return axis, list(range(axis, x.rank))


def _keras_param(ctx, v, x, axis, kaxes):
    """Constant scale/bias broadcast to x's normalized dims, in the Keras order of `kaxes`;
    None when a dim is not static."""
    dims = [static_dim(d) for d in x.onnx_shape[axis:]]
    if any(d is None for d in dims):
        return None
    full = np.broadcast_to(np.asarray(v.value, np.float32), dims)
    return np.transpose(full, [x.perm[k] - axis for k in kaxes])


def _param_arg(ctx, v, x):
    if v is None:
        return None
    if isinstance(v, Const):
        return align(ctx, Const(np.asarray(v.value).astype(dtype_of(x))), x.perm, x.rank)
    return align(ctx, v, x.perm, x.rank)


def _check_layer_norm(node, facts):
    if int(node.attr("stash_type")) != 1:
        return "stash_type other than float32 is not supported"
    return _scale_broadcasts(node, facts)


def _scale_broadcasts(node, facts):
    """Scale (and LayerNormalization's bias) broadcast to X (onnxruntime: "Scale and (optional)
    bias must match X.shape[axis:] or be NumPy-broadcastable"; it runs a scale that spans axes
    before `axis` too, so only a shape that cannot broadcast to X is refused)."""
    x = facts.shape(0)
    if x is None:
        return None
    for i, name in ((1, "scale"), (2, "bias")):
        s = facts.shape(i)
        if s is None:
            continue
        ok = len(s) <= len(x) and all(
            facts.dim(i, -k) in (None, 1) or _static(x[-k]) in (None, facts.dim(i, -k)) for k in range(1, len(s) + 1))
        if not ok:
            return f"{name} has shape {list(s)}: it must broadcast to X's shape {list(x)} (normalized from axis {node.attr('axis')})"
    return None


def _static(d):
    return int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None


@converter("LayerNormalization", layout=AXIS, since=17, check=_check_layer_norm, limits="stash_type=1 (float32)")
def layer_norm(ctx, node):
    x, scale, bias = ctx.input(0), ctx.input(1), ctx.input(2)
    eps = float(node.attr("epsilon"))
    axis, axes = _trailing(node, x)
    kaxes = sorted(L.keras_axis(x.perm, a) for a in axes)
    extra = [o for o in node.outputs[1:] if o]
    if not extra and _f32(x) and isinstance(scale, Const) and (bias is None or isinstance(bias, Const)):
        gamma = _keras_param(ctx, scale, x, axis, kaxes)
        beta = _keras_param(ctx, bias, x, axis, kaxes) if bias is not None else None
        if gamma is not None and (bias is None or beta is not None):
            layer = keras.layers.LayerNormalization(axis=kaxes, epsilon=eps, center=bias is not None,
                                                    name=ctx.name())
            y = ctx.layer(layer, ctx.keras(x))
            layer.set_weights([gamma] + ([beta] if beta is not None else []))
            return ctx.tensor(y, x.perm)
    args = [ctx.keras(x), _param_arg(ctx, scale, x), _param_arg(ctx, bias, x)]
    outs = ctx.op("math.moments_norm", args, axes=kaxes, epsilon=eps, outputs=3 if extra else 1)
    if not extra:
        return ctx.tensor(outs, x.perm)
    return [ctx.tensor(o, x.perm) for o in outs]


@converter("RMSNormalization", layout=AXIS, since=23, check=_check_layer_norm, limits="stash_type=1 (float32)")
def rms_norm(ctx, node):
    x, scale = ctx.input(0), ctx.input(1)
    eps = float(node.attr("epsilon"))
    axis, axes = _trailing(node, x)
    kaxes = sorted(L.keras_axis(x.perm, a) for a in axes)
    trailing = kaxes == list(range(x.rank - len(kaxes), x.rank))
    if _f32(x) and isinstance(scale, Const) and trailing:
        gamma = _keras_param(ctx, scale, x, axis, kaxes)
        if gamma is not None:
            layer = keras.layers.RMSNormalization(axis=kaxes, epsilon=eps, name=ctx.name())
            y = ctx.layer(layer, ctx.keras(x))
            layer.set_weights([gamma])
            return ctx.tensor(y, x.perm)
    args = [ctx.keras(x), _param_arg(ctx, scale, x)]
    return ctx.tensor(ctx.op("math.rms_norm", args, axes=kaxes, epsilon=eps), x.perm)


# ----------------------------------------------------------------------------- LRN, Lp, MVN
@converter("LRN", layout=AXIS, check=spec_checks.lrn)
def lrn(ctx, node):
    x = ctx.input(0)
    k = L.keras_axis(x.perm, 1)
    y = ctx.op("math.lrn", [ctx.keras(x)], size=int(node.attr("size")), alpha=float(node.attr("alpha")),
               beta=float(node.attr("beta")), bias=float(node.attr("bias")), axis=k)
    return ctx.tensor(y, x.perm)


def _check_lp(node, facts):
    p = int(node.attr("p"))
    return None if p in (1, 2) else f"p={p} is not defined by ONNX (p must be 1 or 2)"


@converter("LpNormalization", layout=AXIS, check=_check_lp, limits="p in {1, 2}")
def lp_norm(ctx, node):
    x = ctx.input(0)
    p = int(node.attr("p"))
    k = L.keras_axis(x.perm, int(node.attr("axis")))
    return ctx.tensor(ctx.op("math.lp_norm", [ctx.keras(x)], axis=k, p=p), x.perm)


@converter("MeanVarianceNormalization", layout=AXIS)
def mvn(ctx, node):
    x = ctx.input(0)
    axes = node.attr("axes") or [0, 2, 3]
    kaxes = sorted(L.keras_axis(x.perm, int(a)) for a in axes)
    return ctx.tensor(ctx.op("math.mvn", [ctx.keras(x)], axes=kaxes), x.perm)
