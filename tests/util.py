"""Shared test helpers: build small ONNX graphs and compare konnx against onnxruntime."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import weakref

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

import konnx


def tolerance(reference: np.ndarray) -> float:
    """The project's tolerance: 1e-4 x max(1, max |reference|)."""
    ref = np.asarray(reference)
    if ref.size == 0 or ref.dtype == bool or not np.issubdtype(ref.dtype, np.number):
        return 0.0
    return 1e-4 * max(1.0, float(np.max(np.abs(ref.astype(np.float64)))))


def make_model(nodes, inputs, outputs, initializers=(), opset=17, name="test"):
    """inputs/outputs: list of (name, elem_type or np dtype, shape)."""
    def vi(n, t, s):
        if not isinstance(t, int):
            t = helper.np_dtype_to_tensor_dtype(np.dtype(t))
        return helper.make_tensor_value_info(n, t, s)

    inits = [onnx.numpy_helper.from_array(np.asarray(a), n) for n, a in initializers]
    g = helper.make_graph(list(nodes), name, [vi(*i) for i in inputs], [vi(*o) for o in outputs], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, 10)
    return m


def run_ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def run_keras(keras_model, feeds: dict, onnx_model: onnx.ModelProto) -> list[np.ndarray]:
    init = {i.name for i in onnx_model.graph.initializer}
    names = [i.name for i in onnx_model.graph.input if i.name not in init]
    out = keras_model([feeds[n] for n in names]) if len(names) != 1 else keras_model(feeds[names[0]])
    if not isinstance(out, (list, tuple)):
        out = [out]
    return [np.asarray(o) for o in out]


def _assert_outputs(ref, got, label=""):
    where = f" ({label})" if label else ""
    assert len(ref) == len(got), f"{len(got)} outputs{where}, onnxruntime gives {len(ref)}"
    for i, (r, g) in enumerate(zip(ref, got)):
        assert tuple(r.shape) == tuple(g.shape), f"output {i}{where}: shape {g.shape}, onnxruntime {r.shape}"
        if r.dtype == bool or not np.issubdtype(r.dtype, np.floating):
            np.testing.assert_array_equal(g.astype(r.dtype), r, err_msg=f"output {i}{where}")
        else:
            err = float(np.max(np.abs(g.astype(np.float64) - r))) if r.size else 0.0
            assert err <= tolerance(r), f"output {i}{where}: max abs error {err:.3g} > {tolerance(r):.3g}"


def assert_matches_ort(model: onnx.ModelProto, feeds: dict, keras_model=None, **convert_kwargs):
    """Convert `model` with konnx (unless given) and compare every output with onnxruntime. The
    converted model's serialization is checked the same way (see `reserialized`): rebuilt from
    its config with its weights, and (for a sample) saved to a .keras file and reloaded."""
    if keras_model is None:
        keras_model = konnx.convert(model, **convert_kwargs)
    ref = run_ort(model, feeds)
    _assert_outputs(ref, run_keras(keras_model, feeds, model))
    for label, again in reserialized(keras_model):
        _assert_outputs(ref, run_keras(again, feeds, model), label)
    return keras_model


def assert_refused_like_ort(bad, good, expect: str, node_name: str = "n"):
    """`bad` (model, feeds) is refused by konnx's plan naming node `node_name` and saying
    `expect`, and onnxruntime refuses it too (session or run); `good`, its valid neighbour,
    matches onnxruntime."""
    import pytest

    model, feeds = bad
    with pytest.raises(konnx.UnsupportedOpError) as info:
        konnx.convert(model)
    assert f"'{node_name}'" in str(info.value) and expect in str(info.value), str(info.value)
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises several types
        run_ort(model, feeds)
    assert_matches_ort(*good)


# (layer class, konnx function) pairs already saved to a .keras file by `reserialized` in this
# process, and the rebuilt twin of each model already checked (a model is often checked on
# several inputs)
_SAVED_KINDS: set = set()
_TWINS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _unwrap(m):
    """(keras.Model, rewrap) for a Keras model or a wrapper holding one as `.model` (such as
    tests/ops/cl_helpers.ChannelsLastIO); (None, None) for any other callable."""
    if isinstance(m, keras.Model):
        return m, lambda twin: twin
    inner = getattr(m, "model", None)
    if isinstance(inner, keras.Model):
        def rewrap(twin):
            w = copy.copy(m)
            w.model = twin
            return w
        return inner, rewrap
    return None, None


def reserialized(keras_model) -> list:
    """[(label, model)]: `keras_model` rebuilt by keras.Model.from_config(get_config()) with its
    weights set; and, when it holds a (layer class, konnx function) pair no model saved before
    it in this process held, also saved to a .keras file and reloaded with safe_mode=True (so
    every layer kind and registered function the tests reach is saved at least once)."""
    km, rewrap = _unwrap(keras_model)
    if km is None:
        return []
    out = []
    twin = _TWINS.get(km)
    if twin is None:
        twin = keras.Model.from_config(km.get_config())
        twin.set_weights(km.get_weights())
        _TWINS[km] = twin
    out.append(("rebuilt from get_config/from_config", rewrap(twin)))
    kinds = {(type(layer).__name__, getattr(layer, "fn", None)) for layer in km.layers} - _SAVED_KINDS
    if kinds:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model.keras")
            km.save(path)
            loaded = keras.models.load_model(path, safe_mode=True)
        _SAVED_KINDS.update(kinds)
        out.append(("saved to .keras and reloaded", rewrap(loaded)))
    return out


def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def run_script_under_backend(script: str, payload, backend: str, timeout: int) -> dict:
    """Run `script` (Python source, given json.dumps(payload) as argv[1]) in a fresh process with
    KERAS_BACKEND=backend from the repository root; return the JSON object it prints on a line
    starting with "RESULT ". A Keras process has one backend, so other backends run this way."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", script, json.dumps(payload)], capture_output=True, text=True,
                       env=env, cwd=Path(__file__).resolve().parent.parent, timeout=timeout)
    assert r.returncode == 0, r.stderr[-4000:]
    line = next((x for x in r.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, f"no RESULT line from the {backend} process:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return json.loads(line[len("RESULT "):])


_CLI_PROBE = """
import json, runpy, sys
watch = set(json.loads(sys.argv[2]))
sys.argv = ["konnx"] + json.loads(sys.argv[1])
code = 0
try:
    runpy.run_module("konnx", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & watch)
print("PROBE " + json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def probe_cli(args, watch, timeout: float = 120) -> tuple:
    """Run `konnx ARGS` in a fresh interpreter: ({"code": exit code, "heavy": which of the
    top-level packages `watch` it imported}, its stderr)."""
    r = subprocess.run([sys.executable, "-c", _CLI_PROBE, json.dumps([str(a) for a in args]), json.dumps(list(watch))],
                       capture_output=True, text=True, timeout=timeout)
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("PROBE ")]
    assert line, r.stderr[-3000:]
    return json.loads(line[-1][len("PROBE "):]), r.stderr
