"""Integer arithmetic and quantization: BitShift, QuantizeLinear, DequantizeLinear,
DynamicQuantizeLinear, MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv. All in the ONNX
layout."""
from __future__ import annotations

import numpy as np
import onnx

from .elementwise import broadcast, dtype_of
from .args import input_arg
from . import conv_checks
from .registry import FOLLOWS, converter

_INT_QUANT = {"int8", "uint8", "int16", "uint16", "int32", "uint32"}



# ----------------------------------------------------------------------------- BitShift
def _check_bit_shift(node, facts):
    direction = node.string("direction")
    return None if direction in ("LEFT", "RIGHT") else f"direction must be LEFT or RIGHT, got {direction!r}"


@converter("BitShift", layout=FOLLOWS, since=11, check=_check_bit_shift)
def bit_shift(ctx, node):
    direction = node.string("direction")
    x, y = ctx.input(0), ctx.input(1)
    args, perm, _ = broadcast(ctx, [x, y])
    return ctx.tensor(ctx.op("bit_shift", args, left=direction == "LEFT"), perm, dtype=dtype_of(x))


# ----------------------------------------------------------------------------- quantization
def _quant_type(node, zero) -> str:
    if zero is not None:
        return dtype_of(zero)
    out = node.attr("output_dtype")
    if out:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(out))).name
    return "uint8"


def _check_quant(node, facts):
    zero = facts.dtype(2)
    if zero is not None and zero not in _INT_QUANT:
        return f"quantization to {zero} has no Keras dtype"
    out = node.attr("output_dtype")
    if out and not node.has_input(2):
        name = onnx.TensorProto.DataType.Name(int(out))
        if name.lower() not in _INT_QUANT:
            return f"quantization to {name} has no Keras dtype"
    return None


def _check_dequant(node, facts):
    dt = facts.dtype(0)
    return f"dequantization of {dt} is not supported" if dt is not None and dt not in _INT_QUANT else None


def _int_conv_check(spec_rule):
    """The spec's shape rules (conv_checks), then konnx's limit: group=1."""
    def check(node, facts):
        why = spec_rule(node, facts)
        if why:
            return why
        return "grouped integer convolutions are not supported" if node.attr("group") != 1 else None
    return check


@converter("QuantizeLinear", layout=FOLLOWS, since=10, check=_check_quant, limits="8/16/32-bit integer targets")
def quantize_linear(ctx, node):
    zero = ctx.input(2)
    qt = _quant_type(node, zero)
    args = [input_arg(ctx, 0), input_arg(ctx, 1), input_arg(ctx, 2)]
    y = ctx.op("quantize_linear", args, axis=int(node.attr("axis", 1)), block=int(node.attr("block_size", 0) or 0),
               out_dtype=qt)
    return ctx.tensor(y, dtype=qt)


@converter("DequantizeLinear", layout=FOLLOWS, since=10, check=_check_dequant, limits="8/16/32-bit integer inputs")
def dequantize_linear(ctx, node):
    scale = ctx.input(1)
    out = node.attr("output_dtype")
    out_dt = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(out))).name if out else dtype_of(scale)
    args = [input_arg(ctx, 0), input_arg(ctx, 1), input_arg(ctx, 2)]
    y = ctx.op("dequantize_linear", args, axis=int(node.attr("axis", 1)),
               block=int(node.attr("block_size", 0) or 0), out_dtype=out_dt)
    return ctx.tensor(y, dtype=out_dt)


@converter("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(ctx, node):
    outs = ctx.op("dynamic_quantize_linear", [input_arg(ctx, 0)])
    return [ctx.tensor(outs[0], dtype="uint8"), ctx.tensor(outs[1], dtype="float32"),
            ctx.tensor(outs[2], dtype="uint8")]


@converter("MatMulInteger", since=10)
def matmul_integer(ctx, node):
    y = ctx.op("int_matmul", [input_arg(ctx, i) for i in range(4)])
    return ctx.tensor(y, dtype="int32")


@converter("QLinearMatMul", since=10)
def qlinear_matmul(ctx, node):
    args = [input_arg(ctx, i) for i in range(8)]
    qt = dtype_of(ctx.input(7))
    return ctx.tensor(ctx.op("qlinear_matmul", args, out_dtype=qt), dtype=qt)


def _conv_geometry(ctx, node, w):
    """strides, dilations and explicit (begin..., end...) pads of an integer convolution."""
    x = ctx.input(0)
    nsp = x.rank - 2
    kernel = list(node.attr("kernel_shape") or w.shape[2:])
    strides = list(node.attr("strides") or [1] * nsp)
    dilations = list(node.attr("dilations") or [1] * nsp)
    auto = node.attr("auto_pad") or "NOTSET"
    if auto in ("NOTSET", "VALID"):
        pads = list(node.attr("pads") or [0] * (2 * nsp)) if auto == "NOTSET" else [0] * (2 * nsp)
        return strides, dilations, pads
    sizes = [x.onnx_shape[2 + i] for i in range(nsp)]
    if any(not isinstance(s, (int, np.integer)) for s in sizes):
        raise ctx.error(f"auto_pad={auto} needs static spatial sizes")
    begin, end = [], []
    for s, k, st, d in zip(sizes, kernel, strides, dilations):
        total = max((-(-s // st) - 1) * st + (k - 1) * d + 1 - s, 0)
        small = total // 2
        begin.append(total - small if auto == "SAME_LOWER" else small)
        end.append(small if auto == "SAME_LOWER" else total - small)
    return strides, dilations, begin + end


@converter("ConvInteger", since=10, check=_int_conv_check(conv_checks.conv_integer), limits="group=1")
def conv_integer(ctx, node):
    strides, dilations, pads = _conv_geometry(ctx, node, ctx.input(1))
    y = ctx.op("int_conv", [input_arg(ctx, i) for i in range(4)], strides=strides, dilations=dilations, pads=pads)
    return ctx.tensor(y, dtype="int32")


@converter("QLinearConv", since=10, check=_int_conv_check(conv_checks.qlinear_conv), limits="group=1")
def qlinear_conv(ctx, node):
    strides, dilations, pads = _conv_geometry(ctx, node, ctx.input(3))
    qt = dtype_of(ctx.input(7))
    y = ctx.op("qlinear_conv", [input_arg(ctx, i) for i in range(9)], strides=strides, dilations=dilations, pads=pads,
               out_dtype=qt)
    return ctx.tensor(y, dtype=qt)
