"""End to end, issue 12: the torch.nn reproductions of tests/models/nets_dyn.py (BoTNet
relative-position attention, BERT with a sliced position_ids buffer, GPT-2 with padding-mask
indexing and the last-token gather, Segformer with overlapping patch embeddings and dynamic H, W)
exported with dynamic axes by BOTH exporters, converted ONCE, run at two sizes against
onnxruntime (checked against PyTorch first), and the Keras model keeps None for every dynamic
axis of its inputs and outputs."""
from __future__ import annotations

import keras
import numpy as np
import onnx
import pytest
import torch

import konnx
from tests.util import run_keras, run_ort

from . import nets_dyn
from .checks import assert_close

CASES = [pytest.param(n, e, id=f"{n}-{e}") for n in nets_dyn.DYN_NETS for e in ("legacy", "dynamo")]


@pytest.fixture(scope="module")
def dyn_exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("dyn_exports")
    done = {}

    def get(name, exporter):
        if (name, exporter) not in done:
            path = root / f"{name}_{exporter}.onnx"
            nets_dyn.export(name, exporter == "dynamo", path)
            done[(name, exporter)] = path
        return done[(name, exporter)]
    return get


def _symbolic(vi) -> set:
    return {i for i, d in enumerate(vi.type.tensor_type.shape.dim) if not d.HasField("dim_value")}


def _close(got, ref, tol, what):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
    bound = tol * max(1.0, float(np.max(np.abs(ref))))
    assert err <= bound, f"{what}: max abs error {err:.3g} > {bound:.3g}"


@pytest.mark.parametrize("name,exporter", CASES)
def test_dynamic_export_matches_onnxruntime(name, exporter, dyn_exports, tmp_path):
    spec = nets_dyn.DYN_NETS[name]
    path = dyn_exports(name, exporter)
    proto = onnx.load(str(path))
    km = konnx.convert(str(path))

    # convert once, run at any size: every symbolic axis stays None in the Keras model
    for vi, t in zip([i for i in proto.graph.input], km.inputs):
        assert _symbolic(vi) >= set(spec.dynamic[vi.name]), f"export of {vi.name}: {_symbolic(vi)}"
        for axis in _symbolic(vi):
            assert t.shape[axis] is None, f"Keras input {vi.name} {t.shape}: axis {axis} should be None"
    for vo, t in zip(proto.graph.output, km.outputs):
        for axis in _symbolic(vo):
            assert t.shape[axis] is None, f"Keras output {vo.name} {t.shape}: axis {axis} should be None"

    model = nets_dyn.build(name)
    for batch, size in spec.sizes:
        feeds = nets_dyn.make_inputs(name, batch, size, seed=batch + size)
        ref = run_ort(proto, feeds)
        with torch.no_grad():
            out = model(*[torch.from_numpy(feeds[i[0]]) for i in spec.inputs])
        out = out if isinstance(out, (tuple, list)) else (out,)
        for i, (r, t) in enumerate(zip(ref, out)):
            assert_close(r, t.numpy(), f"[exporter check, not konnx] onnxruntime vs torch, {batch}x{size}, output {i}")
        got = run_keras(km, feeds, proto)
        assert len(got) == len(ref)
        for i, (g, r) in enumerate(zip(got, ref)):
            _close(g, r, spec.tol, f"keras vs onnxruntime, {batch}x{size}, output {i}")

    # the run-time shape functions (GatherND, Resize, ceil pooling, ...) survive save/reload
    if exporter == "dynamo":
        km.save(tmp_path / "m.keras")
        again = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
        batch, size = spec.sizes[-1]
        feeds = nets_dyn.make_inputs(name, batch, size, seed=batch + size)
        for i, (g, r) in enumerate(zip(run_keras(again, feeds, proto), run_ort(proto, feeds))):
            _close(g, r, spec.tol, f"reloaded keras vs onnxruntime, {batch}x{size}, output {i}")
