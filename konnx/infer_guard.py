"""Attribute values onnx's C++ shape inference cannot survive, refused before it runs (issue 14).

konnx runs `onnx.shape_inference.infer_shapes` on every model before planning. On a few
hostile attribute values that inference does not fail with an exception: it kills the process
(a failed bounds assertion aborts, an axis beyond int32 is narrowed and indexes out of
bounds). Nothing after it can then report anything, so these values are refused here, from the
attributes alone (no shapes are known yet), for every node of the graph and its subgraphs:

- an axis-naming attribute (`axis`, `axes`, `perm`, ...) holding an entry of magnitude 2**31
  or more: no tensor has that many axes (LayerNormalization's inference segfaults on
  axis=2**31, GatherND's on batch_dims=-2**31);
- Split's `num_outputs` differing from the node's number of outputs (its inference indexes the
  split sizes by output and aborts; onnxruntime aborts on it too).

Values inside these bounds but still wrong for the input's rank are refused later, with the
shapes known, by ops/attr_rules.py.
"""
from __future__ import annotations

from typing import Optional

import onnx

from .errors import InvalidModelError

INT32_MAX = 2**31 - 1
AXIS_ATTRIBUTES = ("axis", "axes", "perm", "batch_axis", "time_axis", "batch_dims")


def _node_name(node: onnx.NodeProto) -> str:
    return node.name or (node.output[0] if node.output else "?")


def node_reason(node: onnx.NodeProto) -> Optional[str]:
    """Why onnx's shape inference cannot be run on this node, or None."""
    if node.domain not in ("", "ai.onnx"):
        return None
    for a in node.attribute:
        if a.name not in AXIS_ATTRIBUTES:
            continue
        vals = [a.i] if a.type == onnx.AttributeProto.INT else list(a.ints)
        bad = [v for v in vals if abs(v) > INT32_MAX]
        if bad:
            return (f"attribute {a.name}={vals[0] if a.type == onnx.AttributeProto.INT else vals}: "
                    f"{bad[0]} is not an axis of any tensor (expected an entry in [-rank, rank - 1])")
    if node.op_type == "Split":
        n = next((a.i for a in node.attribute if a.name == "num_outputs"), None)
        if n is not None and n != len(node.output):
            return (f"attribute num_outputs={n} but the node has {len(node.output)} outputs "
                    "(the spec splits into exactly num_outputs parts, one per output)")
    return None


def check_before_inference(graph: onnx.GraphProto) -> None:
    """Refuse the first node (in `graph` or any subgraph) onnx's shape inference would crash on."""
    for node in graph.node:
        why = node_reason(node)
        if why:
            raise InvalidModelError(f"{node.op_type} node '{_node_name(node)}': {why}")
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                check_before_inference(sub)
