"""Graph checks that must run before onnx's shape inference, which exhausts memory on them
(loader.check calls them; einsum_grammar.check_equations guards Einsum equations the same way).
This module imports neither Keras nor any converter module."""
from __future__ import annotations

from onnx import AttributeProto, GraphProto

from .errors import InvalidModelError


def check_split_counts(graph: GraphProto) -> None:
    """A Split whose num_outputs differs from its outputs (onnx's and onnxruntime's shape inference
    refuse it, after allocating num_outputs sizes: a huge value exhausts memory), in any subgraph."""
    for node in graph.node:
        for a in node.attribute:
            if node.op_type == "Split" and a.name == "num_outputs" and a.type == AttributeProto.INT \
                    and a.i != len(node.output):
                raise InvalidModelError(f"Split node '{node.name}': attribute num_outputs={a.i}, but the node has "
                                        f"{len(node.output)} outputs: they must be equal")
            for g in ([a.g] if a.type == AttributeProto.GRAPH else list(a.graphs)):
                check_split_counts(g)
