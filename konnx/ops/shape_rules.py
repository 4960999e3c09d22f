"""Input shapes that cannot agree, refused before a node is built (issue 14).

`registry.converter` runs `shape_reason(node, facts)` (through attr_rules.common_reason) for
every default-domain node, in the plan on the inferred shapes and again at emit on the built
ones, so nodes whose shapes ONNX shape inference could not see (sizes computed by shape
arithmetic, nodes of Scan/Loop/If bodies) are refused with the node named instead of failing
inside Keras. Each rule is one onnxruntime enforces too:
- multidirectional broadcasting (Add, Mul, Where, Max, ...): the static sizes of each aligned
  axis are equal or 1;
- Concat: inputs of one rank whose sizes agree outside the concatenation axis (inputs with no
  elements are left out, as onnxruntime leaves them out);
- MatMul and Gemm: the inner sizes agree, the batch axes (Gemm's C) broadcast;
- Expand: the input and the target shape broadcast;
- Split: as many sizes as outputs, none negative, summing to the split axis' size, and a
  num_outputs equal to the number of outputs (also checked before shape inference:
  konnx/infer_guard.py).
Unknown facts (None, symbolic dims) never refuse.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

BROADCAST_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "BitShift", "And", "Or", "Xor", "Equal", "Less", "Greater",
    "LessOrEqual", "GreaterOrEqual", "Where", "Max", "Min", "Sum", "Mean", "BitwiseAnd", "BitwiseOr",
    "BitwiseXor"})


def shape_reason(node, facts) -> Optional[str]:
    if node.op_type in BROADCAST_OPS and node.opset >= 7:
        return _broadcast(node, facts)
    rule = _RULES.get(node.op_type)
    return rule(node, facts) if rule is not None else None


def _static(facts, i: int) -> Optional[list]:
    """Input i's shape with static sizes as int and the rest None, or None when unknown."""
    s = facts.shape(i)
    return None if s is None else [facts.dim(i, a) for a in range(len(s))]


def _clash(a: list, b: list) -> Optional[tuple]:
    """The first pair of static sizes, aligned from the right, that cannot broadcast (neither 1
    nor equal), or None."""
    for back in range(1, min(len(a), len(b)) + 1):
        x, y = a[-back], b[-back]
        if None not in (x, y) and 1 not in (x, y) and x != y:
            return x, y
    return None


def _show(facts, i: int) -> str:
    return str(list(facts.shape(i)))


def _broadcast(node, facts) -> Optional[str]:
    shapes = [(i, _static(facts, i)) for i in range(len(node.inputs)) if node.has_input(i)]
    shapes = [(i, s) for i, s in shapes if s is not None]
    if len(shapes) < 2:
        return None
    rank = max(len(s) for _, s in shapes)
    for back in range(1, rank + 1):
        sizes = {(i, s[-back]) for i, s in shapes if len(s) >= back and s[-back] not in (None, 1)}
        if len({d for _, d in sizes}) > 1:
            shown = ", ".join(f"input {i} {_show(facts, i)}" for i, _ in shapes)
            return (f"input shapes cannot broadcast: {shown} have sizes {sorted({d for _, d in sizes})} on "
                    f"axis {rank - back} (counted from the left of the broadcast shape); each axis needs "
                    f"equal sizes or 1")
    return None


def _concat(node, facts) -> Optional[str]:
    axis = node.attr("axis")
    shapes = [(i, _static(facts, i)) for i in range(len(node.inputs)) if node.has_input(i)]
    shapes = [(i, s) for i, s in shapes if s is not None and 0 not in s]
    if len(shapes) < 2 or not isinstance(axis, int):
        return None
    (i0, first), rank = shapes[0], len(shapes[0][1])
    if not -rank <= axis < rank:
        return None  # attr_rules refuses an axis out of range
    for i, s in shapes[1:]:
        if len(s) != rank:
            return (f"input {i} has shape {_show(facts, i)} (rank {len(s)}), input {i0} has {_show(facts, i0)} "
                    f"(rank {rank}): Concat needs inputs of one rank")
        for a in range(rank):
            if a != axis % rank and None not in (s[a], first[a]) and s[a] != first[a]:
                return (f"input {i} has shape {_show(facts, i)}, input {i0} has {_show(facts, i0)}: sizes must "
                        f"agree on every axis but the concatenation axis {axis} (they differ on axis {a})")
    return None


