"""GELU decompositions (below opset 20) fused into one node by konnx/fuse.py (issue 17): exact
(Erf) and tanh forms from PyTorch's TorchScript and dynamo exporters at opsets 17 and 18, checked
against onnxruntime on the ORIGINAL model, in Keras and in the LiteRT interpreter (the Erf form
could not be converted to TFLite before: TFLite has no Erf)."""
from __future__ import annotations

import io
import warnings

import keras
import numpy as np
import onnx
import pytest
import torch

import konnx
from konnx import export as E
from konnx import fuse, loader

from .util import assert_matches_ort, make_model, rand, run_ort

EXPORTS = [(a, o, d) for a in ("none", "tanh") for o in (17, 18) for d in (False, True)]


class _Net(torch.nn.Module):
    def __init__(self, approximate: str):
        super().__init__()
        self.l1, self.act, self.l2 = torch.nn.Linear(16, 32), torch.nn.GELU(approximate=approximate), torch.nn.Linear(32, 8)

    def forward(self, x):
        return self.l2(self.act(self.l1(x) * 3.0))  # * 3: inputs well into GELU's curved tails


_CACHE: dict = {}


def _export(approximate: str, opset: int, dynamo: bool) -> onnx.ModelProto:
    key = (approximate, opset, dynamo)
    if key not in _CACHE:
        torch.manual_seed(0)
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if dynamo:
                prog = torch.onnx.export(_Net(approximate).eval(), (torch.randn(4, 16),), dynamo=True,
                                         opset_version=opset, input_names=["x"], output_names=["y"], verbose=False)
                _CACHE[key] = prog.model_proto
            else:
                torch.onnx.export(_Net(approximate).eval(), (torch.randn(4, 16),), buf, dynamo=False,
                                  opset_version=opset, input_names=["x"], output_names=["y"])
                _CACHE[key] = onnx.load_from_string(buf.getvalue())
    return _CACHE[key]


def _normalized(model):
    light, _ = loader.split_weights(model)
    return loader.normalize(light)


@pytest.mark.parametrize("approximate,opset,dynamo", EXPORTS)
def test_torch_gelu_fused_and_exact(approximate, opset, dynamo):
    model = _export(approximate, opset, dynamo)
    assert any(n.op_type in ("Erf", "Tanh") for n in model.graph.node), "the export is not decomposed"
    ops = [(n.domain, n.op_type) for n in _normalized(model).graph.node]
    want = ("com.microsoft", "Gelu" if approximate == "none" else "FastGelu")
    assert ops.count(want) == 1 and not {"Erf", "Tanh", "Div", "Pow"} & {o for _, o in ops}, ops
    x = rand(4, 16, seed=1)
    km = assert_matches_ort(model, {"x": x})
    kinds = [type(layer).__name__ for layer in km.layers]
    if approximate == "none":  # a real Keras activation layer
        assert any(isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] == "gelu"
                   for layer in km.layers), kinds


@pytest.mark.parametrize("approximate,opset,dynamo", EXPORTS)
def test_torch_gelu_tflite_matches_onnxruntime(approximate, opset, dynamo):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TFLite export needs the TensorFlow backend")
    model = _export(approximate, opset, dynamo)
    km = konnx.convert(model)
    data = E.tflite_model(km, batch_size=None)
    ops = [o["op_name"] for o in E.tflite_interpreter(data)._get_ops_details()]
    assert ops.count("GELU") == 1 and "TANH" not in ops, ops
    x = rand(4, 16, seed=2) * 2
    ref = run_ort(model, {"x": x})[0]
    got = E.run_tflite(data, x)[0]
    assert np.max(np.abs(got - ref)) <= 1e-4 * max(1.0, float(np.max(np.abs(ref))))


