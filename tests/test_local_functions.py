"""Models with model-local ONNX functions (ModelProto.functions): the functions are inlined before
konnx looks for unsupported ops, so a call to a local function converts like its body would, and a
body using an op konnx cannot convert is refused naming that op (issue 14)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h

import konnx
from tests.util import assert_matches_ort, rand


def _model(body_op: str = "Relu", body_domain: str = "", opset: int = 17) -> onnx.ModelProto:
    """out = MulAct(x, w) + x, MulAct(a, b) = body_op(a * b) a local function (twice called: once
    nested in another local function)."""
    imports = [h.make_opsetid("", opset)] + ([h.make_opsetid(body_domain, 1)] if body_domain else [])
    mul_act = h.make_function("local", "MulAct", ["a", "b"], ["y"],
                              [h.make_node("Mul", ["a", "b"], ["t"]),
                               h.make_node(body_op, ["t"], ["y"], domain=body_domain)], imports)
    twice = h.make_function("local", "Twice", ["a", "b"], ["y"],
                            [h.make_node("MulAct", ["a", "b"], ["u"], domain="local"),
                             h.make_node("MulAct", ["u", "b"], ["y"], domain="local")],
                            [h.make_opsetid("", opset), h.make_opsetid("local", 1)])
    g = h.make_graph([h.make_node("Twice", ["x", "w"], ["m"], domain="local", name="call_twice"),
                      h.make_node("MulAct", ["m", "w"], ["n"], domain="local", name="call_once"),
                      h.make_node("Add", ["n", "x"], ["out"], name="add")], "local_functions",
                     [h.make_tensor_value_info("x", T.FLOAT, [2, 3, 4])],
                     [h.make_tensor_value_info("out", T.FLOAT, [2, 3, 4])],
                     [onnx.numpy_helper.from_array(np.array([1.0, -2.0, 0.5, 3.0], np.float32), "w")])
    m = h.make_model(g, opset_imports=imports + [h.make_opsetid("local", 1)], functions=[mul_act, twice])
    m.ir_version = 10
    onnx.checker.check_model(m)
    return m


@pytest.mark.parametrize("body_op", ["Relu", "Tanh", "Softplus"])
def test_local_functions_convert_and_match_onnxruntime(body_op):
    m = _model(body_op)
    assert m.functions and not any(n.domain == "" and n.op_type == body_op for n in m.graph.node)
    assert_matches_ort(m, {"x": rand(2, 3, 4, seed=1)})


def test_convert_verify_on_local_functions():
    konnx.convert(_model("Sigmoid"), verify=True)  # raises VerificationError when it differs


def test_function_body_with_unsupported_op_names_the_op():
    with pytest.raises(konnx.UnsupportedOpError) as info:
        konnx.convert(_model("Frobnicate", body_domain="com.acme"))
    err = info.value
    assert [n.op_type for n in err.nodes] == ["Frobnicate"] * 3  # one per inlined call (Twice calls MulAct twice)
    assert "Frobnicate" in str(err) and "com.acme" in str(err)
