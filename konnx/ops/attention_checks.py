"""Input checks of ONNX Attention (opset 23/24), before anything is built.

The rules are the spec's (onnx.defs schema and the reference implementation
onnx/reference/ops/op_attention.py), which onnxruntime enforces as well (attention_helper.h):
Q, K, V of one rank (3 or 4); 3-D inputs split their hidden size into q_num_heads /
kv_num_heads heads of equal size; Q and K share the head size; K and V share the key length;
the query heads are a multiple of the key/value heads (grouped-query attention); past_key and
past_value come together, shaped (batch, kv_heads, past_length, head size); the mask broadcasts
to (batch, q_heads, q_length, total_length) and may be shorter than total_length (it is padded),
never longer; scale is applied as sqrt(scale) to Q and K, so it must not be negative.
Unknown sizes never refuse.
"""
from __future__ import annotations

from typing import Optional

# TensorProto codes the spec allows for softmax_precision: float, float16, double, bfloat16
SOFTMAX_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}


def check_attention(node, facts) -> Optional[str]:
    for rule in (_ranks, _attributes, _cache_inputs):
        why = rule(node, facts)
        if why:
            return why
    q, k, v = (_heads_view(node, facts, i) for i in range(3))
    return _agree(q, k, v) or _past(node, facts, q, k, v) or _mask(facts, q, k, node)


def _ranks(node, facts) -> Optional[str]:
    rank = facts.rank(0)
    if rank is not None and rank not in (3, 4):
        return f"Q must have rank 3 or 4, got rank {rank}"
    for i, name in ((1, "K"), (2, "V")):
        r = facts.rank(i)
        if rank is not None and r is not None and r != rank:
            return f"Q, K and V must have the same rank (3 or 4): Q has rank {rank}, {name} rank {r}"
    for i, name in ((4, "past_key"), (5, "past_value")):
        r = facts.rank(i)
        if r is not None and r != 4:
            return f"{name} must be 4-D (batch, kv_num_heads, past_length, head_size), got rank {r}"
    if rank == 3 and (node.attr("q_num_heads") is None or node.attr("kv_num_heads") is None):
        return "3-D Q/K/V need the q_num_heads and kv_num_heads attributes"
    return None


def _attributes(node, facts) -> Optional[str]:
    if facts.rank(0) == 3:
        for name in ("q_num_heads", "kv_num_heads"):
            h = node.attr(name)
            if not isinstance(h, int) or h < 1:
                return f"attribute {name}={h}: must be a positive number of heads"
    scale = node.attr("scale")
    if scale is not None and float(scale) < 0:
        return f"attribute scale={scale}: Q and K are scaled by sqrt(scale), so it must not be negative"
    sp = node.attr("softmax_precision")
    if sp is not None and int(sp) not in SOFTMAX_TYPES:
        return (f"attribute softmax_precision={sp}: the spec allows the float types "
                f"{sorted(SOFTMAX_TYPES)} ({', '.join(SOFTMAX_TYPES.values())})")
    mode = node.attr("qk_matmul_output_mode")
    if mode is not None and int(mode) not in (0, 1, 2, 3):
        return (f"attribute qk_matmul_output_mode={mode}: the spec defines 0 (raw scores), 1 (after "
                "softcap), 2 (after the bias) and 3 (after the softmax)")
    for name in ("left_window_size", "right_window_size"):
        w = node.attr(name)
        if w is not None and int(w) < -1:
            return f"attribute {name}={w}: must be -1 (unbounded) or non-negative"
    return None


def _cache_inputs(node, facts) -> Optional[str]:
    if node.has_input(4) != node.has_input(5):
        given, missing = ("past_key", "past_value") if node.has_input(4) else ("past_value", "past_key")
        return f"{given} is given without {missing}: the past key/value cache needs both"
    if node.has_input(4) and node.has_input(6):
        return "nonpad_kv_seqlen cannot be combined with past_key/past_value"
    return None


def _heads_view(node, facts, i: int) -> dict:
    """Input i as (batch, heads, length, head_size), sizes None where unknown."""
    s = facts.shape(i)
    if s is None or len(s) not in (3, 4):
        return {"batch": None, "heads": None, "len": None, "size": None, "hidden": None}
    dims = [facts.dim(i, a) for a in range(len(s))]
    if len(s) == 4:
        return {"batch": dims[0], "heads": dims[1], "len": dims[2], "size": dims[3], "hidden": None}
    heads = node.attr("q_num_heads" if i == 0 else "kv_num_heads")
    hidden = dims[2]
    size = hidden // heads if hidden is not None and isinstance(heads, int) and heads > 0 else None
    return {"batch": dims[0], "heads": heads, "len": dims[1], "size": size, "hidden": hidden}


