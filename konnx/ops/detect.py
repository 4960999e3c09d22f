"""NonMaxSuppression and RoiAlign."""
from __future__ import annotations

import numpy as np

from ..values import Const, static_dim
from .elementwise import dtype_of
from . import detect_checks
from .registry import converter


def _scalar(ctx, i, what, default=None):
    if not ctx.node.has_input(i):
        return default
    v = np.asarray(ctx.const(i, what)).reshape(-1)
    return default if v.size == 0 else v[0].item()


@converter("NonMaxSuppression", since=10, consts=(2, 3, 4), check=detect_checks.non_max_suppression,
           limits="static box/class counts; thresholds known at conversion time; output length known at run time")
def non_max_suppression(ctx, node):
    boxes, scores = ctx.input(0), ctx.input(1)
    dims = [static_dim(d) for d in scores.shape]
    if None in dims or static_dim(boxes.shape[1]) is None:
        raise ctx.error("NonMaxSuppression needs static batch, class and box counts; fix them with input_shapes")
    max_out = int(_scalar(ctx, 2, "max_output_boxes_per_class", 0))
    if 0 in dims:  # no batch, class or box: nothing is selected (Keras has no 0-sized inputs)
        return Const(np.zeros((0, 3), np.int64))
    iou = float(_scalar(ctx, 3, "iou_threshold", 0.0))
    score = _scalar(ctx, 4, "score_threshold")
    args = [np.asarray(v.value) if isinstance(v, Const) else ctx.onnx_layout(v) for v in (boxes, scores)]
    y = ctx.op("non_max_suppression", args, max_out=max(max_out, 0), iou_threshold=iou,
               score_threshold=None if score is None else float(score),
               center=int(node.attr("center_point_box") or 0))
    return ctx.tensor(y, dtype="int64")


@converter("RoiAlign", since=10, check=detect_checks.roi_align, limits="sampling_ratio > 0; static channel and spatial sizes")
def roi_align(ctx, node):
    x = ctx.input(0)
    ratio = node.int("sampling_ratio")
    if any(static_dim(d) is None for d in x.onnx_shape[1:]):
        raise ctx.error("RoiAlign needs static channel and spatial sizes")
    mode = node.string("mode")
    half = (node.attr("coordinate_transformation_mode") if node.opset >= 16
            else "output_half_pixel") == "half_pixel"
    args = [np.asarray(v.value) if isinstance(v, Const) else ctx.onnx_layout(v)
            for v in (ctx.input(0), ctx.input(1), ctx.input(2))]
    y = ctx.op("roi_align", args, out_h=int(node.attr("output_height")), out_w=int(node.attr("output_width")),
               ratio=ratio, scale=float(node.attr("spatial_scale")), mode=mode, half_pixel=half)
    return ctx.tensor(y, dtype=dtype_of(x))
