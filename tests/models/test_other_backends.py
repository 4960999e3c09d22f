"""The torch.nn model zoo of test_torch_models.py and the transformer/sequence nets of
test_transformers.py on the PyTorch and JAX Keras backends.

This pytest process runs TensorFlow, and a Keras process has one backend: so one subprocess per
backend (KERAS_BACKEND=torch / jax) converts every export (both PyTorch exporters, dynamic
batch and sequence length) with konnx and runs it at two batch sizes (and two sequence lengths
or image sizes); the outputs come back as .npz files and are compared here with onnxruntime, at
the project's tolerance. The subprocess also reports whether TensorFlow was imported (it must
not be).
"""
from __future__ import annotations

import importlib.util
import textwrap

import numpy as np
import onnx
import pytest

from tests.util import run_ort, run_script_under_backend

from . import nets, nets_seq
from .checks import assert_close

BATCHES = (1, 3)
NAMES = [n for n, s in nets.NETS.items() if not s.slow]
# the transformer/sequence exports (dynamic batch and sequence length / image size); the dynamo
# tagger is left out: its export fixes the sequence length (see test_transformers.py)
SEQ = [(n, e) for n, s in nets_seq.SEQ_NETS.items() for e in s.exporters if n != "tagger_states"
       and (n, e) != ("tagger", "dynamo")]

# Swin under dynamo rolls its windows with Slices whose bounds are tensors computed at run time
# (Mod of the shift by the size): JAX compiles with static slice sizes only.
KNOWN_FAILURES: dict = {
    ("jax", "swin-dynamo"): "JAX: a Slice whose bounds are run-time tensors has no static size",
}

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
                feeds = np.load(x)
                args = [feeds[n] for n in job["names"]]
                out = model(args if len(args) > 1 else args[0])
                out = out if isinstance(out, (list, tuple)) else [out]
                np.savez(job["outputs"][i], *[keras.ops.convert_to_numpy(o) for o in out])
        except Exception:
            res["errors"][key] = traceback.format_exc()[-3000:]
    res["tensorflow_modules"] = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
    print("RESULT " + json.dumps(res))
""")


def _case(root, key, path, feeds_list) -> dict:
    proto = onnx.load(str(path))
    names = [i.name for i in proto.graph.input]
    inputs, refs = [], []
    for i, feeds in enumerate(feeds_list):
        np.savez(root / f"{key}-{i}.npz", **feeds)
        inputs.append(str(root / f"{key}-{i}.npz"))
        refs.append(run_ort(proto, feeds))
    return {"onnx": str(path), "names": names, "inputs": inputs, "refs": refs}


@pytest.fixture(scope="module")
def zoo(exports, tmp_path_factory):
    """Every (net, exporter): its ONNX file, input files and onnxruntime references."""
    root = tmp_path_factory.mktemp("zoo_backends")
    cases = {}
    for name in NAMES:
        for dynamo in (False, True):
            key = f"{name}-{'dynamo' if dynamo else 'legacy'}"
            path = exports.get(name, dynamo, dynamic_batch=True)
            feeds = [{"x": nets.example_input(name, batch, seed=20 + batch).numpy()} for batch in BATCHES]
            cases[key] = _case(root, key, path, feeds)
    for name, exporter in SEQ:
        sizes = nets_seq.SEQ_NETS[name].sizes
        feeds = [nets_seq.make_inputs(name, batch, sizes[i % len(sizes)], seed=30 + i)
                 for i, batch in enumerate(BATCHES)]
        cases[f"{name}-{exporter}"] = _case(root, f"{name}-{exporter}", exports.get_seq(name, exporter), feeds)
    return root, cases


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_model_zoo_on_backend(backend, zoo):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    root, cases = zoo
    jobs = {key: {"onnx": c["onnx"], "names": c["names"], "inputs": c["inputs"],
                  "outputs": [str(root / f"{backend}-{key}-{i}.npz") for i in range(len(c["inputs"]))]}
            for key, c in cases.items()}
    res = run_script_under_backend(_SCRIPT, jobs, backend, timeout=900)
    assert res["backend"] == backend
    assert res["tensorflow_modules"] == [], f"tensorflow imported under {backend}"
    failures = []
    for key, c in cases.items():
        if (backend, key) in KNOWN_FAILURES:  # must still fail the way it is listed: at conversion
            if key not in res["errors"]:
                failures.append(f"{key} converts on {backend} now: check it and remove it from KNOWN_FAILURES")
            continue
        try:
            assert key not in res["errors"], f"{key}: conversion or run failed:\n{res['errors'].get(key)}"
            for i, (refs, out) in enumerate(zip(c["refs"], jobs[key]["outputs"])):
                got = np.load(out)
                assert len(got.files) == len(refs), f"{key}: {len(got.files)} outputs, onnx has {len(refs)}"
                for j, ref in enumerate(refs):
                    assert_close(got[f"arr_{j}"], ref, f"{backend} {key}, inputs {i}, output {j}")
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n\n".join(failures)