def _matmul(node, facts) -> Optional[str]:
    a, b = _static(facts, 0), _static(facts, 1)
    if a is None or b is None or not a or not b:
        return None
    k_a, k_b = a[-1], (b[0] if len(b) == 1 else b[-2])
    if None not in (k_a, k_b) and k_a != k_b:
        return (f"inputs of shapes {_show(facts, 0)} and {_show(facts, 1)}: the inner sizes {k_a} and {k_b} "
                f"must be equal")
    clash = _clash(a[:-2], b[:-2])
    if clash:
        return (f"inputs of shapes {_show(facts, 0)} and {_show(facts, 1)}: the batch axes cannot "
                f"broadcast ({clash[0]} against {clash[1]})")
    return None


def _split_sizes(node, facts) -> Optional[list]:
    if node.opset < 13:
        split = node.attr("split")
        return [int(v) for v in split] if split else None
    v = facts.value(1)
    if v is None:
        return None
    v = np.asarray(v).reshape(-1)
    if v.dtype == object and not all(isinstance(e, (int, np.integer)) for e in v):
        return None  # sizes holding run-time dims
    return [int(e) for e in v]


def _split(node, facts) -> Optional[str]:
    n_out = len(node.outputs)
    num = node.attr("num_outputs") if node.opset >= 18 else None
    split = _split_sizes(node, facts)
    if num is not None:
        if split is not None or (node.has_input(1) and node.opset >= 13):
            return "both the split input and the num_outputs attribute are given: the spec allows one"
        if num != n_out:
            return f"attribute num_outputs={num}, but the node has {n_out} outputs: they must be equal"
        return None
    if split is None or not split:
        return None
    if len(split) != n_out:
        return f"split {split} gives {len(split)} sizes for {n_out} outputs: one size per output"
    if any(s < 0 for s in split):
        return f"split {split}: sizes must not be negative"
    axis = node.attr("axis")
    dim = facts.dim(0, axis) if isinstance(axis, int) else None
    if dim is not None and sum(split) != dim:
        return (f"split {split} sums to {sum(split)}, but axis {axis} of the input {_show(facts, 0)} has size "
                f"{dim}: the sizes must add up to it")
    return None


def _gemm(node, facts) -> Optional[str]:
    a, b, c = _static(facts, 0), _static(facts, 1), _static(facts, 2)
    for i, s in ((0, a), (1, b)):
        if s is not None and len(s) != 2:
            return f"input {i} has shape {_show(facts, i)}: Gemm multiplies matrices (rank 2)"
    if a is None or b is None:
        return None
    (m, k_a), (k_b, n) = a[::-1] if node.attr("transA") else a, b[::-1] if node.attr("transB") else b
    if None not in (k_a, k_b) and k_a != k_b:
        return (f"A {_show(facts, 0)} (transA={node.attr('transA')}) and B {_show(facts, 1)} "
                f"(transB={node.attr('transB')}): the inner sizes {k_a} and {k_b} must be equal")
    if c is not None and len(c) <= 2:
        for d, want in zip(c[::-1], (n, m)):
            if None not in (d, want) and d not in (1, want):
                return (f"C has shape {_show(facts, 2)}, which does not broadcast to the output "
                        f"[{m}, {n}] (sizes equal or 1)")
    elif c is not None:
        return f"C has shape {_show(facts, 2)}: rank above 2 cannot broadcast to a matrix"
    return None


def _expand(node, facts) -> Optional[str]:
    x, target = _static(facts, 0), facts.value(1)
    if x is None or target is None:
        return None
    target = [int(t) if isinstance(t, (int, np.integer)) else None
              for t in np.asarray(target, dtype=object).reshape(-1)]
    clash = _clash(x, target)
    if clash:
        return (f"input of shape {_show(facts, 0)} cannot be expanded to {target}: each axis needs "
                f"equal sizes or 1 ({clash[0]} against {clash[1]})")
    return None


_RULES = {"Concat": _concat, "MatMul": _matmul, "Split": _split, "Gemm": _gemm, "Expand": _expand}
