"""`konnx codegen`: the generated module, imported in a fresh process, builds a model that matches
onnxruntime on the ONNX model it came from; the code passes `ruff check` (default rules) and
imports nothing but keras, konnx.layers and the standard library's pathlib.

Models are exported with PyTorch's TorchScript exporter (the dynamo-only decoder with dynamo), as
tests/models/export.py does;
every generated module of a parametrization is checked by ONE fresh interpreter (the check is the
same for each, and a Keras import per model would cost more than the models)."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from konnx import codegen  # noqa: E402
from konnx.api import convert_detailed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tiny_resnet.onnx"

# the default run: a sample of the zoo (residual, depthwise + squeeze-excite, upsampling + concat) and
# of the transformer/sequence nets; the rest run with -m slow
ZOO_SAMPLE = ["resnet_basic", "mobilenet_v3", "unet"]
ZOO_SLOW = ["resnet_bottleneck", "mobilenet_v2", "efficientnet", "densenet", "fcn", "video3d"]
SEQ_SAMPLE = ["vit", "tagger"]
SEQ_SLOW = ["swin", "convnext", "bert", "tagger_states", "decoder"]

_CHECK = r"""
import importlib.util, json, sys
import numpy as np
from konnx import loader
from konnx.verify import compare, make_inputs, run_keras, run_onnxruntime
results = {}
for job in json.loads(sys.argv[1]):
    spec = importlib.util.spec_from_file_location("generated_" + str(len(results)), job["folder"] + "/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build()
    proto = loader.load(job["onnx"])
    feeds = dict(np.load(job["feeds"])) if job["feeds"] else make_inputs(proto)
    ref = run_onnxruntime(proto, feeds)
    got = run_keras(model, proto, feeds, job["channels_last_io"])
    results[job["folder"]] = [compare(o.name, ref[o.name], g, 1e-4, 0.0).__dict__ for o, g in
                              zip(proto.graph.output, got)]
print("RESULTS" + json.dumps(results, default=float))
"""


def _export(kind: str, name: str, folder: Path):
    """(ONNX path, inputs .npz or None): seq nets get their own inputs (token ids in the vocabulary,
    states with the batch of the ids), the zoo konnx.verify's seeded ones."""
    import numpy as np

    from tests.models import export, nets, nets_seq

    path = folder / f"{kind}_{name}" / "model.onnx"
    if kind == "zoo":
        return export.export(nets.build(name), nets.example_input(name, 1), False, True, path), None
    spec = nets_seq.SEQ_NETS[name]
    feeds = path.parent / "inputs.npz"
    export.export_seq(name, spec.exporters[0], path)  # TorchScript, or dynamo for the decoder
    np.savez(feeds, **nets_seq.make_inputs(name, 2, spec.sizes[-1]))
    return path, feeds


def _generate(jobs, tmp_path: Path) -> list[dict]:
    """Convert and generate each ((onnx path, feeds), channels_last_io); return the checker's jobs."""
    out = []
    for i, ((onnx_path, feeds), channels_last_io) in enumerate(jobs):
        folder = tmp_path / f"gen{i}"
        folder.mkdir()
        codegen.write(convert_detailed(str(onnx_path), channels_last_io=channels_last_io), folder,
                      Path(onnx_path).name)
        out.append({"folder": str(folder), "onnx": str(onnx_path), "channels_last_io": channels_last_io,
                    "feeds": str(feeds) if feeds else None})
    return out


def _check_fresh(jobs: list[dict]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", _CHECK, json.dumps(jobs)], capture_output=True, text=True,
                          env=env, cwd=jobs[0]["folder"], timeout=900)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS")), None)
    assert proc.returncode == 0 and line, f"fresh interpreter failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(line[len("RESULTS"):])


def _ruff(files) -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", *map(str, files)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imports(path: Path) -> set:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
    return names


def _round_trip(jobs, tmp_path):
    generated = _generate(jobs, tmp_path)
    files = [Path(j["folder"]) / "model.py" for j in generated]
    _ruff(files)
    for f in files:
        assert _imports(f) <= {"keras", "konnx.layers", "pathlib"}, (f, _imports(f))
    results = _check_fresh(generated)
    for job in generated:
        outs = results[job["folder"]]
        assert outs and all(o["ok"] for o in outs), (job["onnx"], outs)
    return generated


def test_codegen_example_both_layouts(tmp_path):
    jobs = _round_trip([((EXAMPLE, None), False), ((EXAMPLE, None), True)], tmp_path)
    text = (Path(jobs[0]["folder"]) / "model.py").read_text()
    # one statement per layer, named as in the converted model, with the ONNX node and padding decision
    model = convert_detailed(str(EXAMPLE)).model
    for layer in model.layers[1:]:
        assert f"name='{layer.name}'" in text
    assert "# ONNX Conv node '/stem/stem.0/Conv'; padding explicit" in text
    # padded convolutions/pools carry konnx's decision, unpadded ones only their node
    decisions = [d for d in convert_detailed(str(EXAMPLE)).decisions if "pads" in d]
    padded = [d for d in decisions if any(any(p) for p in d["pads"])]
    assert padded and len(padded) < len(decisions)
    for d in decisions:
        note = f"; padding {d['decision']}: " if d in padded else "\n"
        assert f"node {d['node']!r}{note}" in text, d


@pytest.mark.parametrize("names", [ZOO_SAMPLE, pytest.param(ZOO_SLOW, marks=pytest.mark.slow)],
                         ids=["sample", "rest"])
def test_codegen_zoo(names, tmp_path):
    _round_trip([(_export("zoo", n, tmp_path / "onnx"), False) for n in names], tmp_path)


@pytest.mark.parametrize("names", [SEQ_SAMPLE, pytest.param(SEQ_SLOW, marks=pytest.mark.slow)],
                         ids=["sample", "rest"])
def test_codegen_seq(names, tmp_path):
    _round_trip([(_export("seq", n, tmp_path / "onnx"), False) for n in names], tmp_path)


def test_literal_round_trips():
    values = [None, True, 3, -0.5, float("inf"), -float("inf"), "a'b\"c", (1,), (1, 2), [1, [2, {"k": (3,)}]],
              {"x": [None, False]}]
    for v in values:
        assert eval(codegen.literal(v)) == v  # noqa: S307 - the point of the test
    nan = eval(codegen.literal(float("nan")))  # noqa: S307
    assert nan != nan


def test_cli_codegen_all_or_nothing(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "gen"
    proc = subprocess.run([sys.executable, "-m", "konnx", "codegen", str(EXAMPLE), "-o", str(out), "-q"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["model.py", "model.weights.h5"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen"]  # no staging folder left behind
    # an output path that is a file: refused before any work, nothing written
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "konnx", "codegen", str(EXAMPLE), "-o", str(blocker)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 1 and "is not a folder" in proc.stderr, proc.stderr
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file", "gen"]
    # a folder holding anything else is not replaced (it would be, as a whole)
    (out / "notes.txt").write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "konnx", "codegen", str(EXAMPLE), "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 1 and "holds other files than model.py and model.weights.h5 (notes.txt)" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["model.py", "model.weights.h5", "notes.txt"]


def test_multi_output_layers(tmp_path):
    """Layers with several outputs (Split, LSTM) are indexed where their outputs are used."""
    import numpy as np
    from onnx import helper

    from tests.util import make_model, rand, run_ort, tolerance

    m = make_model([helper.make_node("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3),
                    helper.make_node("Mul", ["a", "c"], ["y"]),
                    helper.make_node("LSTM", ["s", "W", "R"], ["Y", "Yh", "Yc"], hidden_size=4)],
                   [("x", np.float32, [2, 6]), ("s", np.float32, [5, 2, 3])],
                   [("y", np.float32, [2, 2]), ("b", np.float32, [2, 2]), ("Yh", np.float32, [1, 2, 4]),
                    ("Yc", np.float32, [1, 2, 4])],
                   initializers=[("W", rand(1, 16, 3, seed=1)), ("R", rand(1, 16, 4, seed=2))], opset=18)
    codegen.write(convert_detailed(m), tmp_path)
    _ruff([tmp_path / "model.py"])
    assert "[2]" in (tmp_path / "model.py").read_text()
    x, s = rand(2, 6, seed=3), rand(5, 2, 3, seed=4)
    ref, got = run_ort(m, {"x": x, "s": s}), codegen.load_generated(tmp_path)([x, s])
    assert len(ref) == len(got) == 4
    for r, g in zip(ref, got):
        assert r.shape == g.shape and np.max(np.abs(r - np.asarray(g))) <= tolerance(r)
