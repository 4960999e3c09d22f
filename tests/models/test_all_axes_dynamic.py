"""The torch.nn test zoo (tests/models/nets.py) re-exported with EVERY axis that can be dynamic
made dynamic (batch and all spatial axes), under both exporters, converted ONCE, and run at two
sizes against onnxruntime (issue 12: convert once, run at any size). The Keras model keeps None
for each dynamic axis. A representative sample runs by default; the rest is marked slow."""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import onnx
import pytest
import torch

import konnx
from tests.util import run_keras, run_ort

from . import nets
from .checks import assert_close

# the nets whose stride-2 stages, skip concatenations and ceil_mode pools cover the rest
DEFAULT = {"resnet_bottleneck", "unet"}
CASES = [pytest.param(n, e, id=f"{n}-{e}", marks=[] if n in DEFAULT else [pytest.mark.slow])
         for n in nets.NETS for e in ("legacy", "dynamo")]
STEP = 32  # the second size: every spatial side grows by this (a multiple of every net's stride)

# The TorchScript exporter cannot export these with dynamic spatial axes (an exporter limit, not
# konnx's): only the batch is dynamic there.
BATCH_ONLY = {("fcn", "legacy"): "TorchScript: adaptive_avg_pool2d needs a static input size",
              # torch 2.13's dynamo export of the adaptive pooling is only right at the example
              # size: onnxruntime differs from torch by 0.68 at 96x96 (checked by this test)
              ("fcn", "dynamo"): "dynamo: adaptive_avg_pool2d exported for the example size only"}


def _multiple(size: int) -> int:
    """torch.export Dims as multiples of the largest of 16, 8, 4 dividing the example size
    (the nets downsample; a base symbol of 1 would be specialized)."""
    return next(m for m in (16, 8, 4, 2, 1) if size % m == 0 and size // m >= 2)


def _export(name, dynamo, path, spatial_dynamic=True):
    spec = nets.NETS[name]
    model = nets.build(name)
    x = nets.example_input(name, batch=2)
    spatial = range(2, 1 + len(spec.input_shape)) if spatial_dynamic else ()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            shapes = {0: torch.export.Dim("batch", min=1, max=64)}
            for a in spatial:
                shapes[a] = torch.export.Dim(f"s{a}", min=1, max=64) * _multiple(x.shape[a])
            torch.onnx.export(model, (x,), dynamo=True, input_names=["x"],
                              dynamic_shapes=(shapes,), verbose=False).save(str(path))
        else:
            axes = {0: "batch", **{a: f"s{a}" for a in spatial}}
            n_out = len(model(x)) if isinstance(model(x), (tuple, list)) else 1
            outs = ["y"] if n_out == 1 else [f"y{i}" for i in range(n_out)]
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"],
                              output_names=outs, dynamic_axes={"x": axes, **{o: {0: "batch"} for o in outs}},
                              do_constant_folding=True)


def _second_shape(name, batch, spatial_dynamic=True):
    shape = list(nets.NETS[name].input_shape)
    if not spatial_dynamic:
        return (batch,) + tuple(shape)
    grow = [_multiple(s) * 2 if (len(shape) == 4 and i == 1) else STEP for i, s in enumerate(shape)]
    return (batch, shape[0]) + tuple(s + g for s, g in zip(shape[1:], grow[1:]))


@pytest.mark.parametrize("name,exporter", CASES)
def test_all_axes_dynamic(name, exporter, tmp_path):
    path = tmp_path / "model.onnx"
    spatial_dynamic = (name, exporter) not in BATCH_ONLY
    _export(name, exporter == "dynamo", path, spatial_dynamic)
    proto = onnx.load(str(path))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    symbolic = [i for i, d in enumerate(dims) if not d.HasField("dim_value")]
    wanted = [0] + (list(range(2, len(dims))) if spatial_dynamic else [])
    assert symbolic == wanted, f"export: symbolic axes {symbolic}, wanted {wanted}"
    km = konnx.convert(str(path))
    kshape = tuple(km.inputs[0].shape)
    assert all(kshape[a] is None for a in symbolic), f"Keras input {kshape}: axes {symbolic} should be None"
    assert all(t.shape[0] is None for t in km.outputs)
    torch_model = nets.build(name)
    shapes = [(1,) + tuple(nets.NETS[name].input_shape), _second_shape(name, 3, spatial_dynamic)]
    for shape in shapes:
        x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
        ref = run_ort(proto, {"x": x})
        with torch.no_grad():
            out = torch_model(torch.from_numpy(x))
        out = out if isinstance(out, (tuple, list)) else (out,)
        got = run_keras(km, {"x": x}, proto)
        assert len(got) == len(ref) == len(out)
        for i, (g, r, t) in enumerate(zip(got, ref, out)):
            assert_close(r, t.numpy(), f"[exporter check, not konnx] onnxruntime vs torch at {shape}, output {i}")
            assert_close(g, r, f"keras vs onnxruntime at {shape}, output {i}")
