"""Attention (opset 23-25) and RotaryEmbedding, written with keras.ops only, following the ONNX
reference implementation step by step (scaling, cache, causal/window/padding masks, softcap,
grouped-query heads, fully-masked rows)."""
from __future__ import annotations

import math

from keras import ops
from keras.backend import standardize_dtype

from .functions import function


def _c(value, dtype):
    return ops.cast(ops.convert_to_tensor(value), dtype)


def _dim(x, axis):
    d = x.shape[axis]
    return d if d is not None else ops.shape(x)[axis]


def _len(x, axis):
    """A static size as an int, a dynamic one as an int64 scalar tensor."""
    d = x.shape[axis]
    return d if d is not None else ops.cast(ops.shape(x)[axis], "int64")


def _split_heads(x, heads):
    b, s = _dim(x, 0), _dim(x, 1)
    x = ops.reshape(x, (b, s, heads, x.shape[2] // heads))
    return ops.transpose(x, (0, 2, 1, 3))


def _additive(mask, dtype):
    """A boolean mask as an additive bias: True -> 0, False -> -inf; any other mask type (the
    spec's U allows every numeric type) is added in the scores' dtype."""
    if standardize_dtype(mask.dtype) == "bool":
        return ops.where(mask, _c(0.0, dtype), _c(float("-inf"), dtype))
    return ops.cast(mask, dtype)


def _offset_bias(base, offset, lq, lk, allowed_fn, dtype):
    """base + (0 where allowed_fn(i + offset, j) else -inf); offset is an int or a (batch,) tensor."""
    i = ops.reshape(ops.arange(lq, dtype="int64"), (-1, 1))
    j = ops.reshape(ops.arange(lk, dtype="int64"), (1, -1))
    if isinstance(offset, int):
        allowed = allowed_fn(i + offset, j)
        return base + ops.where(allowed, _c(0.0, dtype), _c(float("-inf"), dtype))
    pos = i[None] + ops.reshape(ops.cast(offset, "int64"), (-1, 1, 1))
    allowed = allowed_fn(pos, j[None])
    bias = ops.where(allowed, _c(0.0, dtype), _c(float("-inf"), dtype))
    return base + ops.expand_dims(bias, 1)


def _softmax_guarded(x):
    """Softmax on the last axis where an all -inf row gives zeros instead of NaN."""
    m = ops.max(x, axis=-1, keepdims=True)
    row_masked = ops.logical_and(ops.isinf(m), ops.less(m, 0))
    safe = ops.where(row_masked, ops.zeros_like(m), m)
    e = ops.exp(x - safe)
    s = ops.sum(e, axis=-1, keepdims=True)
    s = ops.where(ops.equal(s, 0), ops.ones_like(s), s)
    return e / s


def _attention_bias(mask, nonpad, past_k, lq, lk, *, causal, left, right, seq, dt):
    """The additive (lq, lk) or broadcastable bias of ONNX Attention: the attention mask (padded
    to the key length), causal and sliding-window masks offset by the past length (or by the
    non-padded length), and key padding beyond `nonpad`."""
    windowed = left >= 0 or right >= 0
    bias = ops.zeros((lq, lk), dtype=dt)
    if mask is not None:
        pad = lk - mask.shape[-1] if isinstance(lk, int) and mask.shape[-1] is not None else 0
        if pad > 0:
            fill = False if standardize_dtype(mask.dtype) == "bool" else float("-inf")
            mask = ops.pad(mask, [(0, 0)] * (len(mask.shape) - 1) + [(0, pad)], constant_values=fill)
    if nonpad is not None and past_k is None:
        offset = ops.cast(ops.reshape(nonpad, (-1,)), "int64") - lq
    else:
        offset = _len(past_k, seq) if past_k is not None else 0
    if causal:
        base = ops.zeros((lq, lk), dtype=dt) if mask is None else _additive(mask, dt)
        if windowed:
            base = ops.zeros((lq, lk), dtype=dt) + base
        bias = _offset_bias(base, offset, lq, lk, lambda p, j: ops.less_equal(j, p), dt)
    elif mask is not None:
        bias = bias + _additive(mask, dt)
    if windowed:
        def window(p, j):
            ok = ops.ones_like(p - j, dtype="bool")
            if left >= 0:
                ok = ops.logical_and(ok, ops.less_equal(p - j, left))
            if right >= 0:
                ok = ops.logical_and(ok, ops.less_equal(j - p, right))
            return ok
        bias = _offset_bias(ops.zeros((lq, lk), dtype=dt) + bias, offset, lq, lk, window, dt)
    if nonpad is not None:
        keep = ops.less(ops.reshape(ops.arange(lk, dtype="int64"), (1, lk)),
                        ops.reshape(ops.cast(nonpad, "int64"), (-1, 1)))
        pad_bias = ops.where(keep, _c(0.0, dt), _c(float("-inf"), dt))
        bias = bias + ops.expand_dims(ops.expand_dims(pad_bias, 1), 1)
    return bias


@function("attention")
def attention(q, k, v, mask=None, past_k=None, past_v=None, nonpad=None, *, scale=None, causal=False,
              q_heads=None, kv_heads=None, softcap=0.0, mode=0, softmax_dtype=None, left=-1, right=-1,
              bshd=False):
    """ONNX Attention. With bshd=True, 4-D q/k/v (and Y, present_k/v) are stored as
    (batch, sequence, heads, head_size) instead of ONNX's (batch, heads, sequence, head_size):
    the contractions are einsums over that layout, so no transposes are needed around it."""
    seq, head = (1, 2) if bshd else (2, 1)
    out_dt = standardize_dtype(q.dtype)
    if out_dt == "float16":  # float32 inside, as accurate as the reference
        q, k, v = (ops.cast(t, "float32") for t in (q, k, v))
        past_k, past_v = (None if t is None else ops.cast(t, "float32") for t in (past_k, past_v))
        if mask is not None and standardize_dtype(mask.dtype) != "bool":
            mask = ops.cast(mask, "float32")
    dt = standardize_dtype(q.dtype)
    rank3 = len(q.shape) == 3
    if rank3:
        q, k, v = _split_heads(q, q_heads), _split_heads(k, kv_heads), _split_heads(v, kv_heads)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[3])
    s = _c(math.sqrt(scale), dt)
    if past_k is not None:
        k = ops.concatenate([past_k, k], axis=seq)
        v = ops.concatenate([past_v, v], axis=seq)
    present_k, present_v = k, v
    lq, lk = _len(q, seq), _len(k, seq)  # int64 tensors when the sequence length is dynamic
    bias = _attention_bias(mask, nonpad, past_k, lq, lk, causal=causal, left=left, right=right,
                           seq=seq, dt=dt)
    nq, nk = q.shape[head], k.shape[head]
    if nq != nk and nq % nk == 0:
        k = ops.repeat(k, nq // nk, axis=head)
        v = ops.repeat(v, nq // nk, axis=head)
    if bshd:
        qk = ops.einsum("bqhd,bkhd->bhqk", q * s, k * s)
    else:
        qk = ops.matmul(q * s, ops.transpose(k * s, (0, 1, 3, 2)))
    if softcap and softcap > 0:
        qk = ops.tanh(qk / _c(softcap, dt)) * _c(softcap, dt)
    qk_bias = qk + bias
    qk_out = qk_bias if mode == 2 else qk
    if softmax_dtype:
        qk_bias = ops.cast(qk_bias, softmax_dtype)
    p = _softmax_guarded(qk_bias)
    bmax = ops.max(bias, axis=-1, keepdims=True)
    row_masked = ops.logical_and(ops.isinf(bmax), ops.less(bmax, 0))
    p = ops.where(row_masked, ops.zeros_like(p), p)
    if mode == 3:
        qk_out = p
    qk_out = ops.cast(qk_out, dt)
    y = ops.einsum("bhqk,bkhd->bqhd", ops.cast(p, dt), v) if bshd else ops.matmul(ops.cast(p, dt), v)
    if rank3:
        y = ops.transpose(y, (0, 2, 1, 3))
        y = ops.reshape(y, (_dim(y, 0), _dim(y, 1), y.shape[2] * y.shape[3]))
    return [ops.cast(t, out_dt) for t in (y, present_k, present_v, qk_out)]


@function("rotary_embedding")
def rotary_embedding(x, cos, sin, pos=None, *, interleaved=0, rotary_dim=0, num_heads=0):
    """RotaryEmbedding (opset 23). x is (B, H, S, D) or (B, S, H*D); cos/sin caches are
    (max_pos, D_rot/2) indexed by `pos`, or already (B, S, D_rot/2) when pos is None."""
    rank3 = len(x.shape) == 3
    if rank3:
        b, sq = _dim(x, 0), _dim(x, 1)
        x = ops.transpose(ops.reshape(x, (b, sq, num_heads, x.shape[2] // num_heads)), (0, 2, 1, 3))
    if pos is not None:
        cos = ops.take(cos, ops.cast(pos, "int64"), axis=0)
        sin = ops.take(sin, ops.cast(pos, "int64"), axis=0)
    cos, sin = ops.expand_dims(cos, 1), ops.expand_dims(sin, 1)  # (B, 1, S, D_rot/2)
    d = x.shape[-1]
    rd = rotary_dim or d
    xr, rest = x[..., :rd], x[..., rd:]
    half = rd // 2
    if interleaved:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
    else:
        x1, x2 = xr[..., :half], xr[..., half:]
    r1 = x1 * cos - x2 * sin
    r2 = x2 * cos + x1 * sin
    if interleaved:
        out = ops.reshape(ops.stack([r1, r2], axis=-1), ops.shape(xr))
    else:
        out = ops.concatenate([r1, r2], axis=-1)
    if rd < d:
        out = ops.concatenate([out, rest], axis=-1)
    if rank3:
        out = ops.transpose(out, (0, 2, 1, 3))
        out = ops.reshape(out, (_dim(out, 0), _dim(out, 1), out.shape[2] * out.shape[3]))
    return out


def _heads4(x, heads):
    """(B, T, H*D) -> (B, H, T, D) in float32."""
    return ops.cast(_split_heads(x, heads), "float32")


@function("linear_attention")
def linear_attention(q, k, v, state=None, decay=None, beta=None, *, q_heads, kv_heads, scale=0.0,
                     rule="gated_delta"):
    """LinearAttention (opset 27), unrolled over the static sequence length in float32."""
    out_dt = standardize_dtype(q.dtype)
    state_dt = out_dt if state is None else standardize_dtype(state.dtype)
    steps = q.shape[1]
    dk = q.shape[2] // q_heads
    dv = v.shape[2] // kv_heads
    group = q_heads // kv_heads
    q4, k4, v4 = _heads4(q, q_heads), _heads4(k, kv_heads), _heads4(v, kv_heads)
    b = _dim(q, 0)
    gating, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if decay is not None:
        if decay.shape[-1] == kv_heads:
            decay = ops.transpose(ops.reshape(decay, (b, steps, kv_heads, 1)), (0, 2, 1, 3))
        else:
            decay = _split_heads(decay, kv_heads)
        decay = ops.cast(decay, "float32")
    if beta is not None:
        beta = ops.cast(ops.transpose(ops.reshape(beta, (b, steps, beta.shape[-1], 1)), (0, 2, 1, 3)), "float32")
    s = ops.zeros((b, kv_heads, dk, dv), dtype="float32") if state is None else ops.cast(state, "float32")
    scale = scale if scale else 1.0 / math.sqrt(dk)
    outs = []
    for i in range(steps):
        q_t, k_t, v_t = q4[:, :, i, :], k4[:, :, i, :], v4[:, :, i, :]
        if gating:
            s = s * ops.expand_dims(ops.exp(decay[:, :, i, :]), -1)
        if delta:
            retrieved = ops.einsum("bhdm,bhd->bhm", s, k_t)
            v_t = beta[:, :, i, :] * (v_t - retrieved)
        s = s + ops.expand_dims(k_t, -1) * ops.expand_dims(v_t, -2)
        read = ops.repeat(s, group, axis=1) if group > 1 else s
        outs.append(scale * ops.einsum("bhd,bhdm->bhm", q_t, read))
    y = ops.transpose(ops.stack(outs, axis=2), (0, 2, 1, 3))
    y = ops.reshape(y, (b, steps, q_heads * dv))
    return [ops.cast(y, out_dt), ops.cast(s, state_dt)]


@function("causal_conv_with_state")
def causal_conv_with_state(x, w, bias=None, state=None, *, silu=False):
    """CausalConvWithState (opset 27): depthwise causal conv1d of x (B, C, L) with weight
    (C, 1, k), left context `state` (B, C, k - 1); returns [output, new state]."""
    dt = standardize_dtype(x.dtype)
    k = w.shape[2]
    length = x.shape[2]
    if state is None:
        state = ops.zeros_like(x[:, :, :1]) if k > 1 else None
        state = ops.repeat(state, k - 1, axis=2) if k > 1 else None
    padded = ops.concatenate([state, x], axis=2) if k > 1 else x
    y = None
    acc = "float64" if dt == "float64" else "float32"
    for j in range(k):
        term = ops.cast(padded[:, :, j:j + length], acc) * ops.cast(ops.reshape(w[:, 0, j], (1, -1, 1)), acc)
        y = term if y is None else y + term
    if bias is not None:
        y = y + ops.cast(ops.reshape(bias, (1, -1, 1)), acc)
    y = ops.cast(y, dt)
    if silu:
        y32 = ops.cast(y, "float32")
        y = ops.cast(y32 * ops.sigmoid(y32), dt)
    present = padded[:, :, padded.shape[2] - (k - 1):] if k > 1 else ops.zeros_like(x[:, :, :0])
    return [y, present]
