"""The direct TFLite writer (konnx.tflite_direct): small torch.nn and onnx.helper nets written
without TensorFlow, run in the LiteRT interpreter, compared with onnxruntime (the oracle); the
CLI's fallback to TensorFlow's converter; no TensorFlow/Keras import on the direct path; the
tensor map (verify --bisect) of a direct file."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

pytest.importorskip("ai_edge_litert")

from konnx.tflite_direct import DirectUnsupported, plan_for_tflite, write  # noqa: E402
from tests.util import probe_cli  # noqa: E402

torch.manual_seed(0)


def _export(net, shape, opset=17, keep_bn=False) -> onnx.ModelProto:
    """TorchScript export; keep_bn: BatchNormalization nodes kept (the exporter folds them into
    the convs otherwise), for the writer to fold."""
    buf = io.BytesIO()
    mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    with torch.no_grad():
        torch.onnx.export(net.eval(), (torch.randn(*shape),), buf, dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["y"], training=mode)
    return onnx.load_from_string(buf.getvalue())


def _direct(model, channels_last_io=False, input_shapes=None) -> bytes:
    normalized, plan, weights, opset = plan_for_tflite(model, input_shapes, channels_last_io)
    return write(normalized, plan, weights, opset, channels_last_io=channels_last_io)


def _op_names(data: bytes) -> list:
    from ai_edge_litert import schema_py_generated as S

    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    m = S.ModelT.InitFromPackedBuf(bytearray(data), 0)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in m.operatorCodes]
    return [names[codes[o.opcodeIndex]] for o in m.subgraphs[0].operators]


def _litert(data: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    runner = interp.get_signature_runner("serving_default")
    (name,) = interp.get_signature_list()["serving_default"]["inputs"]
    return runner(**{name: x})["output_0"]


def _ort(model, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def assert_direct_matches(model, shape, channels_last_io=False) -> list:
    """The direct file against onnxruntime on a seeded input (1e-4 x max(1, max|ref|)); its op names."""
    data = _direct(model, channels_last_io)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    ref = _ort(model, x)
    fed = np.transpose(x, (0, 2, 3, 1)) if channels_last_io and x.ndim == 4 else x
    got = _litert(data, np.ascontiguousarray(fed))
    if channels_last_io and got.ndim == 4:
        got = np.transpose(got, (0, 3, 1, 2))
    assert got.shape == ref.shape
    err, tol = float(np.max(np.abs(got - ref))), 1e-4 * max(1.0, float(np.max(np.abs(ref))))
    assert err <= tol, f"max abs error {err} > {tol}"
    return _op_names(data)


class Residual(torch.nn.Module):
    """conv-BN-ReLU, conv-BN, identity Add + ReLU, then a strided block with a downsample."""

    def __init__(self, c=8, stride=2):
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, 1, 1), nn.BatchNorm2d(c), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                               nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        self.down = nn.Sequential(nn.Conv2d(c, 2 * c, 1, stride, bias=False), nn.BatchNorm2d(2 * c))
        self.b = nn.Sequential(nn.Conv2d(c, 2 * c, 3, stride, 1), nn.BatchNorm2d(2 * c))
        self.fc = nn.Linear(2 * c, 5)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.data.uniform_(0.5, 1.5)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.a(x) + x)
        x = torch.relu(self.b(x) + self.down(x))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


@pytest.mark.parametrize("keep_bn", [False, True])
@pytest.mark.parametrize("size", [16, 15])
def test_residual_net(size, keep_bn):
    """Even size: the stride-2 pads (1, 1) are not TFLite's SAME (0, 1): a PAD then VALID; odd:
    SAME. BatchNorm folded into the convs (by the exporter, or by the writer), ReLU fused into
    CONV_2D and ADD."""
    model = _export(Residual(), (1, 3, size, size), keep_bn=keep_bn)
    assert keep_bn == any(n.op_type == "BatchNormalization" for n in model.graph.node)
    ops = assert_direct_matches(model, (1, 3, size, size))
    assert "RELU" not in ops and "MUL" not in ops, ops
    assert ("PAD" in ops) == (size % 2 == 0), ops
    assert ops.count("CONV_2D") == 5 and "FULLY_CONNECTED" in ops and "MEAN" in ops


def test_residual_net_channels_last_io():
    assert_direct_matches(_export(Residual(), (1, 3, 16, 16)), (1, 3, 16, 16), channels_last_io=True)


@pytest.mark.parametrize("batch", [None, 3])
def test_dynamic_batch_is_fixed(batch):
    """A dynamic batch dim is fixed to 1 (the converter path's default), or to the batch given."""
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(Residual().eval(), (torch.randn(2, 3, 16, 16),), buf, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    model = onnx.load_from_string(buf.getvalue())
    shapes = None if batch is None else {"x": (batch, 3, 16, 16)}
    normalized, plan, weights, opset = plan_for_tflite(model, shapes, False)
    data = write(normalized, plan, weights, opset)
    x = np.random.default_rng(4).standard_normal((batch or 1, 3, 16, 16)).astype(np.float32)
    ref = _ort(model, x)
    got = _litert(data, x)
    assert got.shape == ref.shape and np.max(np.abs(got - ref)) <= 1e-4 * max(1.0, float(np.max(np.abs(ref))))


class SE(torch.nn.Module):
    """MobileNetV3-style: depthwise (multiplier 2, dilation 2), hardswish, squeeze-excite with a
    broadcast Mul, ReLU6, Sigmoid, Hardsigmoid."""

    def __init__(self, c=6):
        super().__init__()
        nn = torch.nn
        self.pw = nn.Conv2d(3, c, 1)
        self.dw = nn.Conv2d(c, 2 * c, 3, 1, 2, dilation=2, groups=c)
        self.dw2 = nn.Conv2d(2 * c, 2 * c, 5, 2, 2, groups=2 * c)
        self.fc1, self.fc2 = nn.Conv2d(2 * c, 4, 1), nn.Conv2d(4, 2 * c, 1)

    def forward(self, x):
        x = torch.nn.functional.relu6(self.pw(x))
        x = torch.nn.functional.hardswish(self.dw(x))
        x = self.dw2(x)
        s = torch.nn.functional.adaptive_avg_pool2d(x, 1)
        s = torch.nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))
        return torch.sigmoid(x * s) - 0.5


