"""Input checks of the convolutions: Conv, ConvTranspose, ConvInteger, QLinearConv and
DeformConv, and of the pooling windows (issue 14), refused before anything is built.

The shapes are the spec's, as onnxruntime enforces them (conv_attributes.h "Input channels C
is not equal to kernel channels * group", qlinearconv.cc, deform_conv_attributes.h): X (N, C,
spatial...), W (M, C / group, k...) of X's rank, group dividing M, kernel_shape equal to W's
spatial sizes, every padded spatial axis at least as long as the dilated kernel; zero points
and scales one element each, except W's which may hold one per output channel (M,); a bias
(M,); DeformConv's offset (N, offset_group * 2 * kH * kW, oH, oW) and mask (N, offset_group *
kH * kW, oH, oW) with (oH, oW) the convolution's output size; ConvTranspose's W is (C, M / group,
k...). Unknown sizes never refuse.
"""
from __future__ import annotations

from typing import Optional


from .spec_checks import static_size


def weights(node, facts, x: int = 0, w: int = 1) -> Optional[str]:
    """X (N, C, spatial...) and W (M, C / group, k...): ranks, channels, group, kernel_shape."""
    rx, rw = facts.rank(x), facts.rank(w)
    if rx is not None and rx < 3:
        return f"input X has rank {rx}: a convolution wants (N, C, spatial...) of rank >= 3"
    if rx is not None and rw is not None and rw != rx:
        return f"weight W has rank {rw}, X rank {rx}: W must be (M, C / group, kernel...) of X's rank"
    group = node.attr("group")
    if group is not None and (not isinstance(group, int) or group < 1):
        return f"attribute group={group}: must be a positive integer"
    group = int(group or 1)
    c, cw, m = facts.dim(x, 1), facts.dim(w, 1), facts.dim(w, 0)
    if c is not None and cw is not None and c != cw * group:
        return (f"X has {c} channels, W {list(facts.shape(w))} expects {cw} x group {group} = {cw * group}: "
                f"W's axis 1 must be C / group")
    if m == 0:
        return f"W {list(facts.shape(w))} has no output channel: konnx does not build empty convolutions"
    if m is not None and m % group:
        return f"attribute group={group} does not divide the {m} output channels of W {list(facts.shape(w))}"
    return _kernel_shape(node, facts, w)


def _kernel_shape(node, facts, w: int) -> Optional[str]:
    kernel = node.ints("kernel_shape") if node.attr("kernel_shape") is not None else None
    rw = facts.rank(w)
    if kernel and rw is not None:
        got = [facts.dim(w, a) for a in range(2, rw)]
        if len(kernel) != rw - 2 or any(g is not None and g != k for g, k in zip(got, kernel)):
            return f"attribute kernel_shape={list(kernel)} does not match W's spatial sizes {list(facts.shape(w))[2:]}"
    return None


