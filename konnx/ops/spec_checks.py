"""Small per-op input checks from the ONNX spec, refused before anything is built (issue 14).
Each rule is one onnxruntime enforces too (its kernel refuses the same inputs); unknown facts
(None) never refuse."""
from __future__ import annotations

from typing import Optional

import numpy as np


def static_size(facts, i: int) -> Optional[int]:
    s = facts.shape(i)
    if s is None:
        return None
    dims = [facts.dim(i, a) for a in range(len(s))]
    return None if any(d is None for d in dims) else int(np.prod(dims, dtype=np.int64))


def group_norm(node, facts) -> Optional[str]:
    """num_groups is positive and divides the channels."""
    g = node.attr("num_groups")
    if not isinstance(g, int) or g < 1:
        return f"attribute num_groups={g}: must be a positive number of groups"
    c = facts.dim(0, 1) if facts.rank(0) and facts.rank(0) > 1 else None
    if c is not None and c % g:
        return f"attribute num_groups={g} does not divide the {c} channels"
    return None


def clip(node, facts) -> Optional[str]:
    """min and max are scalars (one element)."""
    for i, name in ((1, "min"), (2, "max")):
        n = static_size(facts, i)
        if n is not None and n != 1:
            return f"{name} has shape {list(facts.shape(i))}: the spec wants a scalar"
    return None


def cumulative(node, facts) -> Optional[str]:
    """CumSum/CumProd run along an axis of an input of rank >= 1."""
    if facts.rank(0) == 0:
        return "the input is a scalar: a cumulative op needs rank >= 1"
    return None


def gather_nd(node, facts) -> Optional[str]:
    """batch_dims in [0, min(rank(data), rank(indices)) - 1]."""
    b = node.attr("batch_dims") or 0
    r, ri = facts.rank(0), facts.rank(1)
    top = None if r is None or ri is None else min(r, ri) - 1
    if b < 0 or (top is not None and b > top):
        return f"attribute batch_dims={b}: must be in [0, {top if top is not None else 'min rank - 1'}]"
    return None


def affine_grid(node, facts) -> Optional[str]:
    """theta is (N, 2, 3) for a 2-D size (N, C, H, W), (N, 3, 4) for a 3-D size (N, C, D, H, W)."""
    size = facts.value(1)
    theta = facts.shape(0)
    if size is None or theta is None:
        return None
    n = int(np.asarray(size).size)
    if n not in (4, 5):
        return f"size has {n} entries, expected 4 (N, C, H, W) or 5 (N, C, D, H, W)"
    k = n - 2
    want = (int(np.asarray(size).reshape(-1)[0]), k, k + 1)
    got = tuple(facts.dim(0, a) for a in range(len(theta)))
    if len(theta) != 3 or any(g is not None and g != w for g, w in zip(got, want)):
        return f"theta has shape {list(theta)}, expected {list(want)} for a {k}-D grid"
    return None


def range_inputs(node, facts) -> Optional[str]:
    """start, limit and delta are scalars (one element)."""
    for i, name in ((0, "start"), (1, "limit"), (2, "delta")):
        n = static_size(facts, i)
        if n is not None and n != 1:
            return f"{name} has shape {list(facts.shape(i))}: the spec wants a scalar"
    return None


def window(node, facts) -> Optional[str]:
    """The window size is a scalar."""
    n = static_size(facts, 0)
    if n is not None and n != 1:
        return f"size has shape {list(facts.shape(0))}: the spec wants a scalar"
    return None


def col2im(node, facts) -> Optional[str]:
    """strides and dilations positive, pads non-negative; input (N, C * prod(block), L) with L
    the number of block positions the image holds."""
    for name, low in (("strides", 1), ("dilations", 1), ("pads", 0)):
        vals = node.ints(name) if node.attr(name) is not None else None
        if vals and any(v < low for v in vals):
            return f"attribute {name}={list(vals)}: every entry must be >= {low}"
    image, block = facts.value(1), facts.value(2)
    if image is None or block is None:
        return None
    image, block = [int(v) for v in np.ravel(image)], [int(v) for v in np.ravel(block)]
    k = len(block)
    if len(image) != k or any(b < 1 for b in block):
        return f"image_shape {image} and block_shape {block}: one positive entry each per spatial axis"
    strides = list(node.ints("strides") or [1] * k)
    dil = list(node.ints("dilations") or [1] * k)
    pads = list(node.ints("pads") or [0] * 2 * k)
    if len(strides) != k or len(dil) != k or len(pads) != 2 * k:
        return f"strides/dilations/pads do not have {k} entries (per axis; pads 2 per axis)"
    blocks = 1
    for i in range(k):
        extent = image[i] + pads[i] + pads[i + k] - dil[i] * (block[i] - 1) - 1
        if extent < 0:
            return f"the padded image axis {i} ({image[i]}) is smaller than the dilated block ({dil[i] * (block[i] - 1) + 1})"
        blocks *= extent // strides[i] + 1
    c, length = facts.dim(0, 1), facts.dim(0, 2)
    prod = int(np.prod(block))
    if c is not None and c % prod:
        return f"input axis 1 ({c}) is not a multiple of prod(block_shape)={prod}"
    if length is not None and length != blocks:
        return f"input axis 2 has {length} columns, the image holds {blocks} block positions"
    return None


def prelu(node, facts) -> Optional[str]:
    """slope broadcasts to X one way (right-aligned, each axis 1 or X's size), from opset 7
    (before it, a (C,) slope applied per channel)."""
    x, s = facts.shape(0), facts.shape(1)
    if x is None or s is None or node.opset < 7:
        return None
    ok = len(s) <= len(x) and all(facts.dim(1, -k) in (None, 1) or facts.dim(0, -k) in (None, facts.dim(1, -k))
                                  for k in range(1, len(s) + 1))
    return None if ok else f"slope has shape {list(s)}: it must broadcast to X's shape {list(x)}"


def scatter_elements(node, facts) -> Optional[str]:
    """data, indices and updates share one rank; indices and updates one shape."""
    r, ri = facts.rank(0), facts.rank(1)
    if r is not None and ri is not None and r != ri:
        return f"indices have rank {ri}, data rank {r}: the spec wants the same rank"
    si, su = facts.shape(1), facts.shape(2)
    if si is not None and su is not None:
        same = len(si) == len(su) and all(facts.dim(1, a) in (None, facts.dim(2, a)) or facts.dim(2, a) is None
                                          for a in range(len(si)))
        if not same:
            return f"updates have shape {list(su)}, indices {list(si)}: the spec wants the same shape"
    return None


def lrn(node, facts) -> Optional[str]:
    """size is a positive number of channels; X is (N, C, ...) (rank >= 2). onnxruntime also
    refuses an even size, a non-positive alpha or beta and any rank but 4: the spec allows
    those, and konnx computes them as the spec (and the reference implementation) does."""
    size = node.attr("size")
    if not isinstance(size, int) or size < 1:
        return f"attribute size={size}: must be a positive number of channels to sum over"
    r = facts.rank(0)
    if r is not None and r < 2:
        return f"X has rank {r}: LRN normalizes across the channels of (N, C, ...), rank >= 2"
    c = facts.dim(0, 1) if r else None
    if c is None and size > LRN_MAX_UNKNOWN:
        return (f"attribute size={size} over a channel count unknown before building: konnx sums "
                f"windows of up to {LRN_MAX_UNKNOWN} channels then (fix the channels with input_shapes)")
    return None


LRN_MAX_UNKNOWN = 4096