@pytest.mark.parametrize("size", [17, 20])
def test_depthwise_and_squeeze_excite(size):
    ops = assert_direct_matches(_export(SE(), (1, 3, size, size)), (1, 3, size, size))
    assert ops.count("DEPTHWISE_CONV_2D") == 2 and "HARD_SWISH" in ops and "LOGISTIC" in ops, ops
    assert "RELU6" not in ops, ops  # fused into the first conv


@pytest.mark.parametrize("pool", [
    torch.nn.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 0, ceil_mode=True), torch.nn.MaxPool2d(2, 2),
    torch.nn.AvgPool2d(3, 2, 1, count_include_pad=True), torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False),
    torch.nn.AvgPool2d(2, 2), torch.nn.MaxPool2d(3, 1, 1),
], ids=["max_pad1_s2", "max_ceil", "max_2x2", "avg_include", "avg_exclude_same", "avg_2x2", "max_same"])
@pytest.mark.parametrize("size", [14, 15])
def test_pooling(pool, size):
    """Negative inputs: a zero-padded max pool would be wrong at the border."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), pool)
    assert_direct_matches(_export(net, (1, 3, size, size)), (1, 3, size, size))


@pytest.mark.parametrize("relu", [False, True])
def test_max_pool_padding_stays_in_xnnpack(relu):
    """-inf padding without PADV2 (which XNNPACK leaves out): zeros after a ReLU, the edge repeated
    otherwise; both exact against onnxruntime, and the whole file is one XNNPACK partition."""
    from ai_edge_litert.interpreter import Interpreter

    layers = [torch.nn.Conv2d(3, 4, 3, 1, 1)] + ([torch.nn.ReLU()] if relu else []) + [torch.nn.MaxPool2d(3, 2, 1)]
    model = _export(torch.nn.Sequential(*layers), (1, 3, 12, 12))
    ops = assert_direct_matches(model, (1, 3, 12, 12))
    assert "PADV2" not in ops and ("STRIDED_SLICE" in ops) != relu and ("PAD" in ops) == relu, ops
    interp = Interpreter(model_content=_direct(model))
    interp.allocate_tensors()
    assert [d["op_name"] for d in interp._get_ops_details()].count("DELEGATE") == 1


def _conv_model(pads, strides, size=(9, 10), auto_pad=None, op="Conv"):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    attrs = {"strides": strides, **({"auto_pad": auto_pad} if auto_pad else {"pads": pads})}
    node = helper.make_node("Conv", ["x", "w"], ["c"], name="conv", **attrs)
    relu = helper.make_node("Relu", ["c"], ["y"], name="relu")
    g = helper.make_graph([node, relu], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *size])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [onnx.numpy_helper.from_array(w, "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("alpha, beta", [(1 / 6, 0.5), (0.2, 0.5), (0.3, -0.1)])
def test_hard_sigmoid(alpha, beta):
    """HardSigmoid as relu6(6 alpha x + 6 beta) / 6, on inputs spanning both saturations."""
    model = _conv_model([1, 1, 1, 1], [1, 1])
    model.graph.node[1].CopyFrom(helper.make_node("HardSigmoid", ["c"], ["y"], name="hs", alpha=alpha, beta=beta))
    ops = assert_direct_matches(model, (1, 3, 9, 10))
    assert ops.count("MUL") == (1 if alpha == 1 / 6 else 2) and "ADD" in ops, ops


@pytest.mark.parametrize("pads, strides, auto_pad", [
    ([0, 1, 2, 1], [1, 1], None), ([1, 0, 1, 2], [2, 2], None), ([0, 0, 1, 1], [2, 2], None),
    (None, [2, 2], "SAME_UPPER"), (None, [2, 2], "SAME_LOWER"), ([1, 1, 1, 1], [1, 2], None),
])
def test_conv_paddings(pads, strides, auto_pad):
    """Asymmetric explicit pads and auto_pad, against onnxruntime (onnx.helper graphs)."""
    assert_direct_matches(_conv_model(pads, strides, auto_pad=auto_pad), (1, 3, 9, 10))


def test_two_inputs_and_channels_last_io():
    """Two image inputs (signature names in the ONNX order), a broadcast Add of a (C, 1, 1)
    constant, a conv, and a rank-2 output beside an image output."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    c = rng.standard_normal((3, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Add", ["a", "b"], ["s"], name="sum"), helper.make_node("Add", ["s", "c"], ["t"], name="bias"),
             helper.make_node("Conv", ["t", "w"], ["img"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["img"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["vec"], name="flat")]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 6, 7]) for n in ("a", "b")]
    outs = [helper.make_tensor_value_info("img", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("vec", TensorProto.FLOAT, None)]
    g = helper.make_graph(nodes, "g", vi, outs, [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(c, "c")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    from ai_edge_litert.interpreter import Interpreter

    feeds = {n: rng.standard_normal((1, 3, 6, 7)).astype(np.float32) for n in ("a", "b")}
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = sess.run(None, feeds)
    for cl in (False, True):
        interp = Interpreter(model_content=_direct(model, channels_last_io=cl))
        assert list(interp.get_signature_list()["serving_default"]["inputs"]) == ["a", "b"]
        fed = {k: np.ascontiguousarray(v.transpose(0, 2, 3, 1) if cl else v) for k, v in feeds.items()}
        got = interp.get_signature_runner("serving_default")(**fed)
        img = got["output_0"].transpose(0, 3, 1, 2) if cl else got["output_0"]
        for r, o in zip(ref, (img, got["output_1"])):
            assert o.shape == r.shape and np.max(np.abs(o - r)) <= 1e-4 * max(1.0, float(np.max(np.abs(r))))


class Head(torch.nn.Module):
    """Flatten of a 2x2 map (channels-last stored: a TRANSPOSE to the ONNX order first), Concat
    on the channel axis, Div/Sub by constants, a standalone BatchNorm, Softmax."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, 2, 1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.bn.running_mean.uniform_(-1, 1)
        self.fc = torch.nn.Linear(32, 6)

    def forward(self, x):
        a = self.conv(x)
        x = self.bn(torch.cat([a, a / 3.0 - 1.0], 1))
        x = torch.nn.functional.max_pool2d(x, 2)
        return torch.softmax(self.fc(torch.flatten(x, 1)), -1)


class Misc(torch.nn.Module):
    """Grouped conv (group 2 of 8 channels), LeakyReLU, zero and non-zero constant Pad,
    ReduceMean over H with and without keepdims."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, 1, 1)
        self.g = torch.nn.Conv2d(8, 6, 3, 2, 1, groups=2)

    def forward(self, x):
        x = torch.nn.functional.leaky_relu(self.a(x), 0.2)
        x = self.g(torch.nn.functional.pad(x, (1, 0, 2, 1)))
        x = torch.nn.functional.pad(x, (0, 1, 1, 0), value=-0.5)
        return x.mean(2, keepdim=True) * x.mean((2, 3)).reshape(1, 6, 1, 1)


def test_grouped_conv_leaky_relu_pad_mean():
    ops = assert_direct_matches(_export(Misc(), (1, 3, 10, 9)), (1, 3, 10, 9))
    assert "LEAKY_RELU" in ops and "PADV2" in ops and ops.count("MEAN") == 2, ops


def test_flatten_concat_softmax():
    ops = assert_direct_matches(_export(Head(), (1, 3, 8, 8)), (1, 3, 8, 8))
    assert "TRANSPOSE" in ops and "CONCATENATION" in ops and "SOFTMAX" in ops, ops


def test_unsupported_op_is_named():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ELU())
    with pytest.raises(DirectUnsupported, match="Elu node"):
        _direct(_export(net, (1, 3, 8, 8)))


# ----------------------------------------------------------------------------- the CLI
def _cli(args) -> tuple:
    return probe_cli(args, ("tensorflow", "keras"), timeout=600)


_NO_INIT = """
import importlib.util, json, sys, types, pathlib
root = pathlib.Path(importlib.util.find_spec("konnx").origin).parent
pkg = types.ModuleType("konnx"); pkg.__path__ = [str(root)]; sys.modules["konnx"] = pkg
import onnx
from konnx.tflite_direct import plan_for_tflite, write
normalized, plan, weights, opset = plan_for_tflite(onnx.load(sys.argv[1]), None, False)
data = write(normalized, plan, weights, opset)
print("HEAVY=" + json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tensorflow"))), len(data))
"""


def test_the_writer_imports_neither_keras_nor_tensorflow(tmp_path):
    """The module itself (konnx's __init__ bypassed, as tests/test_plan.py does for `konnx check`)."""
    src = _saved(_export(SE(), (1, 3, 9, 9)), tmp_path, "se.onnx")
    r = subprocess.run([sys.executable, "-c", _NO_INIT, str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "HEAVY=[]" in r.stdout, r.stdout + r.stderr[-3000:]


def _saved(model, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_cli_tflite_alone_imports_neither_keras_nor_tensorflow(tmp_path):
    src = _saved(_export(Residual(), (1, 3, 16, 16)), tmp_path, "res.onnx")
    out = tmp_path / "res.tflite"
    got, err = _cli(["convert", src, "--tflite", out, "-v", "--json", tmp_path / "r.json"])
    assert got == {"code": 0, "heavy": []}, err[-3000:]
    assert "direct writer" in err and "TensorFlow's converter" not in err
    payload = json.loads((tmp_path / "r.json").read_text())
    assert payload["tflite_writer"] == "direct" and payload["tflite_verify"]["ok"] is True
    x = np.random.default_rng(2).standard_normal((1, 3, 16, 16)).astype(np.float32)
    ref = _ort(onnx.load(str(src)), x)
    assert np.max(np.abs(_litert(out.read_bytes(), x) - ref)) <= 1e-4 * max(1.0, float(np.max(np.abs(ref))))


def test_cli_falls_back_to_the_converter(tmp_path):
    """An op the writer does not cover: TensorFlow's converter writes the file, one line says why."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ELU(), torch.nn.Flatten(), torch.nn.Linear(144, 3))
    src = _saved(_export(net, (1, 3, 8, 8)), tmp_path, "elu.onnx")
    out = tmp_path / "elu.tflite"
    got, err = _cli(["convert", src, "--tflite", out])
    assert got["code"] == 0 and "tensorflow" in got["heavy"], err[-3000:]
    assert "Elu" in err and "TensorFlow's converter" in err
    x = np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32)
    ref = _ort(onnx.load(str(src)), x)
    assert np.max(np.abs(_litert(out.read_bytes(), x) - ref)) <= 1e-4 * max(1.0, float(np.max(np.abs(ref))))


def test_direct_file_that_misses_the_check_falls_back(tmp_path, monkeypatch):
    """A direct file that differs from onnxruntime is never written: the converter path is taken."""
    import argparse

    from rich.console import Console

    import konnx.tflite_direct as TD
    from konnx import cli_tflite

    model = _export(Residual(), (1, 3, 16, 16))
    src = _saved(model, tmp_path, "res.onnx")
    real = TD.write

    def wrong(proto, plan, weights, opset, **kw):  # every weight off by 1%
        weights = {k: onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(v) * 1.01, k) for k, v in weights.items()}
        return real(proto, plan, weights, opset, **kw)

    monkeypatch.setattr(TD, "write", wrong)
    args = argparse.Namespace(model=str(src), tflite=str(tmp_path / "r.tflite"), input_shape=None, channels_last_io=False,
                              rtol=1e-4, atol=0.0, verbose=False, json=None)
    console = Console(file=io.StringIO(), width=200)
    assert cli_tflite.convert_direct(console, args, onnx.load(str(src))) is False
    assert "differs from onnxruntime" in console.file.getvalue()
    assert not (tmp_path / "r.tflite").exists() and not list(tmp_path.glob(".r*"))


def test_a_writer_bug_falls_back_too(tmp_path, monkeypatch):
    """An unexpected exception inside the writer (a konnx bug) is reported in the fallback line,
    never a traceback: the converter path still delivers."""
    import argparse

    from rich.console import Console

    import konnx.tflite_direct as TD
    from konnx import cli_tflite

    src = _saved(_export(Residual(), (1, 3, 16, 16)), tmp_path, "res.onnx")

    def broken(*a, **k):
        raise KeyError("boom")

    monkeypatch.setattr(TD, "write", broken)
    args = argparse.Namespace(model=str(src), tflite=str(tmp_path / "r.tflite"), input_shape=None, channels_last_io=False,
                              rtol=1e-4, atol=0.0, verbose=False, json=None)
    console = Console(file=io.StringIO(), width=300)
    assert cli_tflite.convert_direct(console, args, onnx.load(str(src))) is False
    assert "a konnx bug" in console.file.getvalue() and "KeyError" in console.file.getvalue()
    assert not (tmp_path / "r.tflite").exists()


def test_bisect_names_the_first_wrong_node_of_a_direct_file(tmp_path):
    """The tensor map of a direct file: all intermediate tensors agree; with one conv's bias
    shifted in the file, bisect names that conv's (fused) output first."""
    import konnx

    model = _export(Residual(), (1, 3, 16, 16), keep_bn=True)
    src = _saved(model, tmp_path, "res.onnx")
    good = tmp_path / "good.tflite"
    good.write_bytes(_direct(model))
    res = konnx.verify(str(src), str(good), bisect=True, input_shapes={"x": (1, 3, 16, 16)}, reference_timeout=0)
    assert res.ok and res.bisect_checked >= 8 and all(r.ok for r in res.nodes)
    bad_model = onnx.load(str(src))
    conv = [n for n in bad_model.graph.node if n.op_type == "Conv"][3]
    w = next(i for i in bad_model.graph.initializer if i.name == conv.input[1])
    w.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(w) + 0.05, w.name))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_direct(bad_model))
    res = konnx.verify(str(src), str(bad), bisect=True, input_shapes={"x": (1, 3, 16, 16)}, reference_timeout=0)
    assert not res.ok
    chain = [conv.output[0]]  # the conv's output, or the ReLU / BatchNorm fused into it
    while True:
        readers = [n for n in model.graph.node if chain[-1] in n.input]
        if len(readers) != 1 or readers[0].op_type not in ("Relu", "BatchNormalization"):
            break
        chain.append(readers[0].output[0])
    assert res.bisect.output in chain, (res.bisect.output, chain)


# ---------------------------------------------------------------------------- transformer ops
def _helper_model(nodes, inputs, output_name, inits=(), opset=20, contrib=False):
    """One float32 input (name, shape) graph of onnx.helper nodes with constant initializers."""
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
    out = [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, None)]
    g = helper.make_graph(nodes, "g", vi, out, [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("com.microsoft", 1)] if contrib else [])
    return helper.make_model(g, opset_imports=imports)


class TinyViT(torch.nn.Module):
    """A ViT in small: patch conv, flatten(2).transpose (a reshape on the channels-last map), class
    token Concat, position Add, LayerNorm, attention (qkv Linear, reshape / permute / unbind,
    q @ k^T, scale, softmax, @ v), GELU MLP, x[:, 0] and a head."""

    def __init__(self, c=16, heads=2, size=8, patch=4):
        super().__init__()
        nn, n = torch.nn, (size // patch) ** 2
        self.patch, self.heads = nn.Conv2d(3, c, patch, patch), heads
        self.cls, self.pos = nn.Parameter(torch.randn(1, 1, c)), nn.Parameter(torch.randn(1, n + 1, c))
        self.ln1, self.ln2, self.ln = nn.LayerNorm(c), nn.LayerNorm(c), nn.LayerNorm(c)
        for ln in (self.ln1, self.ln2, self.ln):
            ln.weight.data.uniform_(0.5, 1.5)
            ln.bias.data.uniform_(-0.5, 0.5)
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.mlp = nn.Sequential(nn.Linear(c, 2 * c), nn.GELU(), nn.Linear(2 * c, c))
        self.head = nn.Linear(c, 5)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        b, n, c = x.shape
        qkv = self.qkv(self.ln1(x)).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        a = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(b, n, c))
        x = x + self.mlp(self.ln2(x))
        return self.head(self.ln(x)[:, 0])


@pytest.mark.parametrize("opset", [17, 20])
def test_tiny_vit(opset):
    """The ViT pattern end to end against onnxruntime: no TRANSPOSE pair around the Squeezes (the
    reshapes act on the stored tensors), the bias Adds merged into FULLY_CONNECTED."""
    model = _export(TinyViT(), (1, 3, 8, 8), opset=opset)
    ops = assert_direct_matches(model, (1, 3, 8, 8))
    assert ops.count("BATCH_MATMUL") == 2 and ops.count("FULLY_CONNECTED") == 5, ops
    split = ops.index("STRIDED_SLICE")  # q, k, v sliced, each squeezed by a RESHAPE of the stored tensor
    assert ops[split:split + 6] == ["STRIDED_SLICE"] * 3 + ["RESHAPE"] * 3, ops
    assert "SOFTMAX" in ops and "CONCATENATION" in ops and "RSQRT" in ops


@pytest.mark.parametrize("axis,shape", [(-1, (2, 5, 8)), (1, (2, 3, 4)), (2, (1, 6, 3, 5))])
def test_layer_normalization(axis, shape):
    rng = np.random.default_rng(2)
    norm = shape[axis:] if axis != -1 else shape[-1:]
    scale, bias = rng.uniform(0.5, 1.5, norm).astype(np.float32), rng.standard_normal(norm).astype(np.float32)
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=axis, epsilon=1e-3)
    ops = assert_direct_matches(_helper_model([node], [("x", shape)], "y", [("s", scale), ("b", bias)], opset=17), shape)
    assert ops.count("MEAN") == 2 and "RSQRT" in ops, ops


