"""Bad input gives konnx's own errors, naming what is wrong; unsupported ops all at once."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

import konnx
from tests.util import make_model


def test_missing_file(tmp_path):
    with pytest.raises(konnx.InvalidModelError, match="not found"):
        konnx.convert(tmp_path / "nope.onnx")


def test_not_onnx(tmp_path):
    p = tmp_path / "x.onnx"
    p.write_text("this is not a protobuf at all, just some text\n" * 10)
    with pytest.raises(konnx.InvalidModelError, match="ONNX"):
        konnx.convert(p)


def test_empty_file(tmp_path):
    p = tmp_path / "x.onnx"
    p.write_bytes(b"")
    with pytest.raises(konnx.InvalidModelError, match="empty"):
        konnx.convert(p)


def _relu_model():
    return make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", np.float32, (1, 3))],
                      [("y", np.float32, (1, 3))])


def test_truncated_file(tmp_path):
    data = _relu_model().SerializeToString()
    p = tmp_path / "x.onnx"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(konnx.InvalidModelError):
        konnx.convert(p)


def test_invalid_graph():
    m = _relu_model()
    m.graph.node[0].input[0] = "does_not_exist"
    with pytest.raises(konnx.InvalidModelError, match="invalid ONNX graph"):
        konnx.convert(m)


def test_opset_out_of_range():
    m = _relu_model()
    m.opset_import[0].version = 5
    with pytest.raises(konnx.InvalidModelError, match="opset 5"):
        konnx.convert(m)


def test_unsupported_ops_listed_all_at_once():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok"),
             helper.make_node("NoSuchOp", ["a"], ["b"], name="first_bad", domain="com.example"),
             helper.make_node("Relu", ["b"], ["c"]),
             helper.make_node("StringNormalizer", ["c"], ["d"], name="second_bad")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("d", onnx.TensorProto.FLOAT, [1, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    with pytest.raises(konnx.UnsupportedOpError) as info:
        konnx.api.convert_detailed(m)
    names = [n.name for n in info.value.nodes]
    assert names == ["first_bad", "second_bad"]
    assert "NoSuchOp" in str(info.value) and "StringNormalizer" in str(info.value)
    assert "opset 17" in str(info.value)


def test_input_shapes_unknown_name():
    with pytest.raises(konnx.InvalidModelError, match="unknown inputs"):
        konnx.convert(_relu_model(), input_shapes={"nope": (1, 3)})


def test_non_constant_weights_name_the_node():
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="dyn_conv", kernel_shape=[1, 1])]
    m = make_model(nodes, [("x", np.float32, (1, 2, 4, 4)), ("w", np.float32, (2, 2, 1, 1))],
                   [("y", np.float32, (1, 2, 4, 4))])
    with pytest.raises(konnx.ConversionError, match="dyn_conv.*constant"):
        konnx.convert(m)
