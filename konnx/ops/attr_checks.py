"""Per-op attribute rules of the ONNX spec, checked before a node is built (issue 14).

`attr_rules.common_reason` runs `op_reason(node, facts)` for every default-domain node, so each
rule covers every op it applies to, wherever the node sits (also inside If/Loop/Scan bodies):
- string attributes the spec enumerates (Pad's mode, DepthToSpace's mode, Gelu's approximate,
  RoiAlign's coordinate_transformation_mode, GridSample's modes, the recurrent ops' direction, the scatter and loss
  reductions, BitShift's direction) hold one of the spec's values;
- Mod before opset 28 computes floating-point inputs only with fmod=1 (Mod-10/13: "If the input
  type is floating point, then fmod attribute must be set to 1");
- QuantizeLinear / DequantizeLinear: the scale and the zero point have the same shape; a 1-D
  scale has one entry per entry of the axis (or a single one); a blocked quantization's scale is
  shaped like the input except along the axis, and its block_size is positive and in the spec's
  accepted range [ceil(Di/Si), ceil(Di/(Si-1)) - 1];
(RoiAlign's mode, sizes, sampling ratio and scale are detect_checks.roi_align's rules.)
onnxruntime refuses each of these too. Unknown facts (None) never refuse.
"""
from __future__ import annotations

from typing import Optional

_FLOATS = ("float16", "float32", "float64", "bfloat16")


def _since(values_by_opset: tuple):
    """(opset, values) steps -> f(opset) giving the values valid at that opset."""
    def at(opset: int) -> tuple:
        out = ()
        for since, values in values_by_opset:
            if opset >= since:
                out = values
        return out
    return at


_RECURRENT_DIRECTION = {"direction": _since(((1, ("forward", "reverse", "bidirectional")),))}
_SCATTER_REDUCTION = {"reduction": _since(((16, ("none", "add", "mul")), (18, ("none", "add", "mul", "max", "min"))))}
_LOSS_REDUCTION = {"reduction": _since(((1, ("none", "sum", "mean")),))}

# op type -> {attribute: opset -> the values the spec allows}
ENUMS = {
    "Pad": {"mode": _since(((1, ("constant", "reflect", "edge")), (19, ("constant", "reflect", "edge", "wrap"))))},
    "DepthToSpace": {"mode": _since(((1, ("DCR", "CRD")),))},
    "Gelu": {"approximate": _since(((20, ("none", "tanh")),))},
    "RoiAlign": {"coordinate_transformation_mode": _since(((16, ("half_pixel", "output_half_pixel")),))},
    "GridSample": {"mode": _since(((16, ("bilinear", "nearest", "bicubic")), (20, ("linear", "nearest", "cubic")))),
                   "padding_mode": _since(((16, ("zeros", "border", "reflection")),))},
    "RNN": _RECURRENT_DIRECTION, "GRU": _RECURRENT_DIRECTION, "LSTM": _RECURRENT_DIRECTION,
    "ScatterElements": _SCATTER_REDUCTION, "ScatterND": _SCATTER_REDUCTION,
    "NegativeLogLikelihoodLoss": _LOSS_REDUCTION, "SoftmaxCrossEntropyLoss": _LOSS_REDUCTION,
    "BitShift": {"direction": _since(((11, ("LEFT", "RIGHT")),))},
}


def op_reason(node, facts) -> Optional[str]:
    rules = (_enum,) + _BY_OP.get(node.op_type, ())
    for rule in rules:
        why = rule(node, facts)
        if why:
            return why
    return None


def _enum(node, facts) -> Optional[str]:
    for name, allowed_at in ENUMS.get(node.op_type, {}).items():
        if name not in node.explicit_attrs:
            continue
        allowed = allowed_at(node.opset)
        value = node.string(name)
        if allowed and value not in allowed:
            names = ", ".join(repr(v) for v in allowed)
            return f"attribute {name}={value!r}: the spec (opset {node.opset}) allows {names}"
    return None


def _mod(node, facts) -> Optional[str]:
    dt = facts.dtype(0)
    if node.opset < 28 and dt in _FLOATS and node.int("fmod") == 0:
        return (f"attribute fmod=0 on {dt} inputs: before opset 28 the spec computes floating-point "
                "inputs only with fmod=1 (opset 28 defines fmod=0 for them)")
    return None


def _static(facts, i: int) -> Optional[tuple]:
    s = facts.shape(i)
    if s is None:
        return None
    dims = tuple(facts.dim(i, a) for a in range(len(s)))
    return None if None in dims else dims


def _quant(node, facts) -> Optional[str]:
    scale, zero = _static(facts, 1), _static(facts, 2)
    if scale is not None and zero is not None and scale != zero:
        return (f"the scale has shape {list(scale)} and the zero point {list(zero)}: the spec wants "
                "them of the same shape")
    block = node.int("block_size") if "block_size" in node.explicit_attrs else None
    if block is not None and block < 0:
        return f"attribute block_size={block}: the spec wants a positive block size"
    x, axis = _static(facts, 0), node.int("axis")
    if x is None or scale is None or not x or axis is None or not -len(x) <= axis < len(x):
        return None  # attr_rules' axis rules and the converter judge the axis
    axis %= len(x)
    if len(scale) == 1 and scale[0] != 1 and scale[0] != x[axis]:
        return (f"the scale has {scale[0]} entries: per-axis quantization wants one per entry of axis "
                f"{axis} ({x[axis]}), or a single one")
    if len(scale) == len(x) and len(x) >= 2 and block:
        return _blocked(x, scale, axis, block)
    return None


def _blocked(x: tuple, scale: tuple, axis: int, block: int) -> Optional[str]:
    """Blocked quantization: the scale is shaped like x except along `axis`, where a block size B
    in [ceil(Di/Si), ceil(Di/(Si-1)) - 1] covers x's Di entries with its Si scales."""
    others = [a for a in range(len(x)) if a != axis and x[a] != scale[a]]
    if others:
        return (f"the scale has shape {list(scale)} for an input of shape {list(x)}: blocked quantization "
                f"wants them equal except along axis {axis}")
    d, s = x[axis], scale[axis]
    low = -(-d // s) if s else None
    high = (-(-d // (s - 1)) - 1) if s > 1 else None
    if low is not None and (block < low or (high is not None and block > high)):
        return (f"attribute block_size={block}: for an input of {d} along axis {axis} and {s} scales, the "
                f"spec accepts [{low}, {'...' if high is None else high}]")
    return None


_BY_OP = {"Mod": (_mod,), "QuantizeLinear": (_quant,), "DequantizeLinear": (_quant,)}
