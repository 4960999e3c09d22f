"""Converted models on the JAX and PyTorch Keras backends (issue 7).

Each backend runs in its own subprocess with KERAS_BACKEND set (this pytest process uses
TensorFlow). There the ResNet- and MobileNet-style networks are converted fresh AND loaded from
the .keras files this process saved (safe_mode=True), both are compared with onnxruntime, one
training step runs, SavedModel/TFLite export is refused with a clear error, and TensorFlow must
never have been imported."""
from __future__ import annotations

import importlib.util
import textwrap

import numpy as np
import onnx
import pytest

import konnx
from konnx import export as E
from konnx.verify import make_inputs, run_onnxruntime

from .test_export import RTOL, max_err_ratio, onnx_nets
from .util import run_script_under_backend


_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    jobs = json.loads(sys.argv[1])
    import keras
    import konnx
    from konnx import export

    res = {"backend": keras.backend.backend(), "nets": {}}
    for name, job in jobs.items():
        x = np.load(job["npz"])["x"]
        fresh = konnx.convert(job["onnx"])
        np.save(job["fresh"], keras.ops.convert_to_numpy(fresh(x)))
        loaded = keras.models.load_model(job["keras"], safe_mode=True)
        np.save(job["loaded"], keras.ops.convert_to_numpy(loaded(x)))
        res["nets"][name] = {"trainable": len(fresh.trainable_weights)}
        if name == "resnet":
            # one fine-tuning step on this backend: the weights move
            before = [keras.ops.convert_to_numpy(w).copy() for w in fresh.trainable_weights]
            fresh.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-2), loss="mse")
            y = np.zeros((x.shape[0], 10), np.float32)
            fresh.train_on_batch(x, y)
            after = [keras.ops.convert_to_numpy(w) for w in fresh.trainable_weights]
            res["changed"] = sum(not np.array_equal(a, b) for a, b in zip(before, after))
            try:
                export.tflite_model(fresh)
            except export.ExportError as e:
                res["export_error"] = str(e)
    res["tensorflow_modules"] = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
    print("RESULT " + json.dumps(res))
""")


def _available(backend: str) -> bool:
    return importlib.util.find_spec("jax" if backend == "jax" else "torch") is not None


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """The networks, their .keras files (saved here, TensorFlow backend), inputs and references."""
    root = tmp_path_factory.mktemp("backends")
    jobs, refs = {}, {}
    for name, path in onnx_nets(tmp_path_factory.getbasetemp() / "issue7_nets").items():
        proto = onnx.load(str(path))
        feeds = make_inputs(proto, seed=5)
        refs[name] = run_onnxruntime(proto, feeds)[proto.graph.output[0].name]
        np.savez(root / f"{name}.npz", x=feeds["x"])
        keras_path = E.save_keras(konnx.convert(str(path)), root / f"{name}.keras")
        jobs[name] = {"onnx": str(path), "keras": str(keras_path), "npz": str(root / f"{name}.npz"),
                      "fresh": str(root / f"{name}_fresh.npy"), "loaded": str(root / f"{name}_loaded.npy")}
    return jobs, refs


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_backend_matches_onnxruntime_without_tensorflow(backend, jobs):
    if not _available(backend):
        pytest.skip(f"{backend} is not installed")
    jobs, refs = jobs
    res = run_script_under_backend(_SCRIPT, jobs, backend, timeout=400)
    assert res["backend"] == backend
    assert res["tensorflow_modules"] == [], f"tensorflow imported under {backend}: {res['tensorflow_modules'][:5]}"
    for name, job in jobs.items():
        for kind in ("fresh", "loaded"):
            err = max_err_ratio(refs[name], np.load(job[kind]))
            assert err <= RTOL, f"{backend} {name} ({kind}): error {err:.3g} x max(1, max|ref|)"
        assert res["nets"][name]["trainable"] > 0
    assert res["changed"] > 0, "a training step changed no weight"
    assert "KERAS_BACKEND=tensorflow" in res["export_error"]
