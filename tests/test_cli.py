"""The konnx command line, run as a user would (a subprocess)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tiny_resnet.onnx"


def konnx_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "konnx", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_convert_example(tmp_path):
    out = tmp_path / "tiny.keras"
    report = tmp_path / "report.json"
    r = konnx_cli("convert", EXAMPLE, "-o", out, "--report", report)
    assert r.returncode == 0, r.stderr
    assert out.exists() and out.stat().st_size > 100_000
    data = json.loads(report.read_text())
    assert sum(data["counts"].values()) == 10  # 9 Conv + 1 MaxPool
    assert not list(tmp_path.glob(".*.keras")), "temporary file left behind"


def test_unsupported_exits_4_and_writes_nothing(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Frobnicate", ["a"], ["b"], name="frob", domain="com.example")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, [1, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    src = tmp_path / "m.onnx"
    onnx.save(m, src)
    out = tmp_path / "m.keras"
    r = konnx_cli("convert", src, "-o", out)
    assert r.returncode == 4
    assert "Frobnicate" in r.stderr and "frob" in r.stderr
    assert not out.exists() and not list(tmp_path.glob("*.keras"))


def test_invalid_model_exits_1(tmp_path):
    src = tmp_path / "bad.onnx"
    src.write_bytes(b"\x00\x01garbage")
    r = konnx_cli("convert", src, "-o", tmp_path / "bad.keras")
    assert r.returncode == 1
    assert "error" in r.stderr.lower() and "Traceback" not in r.stderr
    assert not (tmp_path / "bad.keras").exists()


def test_ops_lists_conv():
    r = konnx_cli("ops")
    assert r.returncode == 0 and "Conv" in r.stdout and "MaxPool" in r.stdout
