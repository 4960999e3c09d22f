"""Input checks of NonMaxSuppression and RoiAlign, before anything is built (issue 14).

The shapes and ranges are the spec's, as onnxruntime enforces them
(non_max_suppression_helper.h, roialign.h):
- NonMaxSuppression: boxes (batch, boxes, 4), scores (batch, classes, boxes), iou_threshold in
  [0, 1]. (max_output_boxes_per_class, iou_threshold and score_threshold are scalars in the
  spec; onnxruntime reads the first element of a longer tensor, and konnx does the same.)
- RoiAlign: X (N, C, H, W), rois (R, 4), batch_indices (R,) with values in [0, N),
  output_height/output_width and sampling_ratio not negative.
Unknown sizes never refuse.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

MAX_SAMPLES = 1 << 22  # RoiAlign sample points per region and channel konnx builds at once


def _rank_is(facts, i: int, name: str, rank: int, what: str) -> Optional[str]:
    r = facts.rank(i)
    if r is not None and r != rank:
        return f"{name} has shape {list(facts.shape(i))}: expected rank {rank}, {what}"
    return None


def _same(facts, i: int, a: int, j: int, b: int) -> bool:
    x, y = facts.dim(i, a), facts.dim(j, b)
    return x is None or y is None or x == y


def non_max_suppression(node, facts) -> Optional[str]:
    why = (_rank_is(facts, 0, "boxes", 3, "(batch, boxes, 4)")
           or _rank_is(facts, 1, "scores", 3, "(batch, classes, boxes)"))
    if why:
        return why
    boxes, scores = facts.shape(0), facts.shape(1)
    if boxes is not None and facts.dim(0, 2) not in (None, 4):
        return f"boxes has shape {list(boxes)}: its last axis must hold the 4 coordinates of each box"
    if boxes is not None and scores is not None:
        if not _same(facts, 0, 0, 1, 0):
            return f"boxes {list(boxes)} and scores {list(scores)} have different batch sizes (axis 0 of each)"
        if not _same(facts, 0, 1, 1, 2):
            return (f"boxes {list(boxes)} and scores {list(scores)} have different box counts "
                    "(boxes axis 1, scores axis 2)")
    iou = facts.value(3)
    if iou is not None and np.asarray(iou).size:
        v = float(np.asarray(iou).reshape(-1)[0])
        if not 0.0 <= v <= 1.0:
            return f"iou_threshold={v}: must be in [0, 1]"
    return None


def roi_align(node, facts) -> Optional[str]:
    why = (_rank_is(facts, 0, "X", 4, "(N, C, H, W)") or _rank_is(facts, 1, "rois", 2, "(num_rois, 4)")
           or _rank_is(facts, 2, "batch_indices", 1, "(num_rois,)"))
    if why:
        return why
    if facts.shape(1) is not None and facts.dim(1, 1) not in (None, 4):
        return f"rois has shape {list(facts.shape(1))}: expected (num_rois, 4), one (x1, y1, x2, y2) per row"
    if facts.shape(1) is not None and facts.shape(2) is not None and not _same(facts, 1, 0, 2, 0):
        return (f"rois {list(facts.shape(1))} and batch_indices {list(facts.shape(2))} "
                "have different numbers of regions (axis 0 of each)")
    for name in ("output_height", "output_width", "sampling_ratio"):
        v = node.attr(name)
        if isinstance(v, int) and v < 0:
            return f"attribute {name}={v}: must not be negative"
    scale = node.attr("spatial_scale")
    if isinstance(scale, float) and not np.isfinite(scale):
        return f"attribute spatial_scale={scale}: must be finite (it scales every region's coordinates)"
    if node.string("mode") not in ("avg", "max"):
        return f"attribute mode={node.string('mode')!r}: expected 'avg' or 'max'"
    why = _batch_indices(facts)
    if why:
        return why
    return _konnx_limits(node)


def _batch_indices(facts) -> Optional[str]:
    idx, n = facts.value(2), facts.dim(0, 0)
    if idx is None or n is None:
        return None
    bad = [int(v) for v in np.asarray(idx).reshape(-1) if not 0 <= int(v) < n]
    if bad:
        return f"batch_indices hold {bad[:4]}: each must be in [0, {n}), X's batch size being {n}"
    return None


def _konnx_limits(node) -> Optional[str]:
    """What konnx does not build, on models the spec allows."""
    if node.attr("sampling_ratio") == 0:
        return ("sampling_ratio=0 samples a number of points that depends on each ROI's size; "
                "konnx needs a fixed sampling_ratio")
    for name in ("output_height", "output_width"):
        if node.attr(name) == 0:
            return f"attribute {name}=0 gives an empty output, which konnx does not build"
    h, w, r = (node.attr(n) for n in ("output_height", "output_width", "sampling_ratio"))
    if all(isinstance(v, int) for v in (h, w, r)) and h * w * r * r > MAX_SAMPLES:
        return (f"output {h}x{w} with sampling_ratio {r} samples {h * w * r * r} points per region and channel: "
                f"above konnx's budget of {MAX_SAMPLES} (its sampling grid is built whole)")
    return None
