"""Padding arithmetic and decisions. Pure functions: no Keras here.

TF/Keras 'same' pads ``total = max((ceil(n/s) - 1) * s + (k - 1) * d + 1 - n, 0)`` and puts the
odd element at the END. ONNX/PyTorch pads explicitly. konnx uses 'same' only where the two are
provably identical, 'valid' where there is no padding, and explicit padding otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    return (kernel - 1) * dilation + 1


def tf_same_pads(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """(before, after) zeros TF/Keras 'same' adds on one axis of length `size`."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def same_matches_without_size(kernel: int, stride: int, dilation: int, pads: tuple[int, int]) -> bool:
    """With stride 1, 'same' pads do not depend on the input size: total = eff - 1."""
    if stride != 1:
        return False
    total = effective_kernel(kernel, dilation) - 1
    return tuple(pads) == (total // 2, total - total // 2)


def auto_pads(auto_pad: str, size: Optional[int], kernel: int, stride: int, dilation: int,
              clamp: bool = True) -> Optional[tuple[int, int]]:
    """Explicit (before, after) pads for an ONNX auto_pad value; None if the size is unknown
    and the pads depend on it.

    clamp=False keeps a negative total (a kernel smaller than the stride): the ONNX pooling
    ops then start the windows inside the input (onnxruntime's AveragePool and the ONNX
    reference MaxPool agree on it), whereas Conv clamps the total at zero like TF."""
    if auto_pad in ("VALID",):
        return (0, 0)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if size is None:
            if stride == 1:
                total = effective_kernel(kernel, dilation) - 1
            else:
                return None
        else:
            out = math.ceil(size / stride)
            total = (out - 1) * stride + effective_kernel(kernel, dilation) - size
            if clamp:
                total = max(total, 0)
        small, big = total // 2, total - total // 2
        return (small, big) if auto_pad == "SAME_UPPER" else (big, small)
    raise ValueError(f"unknown auto_pad {auto_pad!r}")


def node_pads(attrs: dict, sizes: Sequence[Optional[int]], kernel, strides, dilations,
              clamp: bool = True) -> list[Optional[tuple[int, int]]]:
    """Per-axis (before, after) from an ONNX node's `pads` / `auto_pad` attributes."""
    n = len(kernel)
    auto = attrs.get("auto_pad", "NOTSET") or "NOTSET"
    if auto != "NOTSET":
        return [auto_pads(auto, sizes[i], kernel[i], strides[i], dilations[i], clamp) for i in range(n)]
    pads = list(attrs.get("pads") or [0] * (2 * n))
    return [(int(pads[i]), int(pads[i + n])) for i in range(n)]


def conv_out_size(size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int], ceil_mode: bool = False) -> int:
    """Output length of a convolution / pooling window on one axis (PyTorch/ONNX rule,
    including the ceil_mode rule that drops a last window starting in the end padding)."""
    span = size + pads[0] + pads[1] - effective_kernel(kernel, dilation)
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pads[0]:
        out -= 1
    return out


# ---------------------------------------------------------- geometries TensorFlow gets wrong
# Measured with tools/onednn_probe.py (TensorFlow 2.21, AVX-512 CPU); docs/onednn.md has the
# tables. konnx never emits a layer in these geometries: it rewrites them into exact equivalents.

def single_window_strided_axes(sizes, kernel, strides, dilations, pads) -> list[int]:
    """Axes with exactly one output window and a stride > 1 (static sizes only).

    TensorFlow's oneDNN dense convolution (on by default in the `tensorflow` wheel on x86)
    returns garbage for some of these: Conv2D/Conv3D with one input channel whose last spatial
    axis has a single strided window while another axis slides with stride 1, 'same' and
    'valid' alike, for batch sizes that differ between eager and graph mode. One window makes
    the stride irrelevant, so konnx flags every such axis and uses stride 1 there with the input
    cropped to the window (single_window_geometry): exact on every build."""
    return [i for i, p in enumerate(pads) if sizes[i] is not None and strides[i] > 1 and p is not None
            and conv_out_size(sizes[i], kernel[i], strides[i], dilations[i], p) == 1]


def single_window_geometry(sizes, kernel, strides, dilations, pads):
    """(strides, pads, axes): on each single_window_strided_axes axis, stride 1 and pads that
    keep exactly the one window (the end pad turns negative, a crop, where the input is longer)."""
    axes = single_window_strided_axes(sizes, kernel, strides, dilations, pads)
    strides, pads = list(strides), [tuple(p) for p in pads]
    for i in axes:
        before = pads[i][0]
        strides[i] = 1
        pads[i] = (before, effective_kernel(kernel[i], dilations[i]) - sizes[i] - before)
    return strides, pads, axes


