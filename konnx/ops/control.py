"""Control flow whose decisions are known at conversion time: If with a constant condition
(the chosen branch is inlined), Loop with a constant trip count and Scan over a static sequence
length (both unrolled); bodies are converted through Context.subgraph."""
from __future__ import annotations

import numpy as np

from ..values import Const, Tensor
from .registry import converter

MAX_UNROLL = 256


def _check_if(node, facts):
    if facts.computed(0):
        return "the condition is computed at run time; a Keras graph cannot branch on it"
    return None


def _check_loop(node, facts):
    if not node.has_input(0) and not node.has_input(1):
        return "a Loop without trip count or condition never ends"
    return None


@converter("If", since=1, check=_check_if, limits="constant condition (the branch is inlined)")
def if_(ctx, node):
    cond = ctx.input(0)
    take = bool(np.asarray(cond.value).reshape(-1)[0])
    branch = node.attr("then_branch" if take else "else_branch")
    return ctx.subgraph(branch, node.opset, {})


@converter("Loop", since=1, consts=(0, 1), check=_check_loop, limits=f"constant trip count and condition (unrolled, at most {MAX_UNROLL} steps)")
def loop(ctx, node):
    body = node.attr("body")
    trip = ctx.input(0)
    cond = ctx.input(1)
    if trip is not None and not isinstance(trip, Const):
        raise ctx.error("the trip count is computed at run time; a Keras graph needs it at conversion time")
    n = int(np.asarray(trip.value).reshape(-1)[0]) if trip is not None else MAX_UNROLL + 1
    carried = [ctx.input(i) for i in range(2, ctx.n_inputs)]
    n_carried = len(carried)
    names = [i.name for i in body.input]
    scans: list[list] = [[] for _ in range(len(body.output) - 1 - n_carried)]
    keep_going = True if cond is None else _const_bool(ctx, cond)
    it = 0
    while keep_going and it < n:
        if it >= MAX_UNROLL:
            raise ctx.error(f"the loop runs more than {MAX_UNROLL} steps; konnx unrolls loops")
        bindings = {names[0]: Const(np.asarray(it, np.int64))}
        if len(names) > 1 and names[1]:
            bindings[names[1]] = Const(np.asarray(True))
        bindings.update({nm: v for nm, v in zip(names[2:], carried)})
        outs = ctx.subgraph(body, node.opset, bindings)
        keep_going = _const_bool(ctx, outs[0])
        carried = outs[1:1 + n_carried]
        for k, v in enumerate(outs[1 + n_carried:]):
            scans[k].append(v)
        it += 1
    return carried + [_stack(ctx, s) for s in scans]


def _const_bool(ctx, v) -> bool:
    if not isinstance(v, Const):
        raise ctx.error("the loop condition is computed at run time; konnx can only unroll a loop "
                        "whose condition is known at conversion time")
    return bool(np.asarray(v.value).reshape(-1)[0])


def _stack(ctx, values):
    if not values:
        raise ctx.error("a Loop that runs zero times produces empty scan outputs, which konnx cannot type")
    if all(isinstance(v, Const) for v in values):
        return Const(np.stack([np.asarray(v.value) for v in values]))
    parts = []
    for v in values:
        if isinstance(v, Tensor):
            parts.append(ctx.op("expand_dims", [ctx.onnx_layout(v)], suffix="scan", axes=[0]))
        else:
            parts.append(np.asarray(v.value)[None])
    return ctx.tensor(ctx.op("concat", parts, axis=0))


def _step_slice(ctx, v, axis: int, t: int):
    """v[..., t, ...] along ONNX `axis` (the axis removed)."""
    if isinstance(v, Const):
        return Const(np.take(np.asarray(v.value), t, axis=axis))
    sl = [[None, None, None] for _ in range(v.rank)]
    sl[axis] = [t, t + 1, None]
    kt = ctx.op("slice", [ctx.onnx_layout(v)], suffix="scan_in", slices=sl)
    return ctx.tensor(ctx.op("squeeze", [kt], axes=[axis]), dtype=v.dtype)


def _stack_axis(ctx, values, axis: int):
    if all(isinstance(v, Const) for v in values):
        return Const(np.stack([np.asarray(v.value) for v in values], axis=axis))
    parts = []
    for v in values:
        if isinstance(v, Tensor):
            parts.append(ctx.op("expand_dims", [ctx.onnx_layout(v)], suffix="scan_out", axes=[axis]))
        else:
            parts.append(np.expand_dims(np.asarray(v.value), axis))
    return ctx.tensor(ctx.op("concat", parts, axis=axis))


@converter("Scan", since=9, limits=f"static sequence length (unrolled, at most {MAX_UNROLL} steps)")
def scan(ctx, node):
    body = node.attr("body")
    m = int(node.attr("num_scan_inputs"))
    ins = [ctx.input(i) for i in range(ctx.n_inputs)]
    n_state = len(ins) - m
    states, xs = ins[:n_state], ins[n_state:]
    in_axes = list(node.attr("scan_input_axes") or [0] * m)
    in_dirs = list(node.attr("scan_input_directions") or [0] * m)
    n_out = len(body.output) - n_state
    out_axes = list(node.attr("scan_output_axes") or [0] * n_out)
    out_dirs = list(node.attr("scan_output_directions") or [0] * n_out)
    in_axes = [a % x.rank for a, x in zip(in_axes, xs)]
    lengths = {int(x.shape[a]) if isinstance(x.shape[a], (int, np.integer)) else None for a, x in zip(in_axes, xs)}
    if len(lengths) != 1 or None in lengths:
        raise ctx.error("Scan needs scan inputs with one static sequence length; fix it with input_shapes")
    steps = lengths.pop()
    if steps > MAX_UNROLL:
        raise ctx.error(f"the scan runs {steps} steps; konnx unrolls at most {MAX_UNROLL}")
    names = [i.name for i in body.input]
    collected: list[list] = [[] for _ in range(n_out)]
    for t in range(steps):
        bindings = dict(zip(names[:n_state], states))
        for j, x in enumerate(xs):
            idx = steps - 1 - t if in_dirs[j] else t
            bindings[names[n_state + j]] = _step_slice(ctx, x, in_axes[j], idx)
        outs = ctx.subgraph(body, node.opset, bindings)
        states = outs[:n_state]
        for k, v in enumerate(outs[n_state:]):
            collected[k].append(v)
    results = list(states)
    for k, vals in enumerate(collected):
        if out_dirs[k]:
            vals = vals[::-1]
        rank = vals[0].rank + 1
        results.append(_stack_axis(ctx, vals, out_axes[k] % rank))
    return results
