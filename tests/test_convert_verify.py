"""konnx.convert(..., verify=True): the Python API's counterpart of the CLI's default-on check
against onnxruntime (issue 12). A converter made wrong on purpose (Relu as identity) must be
caught with a konnx error naming the differing output; a correct conversion passes."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from onnx import helper

import konnx
from konnx.ops import load_all
from konnx.ops.registry import REGISTRY

from .util import make_model


def _model():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "x"], ["sum"]),
             helper.make_node("Neg", ["x"], ["neg"])]
    return make_model(nodes, [("x", np.float32, ["N", 8])], [("sum", np.float32, None), ("neg", np.float32, None)])


def test_verify_passes_on_a_correct_conversion():
    km = konnx.convert(_model(), verify=True)
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(2, 8)
    s, n = km(x)
    np.testing.assert_allclose(np.asarray(s), np.maximum(x, 0) + x, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(n), -x, rtol=1e-6)


def test_verify_names_the_differing_output(monkeypatch):
    load_all()
    key = ("", "Relu")
    broken = [dataclasses.replace(spec, fn=lambda ctx, node: ctx.input(0)) for spec in REGISTRY[key]]
    monkeypatch.setitem(REGISTRY, key, broken)
    model = _model()
    konnx.convert(model)  # without verify the wrong model is returned silently
    with pytest.raises(konnx.VerificationError) as info:
        konnx.convert(model, verify=True)
    err = info.value
    assert isinstance(err, konnx.ConversionError)
    assert err.outputs == ["sum"]
    assert "sum" in str(err) and "neg" not in str(err).split("\n", 1)[1]


def test_verify_reports_inputs_onnxruntime_refuses_as_a_konnx_error():
    """Seeded random integers that the model cannot take (here an index out of range for
    GatherND) give a ConversionError saying so, not an onnxruntime traceback."""
    m = make_model([helper.make_node("GatherND", ["x", "i"], ["y"])],
                   [("x", np.float32, [4, 3]), ("i", np.int64, [2, 1])], [("y", np.float32, None)])
    with pytest.raises(konnx.ConversionError, match="seeded random inputs"):
        konnx.convert(m, verify=True)
