"""Emit builds with the plan's padding decisions (issue 13: "emit reads the plan instead of
deciding"). For a matrix of Conv / MaxPool / AveragePool geometries, on static and on dynamic
spatial sizes: the converters use the very PaddingDecision objects the plan recorded,
padding.decide_for runs once per node (in the plan, or at emit when the plan has no decision for
the built geometry), the report's rows are what was built, and the built model matches
onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx
from konnx import padding as P
from konnx import plan as plan_module
from konnx import report
from konnx.emit import Context
from tests.util import assert_matches_ort, make_model, rand


def _conv(name, k, **attrs):
    return helper.make_node("Conv", ["x", f"w{k}"], [name], name=name, kernel_shape=[k, k], **attrs)


def _pool(op, name, **attrs):
    return helper.make_node(op, ["x"], [name], name=name, **attrs)


GEOMETRIES = [
    _conv("conv_k3_p1", 3, pads=[1, 1, 1, 1]),
    _conv("conv_k3_s2_p1", 3, strides=[2, 2], pads=[1, 1, 1, 1]),
    _conv("conv_k3_s2_p01", 3, strides=[2, 2], pads=[0, 0, 1, 1]),
    _conv("conv_k3_d2_p2", 3, dilations=[2, 2], pads=[2, 2, 2, 2]),
    _conv("conv_k3_s2_valid", 3, strides=[2, 2]),
    _conv("conv_k3_s2_same_upper", 3, strides=[2, 2], auto_pad="SAME_UPPER"),
    _conv("conv_k3_same_lower", 3, auto_pad="SAME_LOWER"),
    _conv("conv_k9_s2_one_window", 9, strides=[2, 2]),  # one output window: stride 1 + crop (static)
    _pool("MaxPool", "max_k3_s2_p1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    _pool("MaxPool", "max_k3_p1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    _pool("MaxPool", "max_k2_s2", kernel_shape=[2, 2], strides=[2, 2]),
    _pool("MaxPool", "max_k3_s2_same_upper", kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    _pool("AveragePool", "avg_k3_s2_p1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    _pool("AveragePool", "avg_k3_s2_p1_incl", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
          count_include_pad=1),
    _pool("AveragePool", "avg_k3_p1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    _pool("AveragePool", "avg_k2_s2", kernel_shape=[2, 2], strides=[2, 2]),
]
SIZE = 9


def _model(dynamic: bool):
    shape = [1, 2, "H", "W"] if dynamic else [1, 2, SIZE, SIZE]
    return make_model(GEOMETRIES, [("x", np.float32, shape)], [(n.name, np.float32, None) for n in GEOMETRIES],
                      [(f"w{k}", rand(3, 2, k, k, seed=k)) for k in (3, 9)])


class _Spy:
    """Counts padding.decide_for calls by phase and keeps what each converter built with."""

    def __init__(self, monkeypatch):
        self.calls = {"plan": 0, "emit": 0}
        self.used = {}  # node name -> the decision object the converter got
        self._phase = "plan"
        decide, planned = P.decide_for, Context.planned_padding

        def counting(*args, **kwargs):
            self.calls[self._phase] += 1
            return decide(*args, **kwargs)

        def spying(ctx, node, *args):
            self._phase = "emit"
            try:
                decision = planned(ctx, node, *args)
            finally:
                self._phase = "plan"
            self.used[node.name] = decision
            return decision

        monkeypatch.setattr(P, "decide_for", counting)
        monkeypatch.setattr(Context, "planned_padding", spying)


def _convert(model, monkeypatch):
    spy = _Spy(monkeypatch)
    result = konnx.convert_detailed(model)
    x = rand(1, 2, SIZE, SIZE, seed=5)
    assert_matches_ort(model, {"x": x}, keras_model=result.model)
    return spy, result


def _rows(result):
    return {r["node"]: r for r in report.to_json(result)["nodes"]}


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_converters_build_with_the_plans_decision_objects(dynamic, monkeypatch):
    spy, result = _convert(_model(dynamic), monkeypatch)
    planned = {name: rec.decision for name, rec in result.plan.padding.items() if rec.decision is not None}
    assert planned, "the plan decided no padding"
    assert spy.calls == {"plan": len(planned), "emit": 0}
    for name, decision in planned.items():
        assert spy.used[name] is decision, name
    # a node without a plan decision (auto_pad SAME_UPPER, stride 2, dynamic size) is built without one
    undecided = {rec.node for rec in result.plan.padding.values() if rec.decision is None and rec.op_type != "ConvTranspose"}
    assert undecided == ({"conv_k3_s2_same_upper", "max_k3_s2_same_upper"} if dynamic else set())
    assert not undecided & set(spy.used)


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_report_rows_are_the_decisions_built(dynamic, monkeypatch):
    spy, result = _convert(_model(dynamic), monkeypatch)
    rows = _rows(result)
    assert set(spy.used) <= set(rows)
    for name, decision in spy.used.items():
        row = rows[name]
        assert row["pads"] == [list(p) for p in decision.pads], name
        assert decision.caveat in row["reason"], name
        if row["op_type"] == "Conv":
            assert row["decision_raw"] == decision.mode, name
        elif row["decision_raw"] in ("same", "valid"):  # pooling that builds a plain Keras layer
            assert row["decision_raw"] == decision.mode, name
    if not dynamic:  # the single strided window is built with stride 1 on the cropped input
        assert spy.used["conv_k9_s2_one_window"].strides == [1, 1]


def test_without_a_plan_decision_emit_decides_once_with_the_same_function(monkeypatch):
    """Emit decides when the plan has nothing for the built geometry: once per node, with
    padding.decide_for, and builds and reports what the plan would have."""
    model = _model(dynamic=False)
    _, planned = _convert(model, monkeypatch)
    want = {n: (r["decision_raw"], r["pads"], r["reason"]) for n, r in _rows(planned).items()}
    monkeypatch.undo()

    real = plan_module.padding_decision
    monkeypatch.setattr(plan_module, "padding_decision",
                        lambda node, facts: None if node.op_type != "ConvTranspose" else real(node, facts))
    spy, result = _convert(model, monkeypatch)
    assert not result.plan.padding
    assert spy.calls == {"plan": 0, "emit": len(spy.used)}
    assert len(spy.used) == len(GEOMETRIES)
    assert {n: (r["decision_raw"], r["pads"], r["reason"]) for n, r in _rows(result).items()} == want
