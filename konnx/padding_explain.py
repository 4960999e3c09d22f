"""`konnx padding` / explain(): Keras 'valid' vs 'same' vs explicit pads for one window, in
plain sentences, and the Keras layers konnx builds for it. Pure functions: no Keras here."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from .padding import (conv_out_size, effective_kernel, eigen_unsafe_same, single_window_geometry,
                      single_window_strided_axes, tf_same_pads)


# --------------------------------------------------------------------------- explain()
# What `konnx padding` prints: for each axis, the output length under Keras 'valid', Keras
# 'same' (and where 'same' puts its zeros) and the given explicit pads, and which Keras layers
# reproduce the explicit pads exactly.

def side_names(axis: int, n_axes: int) -> tuple[str, str, str, str]:
    """(axis name, before side, after side, unit) in ONNX order (..., depth, height, width)."""
    from_end = n_axes - 1 - axis
    if n_axes == 1 or from_end == 0:
        return "width", "left", "right", "column"
    if from_end == 1:
        return "height", "top", "bottom", "row"
    if from_end == 2:
        return "depth", "front", "back", "plane"
    return f"axis {axis}", "start", "end", "slice"


def _zeros(n: int, unit: str) -> str:
    if n == 0:
        return f"no zero {unit}"
    return f"one zero {unit}" if n == 1 else f"{n} zero {unit}s"


@dataclass(frozen=True)
class AxisPadding:
    """One spatial axis: output lengths for 'valid', 'same' and the explicit pads."""

    size: int
    kernel: int
    stride: int
    dilation: int
    valid_out: int
    same_out: int
    same_before: int
    same_after: int
    explicit_before: int
    explicit_after: int
    explicit_out: int

    @property
    def same_pads(self) -> tuple[int, int]:
        return self.same_before, self.same_after

    @property
    def explicit_pads(self) -> tuple[int, int]:
        return self.explicit_before, self.explicit_after

    @property
    def same_matches(self) -> bool:
        """'same' reproduces the explicit pads exactly (konnx's rule for choosing 'same')."""
        return self.same_pads == self.explicit_pads

    def advice(self, axis: int = 0, n_axes: int = 1, same_everywhere: bool = True) -> str:
        """One plain sentence: what 'same' and 'valid' do on this axis, and what to use.
        same_everywhere=False: 'same' does not fit another axis (Keras pads all axes alike)."""
        name, before, after, unit = side_names(axis, n_axes)
        b, a = self.explicit_pads
        if self.same_pads == (0, 0):
            zeros = "adds no zeros"
        else:
            zeros = (f"adds {_zeros(self.same_before, unit)} at the {before} and "
                     f"{_zeros(self.same_after, unit)} at the {after}")
        head = f"{name.capitalize()} (axis {axis}): 'same' gives {self.same_out} and {zeros}, 'valid' gives {self.valid_out}; "
        pads = f"the pads ({b}, {a})"
        if self.explicit_out <= 0:
            return head + f"{pads} leave no room for a single window, so there is no output."
        if (b, a) == (0, 0):
            if self.same_pads == (0, 0):
                return head + (f"{pads} give {self.explicit_out} and 'same' adds nothing here either, "
                               "so padding='valid' and padding='same' are both exact.")
            return head + f"{pads} give {self.explicit_out}, so use padding='valid'."
        if self.same_matches and same_everywhere:
            return head + f"{pads} are exactly what 'same' adds, so padding='same' is exact."
        if self.same_matches:
            return head + (f"{pads} are exactly what 'same' adds here, but not on every axis, "
                           f"so use zero padding ({b}, {a}) then padding='valid'.")
        if b < 0 or a < 0:
            tool = "cropping" if b <= 0 and a <= 0 else "zero padding on one side and cropping on the other"
            return head + f"{pads} give {self.explicit_out} and crop the input, so use {tool} then padding='valid'."
        if self.explicit_out == self.same_out:
            diff = (f"the same length but 'same' pads ({self.same_before}, {self.same_after}), "
                    "which shifts every window")
        else:
            diff = f"{self.explicit_out}, not the {self.same_out} of 'same'"
        return head + f"{pads} give {diff}, so use zero padding ({b}, {a}) then padding='valid'."

    def to_dict(self) -> dict:
        return {"size": self.size, "kernel": self.kernel, "stride": self.stride, "dilation": self.dilation,
                "valid": {"out": self.valid_out},
                "same": {"out": self.same_out, "before": self.same_before, "after": self.same_after},
                "explicit": {"out": self.explicit_out, "before": self.explicit_before,
                             "after": self.explicit_after, "same_matches": self.same_matches}}


@dataclass(frozen=True)
class PaddingExplanation:
    """`explain()`'s answer: one AxisPadding per spatial axis (ONNX order)."""

    axes: tuple

    @property
    def same_matches(self) -> bool:
        return all(a.same_matches for a in self.axes)

    @property
    def valid_out(self) -> tuple:
        return tuple(a.valid_out for a in self.axes)

    @property
    def same_out(self) -> tuple:
        return tuple(a.same_out for a in self.axes)

    @property
    def explicit_out(self) -> tuple:
        return tuple(a.explicit_out for a in self.axes)

    def advice(self) -> list[str]:
        return [a.advice(i, len(self.axes), self.same_matches) for i, a in enumerate(self.axes)] + self.tf_caveats()

    def _geometry(self):
        return ([a.size for a in self.axes], [a.kernel for a in self.axes], [a.stride for a in self.axes],
                [a.dilation for a in self.axes], [a.explicit_pads for a in self.axes])

    def tf_caveats(self) -> list[str]:
        """Where konnx departs from the plain layers because TensorFlow gets them wrong."""
        sizes, kernels, strides, dils, pads = self._geometry()
        out = []
        single = single_window_strided_axes(sizes, kernels, strides, dils, pads)
        if single:
            out.append(f"Axes {single} have one output window with a stride > 1, which TensorFlow's oneDNN "
                       "convolution gets wrong for one input channel: konnx convolves them with stride 1 on "
                       "the input cropped to the window (docs/onednn.md).")
        if self.same_matches and eigen_unsafe_same(sizes, kernels, strides, dils):
            out.append("'same' would match, but a kernel shorter than the stride makes TensorFlow's 3D kernels "
                       "without oneDNN shift the windows: konnx pads explicitly (docs/onednn.md).")
        return out

    def keras_layers(self) -> list[str]:
        """The Keras layers that reproduce the explicit pads exactly (konnx's choice)."""
        n = len(self.axes)
        sizes, kernels, strides, dils, pads = self._geometry()
        new_strides, new_pads, moved = single_window_geometry(sizes, kernels, strides, dils, pads)
        if moved:  # konnx's stride-1 form of single strided windows (tf_caveats)
            layers = explain(sizes, kernels, new_strides, dils, new_pads).keras_layers()
            arg = tuple(new_strides) if n > 1 else new_strides[0]
            return layers[:-1] + [layers[-1].replace("(..., ", f"(..., strides={arg}, ")]
        conv = f"Conv{n}D" if n <= 3 else "a convolution"
        if all(p == (0, 0) for p in pads):
            return [f"{conv}(..., padding='valid')"]
        if self.same_matches and not eigen_unsafe_same(sizes, kernels, strides, dils):
            return [f"{conv}(..., padding='same')"]
        layers = []

        def arg(ps):
            return repr(tuple(ps[0])) if n == 1 else repr(tuple(tuple(p) for p in ps))

        grow = [(max(b, 0), max(a, 0)) for b, a in pads]
        cut = [(max(-b, 0), max(-a, 0)) for b, a in pads]
        if any(any(p) for p in grow):
            layers.append(f"ZeroPadding{n}D(padding={arg(grow)})" if n <= 3 else f"zero padding {grow}")
        if any(any(c) for c in cut):
            layers.append(f"Cropping{n}D(cropping={arg(cut)})" if n <= 3 else f"cropping {cut}")
        return layers + [f"{conv}(..., padding='valid')"]

    def to_dict(self) -> dict:
        return {"axes": [a.to_dict() for a in self.axes], "same_matches": self.same_matches,
                "keras": self.keras_layers(), "advice": self.advice()}


def _per_axis(name: str, value, n: Optional[int] = None) -> list[int]:
    vals = [value] if isinstance(value, (int,)) or not isinstance(value, Sequence) else list(value)
    try:
        vals = [int(v) for v in vals]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be integers, got {value!r}") from None
    if n is not None and len(vals) == 1:
        vals = vals * n
    if n is not None and len(vals) != n:
        raise ValueError(f"{name} has {len(vals)} values but there are {n} spatial axes")
    return vals


def _explicit(pads, n: int) -> list[tuple[int, int]]:
    if pads is None:
        return [(0, 0)] * n
    if isinstance(pads, int):
        return [(int(pads), int(pads))] * n
    flat = list(pads)
    if flat and all(isinstance(p, Sequence) and len(p) == 2 for p in flat):
        if len(flat) != n:
            raise ValueError(f"pads has {len(flat)} (begin, end) pairs but there are {n} spatial axes")
        return [(int(b), int(a)) for b, a in flat]
    if len(flat) != 2 * n:
        raise ValueError(f"pads needs {2 * n} values in ONNX order (begins..., ends...), got {len(flat)}")
    return [(int(flat[i]), int(flat[i + n])) for i in range(n)]


def explain(size, kernel, stride=1, dilation=1, pads=None) -> PaddingExplanation:
    """Explain Keras 'valid' vs 'same' vs explicit `pads` for one convolution / pooling window.

    size, kernel, stride, dilation: an int or one per spatial axis (ints broadcast).
    pads: None (no padding), an int (both sides of every axis), ONNX order
    ``[b0, b1, ..., e0, e1, ...]``, or a sequence of (begin, end) pairs. Negative pads crop.

    >>> explain(5, 2, 2).same_out, explain(5, 2, 2).axes[0].same_pads
    ((3,), (0, 1))
    """
    lengths = [len(v) for v in (size, kernel, stride, dilation) if isinstance(v, Sequence)]
    n = max(lengths, default=1)
    sizes, kernels = _per_axis("size", size, n), _per_axis("kernel", kernel, n)
    strides, dilations = _per_axis("stride", stride, n), _per_axis("dilation", dilation, n)
    for name, vals in (("size", sizes), ("kernel", kernels), ("stride", strides), ("dilation", dilations)):
        if any(v < 1 for v in vals):
            raise ValueError(f"{name} must be >= 1, got {vals}")
    axes = []
    for i, p in enumerate(_explicit(pads, n)):
        n_i, k, s, d = sizes[i], kernels[i], strides[i], dilations[i]
        eff = effective_kernel(k, d)
        before, after = tf_same_pads(n_i, k, s, d)
        explicit_out = conv_out_size(n_i, k, s, d, p) if n_i + p[0] + p[1] >= eff else 0
        axes.append(AxisPadding(n_i, k, s, d, valid_out=max((n_i - eff) // s + 1, 0) if n_i >= eff else 0,
                                same_out=math.ceil(n_i / s), same_before=before, same_after=after,
                                explicit_before=p[0], explicit_after=p[1], explicit_out=max(explicit_out, 0)))
    return PaddingExplanation(tuple(axes))