def output_sizes(node, facts, x: int = 0, w: Optional[int] = 1) -> Optional[list]:
    """The output's spatial sizes (None where unknown), or None when the rank is unknown; the
    kernel is kernel_shape, else W's spatial sizes (input `w`). Raises ValueError with the
    reason when an axis would have no output element."""
    rx = facts.rank(x)
    if rx is None or rx < 3:
        return None
    nsp = rx - 2
    kernel = node.ints("kernel_shape") if node.attr("kernel_shape") is not None else None
    kernel = kernel or [None if w is None else facts.dim(w, 2 + a) for a in range(nsp)]
    strides = node.ints("strides") or [1] * nsp
    dil = node.ints("dilations") or [1] * nsp
    pads = node.ints("pads") or [0] * (2 * nsp)
    auto = node.string("auto_pad") or "NOTSET"
    if len(kernel) != nsp or len(strides) != nsp or len(dil) != nsp or len(pads) != 2 * nsp:
        return None  # the common rules (attr_rules._windows) name these
    ceil = bool(node.attr("ceil_mode"))
    out = []
    for a in range(nsp):
        n, k = facts.dim(x, 2 + a), kernel[a]
        if n is None or k is None:
            out.append(None)
            continue
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-n // strides[a]))
            continue
        padded = n + (pads[a] + pads[a + nsp] if auto == "NOTSET" else 0)
        span = dil[a] * (k - 1) + 1
        size = (-(-(padded - span) // strides[a]) if ceil else (padded - span) // strides[a]) + 1
        if size < 1:
            raise ValueError(f"spatial axis {a} of X ({n}, padded {padded}) is shorter than the dilated "
                             f"kernel ({span}): the output would have no element along it")
        out.append(size)
    return out


def pool(node, facts) -> Optional[str]:
    """MaxPool/AveragePool/LpPool with explicit pads: each pad shorter than its kernel axis (a
    window of padding alone: onnxruntime refuses it), and a non-empty output."""
    kernel = node.ints("kernel_shape") or []
    pads = node.ints("pads") or []
    if (node.string("auto_pad") or "NOTSET") == "NOTSET" and len(pads) == 2 * len(kernel):
        for a, k in enumerate(kernel):
            if pads[a] >= k or pads[a + len(kernel)] >= k:
                return (f"attribute pads={pads}: axis {a} pads ({pads[a]}, {pads[a + len(kernel)]}) "
                        f"must be smaller than its kernel ({k})")
    try:
        output_sizes(node, facts, 0, None)
    except ValueError as e:
        return f"{e} (konnx does not build empty outputs)"
    return None


def _one_element(facts, i: int, name: str) -> Optional[str]:
    n, r = static_size(facts, i), facts.rank(i)
    if (n is not None and n != 1) or (r is not None and r > 1):
        return f"{name} has shape {list(facts.shape(i))}: the spec wants a scalar (one element, rank 0 or 1)"
    return None


def _per_channel(facts, i: int, name: str, m: Optional[int]) -> Optional[str]:
    """A scalar, or a 1-D tensor of one entry per output channel."""
    s = facts.shape(i)
    if s is None:
        return None
    n = static_size(facts, i)
    if len(s) > 1 or (n is not None and m is not None and n not in (1, m)):
        return f"{name} has shape {list(s)}: the spec wants a scalar or one entry per output channel ({m},)"
    return None


def _geometry(node, facts, x: int, w: int) -> Optional[str]:
    try:
        output_sizes(node, facts, x, w)
    except ValueError as e:
        return str(e)
    return None


def conv(node, facts) -> Optional[str]:
    """Conv: X (0), W (1: (M, C / group, k...)), B (2: (M,))."""
    return weights(node, facts) or _bias(facts, 2, facts.dim(1, 0)) or _geometry(node, facts, 0, 1)


def conv_transpose(node, facts) -> Optional[str]:
    """ConvTranspose: X (0), W (1: (C, M / group, k...)), B (2: (M,))."""
    rx, rw = facts.rank(0), facts.rank(1)
    if rx is not None and rw is not None and rw != rx:
        return f"weight W has rank {rw}, X rank {rx}: W must be (C, M / group, kernel...) of X's rank"
    c, cw = facts.dim(0, 1), facts.dim(1, 0)
    if c is not None and cw is not None and c != cw:
        return f"X has {c} channels, W {list(facts.shape(1))} takes {cw} (W's axis 0 must be C)"
    group, mg = node.attr("group"), facts.dim(1, 1)
    if mg == 0:
        return f"W {list(facts.shape(1))} has no output channel: konnx does not build empty convolutions"
    m = None if mg is None or not isinstance(group, int) else mg * group
    return _kernel_shape(node, facts, 1) or _bias(facts, 2, m)


def conv_integer(node, facts) -> Optional[str]:
    """ConvInteger: x (0), w (1), x_zero_point (2: one element), w_zero_point (3: one or M)."""
    return (weights(node, facts) or _one_element(facts, 2, "x_zero_point")
            or _per_channel(facts, 3, "w_zero_point", facts.dim(1, 0)) or _geometry(node, facts, 0, 1))


def qlinear_conv(node, facts) -> Optional[str]:
    """QLinearConv: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B."""
    why = weights(node, facts, 0, 3)
    m = facts.dim(3, 0)
    for i, name in ((1, "x_scale"), (2, "x_zero_point"), (6, "y_scale"), (7, "y_zero_point")):
        why = why or _one_element(facts, i, name)
    for i, name in ((4, "w_scale"), (5, "w_zero_point")):
        why = why or _per_channel(facts, i, name, m)
    return why or _bias(facts, 8, m) or _geometry(node, facts, 0, 3)


def _bias(facts, i: int, m: Optional[int]) -> Optional[str]:
    s = facts.shape(i)
    if s is None:
        return None
    if len(s) != 1 or (m is not None and facts.dim(i, 0) not in (None, m)):
        return f"bias B has shape {list(s)}, expected ({m if m is not None else 'M'},): one per output channel"
    return None


def deform_conv(node, facts) -> Optional[str]:
    """DeformConv: X (N, C, H, W), W, offset, B, mask (see the module's doc)."""
    rank = facts.rank(0)
    if rank is not None and rank != 4:
        return f"X has rank {rank}: DeformConv takes a 2-D image batch (N, C, H, W), rank 4"
    og = node.attr("offset_group")
    if og is not None and (not isinstance(og, int) or og < 1):
        return f"attribute offset_group={og}: must be a positive number of offset groups"
    why = weights(node, facts)
    if why:
        return why
    og = int(og or 1)
    c = facts.dim(0, 1)
    if c is not None and c % og:
        return f"attribute offset_group={og} does not divide the {c} input channels"
    try:
        out = output_sizes(node, facts)
    except ValueError as e:
        return f"{e} (konnx does not build empty outputs)"
    kh, kw = facts.dim(1, 2), facts.dim(1, 3)
    taps = None if kh is None or kw is None else og * kh * kw
    n = facts.dim(0, 0)
    for i, name, per_tap in ((2, "offset", 2), (4, "mask", 1)):
        want = (n, None if taps is None else per_tap * taps) + tuple(out or (None, None))
        why = _shape_is(facts, i, name, want)
        if why:
            return why + f" (offset_group {og}, kernel {kh}x{kw}, output {_show(want[2:])})"
    return _bias(facts, 3, facts.dim(1, 0))


def _shape_is(facts, i: int, name: str, want: tuple) -> Optional[str]:
    s = facts.shape(i)
    if s is None:
        return None
    got = [facts.dim(i, a) for a in range(len(s))]
    if len(s) != len(want) or any(g is not None and w is not None and g != w for g, w in zip(got, want)):
        return f"{name} has shape {list(s)}, expected {_show(want)}"
    return None


def _show(want) -> str:
    return "(" + ", ".join("?" if w is None else str(w) for w in want) + ")"
