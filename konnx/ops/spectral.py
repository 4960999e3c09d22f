"""DFT (opset 17/20) and STFT (opset 17) as products with constant cosine/sine tables; the
Hann, Hamming and Blackman windows of a run-time size."""
from __future__ import annotations

import numpy as np
import onnx

from ..values import Const, static_dim
from .elementwise import dtype_of
from . import spec_checks
from .registry import converter


def _check_dft(node, facts):
    rank = facts.rank(0)
    if rank is None:
        return None
    if node.opset >= 20:
        v = facts.value(2)
        if node.has_input(2) and v is None:
            return None
        axis = int(np.asarray(v).reshape(-1)[0]) if node.has_input(2) else -2
    else:
        axis = node.int("axis")
    if axis % rank == rank - 1:
        return "the last axis holds the real/imaginary parts; it cannot be transformed"
    return None


def _check_stft(node, facts):
    rank = facts.rank(0)
    if rank is not None and rank != 3:
        return "STFT needs a (batch, length, 1|2) signal with a static length"
    if not node.has_input(2) and not node.has_input(3):
        return "STFT needs a window or a frame_length"
    return None


@converter("DFT", since=17, consts=(1, 2), check=_check_dft, limits="static signal length; dft_length and axis known at conversion time")
def dft(ctx, node):
    x = ctx.input(0)
    if node.opset >= 20:
        axis = int(np.asarray(ctx.const(2, "axis")).reshape(-1)[0]) if node.has_input(2) else -2
    else:
        axis = int(node.attr("axis"))
    axis %= x.rank
    m = static_dim(x.onnx_shape[axis])
    if m is None or static_dim(x.onnx_shape[-1]) not in (1, 2):
        raise ctx.error("DFT needs a static signal length and a last axis of size 1 or 2")
    inverse = bool(int(node.attr("inverse")))
    onesided = bool(int(node.attr("onesided")))
    if node.has_input(1):
        n = int(np.asarray(ctx.const(1, "dft_length")).reshape(-1)[0])
    else:
        n = 2 * (m - 1) if inverse and onesided else m
    y = ctx.op("dft", [ctx.onnx_layout(x)], axis=axis, n=n, inverse=inverse, onesided=onesided)
    return ctx.tensor(y, dtype=dtype_of(x))


@converter("STFT", since=17, consts=(1, 3), check=_check_stft, limits="static signal length; frame_step and frame_length known at conversion time")
def stft(ctx, node):
    x = ctx.input(0)
    if static_dim(x.onnx_shape[1]) is None:
        raise ctx.error("STFT needs a (batch, length, 1|2) signal with a static length")
    step = int(np.asarray(ctx.const(1, "frame_step")).reshape(-1)[0])
    window = ctx.input(2)
    if node.has_input(3):
        length = int(np.asarray(ctx.const(3, "frame_length")).reshape(-1)[0])
    else:
        length = int(window.shape[0])
    win = None if window is None else (np.asarray(window.value) if isinstance(window, Const)
                                       else ctx.onnx_layout(window))
    y = ctx.op("stft", [ctx.onnx_layout(x), win], step=step, length=length,
               onesided=bool(int(node.attr("onesided"))))
    return ctx.tensor(y, dtype=dtype_of(x))


# ----------------------------------------------------------------------------- windows
def _window(kind: str):
    def convert(ctx, node):
        dt = node.attr("output_datatype")
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(dt))).name if dt else "float32"
        size = ctx.input(0)
        if isinstance(size, Const):
            raise ctx.error("a window of constant size is a constant; it is folded, not converted")
        y = ctx.op("window", [ctx.onnx_layout(size)], kind=kind, periodic=bool(int(node.attr("periodic"))),
                   dtype=dtype)
        return ctx.tensor(y, dtype=dtype)
    return convert


converter("HannWindow", since=17, limits="run-time size", check=spec_checks.window)(_window("hann"))
converter("HammingWindow", since=17, limits="run-time size", check=spec_checks.window)(_window("hamming"))
converter("BlackmanWindow", since=17, limits="run-time size", check=spec_checks.window)(_window("blackman"))
