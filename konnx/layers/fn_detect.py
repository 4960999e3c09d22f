"""Detection ops with keras.ops only: NonMaxSuppression (greedy, unrolled over the static
number of boxes) and RoiAlign (bilinear samples on a static sampling grid)."""
from __future__ import annotations

from keras import ops

from .functions import function


def _corners(boxes, center):
    """(y_min, x_min, y_max, x_max) of each box, as the ONNX reference reads them."""
    if center:
        xc, yc, w, h = (boxes[..., i] for i in range(4))
        return yc - h / 2.0, xc - w / 2.0, yc + h / 2.0, xc + w / 2.0
    y1, x1, y2, x2 = (boxes[..., i] for i in range(4))
    return ops.minimum(y1, y2), ops.minimum(x1, x2), ops.maximum(y1, y2), ops.maximum(x1, x2)


def _suppression(boxes, center, iou_threshold):
    """(B, N, N) bool: box i suppresses box j (IoU > threshold, degenerate boxes never)."""
    y0, x0, y1, x1 = _corners(ops.cast(boxes, "float32"), center)
    e = lambda t: ops.expand_dims(t, 2)  # noqa: E731
    f = lambda t: ops.expand_dims(t, 1)  # noqa: E731
    iw = ops.minimum(e(x1), f(x1)) - ops.maximum(e(x0), f(x0))
    ih = ops.minimum(e(y1), f(y1)) - ops.maximum(e(y0), f(y0))
    inter = iw * ih
    area = (x1 - x0) * (y1 - y0)
    union = e(area) + f(area) - inter
    ok = ops.logical_and(ops.logical_and(ops.greater(iw, 0.0), ops.greater(ih, 0.0)),
                         ops.logical_and(ops.greater(e(area), 0.0), ops.greater(f(area), 0.0)))
    ok = ops.logical_and(ok, ops.greater(union, 0.0))
    iou = inter / ops.where(ok, union, ops.ones_like(union))
    return ops.logical_and(ok, ops.greater(iou, iou_threshold))


