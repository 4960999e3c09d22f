"""Attention (opset 23/24/25), RotaryEmbedding (opset 23), LinearAttention and
CausalConvWithState (opset 27), in the ONNX layout."""
from __future__ import annotations

import numpy as np
import onnx

from ..values import Const, Tensor
from .attention_checks import check_attention, rotary_reason
from .elementwise import dtype_of
from .registry import AXIS, converter


def _arg(ctx, i):
    v = ctx.input(i)
    if v is None:
        return None
    return np.asarray(v.value) if isinstance(v, Const) else ctx.onnx_layout(v)


def _np_name(elem_type) -> str:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(elem_type))).name


def _check_rotary(node, facts):
    rank = facts.rank(0)
    if rank is not None and rank not in (3, 4):
        return f"the input must have rank 3 or 4, got rank {rank}"
    if rank == 3 and not node.int("num_heads"):
        return "a 3-D input needs the num_heads attribute"
    return rotary_reason(node, facts)


def _check_linear_attention(node, facts):
    rule = node.string("update_rule")
    if rule not in ("linear", "gated", "delta", "gated_delta"):
        return f"unknown update_rule {rule!r}"
    rank = facts.rank(0)
    if node.attr("q_num_heads") is None or node.attr("kv_num_heads") is None or (rank is not None and rank != 3) \
            or (facts.built and facts.dim(0, 1) is None):
        return "needs q_num_heads, kv_num_heads and 3-D inputs with a static sequence length"
    return None


def _check_causal_conv(node, facts):
    act = node.string("activation")
    if act not in ("none", "silu", "swish"):
        return f"unknown activation {act!r}"
    rank = facts.rank(0)
    if rank is not None and rank != 3:
        return f"the input must be (batch, channels, length), got rank {rank}"
    return None


_BSHD = (0, 2, 1, 3)


def _as_stored(node, perms) -> bool:
    """q, k, v stored as (batch, seq, heads, head_size), as a head split leaves them, with no
    past key/value: attention runs in that layout."""
    return (all(p is not None and tuple(p) == _BSHD for p in perms[:3])
            and not node.has_input(4) and not node.has_input(5))


def _attention_perm(node, perms, facts):
    """Y and present_k/v keep the stored (batch, seq, heads, head_size) layout (_as_stored),
    else the ONNX layout."""
    n = len(node.outputs)
    if _as_stored(node, perms):
        return [_BSHD, _BSHD, _BSHD, (0, 1, 2, 3)][:n]
    outs = [facts.out_shape(k) for k in range(n)]
    return [None if o is None else tuple(range(len(o))) for o in outs]


@converter("Attention", since=23, check=check_attention, layout=AXIS, perm=_attention_perm,
           limits="outputs in the input dtype; softmax_precision honoured")
def attention(ctx, node):
    q = ctx.input(0)
    scale = node.attr("scale")
    sp = node.attr("softmax_precision")
    params = dict(
        scale=None if scale is None else float(scale),
        causal=bool(int(node.attr("is_causal") or 0)),
        q_heads=node.attr("q_num_heads"), kv_heads=node.attr("kv_num_heads"),
        softcap=float(node.attr("softcap") or 0.0),
        mode=int(node.attr("qk_matmul_output_mode") or 0),
        softmax_dtype=_np_name(sp) if sp else None,
        left=int(node.attr("left_window_size", -1)), right=int(node.attr("right_window_size", -1)),
    )
    dt = dtype_of(q)
    k, v = ctx.input(1), ctx.input(2)
    perms = [t.perm if isinstance(t, Tensor) else None for t in (q, k, v)]
    if _as_stored(node, perms):
        args = [ctx.keras(q), ctx.keras(k), ctx.keras(v)] + [_arg(ctx, i) for i in range(3, 7)]
        outs = ctx.op("attention", args, bshd=True, **params)
        return [ctx.tensor(o, p, dtype=dt) for o, p in zip(outs, _attention_perm(node, perms, None))]
    args = [_arg(ctx, i) for i in range(7)]
    outs = ctx.op("attention", args, **params)
    return [ctx.tensor(o, dtype=dt) for o in outs][:len(node.outputs)]


@converter("RotaryEmbedding", since=23, check=_check_rotary)
def rotary_embedding(ctx, node):
    x = ctx.input(0)
    heads = int(node.attr("num_heads", 0) or 0)
    args = [_arg(ctx, i) for i in range(4)]
    y = ctx.op("rotary_embedding", args, interleaved=int(node.attr("interleaved") or 0),
               rotary_dim=int(node.attr("rotary_embedding_dim") or 0), num_heads=heads)
    return ctx.tensor(y, dtype=dtype_of(x))


@converter("LinearAttention", since=27, check=_check_linear_attention, limits="static sequence length (unrolled)")
def linear_attention(ctx, node):
    q = ctx.input(0)
    rule = node.attr("update_rule")
    qh, kvh = node.attr("q_num_heads"), node.attr("kv_num_heads")
    args = [_arg(ctx, i) for i in range(6)]
    outs = ctx.op("linear_attention", args, q_heads=int(qh), kv_heads=int(kvh),
                  scale=float(node.attr("scale", 0.0) or 0.0), rule=rule)
    state = ctx.input(3)
    return [ctx.tensor(outs[0], dtype=dtype_of(q)),
            ctx.tensor(outs[1], dtype=dtype_of(state) if state is not None else dtype_of(q))][:len(node.outputs)]


@converter("CausalConvWithState", since=27, check=_check_causal_conv)
def causal_conv_with_state(ctx, node):
    x = ctx.input(0)
    act = node.attr("activation")
    outs = ctx.op("causal_conv_with_state", [_arg(ctx, i) for i in range(4)], silu=act != "none")
    return [ctx.tensor(o, dtype=dtype_of(x)) for o in outs][:len(node.outputs)]