def test_layer_normalization_of_ones_and_zeros():
    """A scale of ones and a bias of zeros (a fresh nn.LayerNorm) leave out their MUL and ADD."""
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"])
    inits = [("s", np.ones(8, np.float32)), ("b", np.zeros(8, np.float32))]
    ops = assert_direct_matches(_helper_model([node], [("x", (2, 5, 8))], "y", inits, opset=17), (2, 5, 8))
    assert ops == ["MEAN", "SUB", "MUL", "MEAN", "ADD", "RSQRT", "MUL"], ops


@pytest.mark.parametrize("op,domain,attrs", [("Gelu", "", {}), ("Gelu", "", {"approximate": "tanh"}),
                                              ("Gelu", "com.microsoft", {}), ("FastGelu", "com.microsoft", {})])
def test_gelu(op, domain, attrs):
    node = helper.make_node(op, ["x"], ["y"], domain=domain or None, **attrs)
    ops = assert_direct_matches(_helper_model([node], [("x", (1, 7, 9))], "y", contrib=bool(domain)), (1, 7, 9))
    assert ops == ["GELU"], ops


@pytest.mark.parametrize("shape_b,transposed", [((2, 3, 6, 4), False), ((2, 3, 4, 6), True), ((6, 4), False)])
def test_batch_matmul(shape_b, transposed):
    """Both operands computed (Relu of inputs), the second seen transposed (BATCH_MATMUL's adj_y)
    or broadcast from rank 2."""
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["x2"], ["b0"])]
    if transposed:
        nodes.append(helper.make_node("Transpose", ["b0"], ["b"], perm=[0, 1, 3, 2]))
    else:
        nodes.append(helper.make_node("Identity", ["b0"], ["b"]))
    nodes.append(helper.make_node("MatMul", ["a", "b"], ["y"]))
    model = _helper_model(nodes, [("x", (2, 3, 5, 6)), ("x2", shape_b)], "y", opset=17)
    rng = np.random.default_rng(4)
    feeds = {"x": rng.standard_normal((2, 3, 5, 6)).astype(np.float32),
             "x2": rng.standard_normal(shape_b).astype(np.float32)}
    from ai_edge_litert.interpreter import Interpreter

    data = _direct(model)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    got = Interpreter(model_content=data).get_signature_runner("serving_default")(**feeds)["output_0"]
    assert got.shape == ref.shape and np.max(np.abs(got - ref)) <= 1e-4 * max(1.0, float(np.max(np.abs(ref))))
    ops = _op_names(data)
    assert ops[-1] == "BATCH_MATMUL" and "TRANSPOSE" not in ops, ops  # a transposed operand: adj_y


