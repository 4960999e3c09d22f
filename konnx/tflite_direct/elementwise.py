"""Element-wise ops: Add/Sub/Mul/Div (constants broadcast in the planned layout, fused
ReLU/ReLU6), Relu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh, Identity."""
from __future__ import annotations

import numpy as np

from ..graph import Node
from .lower import NONE, RELU6, Lowering, activation_code, clip_bounds

_BINARY = {"Add": ("ADD", "AddOptionsT"), "Sub": ("SUB", "SubOptionsT"), "Mul": ("MUL", "MulOptionsT"),
           "Div": ("DIV", "DivOptionsT")}
_UNARY = {"Sigmoid": "LOGISTIC", "HardSwish": "HARD_SWISH", "Tanh": "TANH", "Relu": "RELU"}


def _schema():
    from ai_edge_litert import schema_py_generated as S

    return S


def _float(lw: Lowering, node: Node) -> None:
    for i in node.inputs:
        dtype = lw.const(i).dtype if i and lw.is_const(i) else np.float32
        if dtype not in (np.float32, np.float64):
            raise lw.unsupported(f"input '{i}' of dtype {dtype} (float32 is written directly)")


def binary(lw: Lowering, node: Node) -> None:
    _float(lw, node)
    a, b = node.inputs[:2]
    if lw.is_const(a) and lw.is_const(b):
        raise lw.unsupported("both inputs are constants (not folded)")
    perm = lw.planned(node.outputs[0])
    ins = [lw.operand(a, perm), lw.operand(b, perm)]
    op, options = _BINARY[node.op_type]
    out_name, act = lw.fused_activation(node.outputs[0])
    o = getattr(_schema(), options)()
    o.fusedActivationFunction = act
    lw.b.op(op, ins, [lw.new(out_name, perm)], o)


def unary(lw: Lowering, node: Node) -> None:
    perm = lw.planned(node.outputs[0])
    x = lw.view(node.inputs[0], perm)
    lw.b.op(_UNARY[node.op_type], [x], [lw.new(node.outputs[0], perm)])


def clip(lw: Lowering, node: Node) -> None:
    code = activation_code(lw, node)
    perm = lw.planned(node.outputs[0])
    x = lw.view(node.inputs[0], perm)
    if code is not None and code != NONE:
        op = {1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}[code]
        lw.b.op(op, [x], [lw.new(node.outputs[0], perm)])
        return
    bounds = clip_bounds(lw, node)
    if bounds is None:
        raise lw.unsupported("Clip with bounds computed by the graph")
    _min_max(lw, node.outputs[0], x, perm, *bounds)


def _min_max(lw: Lowering, name: str, x: int, perm, lo: float, hi: float) -> None:
    """x clamped to [lo, hi] (MAXIMUM then MINIMUM; either dropped when infinite)."""
    steps = [(op, v) for op, v in (("MAXIMUM", lo), ("MINIMUM", hi)) if np.isfinite(v)]
    if not steps:
        lw.b.op("RESHAPE", [x, lw.int32(lw.b.shape(x), f"{name}/shape")], [lw.new(name, perm)])
        return
    for k, (op, v) in enumerate(steps):
        last = k == len(steps) - 1
        out = lw.new(name, perm) if last else lw.b.tensor(lw.b.shape(x), f"{name}/{op.lower()}")
        lw.b.op(op, [x, lw.b.constant(np.asarray(v, np.float32), f"{name}/{op.lower()}_bound")], [out])
        x = out


def leaky_relu(lw: Lowering, node: Node) -> None:
    perm = lw.planned(node.outputs[0])
    o = _schema().LeakyReluOptionsT()
    o.alpha = float(node.attr("alpha", 0.01))
    lw.b.op("LEAKY_RELU", [lw.view(node.inputs[0], perm)], [lw.new(node.outputs[0], perm)], o)


def hard_sigmoid(lw: Lowering, node: Node) -> None:
    """max(0, min(1, alpha * x + beta)) as relu6(6 alpha x + 6 beta) / 6: ADD with a fused RELU6
    and a MUL (plus a MUL by 6 alpha unless it is 1, as for PyTorch's alpha = 1/6), the form
    TensorFlow's converter writes for Keras' hard_sigmoid (within a few ulp of onnxruntime's)."""
    alpha, beta = np.float32(node.attr("alpha", 0.2)), np.float32(node.attr("beta", 0.5))
    perm = lw.planned(node.outputs[0])
    x = lw.view(node.inputs[0], perm)
    shape, name = lw.b.shape(x), node.outputs[0]
    S = _schema()
    if np.float32(6) * alpha != 1:
        scaled = lw.b.tensor(shape, f"{name}/scaled")
        lw.b.op("MUL", [x, lw.b.constant(np.float32(6) * alpha, f"{name}/alpha6")], [scaled], S.MulOptionsT())
        x = scaled
    shifted = lw.b.tensor(shape, f"{name}/relu6")
    o = S.AddOptionsT()
    o.fusedActivationFunction = RELU6
    lw.b.op("ADD", [x, lw.b.constant(np.float32(6) * beta, f"{name}/beta6")], [shifted], o)
    lw.b.op("MUL", [shifted, lw.b.constant(np.float32(1 / 6), f"{name}/sixth")], [lw.new(name, perm)],
            S.MulOptionsT())


def identity(lw: Lowering, node: Node) -> None:
    if node.op_type == "Dropout" and len(node.outputs) > 1 and node.outputs[1]:
        raise lw.unsupported("Dropout's mask output")
    lw.alias(node.outputs[0], node.inputs[0])
    if lw.vals[node.outputs[0]][1] != lw.planned(node.outputs[0]):
        raise lw.unsupported("an Identity whose planned layout differs from its input's")
