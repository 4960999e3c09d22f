"""The Einsum equation grammar, checked before onnx shape inference runs.

onnx's Einsum shape inference (and onnxruntime's, which shares it) does not terminate on some
equations outside the spec's grammar (a lone '..', a non-ASCII byte such as b'\\xff'), so a
hostile equation must be refused before `onnx.shape_inference.infer_shapes` sees it. The spec:
comma-separated input terms, optionally '->' and an output term; each term holds letters
(a-z, A-Z) and at most one ellipsis '...'; spaces are ignored.
"""
from __future__ import annotations

import re
from typing import Optional

import onnx

from .errors import InvalidModelError

_TERM = re.compile(r"[A-Za-z]*(\.\.\.)?[A-Za-z]*")


def equation_reason(raw) -> Optional[str]:
    """Why an Einsum equation (bytes or str) is outside the spec's grammar, or None."""
    try:
        eq = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    except UnicodeDecodeError:
        return f"equation {raw!r} is not UTF-8 text"
    eq = eq.replace(" ", "")
    if eq.count("->") > 1:
        return f"equation {eq!r} has more than one '->'"
    lhs, _, rhs = eq.partition("->")
    for term in lhs.split(",") + ([rhs] if "->" in eq else []):
        if not _TERM.fullmatch(term):
            return (f"equation {eq!r}: term {term!r} must hold only letters a-z/A-Z and at most one "
                    "ellipsis '...'")
    return None


def check_equations(graph: onnx.GraphProto) -> None:
    """Refuse the first Einsum node (in `graph` or any subgraph) whose equation breaks the grammar."""
    for node in graph.node:
        if node.op_type == "Einsum" and node.domain in ("", "ai.onnx"):
            raw = next((a.s for a in node.attribute if a.name == "equation"), b"")
            why = equation_reason(raw)
            if why:
                name = node.name or (node.output[0] if node.output else "?")
                raise InvalidModelError(f"Einsum node '{name}': {why} (the spec's grammar: "
                                        "'term,term->term')")
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                check_equations(sub)
