"""Conversion-time evaluation of nodes whose inputs are all constants. normalize folds the
graph's constant subgraphs with it (loader.fold_constants); emit folds shape values that hold
dynamic dims (`values.Dim`), which only exist once the tensors they measure are built."""
from __future__ import annotations

import numpy as np
import onnx

from .errors import ConversionError, NodeConversionError
from .graph import Node
from .values import has_dims


FOLD_BUDGET = 1 << 27  # elements: constant folding refuses to materialize more (512 MB of float32)


def _check_fold_budget(node: Node, arrays: list) -> None:
    """Refuse, before allocating, the folds whose output size comes from a value (ConstantOfShape,
    Range, Expand, Tile) when it exceeds FOLD_BUDGET elements or is not a valid size."""
    size = _fold_output_size(node, arrays)
    if size is not None and size > FOLD_BUDGET:
        raise NodeConversionError(node, f"folding this constant node would materialize {size:.3g} elements, "
                                        f"over konnx's budget of {FOLD_BUDGET} (the model computes a huge tensor)")


def _fold_output_size(node: Node, arrays: list):
    a = [None if x is None or has_dims(x) or x.dtype == object else np.asarray(x) for x in arrays]
    try:
        if node.op_type == "ConstantOfShape" and a and a[0] is not None:
            return float(np.prod(a[0].astype(np.float64)))
        if node.op_type == "Range" and len(a) == 3 and all(x is not None for x in a):
            start, limit, delta = (float(x.reshape(-1)[0]) for x in a)
            if delta == 0:
                raise NodeConversionError(node, "Range with delta 0 never reaches its limit (expected a non-zero delta)")
            return max(0.0, np.ceil((limit - start) / delta))
        if node.op_type == "Expand" and len(a) >= 2 and a[0] is not None and a[1] is not None:
            dims, shape = a[1].astype(np.float64).reshape(-1), a[0].shape
            n = max(len(dims), len(shape))
            dims = np.concatenate([np.ones(n - len(dims)), dims])
            mine = np.array((1,) * (n - len(shape)) + tuple(shape), dtype=np.float64)
            return float(np.prod(np.maximum(dims, mine)))
        if node.op_type == "Tile" and len(a) >= 2 and a[0] is not None and a[1] is not None:
            return float(a[0].size) * float(np.prod(np.abs(a[1].astype(np.float64).reshape(-1))))
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    return None


def fold_node(node: Node, spec, arrays: list):
    """Evaluate a node whose inputs are all constants (numpy arrays, None for absent inputs):
    the converter's `fold` when it has one (it also handles Dim entries), else onnx's reference
    implementation. Returns the output arrays, or None when the node must be converted instead."""
    _check_fold_budget(node, arrays)
    if spec is not None and spec.fold is not None:
        try:
            return spec.fold(node, *arrays)
        except ConversionError:
            raise
        except (ArithmeticError, LookupError, ValueError, TypeError, MemoryError) as e:
            raise NodeConversionError(node, f"cannot evaluate this constant node ({type(e).__name__}: "
                                            f"{str(e)[:300]}): check its attributes and constant inputs") from e
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
