"""A converted model survives `.keras` save and a safe-mode load in a fresh Python process.

All cases are saved first, then ONE fresh interpreter (importing only konnx and keras) loads
each `.keras` file with safe_mode=True and runs it on inputs passed as .npy files; each test
then compares its own outputs with onnxruntime. Importing TensorFlow once instead of four
times keeps this part of the suite fast.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest

from tests.util import run_ort

from . import nets, nets_seq
from .checks import assert_close
from .export import tensor_inputs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = [(n, d) for n in ("resnet_basic", "mobilenet_v2") for d in (False, True)]
# sequence nets (tests/models/nets_seq.py): (name, exporter), run at a sequence length other
# than the export example's, so the reloaded model's dynamic dims are exercised too
SEQ_CASES = [("bert", "legacy"), ("tagger", "legacy")]
SEQ_LENGTH = 10

LOAD_AND_RUN = textwrap.dedent("""
    import json, os, sys, traceback
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import konnx, keras
    status = {}
    for case_dir in sys.argv[1:]:
        try:
            m = keras.models.load_model(os.path.join(case_dir, "m.keras"), safe_mode=True)
            if os.path.exists(os.path.join(case_dir, "order.json")):
                feeds = np.load(os.path.join(case_dir, "x.npz"))
                args = [feeds[n] for n in json.load(open(os.path.join(case_dir, "order.json")))]
                outs = m(args if len(args) > 1 else args[0])
            else:
                outs = m(np.load(os.path.join(case_dir, "x.npy")))
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            for i, o in enumerate(outs):
                np.save(os.path.join(case_dir, f"out{i}.npy"), np.asarray(o))
            status[case_dir] = "ok"
        except Exception:
            status[case_dir] = traceback.format_exc()
    print(json.dumps(status))
""")


def _case_id(name, dynamo):
    if isinstance(dynamo, str):
        return f"{name}-{dynamo}"
    return f"{name}-{'dynamo' if dynamo else 'legacy'}"


@pytest.fixture(scope="module")
def reloaded(exports, conversions, tmp_path_factory):
    """case -> (case dir, onnxruntime outputs, error text or None)."""
    root = tmp_path_factory.mktemp("save_reload")
    prepared, results = {}, {}
    for name, dynamo in CASES:
        case = _case_id(name, dynamo)
        d = root / case
        d.mkdir()
        try:
            path = exports.get(name, dynamo, dynamic_batch=True)
            proto = onnx.load(str(path))
            conversions.get(path).save(str(d / "m.keras"))
            x = nets.example_input(name, 2, seed=21).numpy()
            np.save(d / "x.npy", x)
            prepared[case] = (d, run_ort(proto, {"x": x}))
        except Exception as e:  # noqa: BLE001 - reported by that case's test
            results[case] = (d, None, f"before reloading: {type(e).__name__}: {e}")
    for name, exporter in SEQ_CASES:
        case = _case_id(name, exporter)
        d = root / case
        d.mkdir()
        try:
            path = exports.get_seq(name, exporter)
            proto = onnx.load(str(path))
            conversions.get(path).save(str(d / "m.keras"))
            feeds = nets_seq.make_inputs(name, 2, SEQ_LENGTH, seed=21)
            np.savez(d / "x.npz", **feeds)
            (d / "order.json").write_text(json.dumps([i.name for i in tensor_inputs(proto)]))
            prepared[case] = (d, run_ort(proto, feeds))
        except Exception as e:  # noqa: BLE001 - reported by that case's test
            results[case] = (d, None, f"before reloading: {type(e).__name__}: {e}")
    if prepared:
        script = root / "load_and_run.py"
        script.write_text(LOAD_AND_RUN)
        env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "tensorflow"),
                   PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        proc = subprocess.run([sys.executable, str(script)] + [str(d) for d, _ in prepared.values()],
                              capture_output=True, text=True, timeout=600, env=env, cwd=str(root))
        try:
            status = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            status = {}
        for case, (d, ref) in prepared.items():
            s = status.get(str(d), f"the fresh process failed (rc={proc.returncode}):\n{proc.stderr[-4000:]}")
            results[case] = (d, ref, None if s == "ok" else s)
    return results


@pytest.mark.parametrize("name,dynamo", [pytest.param(n, d, id=_case_id(n, d)) for n, d in CASES + SEQ_CASES])
def test_save_and_load_in_fresh_process(name, dynamo, reloaded):
    d, ref, err = reloaded[_case_id(name, dynamo)]
    assert err is None, f"save / safe-mode load of the .keras file failed: {err}"
    for i, r in enumerate(ref):
        got = np.load(d / f"out{i}.npy")
        assert_close(got, r, f"reloaded model (fresh process) vs onnxruntime, output {i}")
