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
    pads: list  # per-axis (before, after)
    reason: str
    axes: list = field(default_factory=list)


def decide(sizes, kernel, strides, dilations, pads, *, op: str = "Conv", same_ok: bool = True) -> PaddingDecision:
    """Choose 'valid', 'same' or explicit padding for explicit per-axis pads.

    'same' is chosen only where, on every axis, TF's SAME pads equal the explicit ones (for
    stride > 1 this needs the static input size)."""
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
