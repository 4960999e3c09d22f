"""Pattern fusion on the normalized ONNX graph (run once, at the end of loader.normalize).

GELU below opset 20 reaches konnx as its decomposition. The exact form
``x * 0.5 * (1 + erf(x / sqrt(2)))`` keeps an Erf that TensorFlow's TFLite converter has no builtin
for (the file cannot be written), and the tanh approximation
``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))`` becomes nine TFLite ops. Both are
recognised here, whatever order the exporter wrote the products in (TorchScript and dynamo
differ), and replaced by one node of onnxruntime's contrib domain (``com.microsoft`` Gelu /
FastGelu: onnxruntime still runs the fused graph, so bisect and verify keep their oracle), which
konnx/ops/contrib.py converts to keras.ops.gelu: one Keras layer, one TFLite GELU.

A match needs every constant equal to the formula's within float32 rounding, every intermediate
read only inside the pattern (and not a graph output), and a float32 input; anything else stays
as it was.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import onnx
from onnx import numpy_helper

CONTRIB = "com.microsoft"
_SQRT2 = math.sqrt(2.0)
_TANH_SCALE = math.sqrt(2.0 / math.pi)
_CUBIC = 0.044715


@dataclass
class Match:
    nodes: list          # the pattern's nodes (Constant nodes feeding it are dropped when unread)
    x: str               # the GELU's input
    out: str             # the GELU's output (the last node's output)
    approximate: bool    # tanh form


class _View:
    """Producers, consumers, scalar constants and element types of a graph, for matching."""

    def __init__(self, graph: onnx.GraphProto):
        self.producer, self.consumers, self.scalars = {}, {}, {}
        for node in graph.node:
            for o in node.output:
                self.producer[o] = node
            for i in set(node.input) | _reads([sub for a in node.attribute for sub in
                                                ([a.g] if a.HasField("g") else []) + list(a.graphs)], nested=True):
                self.consumers.setdefault(i, []).append(node)
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self._constant(node)
        for init in graph.initializer:
            if _numel(init.dims) == 1:
                self.scalars[init.name] = numpy_helper.to_array(init)
        self.outputs = {o.name for o in graph.output}
        self.types = {vi.name: vi.type.tensor_type.elem_type for vi in
                      list(graph.input) + list(graph.value_info) + list(graph.output)}

    def _constant(self, node) -> None:
        for a in node.attribute:
            if a.name == "value" and _numel(a.t.dims) == 1:
                self.scalars[node.output[0]] = numpy_helper.to_array(a.t)
            elif a.name == "value_float":
                self.scalars[node.output[0]] = np.float32(a.f)

    def is_const(self, name: str, target: float) -> bool:
        v = self.scalars.get(name)
        if v is None or v.dtype.kind != "f":
            return False
        return abs(float(v.reshape(())) - target) <= 4e-7 * abs(target)

    def op(self, name: str, op_type: str):
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type and node.domain in ("", "ai.onnx") else None

    def only_consumer(self, name: str, op_type: str):
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.outputs or users[0].op_type != op_type or users[0].domain not in ("", "ai.onnx"):
            return None
        return users[0]


def _numel(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def _other(node, name: str) -> Optional[str]:
    """The other input of a two-input node that reads `name` once."""
    ins = list(node.input)
    if len(ins) != 2 or ins.count(name) != 1:
        return None
    return ins[1] if ins[0] == name else ins[0]


def _const_operand(v: _View, node, target: float) -> Optional[str]:
    """The non-constant operand of a two-input node whose other operand is the constant `target`."""
    if node is None or len(node.input) != 2:
        return None
    a, b = node.input
    if v.is_const(b, target) and not v.is_const(a, target):
        return a
    if v.is_const(a, target):
        return b
    return None


def _tail(v: _View, one_plus: str, x: str) -> Optional[tuple]:
    """x * 0.5 * (one_plus) in the orders exporters write it: ((x*s)*0.5), ((0.5*s)*x), ((x*0.5)*s).
    Returns (nodes, output) or None."""
    m1 = v.only_consumer(one_plus, "Mul")
    if m1 is None:
        return None
    o = _other(m1, one_plus)
    if o == x or v.is_const(o, 0.5):
        m2 = v.only_consumer(m1.output[0], "Mul")
        want_x = o != x
        rest = _other(m2, m1.output[0]) if m2 is not None else None
        if rest is not None and (rest == x if want_x else v.is_const(rest, 0.5)):
            return [m1, m2], m2.output[0]
        return None
    half = v.op(o, "Mul")
    if half is not None and _const_operand(v, half, 0.5) == x and v.consumers.get(o) == [m1] and o not in v.outputs:
        return [half, m1], m1.output[0]
    return None


def _one_plus(v: _View, f: str) -> Optional[object]:
    add = v.only_consumer(f, "Add")
    return add if add is not None and v.is_const(_other(add, f), 1.0) else None


def match_erf(v: _View, erf) -> Optional[Match]:
    """x * 0.5 * (1 + erf(x / sqrt(2))), the division also written as a product by 1/sqrt(2)."""
    scaled = erf.input[0]
    div, mul = v.op(scaled, "Div"), v.op(scaled, "Mul")
    if div is not None and len(div.input) == 2 and v.is_const(div.input[1], _SQRT2):
        head, x = div, div.input[0]
    elif mul is not None and _const_operand(v, mul, 1.0 / _SQRT2) is not None:
        head, x = mul, _const_operand(v, mul, 1.0 / _SQRT2)
    else:
        return None
    if v.consumers.get(scaled) != [erf] or scaled in v.outputs:
        return None
    add = _one_plus(v, erf.output[0])
    tail = _tail(v, add.output[0], x) if add is not None else None
    if tail is None:
        return None
    return Match([head, erf, add] + tail[0], x, tail[1], approximate=False)


def _cube_of(v: _View, name: str) -> Optional[tuple]:
    """(nodes, x) when `name` is x**3: Pow(x, 3), x * (x * x) or (x * x) * x."""
    pw = v.op(name, "Pow")
    if pw is not None and len(pw.input) == 2 and v.is_const(pw.input[1], 3.0):
        return [pw], pw.input[0]
    m = v.op(name, "Mul")
    if m is None or len(m.input) != 2:
        return None
    for sq_name, x in ((m.input[0], m.input[1]), (m.input[1], m.input[0])):
        sq = v.op(sq_name, "Mul")
        if sq is not None and list(sq.input) == [x, x] and v.consumers.get(sq_name) == [m]:
            return [sq, m], x
    return None


def match_tanh(v: _View, tanh) -> Optional[Match]:
    """0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))."""
    scaled = v.op(tanh.input[0], "Mul")
    inner = _const_operand(v, scaled, _TANH_SCALE)
    add = v.op(inner, "Add") if inner is not None else None
    if add is None or len(add.input) != 2:
        return None
    for cubic_name, x in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
        cubic = v.op(cubic_name, "Mul")
        cube = _const_operand(v, cubic, _CUBIC)
        found = _cube_of(v, cube) if cube is not None else None
        if found is not None and found[1] == x:
            break
    else:
        return None
    chain = found[0] + [cubic, add, scaled]
    one = _one_plus(v, tanh.output[0])
    tail = _tail(v, one.output[0], x) if one is not None else None
    if tail is None:
        return None
    return Match(chain + [tanh, one] + tail[0], x, tail[1], approximate=True)


def find_gelus(graph: onnx.GraphProto) -> list:
    """Every GELU decomposition of a float32 tensor in `graph`, as Match objects."""
    v = _View(graph)
    found, used = [], set()
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        m = match_erf(v, node) if node.op_type == "Erf" else match_tanh(v, node) if node.op_type == "Tanh" else None
        if m is None or v.types.get(m.x) != onnx.TensorProto.FLOAT or any(id(n) in used for n in m.nodes):
            continue
        if not _closed(v, m):
            continue
        used.update(id(n) for n in m.nodes)
        found.append(m)
    return found


def _closed(v: _View, m: Match) -> bool:
    """Every value the pattern computes, but its output, is read only inside the pattern."""
    inside = {id(n) for n in m.nodes}
    return all(o not in v.outputs and all(id(c) in inside for c in v.consumers.get(o, []))
               for n in m.nodes for o in n.output if o != m.out)


def fuse(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with every GELU decomposition of its main graph replaced by one contrib node (in place;
    returned for chaining). Subgraphs (If/Loop bodies) are left as they are."""
    matches = find_gelus(model.graph)
    if not matches:
        return model
    g = model.graph
    drop = {id(n): m for m in matches for n in m.nodes}
    last = {id(m.nodes[-1]): m for m in matches}
    nodes = []
    for node in g.node:
        if id(node) in last:
            nodes.append(_fused_node(last[id(node)], node))
        elif id(node) not in drop:
            nodes.append(node)
    gone = {o for m in matches for n in m.nodes for o in n.output if o != m.out}
    nodes = _without_unread_constants(nodes, {o.name for o in g.output})
    del g.node[:]
    g.node.extend(nodes)
    kept = [vi for vi in g.value_info if vi.name not in gone]
    del g.value_info[:]
    g.value_info.extend(kept)
    if not any(op.domain == CONTRIB for op in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(CONTRIB, 1))
    return model


def _fused_node(m: Match, last) -> onnx.NodeProto:
    node = onnx.helper.make_node("FastGelu" if m.approximate else "Gelu", [m.x], [m.out], name=last.name,
                                 domain=CONTRIB)
    node.metadata_props.extend(last.metadata_props)  # the module path layer names come from
    return node


def _reads(items, nested: bool = False) -> set:
    """Every name the nodes read, their subgraphs' (If/Loop bodies) included; nested=True: `items`
    are graphs."""
    out = set()
    for n in (n for g in items for n in g.node) if nested else items:
        out.update(n.input)
        for a in n.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                out |= _reads(sub.node)
    return out


def _without_unread_constants(nodes: list, outputs: set) -> list:
    read = _reads(nodes)
    return [n for n in nodes if not (n.op_type == "Constant" and n.output[0] not in read and n.output[0] not in outputs)]
