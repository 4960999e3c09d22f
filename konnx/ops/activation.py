"""Activations (Relu ... Softmax, Hardmax, Swish, SwiGLU, Shrink): native Keras layers where they
are exact, whitelisted functions otherwise."""
from __future__ import annotations

import numpy as np

from .. import layout as L
from ..lazy_keras import keras
from ..values import Const
from .elementwise import broadcast, dtype_of, unary
from . import spec_checks
from .registry import AXIS, FOLLOWS, converter

_F32_MAX = float(np.finfo(np.float32).max)


def native_float(x) -> bool:
    """Keras layers autocast to float32: use them only on float32 tensors."""
    return dtype_of(x) == "float32"


def keras_activation(ctx, x, name: str):
    kt = ctx.layer(keras.layers.Activation(name, name=ctx.name()), ctx.keras(x))
    return ctx.tensor(kt, x.perm)


def elementwise_fn(ctx, x, fn: str, **params):
    return ctx.tensor(ctx.op(fn, [ctx.keras(x)], **params), x.perm)


def _same(a, b) -> bool:
    return np.float32(a) == np.float32(b)


@converter("Relu", layout=FOLLOWS)
def relu(ctx, node):
    x = ctx.input(0)
    if not native_float(x):
        return unary(ctx, x, "relu")
    return ctx.tensor(ctx.layer(keras.layers.ReLU(name=ctx.name()), ctx.keras(x)), x.perm)


@converter("LeakyRelu", layout=FOLLOWS)
def leaky_relu(ctx, node):
    x, alpha = ctx.input(0), float(node.attr("alpha"))
    if native_float(x) and 0 <= alpha <= 1:
        layer = keras.layers.LeakyReLU(negative_slope=alpha, name=ctx.name())
        return ctx.tensor(ctx.layer(layer, ctx.keras(x)), x.perm)
    return elementwise_fn(ctx, x, "math.leaky_relu", alpha=alpha)


@converter("PRelu", layout=FOLLOWS, check=spec_checks.prelu)
def prelu(ctx, node):
    x, slope = ctx.input(0), ctx.input(1)
    if node.opset < 7 and isinstance(slope, Const) and slope.rank == 1 and x.rank > 2 and slope.shape[0] > 1:
        # PRelu-6: a 1-D slope holds one value per channel (axis 1)
        slope = Const(np.asarray(slope.value).reshape((-1,) + (1,) * (x.rank - 2)))
    (kx, ks), perm, rank = broadcast(ctx, [x, slope])
    if isinstance(slope, Const) and native_float(x) and rank == x.rank and rank >= 2:
        ks = np.asarray(ks, np.float32)
        ks = ks.reshape((1,) * (rank - ks.ndim) + ks.shape)
        kshape = tuple(kx.shape)
        if ks.shape[0] == 1 and all(s == 1 or s == d for s, d in zip(ks.shape[1:], kshape[1:])):
            shared = [j for j in range(1, rank) if ks.shape[j] == 1]
            layer = keras.layers.PReLU(shared_axes=shared or None, name=ctx.name())
            y = ctx.layer(layer, kx)
            layer.set_weights([ks[0]])
            return ctx.tensor(y, perm)
    return ctx.tensor(ctx.op("math.prelu", [kx, ks]), perm)


@converter("Elu", layout=FOLLOWS)
def elu(ctx, node):
    x, alpha = ctx.input(0), float(node.attr("alpha"))
    if native_float(x) and _same(alpha, 1.0):
        return keras_activation(ctx, x, "elu")
    return elementwise_fn(ctx, x, "math.elu", alpha=alpha)


@converter("Selu", layout=FOLLOWS)
def selu(ctx, node):
    x = ctx.input(0)
    alpha, gamma = float(node.attr("alpha")), float(node.attr("gamma"))
    return elementwise_fn(ctx, x, "math.selu", alpha=alpha, gamma=gamma)


@converter("Celu", layout=FOLLOWS)
def celu(ctx, node):
    return elementwise_fn(ctx, ctx.input(0), "math.celu", alpha=float(node.attr("alpha")))


@converter("ThresholdedRelu", layout=FOLLOWS)
def thresholded_relu(ctx, node):
    return elementwise_fn(ctx, ctx.input(0), "math.thresholded_relu", alpha=float(node.attr("alpha")))


@converter("HardSigmoid", layout=FOLLOWS)
def hard_sigmoid(ctx, node):
    x = ctx.input(0)
    alpha, beta = float(node.attr("alpha")), float(node.attr("beta"))
    if native_float(x) and _same(alpha, 1.0 / 6.0) and _same(beta, 0.5):
        return keras_activation(ctx, x, "hard_sigmoid")
    return elementwise_fn(ctx, x, "math.hard_sigmoid", alpha=alpha, beta=beta)


_SIMPLE = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus", "Softsign": "softsign",
           "HardSwish": "hard_silu", "Mish": "mish"}
_FALLBACK = {"hard_silu": "hard_swish"}


def _simple(name):
    def convert(ctx, node):
        x = ctx.input(0)
        if native_float(x):
            return keras_activation(ctx, x, name)
        return unary(ctx, x, _FALLBACK.get(name, name))
    return convert


for _onnx, _name in _SIMPLE.items():
    converter(_onnx, layout=FOLLOWS)(_simple(_name))


@converter("Erf", layout=FOLLOWS)
def erf(ctx, node):
    return unary(ctx, ctx.input(0), "erf")


