"""GridSample (nearest / linear / cubic; zeros / border / reflection padding; N-d),
AffineGrid and Col2Im, with keras.ops only (ONNX layout, static spatial sizes)."""
from __future__ import annotations

import itertools

from keras import ops

from .functions import function

_CUBIC_A = -0.75


def _reflect(v, lo, hi):
    """Reflect coordinates into [lo, hi] by the nearest border, as the ONNX reference."""
    rng = hi - lo
    below, above = ops.less(v, lo), ops.greater(v, hi)
    dx = ops.where(below, lo - v, v - hi)
    n = ops.floor(dx / rng)
    r = dx - n * rng
    even = ops.equal(ops.mod(n, 2.0), 0.0)
    low_side = ops.where(even, lo + r, hi - r)
    high_side = ops.where(even, hi - r, lo + r)
    return ops.where(below, low_side, ops.where(above, high_side, v))


def _cubic_weights(t):
    a = _CUBIC_A
    t1, t2, t3 = t + 1.0, 1.0 - t, 2.0 - t
    return [((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a,
            ((a + 2) * t - (a + 3)) * t * t + 1,
            ((a + 2) * t2 - (a + 3)) * t2 * t2 + 1,
            ((a * t3 - 5 * a) * t3 + 8 * a) * t3 - 4 * a]


def _pixel_index(i, size, padding, lo, hi):
    """An integer tap position -> (index into the axis, valid mask)."""
    if padding == "zeros":
        valid = ops.logical_and(ops.greater_equal(i, 0), ops.less(i, size))
        return ops.clip(i, 0, size - 1), valid
    if padding == "border":
        return ops.clip(i, 0, size - 1), None
    r = _reflect(ops.cast(i, "float32"), lo, hi)
    return ops.clip(ops.cast(r, "int32"), 0, size - 1), None


def _axis_taps(v, size, mode, padding, align):
    """One spatial axis: grid values v -> [((index, valid mask), weight)] per tap."""
    xd = (v + 1.0) / 2.0 * (size - 1) if align else ((v + 1.0) * size - 1.0) / 2.0
    lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
    if mode == "nearest":
        xd = ops.round(xd)
    out = ops.logical_or(ops.less(xd, lo), ops.greater(xd, hi))
    if padding == "zeros":
        # far outside, every tap reads padding: clamp so that the weights stay finite (an inf
        # or 1e30 coordinate gave inf - inf = NaN weights, or an int32 overflow into range);
        # NaN stays NaN
        xd = ops.clip(xd, -3.0, size + 2.0)
    elif padding == "border":
        xd = ops.where(out, ops.clip(xd, 0.0, size - 1.0), xd)
    elif padding == "reflection":
        xd = ops.where(out, _reflect(xd, lo, hi), xd)
    if mode == "nearest":
        taps = [(ops.cast(xd, "int32"), None)]
    else:
        x0 = ops.floor(xd)
        t = xd - x0
        x0 = ops.cast(x0, "int32")
        if mode == "linear":
            taps = [(x0, 1.0 - t), (x0 + 1, t)]
        else:
            taps = [(x0 + (k - 1), w) for k, w in enumerate(_cubic_weights(t))]
    return [(_pixel_index(i, size, padding, lo, hi), w) for i, w in taps]


@function("grid_sample")
def grid_sample(x, grid, *, mode, padding, align):
    nd = len(x.shape) - 2
    dims = list(x.shape[2:])
    c = x.shape[1]
    n = x.shape[0] if x.shape[0] is not None else ops.shape(x)[0]
    g = ops.cast(grid, "float32")
    out_sp = list(grid.shape[1:-1])
    g = ops.reshape(g, (n, -1, nd))
    taps_per_dim = [_axis_taps(g[..., nd - 1 - d], dims[d], mode, padding, align) for d in range(nd)]
    strides = [1] * nd
    for d in range(nd - 2, -1, -1):
        strides[d] = strides[d + 1] * dims[d + 1]
    total = 1
    for s in dims:
        total *= s
    xf = ops.reshape(x, (n, c, total))
    y = None
    for combo in itertools.product(*taps_per_dim):
        flat, weight, valid = None, None, None
        for d, ((idx, ok), w) in enumerate(combo):
            term = idx * strides[d]
            flat = term if flat is None else flat + term
            if w is not None:
                weight = w if weight is None else weight * w
            if ok is not None:
                valid = ok if valid is None else ops.logical_and(valid, ok)
        gidx = ops.broadcast_to(ops.expand_dims(flat, 1), (n, c, ops.shape(flat)[1]))
        val = ops.take_along_axis(xf, gidx, axis=2)
        if valid is not None:
            val = ops.where(ops.expand_dims(valid, 1), val, ops.zeros_like(val))
        if weight is not None:
            val = val * ops.cast(ops.expand_dims(weight, 1), val.dtype)
        y = val if y is None else y + val
    return ops.reshape(y, (n, c, *out_sp))


@function("affine_grid")
def affine_grid(theta, *, size, align):
    """AffineGrid: theta (N, nd, nd+1) and size (N, C, *spatial) -> grid (N, *spatial, nd)."""
    spatial = size[2:]
    axes = []
    for s in spatial:
        if align:
            base = ops.linspace(-1.0, 1.0, s) if s > 1 else ops.zeros((1,))
        else:
            base = (ops.arange(s, dtype="float32") * 2.0 + 1.0) / s - 1.0
        axes.append(ops.cast(base, theta.dtype))
    mesh = ops.meshgrid(*axes, indexing="ij")               # each (*spatial)
    coords = [m for m in reversed(mesh)] + [ops.ones_like(mesh[0])]
    base = ops.reshape(ops.stack(coords, axis=-1), (-1, len(spatial) + 1))  # (P, nd+1)
    grid = ops.einsum("pk,njk->npj", base, theta)             # (N, P, nd)
    n = theta.shape[0] if theta.shape[0] is not None else ops.shape(theta)[0]
    return ops.reshape(grid, (n, *spatial, len(spatial)))


@function("col2im")
def col2im(x, *, image, block, strides, dilations, pads):
    """Col2Im: x (N, C*prod(block), L) summed back into (N, C, *image)."""
    nd = len(image)
    n = x.shape[0] if x.shape[0] is not None else ops.shape(x)[0]
    kprod = 1
    for b in block:
        kprod *= b
    c = x.shape[1] // kprod
    padded = [image[d] + pads[d] + pads[d + nd] for d in range(nd)]
    outs = [(padded[d] - (dilations[d] * (block[d] - 1) + 1)) // strides[d] + 1 for d in range(nd)]
    cols = ops.reshape(x, (n, c, *block, *outs))
    y = None
    for offs in itertools.product(*[range(b) for b in block]):
        part = cols[(slice(None), slice(None)) + tuple(offs)]   # (N, C, *outs)
        if any(s > 1 for s in strides):
            part = _dilate(part, strides)
        pad = [(0, 0), (0, 0)]
        for d in range(nd):
            start = offs[d] * dilations[d]
            span = (outs[d] - 1) * strides[d] + 1
            pad.append((start, padded[d] - start - span))
        part = ops.pad(part, pad)
        y = part if y is None else y + part
    crop = tuple(slice(pads[d], pads[d] + image[d]) for d in range(nd))
    return y[(slice(None), slice(None)) + crop]


def _dilate(x, strides):
    """Insert (stride - 1) zeros between the elements of each spatial axis."""
    for d, s in enumerate(strides):
        if s == 1:
            continue
        axis = 2 + d
        z = ops.zeros_like(x)
        parts = [x] + [z] * (s - 1)
        x = ops.stack(parts, axis=axis + 1)
        shape = list(ops.shape(x))
        new = shape[:axis] + [shape[axis] * s] + shape[axis + 2:]
        x = ops.reshape(x, new)
        x = x[(slice(None),) * axis + (slice(0, (shape[axis] - 1) * s + 1),)]
    return x


@function("deform_conv")
def deform_conv(x, w, offset, bias=None, mask=None, *, strides, dilations, pads, group, offset_group):
    """2-D DeformConv: every kernel tap samples x bilinearly (zeros outside) at its position
    plus a learned offset, scaled by the optional mask; then a grouped convolution sum."""
    n = x.shape[0] if x.shape[0] is not None else ops.shape(x)[0]
    c, h, wd = x.shape[1], x.shape[2], x.shape[3]
    m, cg, kh, kw = w.shape
    oh, ow = offset.shape[2], offset.shape[3]
    g = offset_group
    off = ops.reshape(ops.cast(offset, "float32"), (n, g, kh, kw, 2, oh, ow))
    msk = None if mask is None else ops.reshape(mask, (n, g, kh, kw, oh, ow))
    xg = ops.reshape(x, (n, g, c // g, h * wd))
    base_y = ops.reshape(ops.cast(ops.arange(oh) * strides[0] - pads[0], "float32"), (1, 1, oh, 1))
    base_x = ops.reshape(ops.cast(ops.arange(ow) * strides[1] - pads[1], "float32"), (1, 1, 1, ow))
    cols = []
    for a in range(kh):
        for b in range(kw):
            yy = base_y + a * dilations[0] + off[:, :, a, b, 0]
            xx = base_x + b * dilations[1] + off[:, :, a, b, 1]
            y0, x0 = ops.floor(yy), ops.floor(xx)
            sample = None
            for yi, wy in ((y0, 1.0 - (yy - y0)), (y0 + 1.0, yy - y0)):
                for xi, wx in ((x0, 1.0 - (xx - x0)), (x0 + 1.0, xx - x0)):
                    ok = ops.logical_and(ops.logical_and(ops.greater_equal(yi, 0.0), ops.less_equal(yi, h - 1.0)),
                                         ops.logical_and(ops.greater_equal(xi, 0.0), ops.less_equal(xi, wd - 1.0)))
                    # a NaN/inf position is outside (ok False): gather at 0 instead of a garbage index
                    yc, xc = ops.where(ok, yi, 0.0), ops.where(ok, xi, 0.0)
                    pos = ops.cast(yc * wd + xc, "int32")
                    pos = ops.broadcast_to(ops.reshape(pos, (n, g, 1, oh * ow)), (n, g, c // g, oh * ow))
                    val = ops.take_along_axis(xg, pos, axis=3)
                    wgt = ops.where(ok, wy * wx, ops.zeros_like(wy))
                    term = val * ops.cast(ops.reshape(wgt, (n, g, 1, oh * ow)), val.dtype)
                    sample = term if sample is None else sample + term
            if msk is not None:
                sample = sample * ops.reshape(ops.cast(msk[:, :, a, b], sample.dtype), (n, g, 1, oh * ow))
            cols.append(ops.reshape(sample, (n, c, oh * ow)))
    col = ops.reshape(ops.stack(cols, axis=2), (n, group, c // group, kh * kw, oh * ow))
    wt = ops.reshape(w, (group, m // group, cg, kh * kw))
    y = ops.reshape(ops.einsum("ngckp,gmck->ngmp", col, wt), (n, m, oh, ow))
    if bias is not None:
        y = y + ops.reshape(bias, (1, -1, 1, 1))
    return y