def _erf_gelu(sqrt2=1.4142135, extra_output=False):
    """x * 0.5 * (1 + erf(x / c)) written by hand, in the ((0.5 * s) * x) order."""
    nodes = [onnx.helper.make_node("Div", ["x", "c"], ["d"]), onnx.helper.make_node("Erf", ["d"], ["e"]),
             onnx.helper.make_node("Add", ["one", "e"], ["s"]), onnx.helper.make_node("Mul", ["half", "s"], ["h"]),
             onnx.helper.make_node("Mul", ["h", "x"], ["y"])]
    outs = [("y", np.float32, [2, 5])] + ([("e", np.float32, [2, 5])] if extra_output else [])
    inits = [("c", np.float32(sqrt2)), ("one", np.float32(1)), ("half", np.float32(0.5))]
    return make_model(nodes, [("x", np.float32, [2, 5])], outs, inits)


def test_hand_written_order_fused():
    model = _erf_gelu()
    assert [n.op_type for n in _normalized(model).graph.node] == ["Gelu"]
    assert_matches_ort(model, {"x": rand(2, 5) * 3})


@pytest.mark.parametrize("case", ["wrong_constant", "intermediate_is_output"])
def test_not_a_gelu_left_alone(case):
    """A constant that is not sqrt(2), or an intermediate read outside the pattern: no fusion, and the
    conversion still computes what onnxruntime does."""
    model = _erf_gelu(sqrt2=1.5) if case == "wrong_constant" else _erf_gelu(extra_output=True)
    assert "Erf" in [n.op_type for n in _normalized(model).graph.node]
    assert_matches_ort(model, {"x": rand(2, 5) * 3})


def test_gelu_of_a_constant_is_folded():
    """A GELU whose input is known at conversion time (a Constant node) is fused, then folded."""
    k = onnx.helper.make_node("Constant", [], ["k"], value=onnx.numpy_helper.from_array(rand(2, 5, seed=9) * 3))
    model = _erf_gelu()
    for n in model.graph.node:
        n.input[:] = ["k" if i == "x" else i for i in n.input]
    model.graph.node.insert(0, k)
    model.graph.node.append(onnx.helper.make_node("Add", ["x", "y"], ["z"]))
    model.graph.output[0].name = "z"
    assert [n.op_type for n in _normalized(model).graph.node] == ["Constant", "Gelu", "Add"]
    assert_matches_ort(model, {"x": rand(2, 5)})


def test_contrib_nodes_convert():
    """com.microsoft Gelu / FastGelu in a model (as onnxruntime's optimizer writes them) convert too."""
    nodes = [onnx.helper.make_node("Gelu", ["x"], ["a"], domain="com.microsoft"),
             onnx.helper.make_node("FastGelu", ["a"], ["y"], domain="com.microsoft")]
    model = make_model(nodes, [("x", np.float32, [3, 7])], [("y", np.float32, [3, 7])])
    model.opset_import.append(onnx.helper.make_opsetid(fuse.CONTRIB, 1))
    assert_matches_ort(model, {"x": rand(3, 7) * 3})


def test_fast_gelu_bias_refused():
    nodes = [onnx.helper.make_node("FastGelu", ["x", "b"], ["y"], domain="com.microsoft")]
    model = make_model(nodes, [("x", np.float32, [3, 7])], [("y", np.float32, [3, 7])],
                       [("b", np.zeros(7, np.float32))])
    model.opset_import.append(onnx.helper.make_opsetid(fuse.CONTRIB, 1))
    with pytest.raises(konnx.ConversionError, match="bias"):
        konnx.convert(model)


def test_cli_tflite_on_exact_gelu(tmp_path):
    """`konnx convert --tflite` on a TorchScript opset-17 exact GELU export: written, checked in LiteRT
    by the CLI, and the file agrees with onnxruntime (TFLite's converter refused it before: no Erf)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TFLite export needs the TensorFlow backend")
    from konnx.cli import main

    src = tmp_path / "gelu.onnx"
    onnx.save(_export("none", 17, False), str(src))
    out = tmp_path / "gelu.tflite"
    assert main(["convert", str(src), "--tflite", str(out), "-q"]) == 0
    x = rand(4, 16, seed=3) * 2
    ref = run_ort(onnx.load(str(src)), {"x": x})[0]
    got = E.run_tflite(out, x)[0]
    assert np.max(np.abs(got - ref)) <= 1e-4 * max(1.0, float(np.max(np.abs(ref))))
