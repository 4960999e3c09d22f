"""konnx verify: agreement with onnxruntime, the bisect that names a broken node, exit codes."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import konnx
from konnx import cli
from konnx.ops import load_all
from konnx.ops.registry import REGISTRY
from konnx.verify import make_inputs, verify
from tests.util import make_model, rand

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tiny_resnet.onnx"


def _sabotage(monkeypatch, op_type: str, node_name: str):
    """Make one op's converter subtly wrong (+1e-2) on the node called `node_name` only."""
    load_all()
    specs = REGISTRY[("", op_type)]
    broken = []
    for spec in specs:
        def fn(ctx, node, _orig=spec.fn):
            out = _orig(ctx, node)
            if node.name != node_name:
                return out
            kt = ctx.op("binary", [out.kt, np.float32(1e-2)], suffix="sabotage", op="add")
            return ctx.tensor(kt, out.perm)
        broken.append(dataclasses.replace(spec, fn=fn))
    monkeypatch.setitem(REGISTRY, ("", op_type), broken)


def _cnn():
    w1, w2 = rand(4, 3, 3, 3, seed=1) * 0.3, rand(4, 4, 3, 3, seed=2) * 0.3
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("MaxPool", ["r2"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Sigmoid", ["p"], ["y"], name="sig")]
    return make_model(nodes, [("x", np.float32, ("N", 3, 16, 16))], [("y", np.float32, None)],
                      [("w1", w1), ("w2", w2)])


def test_correct_model_verifies():
    r = verify(_cnn(), bisect=True)
    assert r.ok and r.bisect is None and r.bisect_checked == 6
    assert r.outputs[0].max_abs <= r.outputs[0].tolerance


@pytest.mark.parametrize("op_type,node_name", [("Relu", "relu2"), ("Conv", "conv1"), ("MaxPool", "pool")])
def test_bisect_names_the_broken_node(monkeypatch, op_type, node_name):
    _sabotage(monkeypatch, op_type, node_name)
    r = verify(_cnn(), bisect=True)
    assert not r.ok
    assert r.bisect is not None and r.bisect.node == node_name and r.bisect.op_type == op_type
    if op_type in ("Conv", "MaxPool"):
        assert r.bisect.padding is not None and r.bisect.padding["decision"]


def test_bisect_on_channels_last_io(monkeypatch):
    _sabotage(monkeypatch, "Conv", "conv2")
    r = verify(_cnn(), bisect=True, channels_last_io=True)
    assert not r.ok and r.bisect.node == "conv2"


def test_int64_index_input_stays_in_range():
    table = rand(50, 8)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], axis=0),
             helper.make_node("ReduceSum", ["e"], ["y"], keepdims=0, axes=[1])]
    m = make_model(nodes, [("ids", np.int64, ("B", "T"))], [("y", np.float32, None)], [("table", table)], opset=12)
    feeds = make_inputs(m)
    assert feeds["ids"].dtype == np.int64 and feeds["ids"].max() < 50 and feeds["ids"].min() >= 0
    assert verify(m).ok


def _save(model, tmp_path, name="m.onnx"):
    p = tmp_path / name
    onnx.save(model, p)
    return p


def test_cli_exit_codes(monkeypatch, tmp_path, capsys):
    src = _save(_cnn(), tmp_path)
    out = tmp_path / "m.keras"
    assert cli.main(["convert", str(src), "-o", str(out), "-q"]) == 0 and out.exists()
    assert cli.main(["verify", str(src), str(out), "-q"]) == 0
    assert cli.main(["verify", str(src), "-q"]) == 0
    js = tmp_path / "v.json"
    assert cli.main(["verify", str(src), "--bisect", "--json", str(js), "-q"]) == 0
    assert json.loads(js.read_text())["verify"]["ok"] is True

    _sabotage(monkeypatch, "Relu", "relu1")
    bad_out = tmp_path / "bad.keras"
    assert cli.main(["convert", str(src), "-o", str(bad_out), "-q"]) == 3
    assert not bad_out.exists(), "a conversion that fails verification must write nothing"
    assert cli.main(["convert", str(src), "-o", str(bad_out), "-q", "--force"]) == 0 and bad_out.exists()
    bad_out.unlink()
    assert cli.main(["convert", str(src), "-o", str(bad_out), "-q", "--no-verify"]) == 0 and bad_out.exists()
    js = tmp_path / "bad.json"
    assert cli.main(["verify", str(src), "--bisect", "--json", str(js)]) == 3
    data = json.loads(js.read_text())["verify"]
    assert data["ok"] is False and data["bisect"]["node"] == "relu1"
    assert "relu1" in capsys.readouterr().err
    # the good .keras file still verifies against onnxruntime
    assert cli.main(["verify", str(src), str(out), "-q"]) == 0


def test_cli_inputs_file_and_errors(tmp_path):
    src = _save(_cnn(), tmp_path)
    npz = tmp_path / "in.npz"
    np.savez(npz, x=rand(3, 3, 16, 16, seed=9))
    assert cli.main(["verify", str(src), "--inputs", str(npz), "-q"]) == 0
    assert cli.main(["verify", str(tmp_path / "missing.onnx"), "-q"]) == 1
    assert cli.main(["verify", str(src), "--inputs", str(tmp_path / "nope.npz"), "-q"]) == 1


def test_verify_example_model_python_api():
    r = konnx.verify(str(EXAMPLE))
    assert r.ok and r.outputs[0].shape == [2, 10]
