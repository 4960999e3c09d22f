"""The plan decides the layout of every computed tensor before anything is built, and emit
builds exactly that: image tensors channels-last from the first spatial op on, element-wise
chains following them without a transpose, everything else in the ONNX layout, Transpose as a
view. (The whole suite runs with KONNX_STRICT_PLAN=1, tests/conftest.py: any converter that
builds another layout than its declared rule fails there.)"""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import helper

import konnx
from konnx import report
from konnx.api import convert_detailed
from konnx.ops import registry
from tests.util import assert_matches_ort, make_model, rand

CL4 = (0, 2, 3, 1)
ONNX4 = (0, 1, 2, 3)


def _cnn() -> onnx.ModelProto:
    """Conv -> Relu -> MaxPool -> residual Add -> GlobalAveragePool -> Flatten -> Gemm, plus a
    Transpose of the image that a MatMul reads."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w2"], ["c2"], name="conv2", kernel_shape=[1, 1]),
        helper.make_node("Add", ["c2", "p"], ["s"], name="skip"),
        helper.make_node("Transpose", ["s"], ["t"], name="swap", perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["t", "m"], ["mm"], name="mm"),
        helper.make_node("GlobalAveragePool", ["s"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], name="fc", transB=1),
    ]
    inits = [("w", rand(4, 3, 3, 3, seed=1)), ("w2", rand(4, 4, 1, 1, seed=2)), ("m", rand(4, 5, seed=3)),
             ("fc", rand(6, 4, seed=4)), ("fb", rand(6, seed=5))]
    return make_model(nodes, [("x", np.float32, (2, 3, 8, 8))], [("y", np.float32, None), ("mm", np.float32, None)],
                      initializers=inits, opset=17)


def test_plan_decides_each_tensor_layout_and_emit_builds_it():
    model = _cnn()
    conversion = convert_detailed(model)
    p = conversion.plan
    assert p.perms["x"] == ONNX4
    for name in ("c", "r", "p", "c2", "s", "g"):
        assert p.perms[name] == CL4, name  # image tensors: channels-last, the Add follows its inputs
    # Transpose renames axes: the channels-last data read as (N, H, C, W) is stored (0, 2, 3, 1)
    # of (N, C, H, W), i.e. perm (0, 1, 3, 2) of the transposed tensor, with no data moved
    assert p.perms["t"] == (0, 1, 3, 2)
    assert p.perms["f"] == (0, 1) and p.perms["y"] == (0, 1)
    assert all(d is not None for dec in p.layout.values() for d in dec.outputs)
    for name, perm in p.perms.items():
        assert tuple(conversion.values[name].perm) == perm, name
    # the moves: the flattened GAP output (only size-1 axes move) and the MatMul output back
    # to the ONNX layout for the graph output
    moved = {(m.node, m.tensor) for m in p.moves}
    assert ("flat", "g") in moved
    assert_matches_ort(model, {"x": rand(2, 3, 8, 8, seed=9)})


def test_report_renders_the_layout_decisions():
    conversion = convert_detailed(_cnn())
    rep = report.to_json(conversion)
    lay = rep["layout"]
    assert lay["tensors"]["channels_last"] == 6 and lay["decided_at_emit"] == 0 and lay["deviations"] == []
    assert {"node": "flat", "op_type": "Flatten", "input": 0, "tensor": "g", "from": [0, 2, 3, 1],
            "to": [0, 1, 2, 3]} in lay["moves"]
    text = report.to_markdown(conversion)
    assert "## Layout" in text and "Computed tensors stored channels-last: 6" in text


def test_non_image_model_stays_in_onnx_layout():
    """An MLP/attention-shaped graph has no spatial op: nothing is moved to channels-last."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Softmax", ["h"], ["s"], axis=-1),
             helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["t", "x"], ["y"])]
    model = make_model(nodes, [("x", np.float32, (2, 5, 4))], [("y", np.float32, None)],
                       initializers=[("w", rand(4, 5, seed=1))], opset=17)
    p = convert_detailed(model).plan
    assert p.perms["h"] == (0, 1, 2) and p.perms["s"] == (0, 1, 2) and p.perms["t"] == (0, 2, 1)
    assert_matches_ort(model, {"x": rand(2, 5, 4, seed=2)})


def _misdeclared_relu(monkeypatch):
    """Relu declared (wrongly) as keeping the ONNX layout: its converter follows its input."""
    key = ("", "Relu")
    specs = registry.REGISTRY[key]
    wrong = [dataclasses.replace(s, perm=lambda node, perms, facts: [tuple(range(len(perms[0])))])
             for s in specs]
    monkeypatch.setitem(registry.REGISTRY, key, wrong)


def test_a_converter_deviating_from_the_plan_fails_in_strict_mode(monkeypatch):
    _misdeclared_relu(monkeypatch)
    monkeypatch.setenv("KONNX_STRICT_PLAN", "1")
    with pytest.raises(konnx.ConversionError, match=r"relu.*plan decided \(0, 1, 2, 3\)"):
        konnx.convert(_cnn())


def test_a_deviation_is_moved_to_the_planned_layout_and_reported(monkeypatch):
    _misdeclared_relu(monkeypatch)
    monkeypatch.setenv("KONNX_STRICT_PLAN", "0")
    model = _cnn()
    conversion = convert_detailed(model)
    devs = [d for d in conversion.decisions if d.get("kind") == "layout_deviation"]
    assert [(d["node"], d["built"], d["planned"]) for d in devs] == [("relu", CL4, ONNX4)]
    assert tuple(conversion.values["r"].perm) == ONNX4
    assert "built in another layout than planned" in report.to_markdown(conversion)
    assert_matches_ort(model, {"x": rand(2, 3, 8, 8, seed=9)}, keras_model=conversion.model)
