"""The konnx command line, run as a user would (a subprocess)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import helper

from tests.util import probe_cli

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


# ----------------------------------------------------------------------------- startup, noise, registration
_HEAVY = ("tensorflow", "keras", "jax", "torch", "matplotlib")
def _probe(args):
    """Run `konnx ARGS` in a fresh interpreter; the exit code and which heavy packages it loaded."""
    return probe_cli(args, _HEAVY)[0]


@pytest.mark.parametrize("args, code", [
    (["--help"], 0), (["--version"], 0), (["convert", "--help"], 0), (["verify", "--help"], 0),
    (["padding", "--size", "224,225", "--kernel", "7,7", "--stride", "2,2", "--pads", "3,3,3,3"], 0),
    (["padding", "--size", "5", "--kernel", "2", "--stride", "2", "--json"], 0),
    (["convert", "model.onnx", "--frobnicate"], 2), (["convert"], 2), ([], 2),
])
def test_light_commands_load_no_backend(args, code):
    """--help, --version, padding and usage errors must not import TensorFlow or Keras."""
    got = _probe(args)
    assert got == {"code": code, "heavy": []}


def test_refused_paths_load_no_backend(tmp_path):
    """An output path refused up front costs no Keras import either."""
    got = _probe(["convert", EXAMPLE, "-o", tmp_path / "no" / "m.keras"])
    assert got == {"code": 1, "heavy": []}


def test_probe_sees_the_backend_when_a_command_loads_it(tmp_path):
    """The probe above can fail: a conversion does load Keras."""
    got = _probe(["convert", EXAMPLE, "-o", tmp_path / "m.keras", "--no-verify", "-q"])
    assert got["code"] == 0 and "keras" in got["heavy"]


def test_help_starts_fast():
    """konnx's own imports for --help (python -X importtime, cumulative, microseconds)."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "konnx", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "exit codes:" in r.stdout
    total = {ln.split("|")[2].strip(): int(ln.split("|")[1]) for ln in r.stderr.splitlines()
             if ln.startswith("import time:") and ln.count("|") == 2 and ln.split("|")[1].strip().isdigit()}
    assert total["konnx"] < 1_000_000, f"import konnx took {total['konnx'] / 1e6:.2f} s"
    assert not {m for m in total if m.split(".")[0] in _HEAVY}


def _konnx_layer_model(path: Path) -> None:
    """A converted model with a konnx-registered layer (Erf has no Keras layer), saved to `path`."""
    import konnx

    nodes = [helper.make_node("Erf", ["x"], ["y"], name="erf")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])])
    model = konnx.convert(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert any(type(layer).__module__.startswith("konnx.") for layer in model.layers), \
        [type(layer) for layer in model.layers]
    model.save(path)


_LOAD = """
import sys
{first}
{second}
assert "keras" in sys.modules
m = keras.models.load_model(sys.argv[1], safe_mode=True)
print("LOADED", type(m.get_layer("erf")).__module__)  # the Erf node's layer (the last is the output "y")
"""


@pytest.mark.parametrize("first, second", [("import konnx", "import keras"), ("import keras", "import konnx"),
                                           ("import konnx", "from keras import models; import keras")])
def test_import_konnx_registers_layers_in_either_order(tmp_path, first, second):
    saved = tmp_path / "erf.keras"
    _konnx_layer_model(saved)
    code = _LOAD.format(first=first, second=second)
    if first == "import konnx":  # importing konnx alone loads no Keras
        code = code.replace("import konnx\n", "import konnx\nassert 'keras' not in sys.modules\n", 1)
    r = subprocess.run([sys.executable, "-c", code, str(saved)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "LOADED konnx." in r.stdout, r.stderr[-3000:]


def test_without_konnx_the_saved_model_does_not_load(tmp_path):
    """The control for the test above: Keras alone cannot rebuild konnx's layers."""
    saved = tmp_path / "erf.keras"
    _konnx_layer_model(saved)
    r = subprocess.run([sys.executable, "-c", _LOAD.format(first="import keras", second=""), str(saved)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "LOADED" not in r.stdout


def test_package_attributes_stay_functions():
    """Importing the submodule konnx.verify must not replace the function konnx.verify."""
    import importlib

    import konnx

    importlib.import_module("konnx.verify")
    assert callable(konnx.verify) and konnx.verify.__name__ == "verify"
    assert callable(konnx.convert) and callable(konnx.convert_detailed)
    code = ("import konnx; assert callable(konnx.api.convert_detailed) and konnx.export.Staged; "
            "assert callable(konnx.verify) and not hasattr(konnx, 'no_such_thing')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


_OURS = re.compile(r"^(konnx vs onnxruntime|TFLite \(LiteRT interpreter\) vs onnxruntime|wrote |[┏┃┡│└━]|\s*$)")


def test_conversion_stderr_holds_only_konnx_output(tmp_path):
    """No TensorFlow/absl/CUDA/LiteRT log lines and no Python warnings from the backend by default,
    with every output at once (all written together)."""
    r = konnx_cli("convert", EXAMPLE, "-o", tmp_path / "t.keras", "--saved-model", tmp_path / "sm",
                  "--tflite", tmp_path / "t.tflite", "--report", tmp_path / "r.md", "--json", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    foreign = [ln for ln in r.stderr.splitlines() if not _OURS.match(ln)]
    assert not foreign, foreign
    assert r.stderr.count("wrote ") == 5 and r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.md", "sm", "t.keras", "t.tflite"]
    assert json.loads((tmp_path / "r.json").read_text())["report"] == str(tmp_path / "r.md")


def test_exit_codes_documented_in_help():
    r = konnx_cli("--help")
    for line in ("0  ok", "1  error", "2  usage", "3  outputs differ", "4  unsupported ops", "5  internal error"):
        assert line in r.stdout


_NOISY = """
import os, sys, warnings
from konnx import api, cli
original = api.convert_detailed
def noisy(*args, **kwargs):
    os.write(2, b"NATIVE-LOG-LINE\\n")   # what a native library writes, straight to fd 2
    warnings.warn("PY-BACKEND-WARNING")
    return original(*args, **kwargs)
api.convert_detailed = noisy
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_backend_noise_hidden_unless_verbose(tmp_path, verbose):
    """Native log lines and Python warnings raised during a command reach stderr only with --verbose;
    konnx's own lines always do."""
    src = tmp_path / "relu.onnx"
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), src)
    args = ["convert", str(src), "-o", str(tmp_path / "m.keras")] + (["--verbose"] if verbose else [])
    r = subprocess.run([sys.executable, "-c", _NOISY, *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert ("NATIVE-LOG-LINE" in r.stderr) == verbose and ("PY-BACKEND-WARNING" in r.stderr) == verbose, r.stderr
    assert "wrote" in r.stderr and "konnx vs onnxruntime" in r.stderr
