"""The whole torch.nn model zoo of test_torch_models.py on the PyTorch and JAX Keras backends.

This pytest process runs TensorFlow, and a Keras process has one backend: so one subprocess per
backend (KERAS_BACKEND=torch / jax) converts every export (both PyTorch exporters, dynamic
batch) with konnx and runs it at two batch sizes; the outputs come back as .npy files and are
compared here with onnxruntime, at the project's tolerance. The subprocess also reports whether
TensorFlow was imported (it must not be).
"""
from __future__ import annotations

import importlib.util
import textwrap

import numpy as np
import onnx
import pytest

from tests.util import run_ort, run_script_under_backend

from . import nets
from .checks import assert_close

BATCHES = (1, 3)
NAMES = [n for n, s in nets.NETS.items() if not s.slow]

# (backend, net, exporter) -> reason: cases that fail for a reason outside konnx
KNOWN_FAILURES: dict = {}

_SCRIPT = textwrap.dedent("""
    import json, sys, traceback
    import numpy as np
    import keras
    import konnx

    jobs = json.loads(sys.argv[1])
    res = {"backend": keras.backend.backend(), "errors": {}}
    for key, job in jobs.items():
        try:
            model = konnx.convert(job["onnx"])
            for i, x in enumerate(job["inputs"]):
                out = model(np.load(x))
                out = out if isinstance(out, (list, tuple)) else [out]
                np.savez(job["outputs"][i], *[keras.ops.convert_to_numpy(o) for o in out])
        except Exception:
            res["errors"][key] = traceback.format_exc()[-3000:]
    res["tensorflow_modules"] = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
    print("RESULT " + json.dumps(res))
""")


@pytest.fixture(scope="module")
def zoo(exports, tmp_path_factory):
    """Every (net, exporter): its ONNX file, input files and onnxruntime references."""
    root = tmp_path_factory.mktemp("zoo_backends")
    cases = {}
    for name in NAMES:
        for dynamo in (False, True):
            key = f"{name}-{'dynamo' if dynamo else 'legacy'}"
            path = exports.get(name, dynamo, dynamic_batch=True)
            proto = onnx.load(str(path))
            inputs, refs = [], []
            for batch in BATCHES:
                x = nets.example_input(name, batch, seed=20 + batch).numpy()
                np.save(root / f"{key}-b{batch}.npy", x)
                inputs.append(str(root / f"{key}-b{batch}.npy"))
                refs.append(run_ort(proto, {"x": x}))
            cases[key] = {"onnx": str(path), "inputs": inputs, "refs": refs}
    return root, cases


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_model_zoo_on_backend(backend, zoo):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    root, cases = zoo
    jobs = {key: {"onnx": c["onnx"], "inputs": c["inputs"],
                  "outputs": [str(root / f"{backend}-{key}-{i}.npz") for i in range(len(c["inputs"]))]}
            for key, c in cases.items()}
    res = run_script_under_backend(_SCRIPT, jobs, backend, timeout=900)
    assert res["backend"] == backend
    assert res["tensorflow_modules"] == [], f"tensorflow imported under {backend}"
    failures = []
    for key, c in cases.items():
        known = KNOWN_FAILURES.get((backend, key))
        try:
            assert key not in res["errors"], f"{key}: conversion or run failed:\n{res['errors'].get(key)}"
            for i, (refs, out) in enumerate(zip(c["refs"], jobs[key]["outputs"])):
                got = np.load(out)
                assert len(got.files) == len(refs), f"{key}: {len(got.files)} outputs, onnx has {len(refs)}"
                for j, ref in enumerate(refs):
                    assert_close(got[f"arr_{j}"], ref, f"{backend} {key}, batch {BATCHES[i]}, output {j}")
            assert known is None, f"{key} passes on {backend}: remove it from KNOWN_FAILURES"
        except AssertionError as e:
            if known is None or "remove it from" in str(e):
                failures.append(str(e))
    assert not failures, "\n\n".join(failures)
