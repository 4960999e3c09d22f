"""GridSample, AffineGrid, Col2Im and DeformConv (ONNX layout, static spatial sizes)."""
from __future__ import annotations

import numpy as np

from ..values import Const, static_dim
from .elementwise import dtype_of
from . import conv_checks, spec_checks
from .registry import converter

_MODES = {"bilinear": "linear", "bicubic": "cubic", "linear": "linear", "cubic": "cubic", "nearest": "nearest"}


def _check_grid_sample(node, facts):
    mode = node.attr("mode")
    if mode not in _MODES:
        return f"unknown mode {mode!r}"
    if node.attr("padding_mode") not in ("zeros", "border", "reflection"):
        return f"unknown padding_mode {node.attr('padding_mode')!r}"
    rank, grid_rank, coords = facts.rank(0), facts.rank(1), facts.dim(1, -1)
    if rank is not None and grid_rank is not None and (grid_rank != rank or (
            coords is not None or facts.built) and coords != rank - 2):
        return f"grid must have rank {rank} and {rank - 2} coordinates"
    return None


def _arg(ctx, i):
    v = ctx.input(i)
    return np.asarray(v.value) if isinstance(v, Const) else ctx.onnx_layout(v)


@converter("GridSample", since=16, check=_check_grid_sample, limits="static spatial sizes of X")
def grid_sample(ctx, node):
    x = ctx.input(0)
    if any(static_dim(d) is None for d in x.onnx_shape[1:]):
        raise ctx.error("GridSample needs static channel and spatial sizes; fix them with input_shapes")
    y = ctx.op("grid_sample", [_arg(ctx, 0), _arg(ctx, 1)], mode=_MODES[node.attr("mode")],
               padding=node.attr("padding_mode"), align=bool(int(node.attr("align_corners"))))
    return ctx.tensor(y, dtype=dtype_of(x))


@converter("AffineGrid", since=20, consts=(1,), check=spec_checks.affine_grid)
def affine_grid(ctx, node):
    theta = ctx.input(0)
    size = [int(v) for v in np.asarray(ctx.const(1, "size")).reshape(-1)]
    y = ctx.op("affine_grid", [_arg(ctx, 0)], size=size, align=bool(int(node.attr("align_corners"))))
    return ctx.tensor(y, dtype=dtype_of(theta))


@converter("Col2Im", since=18, consts=(1, 2), check=spec_checks.col2im, limits="static channel count")
def col2im(ctx, node):
    x = ctx.input(0)
    image = [int(v) for v in np.asarray(ctx.const(1, "image_shape")).reshape(-1)]
    block = [int(v) for v in np.asarray(ctx.const(2, "block_shape")).reshape(-1)]
    nd = len(image)
    if static_dim(x.onnx_shape[1]) is None:
        raise ctx.error("Col2Im needs a static channel count")
    y = ctx.op("col2im", [ctx.onnx_layout(x)], image=image, block=block,
               strides=list(node.attr("strides") or [1] * nd), dilations=list(node.attr("dilations") or [1] * nd),
               pads=list(node.attr("pads") or [0] * (2 * nd)))
    return ctx.tensor(y, dtype=dtype_of(x))


@converter("DeformConv", since=19, check=conv_checks.deform_conv, limits="2-D; static shapes")
def deform_conv(ctx, node):
    x, w, offset = ctx.input(0), ctx.input(1), ctx.input(2)
    if any(static_dim(d) is None for d in list(x.onnx_shape[1:]) + list(offset.shape[2:]) + list(w.shape)):
        raise ctx.error("DeformConv needs static channel, spatial, weight and offset sizes")
    pads = list(node.attr("pads") or [0, 0, 0, 0])
    y = ctx.op("deform_conv", [_arg(ctx, i) if ctx.input(i) is not None else None for i in range(5)],
               strides=list(node.attr("strides") or [1, 1]), dilations=list(node.attr("dilations") or [1, 1]),
               pads=pads[:2], group=int(node.attr("group")), offset_group=int(node.attr("offset_group")))
    return ctx.tensor(y, dtype=dtype_of(x))
