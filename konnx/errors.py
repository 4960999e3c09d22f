"""Errors raised by konnx. Everything a user can trigger derives from ConversionError."""
from __future__ import annotations

from dataclasses import dataclass


class ConversionError(Exception):
    """Base class of every error konnx raises on purpose."""


class InvalidModelError(ConversionError):
    """The input is not a valid ONNX model (missing, not ONNX, truncated, invalid graph)."""


@dataclass(frozen=True)
class UnsupportedNode:
    op_type: str
    name: str
    opset: int
    reason: str
    domain: str = ""

    def __str__(self) -> str:
        dom = f"{self.domain}." if self.domain else ""
        return f"{dom}{self.op_type} (node '{self.name}', opset {self.opset}): {self.reason}"


class NodeConversionError(ConversionError):
    """A converter failed on a specific node (names the node and what was expected)."""

    def __init__(self, node, message: str):
        self.node_name = getattr(node, "name", "?")
        self.op_type = getattr(node, "op_type", "?")
        super().__init__(f"{self.op_type} node '{self.node_name}': {message}")


class UnsupportedOpError(NodeConversionError):
    """One or more nodes cannot be converted. `nodes` lists every one of them (found before
    anything is built); `node_name`/`op_type` name the first."""

    def __init__(self, nodes: list[UnsupportedNode]):
        self.nodes = list(nodes)
        first = self.nodes[0] if self.nodes else None
        self.node_name = first.name if first else "?"
        self.op_type = first.op_type if first else "?"
        lines = "\n".join(f"  - {n}" for n in self.nodes)
        ConversionError.__init__(self, f"{len(self.nodes)} node(s) cannot be converted:\n{lines}")


class InputsTooLargeError(ConversionError):
    """Seeded inputs for verify would be too large to allocate (an input declared with huge dims):
    no array is made; `konnx convert` skips its default check with this message."""


class VerificationError(ConversionError):
    """The converted model disagrees with onnxruntime (``convert(..., verify=True)``).
    `outputs` names the differing outputs; `result` is the full konnx.verify.VerifyResult."""

    def __init__(self, result):
        self.result = result
        bad = [o for o in result.outputs if not o.ok]
        self.outputs = [o.name for o in bad]
        lines = "\n".join(f"  - {o.name}: max abs error {o.max_abs:.3g} > tolerance {o.tolerance:.3g}"
                          f"{' (' + o.note + ')' if o.note else ''}" for o in bad)
        super().__init__(f"the converted model differs from onnxruntime on {len(bad)} output(s) "
                         f"(inputs {result.input_shapes}):\n{lines}\n"
                         "konnx.verify(model, bisect=True) names the first diverging node")