@function("non_max_suppression")
def non_max_suppression(boxes, scores, *, max_out, iou_threshold, score_threshold=None, center=0):
    """Selected (batch, class, box) triples, per batch and class in selection order."""
    n_batch, n_class, n_box = scores.shape
    sup = ops.expand_dims(_suppression(boxes, center, iou_threshold), 1)          # (B, 1, N, N)
    s = ops.cast(scores, "float32")
    cand = ops.ones_like(s, dtype="bool") if score_threshold is None else ops.greater(s, score_threshold)
    si, sj = ops.expand_dims(s, 3), ops.expand_dims(s, 2)                          # (B, C, N, 1), (B, C, 1, N)
    idx = ops.arange(n_box)
    earlier = ops.less(ops.reshape(idx, (1, 1, 1, n_box)), ops.reshape(idx, (1, 1, n_box, 1)))
    ahead = ops.logical_or(ops.greater(sj, si), ops.logical_and(ops.equal(sj, si), earlier))
    rank = ops.sum(ops.cast(ahead, "int32"), axis=3)                               # processing order
    selected = ops.zeros_like(cand)
    step = ops.full(ops.shape(s), n_box, dtype="int32")
    count = ops.zeros((n_batch, n_class), dtype="int32")
    for k in range(n_box):
        cur = ops.logical_and(ops.equal(rank, k), cand)                            # (B, C, N), one or none
        hits = ops.logical_and(ops.expand_dims(cur, 3), ops.expand_dims(selected, 2))   # (B, C, N, N)
        suppressed = ops.any(ops.logical_and(hits, sup), axis=(2, 3))              # (B, C)
        take = ops.logical_and(ops.logical_not(suppressed), ops.less(count, max_out))
        new = ops.logical_and(cur, ops.expand_dims(take, 2))
        selected = ops.logical_or(selected, new)
        step = ops.where(new, k, step)
        count = count + ops.cast(ops.any(new, axis=2), "int32")
    big = n_batch * n_class * (n_box + 1)
    b = ops.reshape(ops.arange(n_batch), (-1, 1, 1))
    c = ops.reshape(ops.arange(n_class), (1, -1, 1))
    key = ops.where(selected, (b * n_class + c) * (n_box + 1) + step, big)
    flat = ops.reshape(key, (-1,))
    order = ops.argsort(flat)
    keep = ops.nonzero(ops.less(ops.take(flat, order), big))[0]
    pos = ops.cast(ops.take(order, keep), "int64")
    box = pos % n_box
    cls = (pos // n_box) % n_class
    bat = pos // (n_box * n_class)
    return ops.stack([bat, cls, box], axis=1)


@function("roi_align")
def roi_align(x, rois, batch_idx, *, out_h, out_w, ratio, scale, mode, half_pixel):
    """RoiAlign on NCHW x with a static sampling ratio: (R, C, out_h, out_w)."""
    _, c, h, w = x.shape
    offset = 0.5 if half_pixel else 0.0
    r = ops.cast(rois, "float32") * scale - offset                                 # (R, 4)
    x0, y0, x1, y1 = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
    rw, rh = x1 - x0, y1 - y0
    if not half_pixel:
        rw, rh = ops.maximum(rw, 1.0), ops.maximum(rh, 1.0)
    bin_h, bin_w = rh / out_h, rw / out_w
    ph = ops.cast(ops.arange(out_h * ratio), "float32")
    pw = ops.cast(ops.arange(out_w * ratio), "float32")
    ys = ops.expand_dims(y0, 1) + ops.expand_dims(bin_h, 1) * (ph + 0.5) / ratio  # (R, out_h*ratio)
    xs = ops.expand_dims(x0, 1) + ops.expand_dims(bin_w, 1) * (pw + 0.5) / ratio
    feats = ops.take(x, ops.cast(batch_idx, "int32"), axis=0)                      # (R, C, H, W)
    flat = ops.reshape(feats, (-1, c, h * w))

    def axis_taps(v, size):
        valid = ops.logical_and(ops.greater_equal(v, -1.0), ops.less_equal(v, float(size)))
        v = ops.where(valid, ops.maximum(v, 0.0), 0.0)  # NaN/inf positions: a valid index, weight 0
        lo = ops.floor(v)
        edge = ops.greater_equal(lo, size - 1)
        lo = ops.where(edge, float(size - 1), lo)
        hi = ops.where(edge, float(size - 1), lo + 1.0)
        v = ops.where(edge, lo, v)
        frac = v - lo
        return ops.cast(lo, "int32"), ops.cast(hi, "int32"), frac, valid

    ylo, yhi, fy, vy = axis_taps(ys, h)
    xlo, xhi, fx, vx = axis_taps(xs, w)
    vals = []
    for yi, wy in ((ylo, 1.0 - fy), (yhi, fy)):
        for xi, wx in ((xlo, 1.0 - fx), (xhi, fx)):
            pos = ops.expand_dims(yi, 2) * w + ops.expand_dims(xi, 1)             # (R, Sy, Sx)
            n_pts = pos.shape[1] * pos.shape[2]
            g = ops.take_along_axis(flat, ops.broadcast_to(ops.reshape(pos, (-1, 1, n_pts)),
                                                           (ops.shape(flat)[0], c, n_pts)), axis=2)
            wgt = ops.reshape(ops.expand_dims(wy, 2) * ops.expand_dims(wx, 1), (-1, 1, n_pts))
            vals.append(g * ops.cast(wgt, g.dtype))
    valid = ops.reshape(ops.logical_and(ops.expand_dims(vy, 2), ops.expand_dims(vx, 1)), (-1, 1, n_pts))
    shape = (-1, c, out_h, ratio, out_w, ratio)
    if mode == "max":
        m = ops.maximum(ops.maximum(vals[0], vals[1]), ops.maximum(vals[2], vals[3]))
        m = ops.where(valid, m, ops.zeros_like(m))
        return ops.max(ops.reshape(m, shape), axis=(3, 5))
    total = vals[0] + vals[1] + vals[2] + vals[3]
    total = ops.where(valid, total, ops.zeros_like(total))
    return ops.mean(ops.reshape(total, shape), axis=(3, 5))
