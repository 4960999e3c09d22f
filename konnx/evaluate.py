"""Conversion-time evaluation of nodes whose inputs are all constants. normalize folds the
graph's constant subgraphs with it (loader.fold_constants); emit folds shape values that hold
dynamic dims (`values.Dim`), which only exist once the tensors they measure are built."""
from __future__ import annotations

import numpy as np
import onnx

from .errors import NodeConversionError
from .graph import Node
from .values import has_dims


def fold_node(node: Node, spec, arrays: list):
    """Evaluate a node whose inputs are all constants (numpy arrays, None for absent inputs):
    the converter's `fold` when it has one (it also handles Dim entries), else onnx's reference
    implementation. Returns the output arrays, or None when the node must be converted instead."""
    if spec is not None and spec.fold is not None:
        return spec.fold(node, *arrays)
    if any(a is not None and has_dims(a) for a in arrays):
        return None
    if any(a is not None and a.dtype == object for a in arrays):
        arrays = [a if a is None or a.dtype != object else a.astype(np.int64) for a in arrays]
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if a is not None else "" for i, a in enumerate(arrays)]
    proto = onnx.NodeProto()
    proto.CopyFrom(node.proto)
    del proto.input[:]
    proto.input.extend(names)
    graph = onnx.helper.make_graph(
        [proto], "fold",
        [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
         for n, a in zip(names, arrays) if a is not None],
        [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.outputs if o])
    m = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", node.opset)])
    try:
        res = ReferenceEvaluator(m).run(None, {n: a for n, a in zip(names, arrays) if a is not None})
    except Exception as e:  # noqa: BLE001 - the reference implementation cannot fold it
        if spec is None:
            raise NodeConversionError(node, f"cannot evaluate this constant node: {e}") from e
        return None
    return [np.asarray(r) for r in res]
