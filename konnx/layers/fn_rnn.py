"""RNN, GRU and LSTM (ONNX semantics: gate order, biases, clip, directions, sequence_lens,
linear_before_reset, peepholes, input_forget) with keras.ops only: unrolled over a static
sequence length, a keras.ops.scan loop over a dynamic one."""
from __future__ import annotations

from keras import ops

from .functions import function

_DEFAULT_ALPHA = {"LeakyRelu": 0.01, "ThresholdedRelu": 1.0, "HardSigmoid": 0.2, "Elu": 1.0,
                  "ScaledTanh": 1.0, "Affine": 1.0}
_DEFAULT_BETA = {"HardSigmoid": 0.5, "ScaledTanh": 1.0, "Affine": 0.0}


def activation(name, alpha=None, beta=None):
    a = _DEFAULT_ALPHA.get(name) if alpha is None else alpha
    b = _DEFAULT_BETA.get(name) if beta is None else beta
    table = {
        "Sigmoid": ops.sigmoid, "Tanh": ops.tanh, "Relu": ops.relu, "Softsign": ops.softsign,
        "Softplus": ops.softplus,
        "LeakyRelu": lambda x: ops.where(ops.less(x, 0), x * a, x),
        "ThresholdedRelu": lambda x: ops.where(ops.greater(x, a), x, ops.zeros_like(x)),
        "ScaledTanh": lambda x: a * ops.tanh(b * x),
        "HardSigmoid": lambda x: ops.clip(a * x + b, 0.0, 1.0),
        "Elu": lambda x: ops.where(ops.greater_equal(x, 0), x, a * (ops.exp(x) - 1.0)),
        "Affine": lambda x: a * x + b,
    }
    if name not in table:
        raise ValueError(f"unsupported recurrent activation {name!r}")
    return table[name]


def _cell_step(cell, xw_t, h, c, r, rb, p, acts, clip, hidden, lbr, input_forget):
    """One time step; xw_t already holds x_t @ W^T + Wb. Returns (h, c)."""
    def pre(v):
        return ops.clip(v, -clip, clip) if clip else v

    if cell == "RNN":
        return acts[0](pre(xw_t + ops.matmul(h, ops.transpose(r)) + rb)), None
    if cell == "GRU":
        hs = hidden
        rz = xw_t[:, :2 * hs] + ops.matmul(h, ops.transpose(r[:2 * hs])) + rb[:2 * hs]
        z = acts[0](pre(rz[:, :hs]))
        rr = acts[0](pre(rz[:, hs:]))
        rh, rbh = r[2 * hs:], rb[2 * hs:]
        if lbr:
            n = acts[1](pre(xw_t[:, 2 * hs:] + rr * (ops.matmul(h, ops.transpose(rh)) + rbh)))
        else:
            n = acts[1](pre(xw_t[:, 2 * hs:] + ops.matmul(rr * h, ops.transpose(rh)) + rbh))
        return (1.0 - z) * n + z * h, None
    hs = hidden
    g = xw_t + ops.matmul(h, ops.transpose(r)) + rb
    gi, go, gf, gc = g[:, :hs], g[:, hs:2 * hs], g[:, 2 * hs:3 * hs], g[:, 3 * hs:]
    if p is not None:
        gi = gi + p[:hs] * c
        gf = gf + p[2 * hs:] * c
    i = acts[0](pre(gi))
    f = 1.0 - i if input_forget else acts[0](pre(gf))
    c_new = f * c + i * acts[1](pre(gc))
    if p is not None:
        go = go + p[hs:2 * hs] * c_new
    o = acts[0](pre(go))
    return o * acts[2](c_new), c_new


def _scan(cell, xw, h, c, r, rb, p, fns, clip, hidden, lbr, input_forget, mask, reverse):
    """One direction over a sequence whose length is known only at run time. Returns (Y, h, c)."""
    lstm = c is not None

    def step(carry, inp):
        h, c = carry
        xw_t, keep = inp, None
        if mask is not None:  # the mask rides along as a last column (one scanned tensor)
            xw_t, keep = inp[:, :-1], ops.greater(inp[:, -1:], 0.5)
        h_new, c_new = _cell_step(cell, xw_t, h, c if lstm else None, r, rb, p, fns, clip, hidden, lbr,
                                  input_forget)
        c_new = c_new if lstm else c
        # the per-step output mirrors the carry's structure: Keras' TensorFlow scan wants that
        if keep is None:
            return (h_new, c_new), (h_new, c_new)
        out = ops.where(keep, h_new, ops.zeros_like(h_new))
        carry = (ops.where(keep, h_new, h), ops.where(keep, c_new, c))
        return carry, (out, carry[1])

    xs = xw if mask is None else ops.concatenate([xw, ops.cast(mask, xw.dtype)], axis=-1)
    (h, c2), ys = ops.scan(step, (h, c if lstm else ops.zeros_like(h)), xs, reverse=reverse)
    return ys[0], h, (c2 if lstm else None)


