"""Input checks of RNN, GRU and LSTM, before anything is built.

The shapes are the spec's (onnx.defs schema docs; onnxruntime enforces the same, in
rnn_helpers.cc "Input W must have shape ..."), with G gates per cell (RNN 1, GRU 3, LSTM 4),
D directions (2 when bidirectional) and H = hidden_size:
X (seq, batch, input) or with layout=1 (batch, seq, input); W (D, G*H, input); R (D, G*H, H);
B (D, 2*G*H); sequence_lens (batch,); initial_h / initial_c (D, batch, H) or with layout=1
(batch, D, H); P (D, 3*H). Unknown sizes never refuse.
"""
from __future__ import annotations

from typing import Optional

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def shape_reason(node, facts, cell: str) -> Optional[str]:
    layout = node.attr("layout")
    if layout is not None and int(layout) not in (0, 1):
        return f"attribute layout={layout}: the spec allows 0 (sequence first) or 1 (batch first)"
    hidden = node.attr("hidden_size")
    if hidden is not None and int(hidden) < 1:
        return f"attribute hidden_size={hidden}: must be a positive number of hidden units"
    g = GATES[cell]
    d = 2 if (node.attr("direction") or "forward") == "bidirectional" else 1
    h = int(hidden) if hidden is not None else facts.dim(2, 2)
    layout = int(layout or 0)
    batch = facts.dim(0, 0 if layout else 1) if facts.rank(0) == 3 else None
    size = facts.dim(0, 2) if facts.rank(0) == 3 else None
    gh = None if h is None else g * h
    state = (batch, d, h) if layout else (d, batch, h)
    expected = {1: ("W", (d, gh, size)), 2: ("R", (d, gh, h)), 3: ("B", (d, None if gh is None else 2 * gh)),
                4: ("sequence_lens", (batch,)), 5: ("initial_h", state)}
    if cell == "LSTM":
        expected.update({6: ("initial_c", state), 7: ("P", (d, None if h is None else 3 * h))})
    for i, (name, want) in expected.items():
        why = _mismatch(facts, i, name, want)
        if why:
            return why + f" ({cell} with {d} direction(s), {g} gate(s), hidden_size {h}, input size {size})"
    if hidden is None and facts.dim(1, 1) is not None and facts.dim(1, 1) % g:
        return f"W's axis 1 has {facts.dim(1, 1)} rows, not a multiple of the {g} gates of {cell}"
    return None


def _mismatch(facts, i: int, name: str, want: tuple) -> Optional[str]:
    s = facts.shape(i)
    if s is None:
        return None
    if len(s) != len(want):
        return f"{name} has rank {len(s)}, expected shape {_show(want)}"
    for axis, size in enumerate(want):
        got = facts.dim(i, axis)
        if got is not None and size is not None and got != size:
            return f"{name} has shape {list(s)}, expected {_show(want)}"
    return None


def _show(want: tuple) -> str:
    return "(" + ", ".join("?" if w is None else str(w) for w in want) + ")"
