"""Fold inference BatchNormalization nodes into the Conv that feeds them (`convert(fold_bn=True)`,
`konnx convert --fold-bn`): an ONNX-to-ONNX rewrite done before conversion, for inference speed.
Without it BatchNormalization stays a keras.layers.BatchNormalization, which fine-tuning needs."""
from __future__ import annotations

from collections import Counter
from typing import Optional

import numpy as np
import onnx
from onnx import numpy_helper

def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _used_names(graph: onnx.GraphProto) -> Counter:
    """How many times each value name is read (subgraphs included)."""
    uses: Counter = Counter()
    for node in graph.node:
        uses.update(n for n in node.input if n)
        for a in node.attribute:
            subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
            for sub in subs:
                uses.update(_used_names(sub))
                uses.update(o.name for o in sub.output)
    return uses


def _fold_refusal(bn, conv, uses, outputs, inits, opset) -> Optional[str]:
    """Why this BatchNormalization cannot be folded into `conv` (None when it can)."""
    if conv is None or conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx"):
        return "its input is not a Conv output"
    if uses[bn.input[0]] != 1 or bn.input[0] in outputs:
        return "the Conv output is used elsewhere too"
    if any(o for o in bn.output[1:]):
        return "it has training outputs"
    if len(bn.input) != 5 or any(n not in inits for n in bn.input[1:]):
        return "its parameters are not constant"
    if int(_attr(bn, "training_mode", 0)) or not int(_attr(bn, "spatial", 1)):
        return "it is not a per-channel inference-mode normalization"
    if opset < 7 and not int(_attr(bn, "is_test", 0)):
        return "it is not in inference mode"
    if len(conv.input) < 2 or conv.input[1] not in inits or (
            len(conv.input) > 2 and conv.input[2] and conv.input[2] not in inits):
        return "the Conv's weights are not constant"
    w = inits[conv.input[1]]
    if w.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
        return "the Conv's weights are not floating point"
    c_out = w.dims[0] if w.dims else None
    for n in bn.input[1:]:
        if list(inits[n].dims) != [c_out]:
            return "its parameters do not have one value per Conv output channel"
    return None


def fold_batch_norms(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[dict]]:
    """Fold every inference BatchNormalization whose input is a Conv output read only by it into
    that Conv's kernel and bias (computed in float64). Returns the new model (the input is not
    changed; it is returned as is when nothing folds) and one record per folded node. The others
    stay BatchNormalization (see _fold_refusal for why one cannot fold)."""
    pairs, records = _foldable_pairs(model)
    if not pairs:
        return model, records
    return _fold_pairs(model, pairs), records


def _foldable_pairs(model: onnx.ModelProto) -> tuple[list, list[dict]]:
    """(BatchNormalization, Conv) node pairs that fold, and a record for each."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output if o}
    uses = _used_names(g)
    outputs = {o.name for o in g.output}
    opset = _default_opset(model)
    pairs, records = [], []
    for bn in g.node:
        if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx") or not bn.input:
            continue
        conv = producers.get(bn.input[0])
        reason = _fold_refusal(bn, conv, uses, outputs, inits, opset)
        if reason is None:
            pairs.append((bn, conv))
            records.append({"node": bn.name or bn.output[0], "op_type": "BatchNormalization", "kind": "fold_bn",
                            "decision": "folded", "folded_into": conv.name or conv.output[0],
                            "reason": "folded into the preceding Conv's kernel and bias"})
    return pairs, records


def _fold_pairs(model: onnx.ModelProto, pairs: list) -> onnx.ModelProto:
    """A copy of `model` with each pair's BatchNormalization folded into its Conv."""
    inits = {i.name: i for i in model.graph.initializer}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    nodes = list(g.node)
    index = {id(n): i for i, n in enumerate(model.graph.node)}
    taken = {n for node in g.node for n in list(node.input) + list(node.output)} | set(inits)
    taken |= {i.name for i in g.input} | {o.name for o in g.output}

    def fresh(base: str) -> str:
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    new_inits, drop_nodes, dead_values = [], set(), set()
    for bn_src, conv_src in pairs:
        bn, conv = nodes[index[id(bn_src)]], nodes[index[id(conv_src)]]
        new_inits += _fold_into_conv(bn, conv, inits, fresh)
        dead_values.add(conv.output[0])
        conv.output[0] = bn.output[0]
        drop_nodes.add(id(bn))
    del g.node[:]
    g.node.extend(n for n in nodes if id(n) not in drop_nodes)
    g.initializer.extend(new_inits)
    _drop_unused(out, inits, new_inits, dead_values)
    return out


def _fold_into_conv(bn, conv, inits: dict, fresh) -> list:
    """Point `conv` at a new kernel and bias that include `bn`; returns the two new initializers."""
    scale, bias_bn, mean, var = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in bn.input[1:])
    w_arr = numpy_helper.to_array(inits[conv.input[1]])
    eps = float(_attr(bn, "epsilon", 1e-5))
    a = scale / np.sqrt(var + eps)
    w_new = (w_arr.astype(np.float64) * a.reshape((-1,) + (1,) * (w_arr.ndim - 1))).astype(w_arr.dtype)
    has_bias = len(conv.input) > 2 and conv.input[2]
    b_old = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64) if has_bias else 0.0
    b_new = ((b_old - mean) * a + bias_bn).astype(w_arr.dtype)
    stem = conv.name or conv.output[0]
    w_name, b_name = fresh(f"{stem}_bnfold_W"), fresh(f"{stem}_bnfold_B")
    inputs = [conv.input[0], w_name, b_name]
    del conv.input[:]
    conv.input.extend(inputs)
    return [numpy_helper.from_array(w_new, w_name), numpy_helper.from_array(b_new, b_name)]


def _drop_unused(out: onnx.ModelProto, inits: dict, new_inits: list, dead_values: set) -> None:
    """Drop the weights nothing reads any more (the unfolded kernels, the BN statistics), and the
    value_info of the Conv outputs that no longer exist."""
    g = out.graph
    still_used = _used_names(g) | Counter(o.name for o in g.output)
    keep = [i for i in g.initializer if i.name in still_used]
    del g.initializer[:]
    g.initializer.extend(keep)
    inputs = [i for i in g.input if i.name in still_used or i.name not in inits]
    if out.ir_version < 4:  # IR < 4: every initializer is also a graph input
        inputs += [onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in new_inits]
    del g.input[:]
    g.input.extend(inputs)
    value_info = [v for v in g.value_info if v.name not in dead_values]
    del g.value_info[:]
    g.value_info.extend(value_info)
