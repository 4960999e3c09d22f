"""RNN, GRU and LSTM: one whitelisted function, unrolled over a static sequence length and a
keras.ops.scan loop over a dynamic one."""
from __future__ import annotations

import numpy as np

from ..values import Const, Tensor
from .elementwise import dtype_of
from .registry import AXIS, converter
from .rnn_checks import shape_reason

_DEFAULT_ACTS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
_KNOWN = {"Sigmoid", "Tanh", "Relu", "Softsign", "Softplus", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
          "HardSigmoid", "Elu", "Affine"}
_CANON = {a.lower(): a for a in _KNOWN}


def _activations(node, cell: str, n_dirs: int):
    names = node.attr("activations") or _DEFAULT_ACTS[cell] * n_dirs
    names = [_CANON.get(str(n).lower(), str(n)) for n in names]
    if len(names) == len(_DEFAULT_ACTS[cell]) and n_dirs == 2:
        names = names * 2
    alphas = list(node.attr("activation_alpha") or [])
    betas = list(node.attr("activation_beta") or [])
    return [[n, float(alphas[i]) if i < len(alphas) else None, float(betas[i]) if i < len(betas) else None]
            for i, n in enumerate(names)]


def _check(cell):
    def check(node, facts):
        rank = facts.rank(0)
        if rank is not None and rank != 3:
            return f"the input must be 3-D (sequence, batch, features), got rank {rank}"
        direction = node.attr("direction") or "forward"
        if direction not in ("forward", "reverse", "bidirectional"):
            return f"unknown direction {direction!r}"
        bad = [a[0] for a in _activations(node, cell, 2 if direction == "bidirectional" else 1) if a[0] not in _KNOWN]
        return f"unsupported activations {bad}" if bad else shape_reason(node, facts, cell)
    return check


def _batch_major(node, x_perm) -> bool:
    """A batch-first model's (B, T, I) tensor, seen by ONNX as (T, B, I): run it as stored."""
    return int(node.attr("layout") or 0) == 0 and x_perm is not None and tuple(x_perm) == (1, 0, 2)


def _rnn_perm(node, perms, facts):
    """Y: (T, dirs, B, H), batch-major when the input is; Y_h, Y_c: the ONNX layout."""
    y = (2, 0, 1, 3) if _batch_major(node, perms[0]) else (0, 1, 2, 3)
    return [y, (0, 1, 2), (0, 1, 2)][:len(node.outputs)]


def _recurrent(cell: str):
    def convert(ctx, node):
        x = ctx.input(0)
        layout = int(node.attr("layout") or 0)
        direction = node.attr("direction") or "forward"
        n_dirs = 2 if direction == "bidirectional" else 1
        hidden = node.attr("hidden_size")
        if hidden is None:
            hidden = ctx.input(2).shape[-1]
        dt = dtype_of(x)
        batch_major = _batch_major(node, x.perm if isinstance(x, Tensor) else None)
        args = []
        for i in range(8 if cell == "LSTM" else 6):
            v = ctx.input(i)
            if v is None:
                args.append(None)
            elif i == 0 and batch_major:
                args.append(ctx.keras(x))
            elif isinstance(v, Const):
                a = np.asarray(v.value)
                args.append(a if i == 4 else a.astype(dt))
            else:
                args.append(ctx.onnx_layout(v))
        if cell != "LSTM":
            args += [None, None]
        clip = node.attr("clip")
        outs = ctx.op("rnn", args, cell=cell, hidden=int(hidden), direction=direction,
                      acts=_activations(node, cell, n_dirs), clip=None if clip is None else float(clip),
                      lbr=int(node.attr("linear_before_reset") or 0),
                      input_forget=int(node.attr("input_forget") or 0), layout=layout,
                      batch_major=batch_major)
        perms = _rnn_perm(node, [x.perm if isinstance(x, Tensor) else None], None)
        return [ctx.tensor(o, p, dtype=dt) for o, p in zip(outs, perms)]
    return convert


converter("RNN", since=7, check=_check("RNN"), layout=AXIS, perm=_rnn_perm, limits="")(_recurrent("RNN"))
converter("GRU", since=7, check=_check("GRU"), layout=AXIS, perm=_rnn_perm, limits="")(_recurrent("GRU"))
converter("LSTM", since=7, check=_check("LSTM"), layout=AXIS, perm=_rnn_perm, limits="")(_recurrent("LSTM"))
