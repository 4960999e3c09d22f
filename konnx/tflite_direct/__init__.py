"""A direct ONNX -> TFLite writer: the normalized, planned ONNX graph written as a .tflite
flatbuffer with LiteRT's schema, with neither TensorFlow nor Keras.

It is an optimisation with a guaranteed fallback: `write` covers the float32, static-shape CNN
ops (Conv, pooling, BatchNormalization, element-wise, Gemm, ...) and a ViT's (LayerNormalization,
Gelu, MatMul, Split, Gather, Slice: sequence.py) in exactly the layouts and paddings the plan
decided, and raises DirectUnsupported naming the first node it does not cover; `konnx convert
--tflite` then takes the Keras -> TensorFlow converter path. The file carries the same tensor
map as TensorFlow's (konnx.tflite_map), written from what the writer knows, so
`konnx verify model.onnx model.tflite --bisect` works on it."""
from __future__ import annotations

import json
import zlib
from typing import Optional

import numpy as np
import onnx

from .. import loader
from ..graph import Node
from ..layout_plan import io_perm
from ..naming import sanitize
from ..tflite_map import META_NAME
from . import elementwise as E
from . import spatial as S
from . import sequence as Q
from . import tensor as T
from .lower import DirectUnsupported, Lowering

__all__ = ["write", "DirectUnsupported", "HANDLERS"]

_FLATBUFFER_LIMIT = 2**31 - 2**26  # bytes of constants; the rest of the file (graph, metadata) fits below 2 GiB

HANDLERS = {
    "Conv": S.conv, "MaxPool": S.pool, "AveragePool": S.pool, "GlobalAveragePool": S.global_average_pool,
    "BatchNormalization": S.batch_norm,
    "Add": E.binary, "Sub": E.binary, "Mul": E.binary, "Div": E.binary,
    "Relu": E.unary, "Sigmoid": E.unary, "HardSwish": E.unary, "Tanh": E.unary,
    "Clip": E.clip, "HardSigmoid": E.hard_sigmoid, "Identity": E.identity, "Dropout": E.identity,
    "Flatten": T.reshape, "Reshape": T.reshape, "Squeeze": T.reshape, "Unsqueeze": T.reshape,
    "LeakyRelu": E.leaky_relu, "ReduceMean": T.reduce_mean, "Pad": T.pad,
    "Gemm": T.gemm, "MatMul": T.matmul, "Concat": T.concat, "Softmax": T.softmax, "Transpose": T.transpose,
    "LayerNormalization": Q.layer_norm, "Gelu": Q.gelu, "Split": Q.split, "Gather": Q.gather, "Slice": Q.slice_,
}
CONTRIB_HANDLERS = {"Gelu": Q.gelu, "FastGelu": Q.gelu}  # onnxruntime's com.microsoft ops
_SHAPE_KEEPING_CONTRIB = frozenset({"Gelu", "FastGelu"})  # output shape = the (one) input's


def write(proto: onnx.ModelProto, plan, weights: dict, opset: int, *, channels_last_io: bool = False) -> bytes:
    """The .tflite flatbuffer of a normalized model (konnx.plan.plan_model's) and its Plan, with
    static input shapes; raises DirectUnsupported naming the first node it cannot write."""
    shapes, types = _shapes(proto)
    lw = Lowering(proto, plan, weights, shapes, opset)
    inputs = _inputs(lw, types, channels_last_io)
    for idx, p in enumerate(proto.graph.node):
        if p.output and p.output[0] in lw.absorbed:
            continue
        node = Node(p, opset, idx)
        lw.node = node
        if _fold(lw, node):
            continue
        fn = (HANDLERS.get(node.op_type) if node.domain in ("", "ai.onnx")
              else CONTRIB_HANDLERS.get(node.op_type) if node.domain == "com.microsoft" else None)
        if fn is None:
            raise lw.unsupported("no direct TFLite writer for this op")
        fn(lw, node)
    lw.node = None
    outputs = []
    for k, vo in enumerate(proto.graph.output):
        if vo.name not in lw.vals or vo.name in {n for n, _ in inputs}:
            raise DirectUnsupported(f"graph output '{vo.name}' is a constant or a graph input")
        perm = io_perm(len(lw.vals[vo.name][1]), channels_last_io)
        outputs.append((f"output_{k}", lw.view(vo.name, perm)))
    if lw.b.size > _FLATBUFFER_LIMIT:
        raise DirectUnsupported(f"{lw.b.size / 2**30:.2f} GiB of weights: a flatbuffer holds at most 2 GiB")
    record = _record(lw, proto, inputs, channels_last_io)
    lw.b.add_metadata(META_NAME, zlib.compress(json.dumps(record, separators=(",", ":")).encode(), 9))
    return lw.b.finish([(sig, lw.vals[name][0]) for name, sig in inputs], outputs)