def unclamped_same_total(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> int:
    """TF's SAME total before clamping at zero; negative where the kernel is shorter than the
    stride and the last window ends before the input does."""
    return (math.ceil(size / stride) - 1) * stride + effective_kernel(kernel, dilation) - size


def eigen_unsafe_same(sizes, kernel, strides, dilations) -> list[int]:
    """Axes of a 3D window where Keras 'same' is not portable: TF's unclamped SAME total is
    negative. Without oneDNN (TF_ENABLE_ONEDNN_OPTS=0, tensorflow-cpu, non-x86), TensorFlow's 3D
    convolution and pooling kernels start those windows -total//2 positions late instead of at
    the edge (measured wrong for every total <= -2); oneDNN and the 1D/2D kernels clamp it.
    konnx uses explicit padding then 'valid' there instead of 'same'."""
    if len(kernel) != 3:
        return []
    return [i for i in range(3) if sizes[i] is not None and strides[i] > 1
            and unclamped_same_total(sizes[i], kernel[i], strides[i], dilations[i]) < 0]


def depthwise_strides_portable(strides) -> bool:
    """DepthwiseConv2D runs on every TensorFlow build only with equal strides: without oneDNN,
    TensorFlow refuses unequal ones ("only supports equal length strides in the row and column
    dimensions"). konnx builds a grouped convolution instead."""
    return len(strides) != 2 or strides[0] == strides[1]


@dataclass
class AxisDecision:
    pads: tuple[int, int]
    same_pads: Optional[tuple[int, int]]

    @property
    def same_matches(self) -> bool:
        return self.same_pads is not None and tuple(self.same_pads) == tuple(self.pads)


@dataclass
class PaddingDecision:
    """How konnx realises the padding of one spatial node."""

    mode: str  # "same" | "valid" | "explicit"
    pads: list  # per-axis (before, after); a negative pad crops
    reason: str
    axes: list = field(default_factory=list)
    strides: Optional[list] = None  # the strides to build with (single_window_geometry)
    caveat: str = ""  # why a geometry TensorFlow gets wrong was avoided (also in `reason`)

    @property
    def grow_crop(self) -> tuple[list, list]:
        """(zero padding, cropping) per axis that realise `pads`."""
        return ([(max(b, 0), max(a, 0)) for b, a in self.pads], [(max(-b, 0), max(-a, 0)) for b, a in self.pads])


def decide(sizes, kernel, strides, dilations, pads, *, op: str = "Conv", same_ok: bool = True,
           single_window: bool = False) -> PaddingDecision:
    """Choose 'valid', 'same' or explicit padding for explicit per-axis pads.

    'same' is chosen only where, on every axis, TF's SAME pads equal the explicit ones (for
    stride > 1 this needs the static input size) and no 3D axis is eigen_unsafe_same.
    single_window=True (dense convolutions): single_window_geometry first; the decision's
    `strides` are then the ones to build with."""
    caveats = []
    strides, pads, moved = single_window_geometry(sizes, kernel, strides, dilations, pads) if single_window \
        else (list(strides), pads, [])
    if moved:
        caveats.append(f"axes {moved} have one output window: stride 1 and the input cropped to it "
                       "(TensorFlow's oneDNN convolution gets strided single windows wrong)")
    decision = _decide(sizes, kernel, strides, dilations, pads, op, same_ok)
    unsafe = eigen_unsafe_same(sizes, kernel, strides, dilations) if decision.mode == "same" else []
    if unsafe:
        caveats.append(f"'same' would match, but on axes {unsafe} the kernel is shorter than the stride, "
                       "where TensorFlow's 3D kernels without oneDNN shift the windows")
        decision = PaddingDecision("explicit", decision.pads, "explicit padding then 'valid'", decision.axes)
    decision.strides, decision.caveat = list(strides), "; ".join(caveats)
    if decision.caveat:
        decision.reason += f" ({decision.caveat})"
    return decision


def decide_for(op_type: str, sizes, kernel, strides, dilations, pads) -> PaddingDecision:
    """decide() as konnx uses it for a Conv / MaxPool / AveragePool node: the single call the
    plan makes on the inferred sizes and emit makes only when the plan could not (its sizes
    differ from the built ones), so both always agree."""
    return decide(sizes, kernel, strides, dilations, pads, op=op_type, single_window=op_type == "Conv")


def geometry_key(sizes, kernel, strides, dilations, pads) -> tuple:
    """What decide_for's answer depends on, comparable between the plan and emit."""
    return (tuple(None if s is None else int(s) for s in sizes), tuple(int(k) for k in kernel),
            tuple(int(s) for s in strides), tuple(int(d) for d in dilations),
            tuple(tuple(int(v) for v in p) for p in pads))


def with_caveat(reason: str, decision: PaddingDecision) -> str:
    """`reason` with the decision's caveat appended, once."""
    return reason if not decision.caveat or decision.caveat in reason else f"{reason} ({decision.caveat})"


def _decide(sizes, kernel, strides, dilations, pads, op, same_ok) -> PaddingDecision:
    axes = []
    for i, p in enumerate(pads):
        size = sizes[i]
        if size is not None:
            same = tf_same_pads(size, kernel[i], strides[i], dilations[i])
        elif same_matches_without_size(kernel[i], strides[i], dilations[i], p):
            same = tuple(p)
        else:
            same = None
        axes.append(AxisDecision(tuple(p), same))
    pads = [tuple(p) for p in pads]
    if all(p == (0, 0) for p in pads):
        return PaddingDecision("valid", pads, "no padding: 'valid'", axes)
    if same_ok and all(a.same_matches for a in axes):
        return PaddingDecision("same", pads, "the explicit pads equal what Keras 'same' pads on every axis", axes)
    diffs = []
    for i, a in enumerate(axes):
        if not a.same_matches:
            if a.same_pads is None:
                diffs.append(f"axis {i}: pads {a.pads}, 'same' depends on the unknown input size")
            else:
                diffs.append(f"axis {i}: pads {a.pads}, 'same' would pad {a.same_pads}")
    if not same_ok:
        why = f"{op} needs explicit padding"
    else:
        why = "'same' differs (" + "; ".join(diffs) + ")"
    return PaddingDecision("explicit", pads, f"{why}: explicit padding then 'valid'", axes)
