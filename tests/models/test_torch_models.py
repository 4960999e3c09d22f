"""End to end: torch.nn networks -> torch.onnx.export (TorchScript and dynamo) -> konnx -> Keras.

Every converted model is compared with onnxruntime AND with the torch module itself, at two
batch sizes (the exports have a dynamic batch dimension), eagerly and through predict() (graph
mode), with the project's tolerance 1e-4 x max(1, max |reference|). A second test checks the layout rule: no transpose between
the first and the last spatial layer.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from tests.util import run_keras, run_ort

from . import nets
from .checks import assert_close, inner_transposes

EXPORTERS = [pytest.param(False, id="legacy"), pytest.param(True, id="dynamo")]
NET_PARAMS = [pytest.param(n, marks=[pytest.mark.slow] if s.slow else []) for n, s in nets.NETS.items()]
BATCHES = (1, 3)

# Exporter bugs (not konnx bugs) that make a case impossible: {(net, dynamo): reason}.
EXPORTER_XFAIL: dict = {}


def _xfail_exporter(name, dynamo):
    reason = EXPORTER_XFAIL.get((name, dynamo))
    if reason:
        pytest.xfail(reason)


def _torch_outputs(model, x) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o.numpy() for o in out]


@pytest.mark.parametrize("dynamo", EXPORTERS)
@pytest.mark.parametrize("name", NET_PARAMS)
def test_matches_torch_and_onnxruntime(name, dynamo, exports, conversions):
    _xfail_exporter(name, dynamo)
    path = exports.get(name, dynamo, dynamic_batch=True)
    proto = onnx.load(str(path))
    keras_model = conversions.get(path)
    torch_model = nets.build(name)
    for batch in BATCHES:
        x = nets.example_input(name, batch, seed=10 + batch).numpy()
        ref_torch = _torch_outputs(torch_model, x)
        ref_ort = run_ort(proto, {"x": x})
        # the exporter itself must be faithful, or the comparison below means nothing
        for i, (t, o) in enumerate(zip(ref_torch, ref_ort)):
            assert_close(o, t, f"[exporter check, not konnx] onnxruntime vs torch, batch {batch}, output {i}")
        got = run_keras(keras_model, {"x": x}, proto)
        assert len(got) == len(ref_ort), f"keras model has {len(got)} outputs, onnx has {len(ref_ort)}"
        for i, (g, o, t) in enumerate(zip(got, ref_ort, ref_torch)):
            assert_close(g, o, f"keras vs onnxruntime, batch {batch}, output {i}")
            assert_close(g, t, f"keras vs torch, batch {batch}, output {i}")
    # graph mode too: predict() in batches of 2 then 1 retraces with an unknown batch size
    got = _predict(keras_model, x, batch_size=2)
    for i, o in enumerate(ref_ort):
        assert_close(got[i], o, f"keras predict() (graph mode, batches of 2 and 1) vs onnxruntime, output {i}")


def _predict(keras_model, x, batch_size) -> list[np.ndarray]:
    out = keras_model.predict(x, batch_size=batch_size, verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.mark.parametrize("dynamo", EXPORTERS)
@pytest.mark.parametrize("name", NET_PARAMS)
def test_no_transpose_between_spatial_layers(name, dynamo, exports, conversions):
    _xfail_exporter(name, dynamo)
    keras_model = conversions.get(exports.get(name, dynamo, dynamic_batch=True))
    bad = inner_transposes(keras_model)
    assert not bad, (f"{len(bad)} transpose layer(s) between spatial layers (only the model's input/output "
                     f"edges may transpose): {', '.join(bad)}")


@pytest.mark.slow
@pytest.mark.parametrize("dynamo", EXPORTERS)
@pytest.mark.parametrize("name", list(nets.NETS))
def test_static_batch_export(name, dynamo, exports, conversions, tmp_path):
    """Exports with a fixed batch of 1 (shape arithmetic folds differently than with 'batch')."""
    _xfail_exporter(name, dynamo)
    path = exports.get(name, dynamo, dynamic_batch=False)
    proto = onnx.load(str(path))
    keras_model = conversions.get(path)
    x = nets.example_input(name, 1, seed=7).numpy()
    ref_torch = _torch_outputs(nets.build(name), x)
    ref_ort = run_ort(proto, {"x": x})
    got = run_keras(keras_model, {"x": x}, proto)
    for i, (g, o, t) in enumerate(zip(got, ref_ort, ref_torch)):
        assert_close(g, o, f"keras vs onnxruntime, output {i}")
        assert_close(g, t, f"keras vs torch, output {i}")


def test_layout_checker_sees_inner_transposes():
    """The layout check itself: an inner Permute is found, edge Permutes are not."""
    import keras

    x = keras.Input((3, 16, 16))
    y = keras.layers.Permute((2, 3, 1))(x)                       # input edge: allowed
    y = keras.layers.Conv2D(4, 3, padding="same")(y)
    z = keras.layers.Permute((3, 1, 2), name="inner_permute")(y)  # between two convs: not allowed
    z = keras.layers.Permute((2, 3, 1))(z)
    z = keras.layers.Conv2D(4, 3)(z)
    out = keras.layers.Permute((3, 1, 2))(z)                      # output edge: allowed
    bad = inner_transposes(keras.Model(x, out))
    assert len(bad) == 2 and any("inner_permute" in b for b in bad), bad