def _shapes(proto: onnx.ModelProto) -> tuple:
    """name -> ONNX shape, elem type; shape inference runs again when a computed tensor's shape is
    unknown: constant folding (after the first inference) can make it static, as a TorchScript
    Pad whose pads were computed from shapes, or a class token Expand-ed to the batch size.
    That inference starts from the static shapes only (a symbolic dim of the first one would
    stay) and sees onnxruntime's shape-keeping contrib ops (onnx knows no shape for them) as
    Identity."""
    shapes, types = loader.value_info(proto)
    computed = [o for n in proto.graph.node for o in n.output if o]
    if all(s is not None and all(isinstance(d, int) and d > 0 for d in s)
           for s in (shapes.get(o) for o in computed)):
        return shapes, types
    light = onnx.ModelProto()
    light.CopyFrom(proto)  # the normalized graph without its weights (loader.split_weights)
    static = [vi for vi in light.graph.value_info
              if all(d.HasField("dim_value") and d.dim_value > 0 for d in vi.type.tensor_type.shape.dim)]
    del light.graph.value_info[:]  # the symbolic dims of the first inference would stay otherwise
    light.graph.value_info.extend(static)
    for n in light.graph.node:
        if n.domain == "com.microsoft" and n.op_type in _SHAPE_KEEPING_CONTRIB and len(n.input) == 1:
            n.op_type, n.domain = "Identity", ""
            del n.attribute[:]
    try:
        again = onnx.shape_inference.infer_shapes(light, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError):
        return shapes, types
    more, more_types = loader.value_info(again)
    for name, s in more.items():
        if s is not None and all(isinstance(d, int) and d > 0 for d in s):
            shapes[name] = s
    return shapes, {**more_types, **types}


def _inputs(lw: Lowering, types: dict, channels_last_io: bool) -> list:
    """(ONNX name, signature name) of each graph input, each a TFLite input tensor."""
    g = lw.proto.graph
    init = {i.name for i in g.initializer} | set(lw._protos)
    out, used = [], set()
    for vi in g.input:
        if vi.name in init:
            continue
        if types.get(vi.name) != onnx.TensorProto.FLOAT:
            raise DirectUnsupported(f"graph input '{vi.name}' is not float32")
        shape = lw.shape(vi.name)
        perm = lw.plan.perms.get(vi.name) or io_perm(len(shape), channels_last_io)
        lw.vals[vi.name] = (lw.b.tensor([shape[p] for p in perm], vi.name), tuple(perm))
        sig = sanitize(vi.name)
        while sig in used:
            sig += "_"
        used.add(sig)
        out.append((vi.name, sig))
    return out


def _fold(lw: Lowering, node: Node) -> bool:
    """A node computed now: Shape of a static tensor, or a node whose inputs are all constants."""
    if node.op_type == "Shape" and node.inputs[0] in lw.vals:
        shape = np.asarray(lw.shape(node.inputs[0]), np.int64)
        start, end = node.attr("start", 0), node.attr("end", None)
        lw.set_const(node.outputs[0], shape[start:end])
        return True
    if not all(lw.is_const(i) for i in node.inputs if i) or node.op_type in loader.NONDETERMINISTIC:
        return False
    from ..evaluate import fold_node
    from ..ops.registry import lookup

    values = fold_node(node, lookup(node.op_type, node.opset, node.domain),
                       [lw.const(i) if i else None for i in node.inputs])
    if values is None:
        raise lw.unsupported("a constant node the writer cannot evaluate")
    for name, v in zip(node.outputs, values if isinstance(values, (list, tuple)) else [values]):
        if name:
            lw.set_const(name, v)
    return True


def _record(lw: Lowering, proto, inputs: list, channels_last_io: bool) -> dict:
    """konnx.tflite_map's record: inputs, outputs, tensors (with tflite_index), decisions."""
    ins = [{"onnx": name, "keras": sig, "perm": [int(p) for p in lw.vals[name][1]]} for name, sig in inputs]
    outs = [{"onnx": vo.name, "perm": [int(p) for p in io_perm(len(lw.vals[vo.name][1]), channels_last_io)]}
            for vo in proto.graph.output]
    decisions: dict = {}
    for name, d in lw.plan.padding.items():
        decisions.setdefault(name, []).append({"node": name, "op_type": d.op_type, "kind": "padding",
                                               "decision": d.mode, "pads": [list(p) for p in (d.pads or [])],
                                               "reason": d.reason})
    return {"version": 1, "inputs": ins, "outputs": outs, "tensors": lw.entries, "decisions": decisions,
            "writer": "konnx.tflite_direct"}


def plan_for_tflite(proto: onnx.ModelProto, input_shapes: Optional[dict], channels_last_io: bool):
    """load -> check -> normalize -> plan with every dynamic batch dim fixed to 1 (the TFLite
    converter path's static signature): (normalized model, plan, weights, opset)."""
    from ..inputs import check_input_shapes
    from ..plan import plan_model

    shapes = dict(check_input_shapes(proto, input_shapes) or {})
    init = {i.name for i in proto.graph.initializer}
    for vi in proto.graph.input:
        if vi.name in init or not vi.type.HasField("tensor_type"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        asked = list(shapes.get(vi.name) or dims)
        if asked and asked[0] is None:
            asked[0] = 1
        shapes[vi.name] = tuple(asked)
    light, weights = loader.split_weights(proto)
    opset = loader.check(light)
    normalized, the_plan = plan_model(light, opset, weights, shapes, channels_last_io)
    if the_plan.refusals:
        raise DirectUnsupported(f"the plan refuses {len(the_plan.refusals)} node(s)")
    return normalized, the_plan, weights, opset