def test_matmul_rank3_constant_weight_and_bias():
    """MatMul of a rank-3 input by a constant 2D weight then + bias: one FULLY_CONNECTED (keep_num_dims)."""
    rng = np.random.default_rng(5)
    w, bias = rng.standard_normal((8, 6)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["bias", "m"], ["y"])]
    ops = assert_direct_matches(_helper_model(nodes, [("x", (2, 5, 8))], "y", [("w", w), ("bias", bias)], opset=17),
                                (2, 5, 8))
    assert ops == ["FULLY_CONNECTED"], ops


@pytest.mark.parametrize("sizes", [None, [1, 4, 2]])
def test_split(sizes):
    inits = [("split", np.asarray(sizes, np.int64))] if sizes else []
    nodes = [helper.make_node("Split", ["x", "split"] if sizes else ["x"], ["a", "b", "c"], axis=2),
             helper.make_node("Concat", ["c", "a", "b"], ["y"], axis=2)]
    shape = (1, 2, 7 if sizes else 6, 3)
    ops = assert_direct_matches(_helper_model(nodes, [("x", shape)], "y", inits, opset=17), shape)
    assert ops.count("STRIDED_SLICE") == 3, ops


@pytest.mark.parametrize("index", [np.asarray(-2, np.int64), np.asarray([1], np.int64)])
def test_gather_one_constant_index(index):
    nodes = [helper.make_node("Gather", ["x", "i"], ["y"], axis=1)]
    ops = assert_direct_matches(_helper_model(nodes, [("x", (2, 5, 4))], "y", [("i", index)], opset=17), (2, 5, 4))
    assert "STRIDED_SLICE" in ops and "GATHER" not in ops, ops


