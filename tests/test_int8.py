"""int8 post-training quantization (issue 17): `konnx convert --int8 --calibration` end to end on a
small CNN, and the budget loop keeping a deliberately sensitive layer in float. The oracle is
onnxruntime on the ONNX model; the int8 file runs in the LiteRT interpreter."""
from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import konnx
from konnx import export as E
from konnx import quantize as Q
from konnx.verify import run_onnxruntime

from .test_export import onnx_nets


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    return onnx_nets(tmp_path_factory.getbasetemp() / "issue7_nets")


def _ort(path, x):
    proto = onnx.load(str(path))
    return run_onnxruntime(proto, {proto.graph.input[0].name: x})[proto.graph.output[0].name]


def _int8_weights(tflite) -> int:
    interp = E.tflite_interpreter(tflite)
    return sum(1 for t in interp.get_tensor_details() if t["dtype"] == np.int8 and len(t["shape"]) >= 2
               and "conv" in t["name"].lower())


def test_cli_int8_end_to_end(nets, tmp_path):
    """ResNet-style net (3x3 stride-2 convs, a padded max pool): int8 file written, at most 0.6x the
    float file, int8 convolution weights, and on fresh samples (not the calibration ones) within
    the default budget of onnxruntime, checked here independently of konnx's own check."""
    from konnx.cli import main

    rng = np.random.default_rng(0)
    np.save(tmp_path / "cal.npy", rng.standard_normal((40, 3, 32, 32)).astype(np.float32))
    out = tmp_path / "m_int8.tflite"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["convert", str(nets["resnet"]), "--tflite", str(out), "--int8", "--calibration",
                     str(tmp_path / "cal.npy"), "--channels-last-io", "--json", str(tmp_path / "r.json")])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())["int8"]
    assert report["ok"] and report["held_out_samples"] == 8 and report["calibration_samples"] == 32
    float_file = E.export_tflite(konnx.convert(nets["resnet"], channels_last_io=True), tmp_path / "f.tflite")
    assert out.stat().st_size < 0.6 * float_file.stat().st_size
    assert _int8_weights(out) >= 5 and _int8_weights(float_file) == 0
    assert E.tflite_input_shapes(out) == {"x": (1, 32, 32, 3)}
    run = E.tflite_runner(out)
    agree, cos = [], []
    for i in range(8):
        x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
        ref, got = _ort(nets["resnet"], x), run(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))[0]
        cos.append(Q.cosine(ref, got))
        agree.append(np.argmax(ref) == np.argmax(got))
    assert min(cos) >= 0.99 and np.mean(agree) >= 0.75, (cos, agree)
    assert min(cos) < 0.99999, "an int8 model should not be exact: is the file really quantized?"


def _sensitive_mlp(path: Path) -> None:
    """fc1 carries one weight of 1e3 per output row on input feature 0, which the data keeps at 0:
    float ignores it, but per-channel int8 weights get a step of ~8 and every ordinary weight
    (~0.25) rounds to zero. Only keeping fc1 in float restores the function."""
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(16, 32), nn.Linear(32, 32), nn.Linear(32, 10)

        def forward(self, x):
            return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    torch.manual_seed(0)
    model = MLP().eval()
    with torch.no_grad():
        model.fc1.weight[:, 0] = 1e3
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 16),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"])


def test_budget_loop_keeps_the_sensitive_layer_in_float(tmp_path):
    path = tmp_path / "mlp.onnx"
    _sensitive_mlp(path)
    x = np.random.default_rng(1).standard_normal((30, 16)).astype(np.float32)
    x[:, 0] = 0.0
    model = konnx.convert(path)
    res = Q.quantize_int8(model, path, {"x": x}, budget=Q.Budget(0.99, 0.99))
    assert res.steps[0][1] < 0.99, f"all-int8 should miss the budget: {res.steps}"
    assert res.ok, res
    assert any("fc1" in f.tensor for f in res.float_layers), res.float_layers
    assert "fc1" in res.float_layers[0].tensor, "fc1 should be measured as the most sensitive layer"
    # the result, checked independently: every held-out sample (every 5th) close to onnxruntime
    run = E.tflite_runner(res.data)
    for xi in x[4::5]:
        assert Q.cosine(_ort(path, xi[None]), run(xi[None])[0]) >= 0.99
    # and a budget it cannot meet within the limit says so
    res = Q.quantize_int8(model, path, {"x": x}, budget=Q.Budget(1.0, 1.0), max_float_layers=1)
    assert not res.ok and "limit 1" in res.reason and len(res.float_layers) == 1


