"""konnx.from_torch: the returned Keras model computes what the PyTorch module computes on its example
inputs (the module itself is the oracle, eval mode, no_grad), with both exporters; a conversion
that differs from the module is refused, naming the output; nothing is left on disk."""
from __future__ import annotations

import importlib.util
import tempfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import konnx  # noqa: E402
from konnx.torch_export import TorchExportError, TorchMismatchError  # noqa: E402
from tests.models import nets, nets_seq  # noqa: E402
from tests.util import tolerance  # noqa: E402


def _torch_outputs(module, args):
    with torch.no_grad():
        out = module.eval()(*args)
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]


def _keras_outputs(model, args):
    out = model([a.numpy() for a in args] if len(args) > 1 else args[0].numpy())
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def _assert_same(module, model, args):
    ref, got = _torch_outputs(module, args), _keras_outputs(model, args)
    assert len(ref) == len(got)
    for r, g in zip(ref, got):
        assert r.shape == g.shape
        assert np.max(np.abs(r - g)) <= tolerance(r)


@pytest.fixture
def clean_tmp(tmp_path, monkeypatch):
    """Temporary folders and the working directory both point into an empty folder."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(scratch)
    return scratch


def _left_behind(folder):
    """What konnx left in `folder`: torch.export's own compile cache (torchinductor_<user>, which
    torch keeps in the temporary folder across runs, whoever exports) is not konnx's."""
    return [p.name for p in folder.iterdir() if not p.name.startswith("torchinductor_")]


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_cnn_both_exporters(exporter, clean_tmp):
    module, x = nets.build("resnet_basic"), nets.example_input("resnet_basic", 2)
    model = konnx.from_torch(module, x, exporter=exporter)
    _assert_same(module, model, (x,))
    assert _left_behind(clean_tmp) == []


@pytest.mark.parametrize("by_name", [False, True], ids=["tuple", "dict"])
def test_cnn_dynamic_batch_and_channels_last(by_name, clean_tmp):
    module, x = nets.build("resnet_basic"), nets.example_input("resnet_basic", 2)
    batch = torch.export.Dim("batch", min=1, max=64)
    shapes = {"x": {0: batch}} if by_name else ({0: batch},)  # torch.export's two forms
    model = konnx.from_torch(module, x, exporter="torchscript", dynamic_shapes=shapes, channels_last_io=True)
    assert model.inputs[0].shape == (None, 64, 64, 3)
    x3 = nets.example_input("resnet_basic", 3, seed=5)
    got = np.asarray(model(np.transpose(x3.numpy(), (0, 2, 3, 1))))
    ref = _torch_outputs(module, (x3,))[0]
    assert np.max(np.abs(ref - got)) <= tolerance(ref)
    assert _left_behind(clean_tmp) == []


@pytest.mark.parametrize("exporter", ["torchscript", pytest.param("dynamo", marks=pytest.mark.slow)])
def test_transformer(exporter, clean_tmp):
    name = "bert"  # three inputs: ids, token types, a padding mask
    module = nets_seq.build(name)
    feeds = nets_seq.make_inputs(name, 2, 7)
    args = tuple(torch.from_numpy(feeds[i.name]) for i in nets_seq.SEQ_NETS[name].inputs)
    model = konnx.from_torch(module, args, exporter=exporter)
    _assert_same(module, model, args)


def test_lstm_tagger(clean_tmp):
    module = nets_seq.build("tagger")
    ids = torch.from_numpy(nets_seq.make_inputs("tagger", 2, 9)["ids"])
    model = konnx.from_torch(module, ids)  # dynamo
    _assert_same(module, model, (ids,))
    assert _left_behind(clean_tmp) == []


class _Drifting(torch.nn.Module):
    """Adds its call count: the export (second call) bakes in +2 while the module's own output on
    the example (first call) was +1; onnxruntime and Keras agree with each other, not with torch."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x + float(self.calls)


def test_mismatch_with_the_module_is_refused(clean_tmp):
    module = _Drifting().train()
    with pytest.raises(TorchMismatchError, match="differs from the PyTorch module on the example inputs: "
                                                 ".* max abs error [1-9]"):
        konnx.from_torch(module, torch.zeros(2, 3), exporter="torchscript")
    assert module.training  # the caller's mode is restored
    assert _left_behind(clean_tmp) == []


def test_refusals(monkeypatch):
    x = torch.zeros(1, 3)
    lin = torch.nn.Linear(3, 2)
    with pytest.raises(konnx.ConversionError, match="exporter='onnx'.*'dynamo', 'torchscript'"):
        konnx.from_torch(lin, x, exporter="onnx")
    with pytest.raises(konnx.ConversionError, match="unknown option.*channel_last_io.*channels_last_io"):
        konnx.from_torch(lin, x, channel_last_io=True)
    with pytest.raises(TorchExportError, match="tensor or a non-empty tuple"):
        konnx.from_torch(lin, [x.numpy()])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in ("torch", "onnxscript") else
                        real(n, *a))
    with pytest.raises(TorchExportError, match=r'needs torch and onnxscript.*pip install "konnx\[torch\]"'):
        konnx.from_torch(lin, x)