@converter("Gelu", layout=FOLLOWS, since=20)
def gelu(ctx, node):
    x = ctx.input(0)
    approximate = node.attr("approximate") == "tanh"
    if native_float(x) and not approximate:
        return keras_activation(ctx, x, "gelu")
    return elementwise_fn(ctx, x, "math.gelu", approximate=approximate)


# ----------------------------------------------------------------------------- Clip
def _clip_bounds(ctx, node):
    if node.opset < 11:
        return (np.float32(node.attr("min")), np.float32(node.attr("max")))
    return ctx.input(1), ctx.input(2)


@converter("Clip", layout=FOLLOWS, check=spec_checks.clip)
def clip(ctx, node):
    x = ctx.input(0)
    lo, hi = _clip_bounds(ctx, node)
    dt = dtype_of(x)

    def const(v):
        if v is None:
            return None
        if isinstance(v, Const):
            v = v.value
        if isinstance(v, (np.ndarray, np.generic)):
            return np.asarray(v).reshape(()).astype(dt)
        return ctx.keras(v)

    lo_k, hi_k = const(lo), const(hi)
    if node.opset < 11 and float(lo_k) <= -_F32_MAX:
        lo_k = None
    if node.opset < 11 and float(hi_k) >= _F32_MAX:
        hi_k = None
    if native_float(x) and isinstance(lo_k, np.ndarray) and float(lo_k) == 0.0:
        if hi_k is None or (isinstance(hi_k, np.ndarray) and float(hi_k) > 0):
            max_value = None if hi_k is None else float(hi_k)
            layer = keras.layers.ReLU(max_value=max_value, name=ctx.name())
            return ctx.tensor(ctx.layer(layer, ctx.keras(x)), x.perm)
    if lo_k is None and hi_k is None:
        return x
    return ctx.tensor(ctx.op("math.clip", [ctx.keras(x), lo_k, hi_k]), x.perm)


# ----------------------------------------------------------------------------- Softmax family
def _softmax_axes(node, x):
    return _softmax_axes_of(node, x.rank)


def _softmax_axes_of(node, rank: int) -> list:
    if node.opset < 13:
        axis = int(node.attr("axis"))
        axis = axis + rank if axis < 0 else axis
        return list(range(axis, rank))
    axis = int(node.attr("axis"))
    return [axis + rank if axis < 0 else axis]


def _softmax(log: bool):
    def convert(ctx, node):
        x = ctx.input(0)
        axes = _softmax_axes(node, x)
        kaxes = sorted(L.keras_axis(x.perm, a) for a in axes)
        kt = ctx.keras(x)
        if len(kaxes) == 1 and not log and native_float(x) and x.rank <= 5:  # TF's Softmax kernel: rank <= 5
            y = ctx.layer(keras.layers.Softmax(axis=kaxes[0], name=ctx.name()), kt)
            # the spec's exp(x - max) / sum is NaN on a whole row holding a NaN or +inf (or only
            # -inf); Keras' Softmax gives 0 beside the NaN there: make such rows NaN
            y = ctx.op("math.softmax_nan_rows", [kt, y], axis=kaxes[0])
        elif not kaxes:
            return x
        else:
            y = ctx.op("math.softmax", [kt], axes=kaxes, log=log)
        return ctx.tensor(y, x.perm)
    return convert


converter("Softmax", layout=AXIS)(_softmax(False))
converter("LogSoftmax", layout=AXIS)(_softmax(True))


def _hardmax_perm(node, perms, facts):
    """Over one axis in the stored layout; over several in the ONNX layout (row-major order)."""
    x = perms[0]
    if x is None:
        return [None]
    return [tuple(x) if len(_softmax_axes_of(node, len(x))) == 1 else L.identity(len(x))]


@converter("Hardmax", layout=AXIS, perm=_hardmax_perm)
def hardmax(ctx, node):
    x = ctx.input(0)
    axes = _softmax_axes(node, x)
    if len(axes) == 1:
        k = L.keras_axis(x.perm, axes[0])
        return ctx.tensor(ctx.op("math.hardmax", [ctx.keras(x)], axis=k), x.perm)
    # over several axes the first maximum is taken in ONNX (row-major) order
    ident = L.identity(x.rank)
    y = ctx.op("math.hardmax", [ctx.keras(x, ident)], axis=axes[0], trailing=True)
    return ctx.tensor(y, ident)


@converter("Swish", layout=FOLLOWS, since=24)
def swish(ctx, node):
    x = ctx.input(0)
    y = ctx.op("swish", [ctx.keras(x)], alpha=float(node.attr("alpha")))
    return ctx.tensor(y, x.perm, dtype=dtype_of(x))


@converter("SwiGLU", since=28)
def swiglu(ctx, node):
    args, perm, _ = broadcast(ctx, [ctx.input(0), ctx.input(1)])
    y = ctx.op("swiglu", args, alpha=float(node.attr("alpha")))
    return ctx.tensor(y, perm, dtype=dtype_of(ctx.input(0)))


@converter("Shrink", layout=FOLLOWS, since=9)
def shrink(ctx, node):
    x = ctx.input(0)
    y = ctx.op("shrink", [ctx.keras(x)], lambd=float(node.attr("lambd")), bias=float(node.attr("bias")))
    return ctx.tensor(y, x.perm, dtype=dtype_of(x))
