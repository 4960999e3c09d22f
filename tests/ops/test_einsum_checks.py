"""Einsum equations outside the spec's grammar (konnx/einsum_grammar.py, issue 14) are refused
before onnx shape inference runs, which does not terminate on some of them (onnxruntime, which
shares that inference, hangs on those too); valid neighbours still match onnxruntime."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from onnx import helper

import konnx

from ..util import assert_matches_ort, make_model, rand, run_ort


def _model(equation, shape=(2, 3)):
    node = helper.make_node("Einsum", ["x"], ["y"], name="ein", equation=equation)
    return make_model([node], [("x", np.float32, list(shape))], [("y", np.float32, None)], opset=12), \
        {"x": rand(*shape)}


@pytest.mark.parametrize("bad,good", [("ab->a->b", "ab->ba"), ("a1->a", "ab->a")])
def test_equation_outside_the_grammar(bad, good):
    model, feeds = _model(bad)
    with pytest.raises(konnx.InvalidModelError, match=r"Einsum node 'ein'.*must hold only letters|more than one '->'"):
        konnx.convert(model)
    with pytest.raises(Exception):  # onnxruntime refuses it too
        run_ort(model, feeds)
    assert_matches_ort(*_model(good))


SCRIPT = """
import konnx, sys
from onnx import helper
from tests.util import make_model
node = helper.make_node("Einsum", ["x"], ["y"], name="ein", equation=EQ)
model = make_model([node], [("x", 11, [])], [("y", 11, [])], opset=12)
try:
    konnx.convert(model)
except konnx.InvalidModelError as e:
    print(e)
"""


@pytest.mark.parametrize("equation", [b"\\xff\\xfe", b"..", b"\\xc3\\xa9"])
def test_equation_that_hangs_onnx_inference_is_refused_in_time(equation):
    # onnx's shape inference never returns on these (checked by hand: infer_shapes and
    # onnxruntime's session both spin); konnx must answer before it
    out = subprocess.run([sys.executable, "-c", SCRIPT.replace("EQ", repr(equation).replace("\\\\", "\\"))],
                         capture_output=True, text=True, timeout=120)
    assert "Einsum node 'ein': equation" in out.stdout, out.stdout + out.stderr[-2000:]