def test_slice_constant_bounds():
    inits = [("s", np.asarray([1, -5], np.int64)), ("e", np.asarray([100, -1], np.int64)),
             ("a", np.asarray([1, 3], np.int64)), ("st", np.asarray([2, 1], np.int64))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Slice", ["c", "s", "e", "a", "st"], ["y"])]
    w = np.random.default_rng(6).standard_normal((6, 3, 1, 1)).astype(np.float32)
    ops = assert_direct_matches(_helper_model(nodes, [("x", (1, 3, 4, 7))], "y", inits + [("w", w)], opset=17),
                                (1, 3, 4, 7))
    assert "STRIDED_SLICE" in ops, ops


def test_tiny_vit_channels_last_io():
    assert_direct_matches(_export(TinyViT(), (1, 3, 8, 8)), (1, 3, 8, 8), channels_last_io=True)


@pytest.mark.parametrize("case,match", [("gather", "Gather node 'g': Gather needs one constant index"),
                                        ("slice", "Slice node 's': Slice step -1")])
def test_uncovered_transformer_variants_are_named(case, match):
    """Variants the writer leaves to TensorFlow's converter raise DirectUnsupported naming the node."""
    if case == "gather":
        nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Gather", ["r", "i"], ["y"], axis=1, name="g")]
        model = _helper_model(nodes, [("x", (3, 4))], "y", [("i", np.asarray([0, 2], np.int64))], opset=17)
    else:
        inits = [("s", np.asarray([-1], np.int64)), ("e", np.asarray([-100], np.int64)),
                 ("a", np.asarray([1], np.int64)), ("st", np.asarray([-1], np.int64))]
        nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Slice", ["r", "s", "e", "a", "st"], ["y"], name="s")]
        model = _helper_model(nodes, [("x", (2, 5))], "y", inits, opset=17)
    with pytest.raises(DirectUnsupported, match=match):
        _direct(model)