def _unroll(cell, xw, h, c, r, rb, p, fns, clip, hidden, lbr, input_forget, mask, *, steps, reverse, bm):
    """One direction unrolled over a static number of steps: (Y (T, B, H), or (B, T, H) when
    batch-major, last h, last c)."""
    out = [None] * steps
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for ti in order:
        h_new, c_new = _cell_step(cell, xw[:, ti] if bm else xw[ti], h, c, r, rb, p, fns, clip, hidden, lbr,
                                  input_forget)
        if mask is not None:
            keep = mask[ti]
            out[ti] = ops.where(keep, h_new, ops.zeros_like(h_new))
            h = ops.where(keep, h_new, h)
            if c is not None:
                c = ops.where(keep, c_new, c)
        else:
            out[ti], h, c = h_new, h_new, c_new
    return ops.stack(out, axis=1 if bm else 0), h, c


UNROLL_LIMIT = 256  # static sequences longer than this run as a keras.ops.scan loop, not unrolled


@function("rnn")
def rnn(x, w, r, b=None, lens=None, h0=None, c0=None, p=None, *, cell, hidden, direction, acts, clip=None,
        lbr=0, input_forget=0, layout=0, batch_major=False):
    """x: (T, B, I) (layout 0) or (B, T, I). Returns [Y, Y_h] (+ Y_c for LSTM) in ONNX layout.

    batch_major=True (layout 0 only): x arrives stored as (B, T, I) and Y leaves as (B, T, D, H)
    (ONNX's (T, D, B, H) in perm (2, 0, 1, 3)): a batch-first model then needs no transposes
    around its recurrent layers. Steps read x[:, t] and stack along axis 1 (unrolled), or the
    scan runs time-major inside."""
    bm = bool(layout) or batch_major
    steps = x.shape[1] if bm else x.shape[0]
    if steps is not None and not isinstance(steps, int):
        steps = None  # a JAX symbolic dim: scan, as for an unknown length
    n_gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[cell] * hidden
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    per_dir = len(acts) // len(dirs)
    if h0 is not None and layout:
        h0 = ops.transpose(h0, (1, 0, 2))
    if c0 is not None and layout:
        c0 = ops.transpose(c0, (1, 0, 2))
    mask = None
    if lens is not None:
        n = steps if steps is not None else ops.shape(x)[1 if bm else 0]
        t = ops.reshape(ops.arange(n, dtype="int64"), (-1, 1, 1))
        mask = ops.less(t, ops.reshape(ops.cast(lens, "int64"), (1, -1, 1)))  # (T, B, 1)
    ys, hs, cs = [], [], []
    for d, name in enumerate(dirs):
        fns = [activation(*a) for a in acts[d * per_dir:(d + 1) * per_dir]]
        wb = b[d, :n_gates] if b is not None else 0.0
        rb = b[d, n_gates:] if b is not None else ops.zeros((n_gates,), dtype=x.dtype)
        xw = ops.matmul(x, ops.transpose(w[d])) + wb  # (T, B, G*H), or (B, T, G*H) when bm
        h = h0[d] if h0 is not None else ops.zeros_like(xw[:, 0, :hidden] if bm else xw[0, :, :hidden])
        c = None
        if cell == "LSTM":
            c = c0[d] if c0 is not None else ops.zeros_like(h)
        pd = p[d] if p is not None else None
        if steps is None or steps > UNROLL_LIMIT:  # long static sequences loop too (no 100k-step graph)
            y, h, c = _scan(cell, ops.transpose(xw, (1, 0, 2)) if bm else xw, h, c, r[d], rb, pd, fns, clip,
                            hidden, lbr, input_forget, mask, reverse=name == "reverse")
            ys.append(ops.transpose(y, (1, 0, 2)) if bm else y)
            hs.append(h)
            cs.append(c)
            continue
        y, h, c = _unroll(cell, xw, h, c, r[d], rb, pd, fns, clip, hidden, lbr, input_forget, mask,
                          steps=steps, reverse=name == "reverse", bm=bm)
        ys.append(y)
        hs.append(h)
        cs.append(c)
    y = ops.stack(ys, axis=2 if bm else 1)   # (T, D, B, H) or (B, T, D, H)
    y_h = ops.stack(hs, axis=0)        # (D, B, H)
    y_c = ops.stack(cs, axis=0) if cell == "LSTM" else None
    if layout:
        y_h = ops.transpose(y_h, (1, 0, 2))
        y_c = ops.transpose(y_c, (1, 0, 2)) if y_c is not None else None
    return [y, y_h] + ([y_c] if y_c is not None else [])
