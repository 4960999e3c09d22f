"""The plan's layout pass: the layout (`perm`, see layout.py) of every tensor the graph computes,
decided before anything is built.

konnx stores image tensors channels-last (NHWC) so Keras' convolutions, pooling and
normalization run on them directly, and everything else in the ONNX layout. Each converter
declares which of four kinds of op it is (ops/registry.py), and the layout of its outputs follows:

- SPATIAL (Conv, pooling, BatchNorm, Resize, ...): outputs of rank >= 3 channels-last;
- FOLLOWS (element-wise): the broadcast layout of its tensor inputs (the highest-rank input's
  layout, the first non-ONNX one among equals), so a chain of element-wise ops after a conv
  stays channels-last with no transpose;
- AXIS (Concat, Slice, Squeeze, Transpose, Gather, reductions, ...): its declared `perm` rule,
  a pure function of the node, its inputs' layouts and the inferred shapes (the converter
  builds with the same function), e.g. Transpose only renames axes and moves no data;
- ONNX (Reshape, MatMul, Gemm, ...): the ONNX layout.

Only tensors computed at run time have a layout; conversion-time constants are permuted when
they are used. Graph inputs and outputs are in the ONNX layout, or channels-last with
`channels_last_io`. A "move" is a transpose the plan asks for: an input whose layout differs
from the one its consumer wants (a SPATIAL op's image input in the ONNX layout, an ONNX op's
input stored channels-last, a graph output). Emit checks that every converter produced the
planned layout (emit.Context.assign): the plan is the decision, not a forecast.

No Keras here.
"""
from __future__ import annotations

from typing import Optional

from . import layout as L
from .ops.registry import AXIS, FOLLOWS, ONNX, SPATIAL

Perm = L.Perm


def io_perm(rank: int, channels_last_io: bool) -> Perm:
    """The layout of a graph input or output of rank `rank`."""
    return L.channels_last(rank) if channels_last_io and rank >= 3 else L.identity(rank)


def output_perms(spec, node, in_perms: list, facts) -> list:
    """The planned layout of each output of `node` (None: a constant, or a layout the inferred
    shapes cannot tell, which emit then decides)."""
    ranks = [facts.rank(i) if facts.rank(i) is not None else (len(p) if p is not None else None)
             for i, p in enumerate(in_perms)]
    n = len(node.outputs)
    out_ranks = [len(s) if (s := facts.out_shape(k)) is not None else None for k in range(n)]
    kind = spec.layout
    if any(p is None and facts.computed(i) for i, p in enumerate(in_perms)) and kind != ONNX:
        # an input whose layout emit decides: so is the output's (an ONNX-layout op excepted;
        # a rule sees None only for constants)
        perms = [None] * n
    elif spec.perm is not None:
        perms = spec.perm(node, in_perms, facts)
        perms = list(perms) + [None] * (n - len(perms))
    elif kind == SPATIAL:
        x = in_perms[0] if in_perms else None
        perms = [None if r is None else L.channels_last(r) if r >= 3 else (tuple(x) if x and len(x) == r else L.identity(r))
                 for r in out_ranks]
    elif kind == FOLLOWS:
        b = L.broadcast_perm(in_perms, ranks)
        perms = [b] * n
    elif kind == ONNX:
        perms = [None if r is None else L.identity(r) for r in out_ranks]
    elif kind == AXIS:  # no rule declared: the first computed input's layout, when ranks agree
        x = next((p for p in in_perms if p is not None), None)
        perms = [tuple(x) if (x is not None and r == len(x)) else None for r in out_ranks]
    else:
        perms = [None] * n
    # a rank the shapes know must agree with the rule's answer
    return [p if (p is None or r is None or len(p) == r) else None for p, r in zip(perms, out_ranks)]


def wanted_input_perm(spec, i: int, perm: Optional[Perm], out_perm: Optional[Perm]) -> Optional[Perm]:
    """The layout node input i is used in (for the plan's list of moves), or None when the op
    takes it as it is."""
    if perm is None or spec is None:
        return None
    if spec.layout == SPATIAL:  # the image input, in its output's layout
        return tuple(out_perm) if i == 0 and out_perm is not None and len(out_perm) == len(perm) else None
    if spec.layout == ONNX:
        return L.identity(len(perm))
    if spec.layout == FOLLOWS and out_perm is not None and len(out_perm) >= len(perm):
        k = len(out_perm) - len(perm)
        return tuple(p - k for p in out_perm if p >= k)
    return None