def test_calibration_data_errors_name_what_was_expected(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((4, 3, 16, 16), np.float32))
    with pytest.raises(Q.QuantizationError, match=r"'x' expects samples of shape \[None, 3, 32, 32\]"):
        Q.load_calibration(tmp_path / "bad.npy", {"x": (None, 3, 32, 32)})
    with pytest.raises(Q.QuantizationError, match="inputs"):
        Q.load_calibration(tmp_path / "bad.npy", {"a": (None, 3), "b": (None, 3)})
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 3), np.float32), c=np.zeros((3, 3), np.float32))
    with pytest.raises(Q.QuantizationError, match="expected one per model input"):
        Q.load_calibration(tmp_path / "two.npz", {"a": (None, 3), "b": (None, 3)})
    (tmp_path / "empty").mkdir()
    with pytest.raises(Q.QuantizationError, match="no .npy or .npz"):
        Q.load_calibration(tmp_path / "empty", {"x": (None, 3)})
    np.save(tmp_path / "one.npy", np.zeros((3,), np.float32))
    with pytest.raises(Q.QuantizationError, match="at least 2 samples"):
        Q.load_calibration(tmp_path / "one.npy", {"x": (None, 3)})
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3):
        np.savez(folder / f"{i}.npz", a=np.full((2, 3), i, np.float32), b=np.full((2, 2), -i, np.float32))
    got = Q.load_calibration(folder, {"a": (None, 3), "b": (None, 2)})
    assert got["a"].shape == (6, 3) and got["b"].shape == (6, 2) and got["a"][5, 0] == 2
    assert Q.Budget.parse("top1=0.5") == Q.Budget(0.99, 0.5)
    with pytest.raises(Q.QuantizationError, match="unknown key"):
        Q.Budget.parse("cosine=0.9")


def test_int8_ops_xnnpack_cannot_run_stay_float(nets):
    """LiteRT's XNNPACK has no int8 HARD_SWISH (the reference kernel then dominates a MobileNetV3):
    the MobileNet-style net's hard-swish stays float, and every op of the result is delegated."""
    model = konnx.convert(nets["mobilenet"], channels_last_io=True)
    x = np.random.default_rng(2).standard_normal((10, 3, 32, 32)).astype(np.float32)
    res = Q.quantize_int8(model, nets["mobilenet"], {"x": x}, channels_last_io=True)
    assert res.ok and res.float_ops == ["HARD_SWISH"], res
    assert Q.undelegated_ops(res.data) == [] and Q.undelegated_ops(res.data, 0) == []  # int8, float32
    assert _int8_weights(res.data) >= 3


def test_cli_int8_outside_the_budget_writes_nothing(nets, tmp_path, capsys):
    """A budget no int8 model meets (cosine 1.0): exit 3, nothing written, and the report says why."""
    from konnx.cli import main

    np.save(tmp_path / "cal.npy", np.random.default_rng(3).standard_normal((10, 3, 32, 32)).astype(np.float32))
    args = ["convert", str(nets["mobilenet"]), "--tflite", str(tmp_path / "m.tflite"), "--int8", "--calibration",
            str(tmp_path / "cal.npy"), "--int8-budget", "cos=1.0", "-o", str(tmp_path / "m.keras")]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.npy"]
    err = capsys.readouterr().err
    assert "outside the budget" in err and "limit 16" in err and "kept float:" in err
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args[:-2] + ["--int8-budget", "cosine=2"]) == 1  # refused before converting
    assert "unknown key" in capsys.readouterr().err
