"""Every exception that leaves konnx.convert, konnx.verify, the ONNX backend (konnx.backend) and the
CLI on hostile input is a konnx error (a ConversionError subclass) naming what was wrong and what
was expected; the CLI turns each into one line and exit code 1, never an internal error (issue 14)."""
from __future__ import annotations


import numpy as np
import pytest
from onnx import helper

import konnx
from konnx import backend, cli
from konnx.errors import ConversionError, InvalidModelError
from tests.util import make_model

X = np.ones((1, 3), np.float32)


def _relu():
    return make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [("x", np.float32, [1, 3])],
                      [("y", np.float32, [1, 3])])


def _add_float_int():  # valid protobuf and graph wiring, types the Add schema forbids
    return make_model([helper.make_node("Add", ["x", "z"], ["y"], name="add")],
                      [("x", np.float32, [1, 3]), ("z", np.int64, [1, 3])], [("y", np.float32, [1, 3])])


def _relu_of_string():
    return make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [("x", np.str_, [1, 3])],
                      [("y", np.str_, [1, 3])])


def _hostile_files(folder) -> dict:
    """name -> (path, exception type, fragment of its message)."""
    data = _relu().SerializeToString()
    rng = np.random.default_rng(0)
    flipped = bytearray(data)
    for i in rng.choice(len(flipped), size=8, replace=False):
        flipped[i] ^= 0xFF
    cases = {
        "truncated": (data[: len(data) // 2], InvalidModelError, "truncated"),
        "random bytes": (rng.bytes(400), InvalidModelError, "not"),
        "empty": (b"", InvalidModelError, "empty"),
        "text": (b"ir_version: 8\n" * 20, InvalidModelError, "ONNX"),
        "add float + int64": (_add_float_int().SerializeToString(), InvalidModelError, "one type 'T'"),
        "relu of strings": (_relu_of_string().SerializeToString(), InvalidModelError, "allows 'T' to be only"),
    }
    out = {}
    for name, (payload, exc, fragment) in cases.items():
        path = folder / (name.replace(" ", "_").replace("+", "plus") + ".onnx")
        path.write_bytes(payload)
        out[name] = (path, exc, fragment)
    out["byte flips"] = (folder / "flipped.onnx", ConversionError, "")
    out["byte flips"][0].write_bytes(bytes(flipped))
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return _hostile_files(tmp_path_factory.mktemp("hostile"))


CASES = ["truncated", "random bytes", "empty", "text", "add float + int64", "relu of strings", "byte flips"]
ENTRY_POINTS = {
    "convert": lambda p: konnx.convert(p),
    "convert(verify=True)": lambda p: konnx.convert(p, verify=True),
    "verify": lambda p: konnx.verify(p),
    "backend.prepare": lambda p: backend.prepare(str(p)),
    "backend.run_model": lambda p: backend.run_model(p.read_bytes(), [X]),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_hostile_files_give_konnx_errors(hostile, case, entry):
    path, exc, fragment = hostile[case]
    try:
        ENTRY_POINTS[entry](path)
    except ConversionError as e:
        assert isinstance(e, exc), f"{entry} on {case}: {type(e).__name__}, expected {exc.__name__}: {e}"
        assert fragment in str(e), f"{entry} on {case}: {e}"
        return
    # byte flips may land in a name or a float and leave a valid model: then it must convert cleanly
    assert case == "byte flips", f"{entry} accepted a {case} model"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["convert", "verify", "check", "codegen"])
def test_cli_on_hostile_files_exits_1(hostile, tmp_path, capsys, case, command):
    path = hostile[case][0]
    out = {"convert": ["-o", str(tmp_path / "out.keras")], "codegen": ["-o", str(tmp_path / "code")]}
    args = [command, str(path)] + out.get(command, [])
    code = cli.main(args)
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err, err
    if case == "byte flips" and code == 0:
        return
    assert code == 1, f"konnx {command} on {case}: exit {code}: {err}"
    assert not (tmp_path / "out.keras").exists() and not (tmp_path / "code").exists()


WRONG_ARGUMENTS = {
    "convert(123)": (lambda: konnx.convert(123), "expected an ONNX model as a path, bytes or onnx.ModelProto"),
    "convert(None)": (lambda: konnx.convert(None), "got NoneType"),
    "convert(input_shapes='x')": (lambda: konnx.convert(_relu(), input_shapes="x"), "input_shapes must be a dict"),
    "verify(keras_model=42)": (lambda: konnx.verify(_relu(), 42), "keras_model must be a Keras model"),
    "verify(keras_model=missing)": (lambda: konnx.verify(_relu(), "missing.keras"), "file not found"),
    "verify(inputs='x')": (lambda: konnx.verify(_relu(), inputs="x"), "inputs: expected a dict"),
    "verify(inputs=[5])": (lambda: konnx.verify(_relu(), inputs=[5]), "inputs: expected a dict"),
    "verify(inputs={'x': 'text'})": (lambda: konnx.verify(_relu(), inputs={"x": "text"}), "input 'x' has shape []"),
    "verify(inputs int)": (lambda: konnx.verify(_relu(), inputs={"x": X.astype(np.int64)}), "dtype int64"),
    "verify(rtol='a')": (lambda: konnx.verify(_relu(), rtol="a"), "rtol must be a finite number"),
    "backend device": (lambda: backend.prepare(_relu(), "CUDA"), "runs on CPU"),
    "backend.run count": (lambda: backend.prepare(_relu()).run([X, X]), "got 2 values"),
    "backend.run name": (lambda: backend.prepare(_relu()).run({"q": X}), "missing ['x']"),
    "backend.run shape": (lambda: backend.prepare(_relu()).run([np.ones((2, 5), np.float32)]), "shape [2, 5]"),
    "backend.run dtype": (lambda: backend.prepare(_relu()).run([X.astype(np.int64)]), "dtype int64"),
    "backend.run_node strings": (lambda: backend.run_node(helper.make_node("Relu", ["a"], ["b"]), [np.array(["s"])]),
                                 "STRING"),
}


@pytest.mark.parametrize("case", list(WRONG_ARGUMENTS))
def test_wrong_arguments_give_konnx_errors(case):
    call, fragment = WRONG_ARGUMENTS[case]
    with pytest.raises(ConversionError) as info:
        call()
    assert fragment in str(info.value)


def test_backend_errors_stay_value_errors_for_the_backend_api():
    with pytest.raises(ValueError):
        backend.prepare(_relu()).run([X, X])


def test_onnxruntime_refusing_is_a_konnx_error(monkeypatch):
    """verify names onnxruntime when it cannot run the model (here: made to fail)."""
    import importlib

    verify_module = importlib.import_module("konnx.verify")  # konnx.verify is also the function

    def refuse(*a, **k):
        raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : simulated")

    monkeypatch.setattr(verify_module, "run_onnxruntime", refuse)
    with pytest.raises(ConversionError, match="onnxruntime cannot run this model"):
        konnx.verify(_relu())