def _agree(q, k, v) -> Optional[str]:
    for t, name, attr in ((q, "Q", "q_num_heads"), (k, "K", "kv_num_heads"), (v, "V", "kv_num_heads")):
        if t["hidden"] is not None and t["heads"] and t["hidden"] % t["heads"]:
            return f"{name}'s hidden size {t['hidden']} is not divisible by {attr}={t['heads']}"
    for a, b, what in ((q, k, "batch"), (q, v, "batch"), (k, v, "len"), (k, v, "heads")):
        if a[what] is not None and b[what] is not None and a[what] != b[what]:
            names = "Q and K" if a is q and b is k else ("Q and V" if a is q else "K and V")
            return f"{names} disagree on the {_WORDS[what]}: {a[what]} vs {b[what]}"
    if q["size"] is not None and k["size"] is not None and q["size"] != k["size"]:
        return f"Q and K must share the head size: {q['size']} vs {k['size']}"
    if q["heads"] and k["heads"] and q["heads"] % k["heads"]:
        return (f"the {q['heads']} query heads are not a multiple of the {k['heads']} key/value heads "
                "(grouped-query attention repeats each key/value head)")
    return None


_WORDS = {"batch": "batch size", "len": "key/value sequence length", "heads": "number of key/value heads"}


def _past(node, facts, q, k, v) -> Optional[str]:
    if not node.has_input(4):
        return None
    for i, name, t in ((4, "past_key", k), (5, "past_value", v)):
        want = {0: q["batch"], 1: k["heads"], 3: t["size"]}
        for axis, size in want.items():
            got = facts.dim(i, axis)
            if got is not None and size is not None and got != size:
                return (f"{name} has shape {list(facts.shape(i))}: expected (batch={q['batch']}, "
                        f"kv_num_heads={k['heads']}, past_length, head_size={t['size']})")
    pk, pv = facts.dim(4, 2), facts.dim(5, 2)
    if pk is not None and pv is not None and pk != pv:
        return f"past_key and past_value disagree on the past length: {pk} vs {pv}"
    return None


def _mask(facts, q, k, node) -> Optional[str]:
    s = facts.shape(3)
    if s is None:
        return None
    if not 1 <= len(s) <= 4:
        return f"attn_mask has rank {len(s)}: it must broadcast to (batch, q_heads, q_length, total_length)"
    past = facts.dim(4, 2) if node.has_input(4) else 0
    total = None if k["len"] is None or past is None else k["len"] + past
    last = facts.dim(3, -1)
    if last is not None and total is not None and last > total:
        return f"attn_mask's last axis has {last} entries, more than the {total} keys (past + new)"
    want = ((-2, q["len"], "q_length"), (-3, q["heads"], "q_num_heads"), (-4, q["batch"], "batch"))
    for axis, size, what in want:
        got = facts.dim(3, axis) if len(s) >= -axis else None
        if got is not None and size is not None and got not in (1, size):
            return (f"attn_mask has shape {list(s)}: axis {axis} must be 1 or {what}={size} to broadcast to "
                    f"(batch, q_heads, q_length, total_length)")
    return None


def rotary_reason(node, facts) -> Optional[str]:
    """RotaryEmbedding (the spec; onnxruntime's rotary_embedding_helper): the head size divides
    a 3-D input's hidden size by num_heads; rotary_embedding_dim (0: the head size) is at most
    the head size; cos/sin caches are (max_position, rotary_dim / 2) with position_ids, else
    (batch, sequence, rotary_dim / 2), and have the same shape."""
    rank, rd = facts.rank(0), node.attr("rotary_embedding_dim") or 0
    if int(rd) < 0:
        return f"attribute rotary_embedding_dim={rd}: must be 0 (the head size) or positive"
    head = facts.dim(0, 3) if rank == 4 else None
    heads = node.attr("num_heads")
    if rank == 3 and facts.dim(0, 2) is not None and isinstance(heads, int) and heads > 0:
        if facts.dim(0, 2) % heads:
            return f"the hidden size {facts.dim(0, 2)} is not divisible by num_heads={heads}"
        head = facts.dim(0, 2) // heads
    if head is not None and int(rd) > head:
        return f"attribute rotary_embedding_dim={rd} exceeds the head size {head}"
    rot = int(rd) or head
    want_rank = 2 if node.has_input(3) else 3
    for i, name in ((1, "cos_cache"), (2, "sin_cache")):
        s = facts.shape(i)
        if s is None:
            continue
        if len(s) != want_rank:
            layout = "(max_position, rotary_dim / 2)" if want_rank == 2 else "(batch, sequence, rotary_dim / 2)"
            return f"{name} has rank {len(s)}, expected {layout}"
        last = facts.dim(i, -1)
        if last is not None and rot is not None and 2 * last != rot:
            return f"{name} has shape {list(s)}: its last axis must be rotary_dim / 2 = {rot / 2:g}"
    return None
