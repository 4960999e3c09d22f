"""Deployment (issue 7): .keras reloaded in safe mode in a fresh process, SavedModel and its serve
signature, TFLite (fp32 and fp16 weights) in the LiteRT interpreter, BatchNormalization folding,
atomic writes and the `konnx convert` export options. onnxruntime is the oracle throughout.

The two networks (ResNet-style and MobileNet-style, plain torch.nn) are defined here and shared
with tests/test_backends.py and tests/test_training.py through `onnx_nets()`."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import konnx
from konnx import export as E
from konnx.fold import fold_batch_norms
from konnx.verify import make_inputs, run_keras, run_onnxruntime

REPO = Path(__file__).resolve().parent.parent
RTOL = 1e-4  # the project's tolerance: 1e-4 x max(1, max|reference|)


# ----------------------------------------------------------------------------- the networks
def _torch_nets():
    import torch
    from torch import nn

    def cbr(cin, cout, k=3, s=1, groups=1, act=nn.ReLU):
        return [nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), act()]

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(*cbr(cin, cout, 3, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(cout))
            self.down = None if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            return torch.relu(self.body(x) + (x if self.down is None else self.down(x)))

    class ResNetish(nn.Module):
        def __init__(self):
            super().__init__()
            # 3x3 stride-2 convs on even inputs: the padding case 'same' gets wrong
            self.stem = nn.Sequential(*cbr(3, 16, 3, 2), nn.MaxPool2d(3, 2, 1))
            self.blocks = nn.Sequential(Basic(16, 16, 1), Basic(16, 32, 2))
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            x = self.blocks(self.stem(x))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    class InvRes(nn.Module):
        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            hid = cin * expand
            self.res = stride == 1 and cin == cout
            self.body = nn.Sequential(*cbr(cin, hid, 1, act=nn.ReLU6),
                                      *cbr(hid, hid, 3, stride, groups=hid, act=nn.ReLU6),  # depthwise
                                      nn.Conv2d(hid, cout, 1, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            return x + self.body(x) if self.res else self.body(x)

    class MobileNetish(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*cbr(3, 16, 3, 2, act=nn.ReLU6), InvRes(16, 16, 1, 1),
                                          InvRes(16, 24, 2, 4), InvRes(24, 24, 1, 4), *cbr(24, 64, 1, act=nn.Hardswish))
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, 10))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
            return self.classifier(torch.flatten(x, 1))

    return {"resnet": ResNetish, "mobilenet": MobileNetish}


def _randomize_bn(model, seed):
    """Trained-looking BatchNorm parameters, so folding and fine-tuning have something to do."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 0.5 + torch.rand(c, generator=g)
            m.bias.data = 0.2 * torch.randn(c, generator=g)
            m.running_mean.data = 0.2 * torch.randn(c, generator=g)
            m.running_var.data = 0.5 + torch.rand(c, generator=g)
    return model


_EXPORTED: dict = {}


def onnx_nets(root: Path) -> dict:
    """{'resnet': path, 'mobilenet': path}: each net exported once per session with the
    TorchScript exporter (dynamo=False, opset 17), eval mode, BatchNormalization kept as nodes.
    'resnet' has a dynamic batch dim, 'mobilenet' a static (1, 3, 32, 32) input."""
    import torch

    if not _EXPORTED:
        root.mkdir(parents=True, exist_ok=True)
        for i, (name, cls) in enumerate(_torch_nets().items()):
            torch.manual_seed(i)
            model = _randomize_bn(cls(), seed=i).eval()
            path = root / f"{name}.onnx"
            dyn = {"x": {0: "batch"}, "y": {0: "batch"}} if name == "resnet" else None
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), str(path), dynamo=False, opset_version=17,
                                  input_names=["x"], output_names=["y"], dynamic_axes=dyn,
                                  training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
            _EXPORTED[name] = path
    return dict(_EXPORTED)


def max_err_ratio(ref: np.ndarray, got: np.ndarray) -> float:
    """max|got - ref| / max(1, max|ref|): the error in units of the project's tolerance scale."""
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    assert ref.shape == got.shape, f"shape {got.shape} != onnxruntime {ref.shape}"
    return float(np.max(np.abs(got - ref)) / max(1.0, float(np.max(np.abs(ref)))))


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    return onnx_nets(tmp_path_factory.getbasetemp() / "issue7_nets")


@pytest.fixture(scope="module")
def converted(nets):
    """name -> (keras model with ONNX-layout io, keras model with channels-last io)."""
    return {name: (konnx.convert(p), konnx.convert(p, channels_last_io=True)) for name, p in nets.items()}


def _ort(path, feeds):
    proto = onnx.load(str(path))
    return proto, [run_onnxruntime(proto, feeds)[o.name] for o in proto.graph.output]


# ----------------------------------------------------------------------------- the networks convert
def test_nets_keep_batchnorm_and_match_ort(nets, converted):
    import keras

    for name, path in nets.items():
        proto = onnx.load(str(path))
        n_bn = sum(n.op_type == "BatchNormalization" for n in proto.graph.node)
        assert n_bn >= 5, f"{name}: the export folded BatchNormalization away"
        model = converted[name][0]
        assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == n_bn
        feeds = make_inputs(proto)
        got = run_keras(model, proto, feeds)
        assert max_err_ratio(_ort(path, feeds)[1][0], got[0]) <= RTOL, name


# ----------------------------------------------------------------------------- BatchNormalization folding
def test_fold_bn_folds_conv_batchnorm_and_matches_ort(nets):
    import keras

    for name, path in nets.items():
        proto = onnx.load(str(path))
        n_bn = sum(n.op_type == "BatchNormalization" for n in proto.graph.node)
        n_conv = sum(n.op_type == "Conv" for n in proto.graph.node)
        result = konnx.convert_detailed(str(path), fold_bn=True)
        folded = [d for d in result.decisions if d.get("kind") == "fold_bn"]
        assert len(folded) == n_bn, name
        layers = result.model.layers
        assert not any(isinstance(la, keras.layers.BatchNormalization) for la in layers), name
        convs = [la for la in layers if isinstance(la, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
        assert len(convs) == n_conv and all(c.use_bias for c in convs), name
        feeds = make_inputs(proto, seed=3)
        got = run_keras(result.model, proto, feeds)
        assert max_err_ratio(_ort(path, feeds)[1][0], got[0]) <= RTOL, name


def test_fold_bn_leaves_shared_conv_output_and_input_model_alone():
    """A Conv output also read by another node must not be folded; the caller's model is unchanged."""
    from onnx import helper

    from tests.util import make_model, rand

    w, c = rand(4, 3, 3, 3, seed=1), 4
    stats = [("s", 1 + 0.1 * rand(c, seed=2)), ("b", rand(c, seed=3)), ("m", rand(c, seed=4)),
             ("v", 1 + np.abs(rand(c, seed=5)))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], ["bn1"], name="bn1"),
             helper.make_node("Conv", ["bn1", "w2"], ["c2"], name="conv2"),
             helper.make_node("BatchNormalization", ["c2", "s", "b", "m", "v"], ["bn2"], name="bn2"),
             helper.make_node("Add", ["bn2", "c2"], ["y"])]
    m = make_model(nodes, [("x", np.float32, [1, 3, 8, 8])], [("y", np.float32, [1, 4, 8, 8])],
                   [("w", w), ("w2", rand(4, 4, 1, 1, seed=6))] + stats)
    before = m.SerializeToString()
    folded, records = fold_batch_norms(m)
    assert m.SerializeToString() == before
    assert [r["node"] for r in records] == ["bn1"]
    assert [n.op_type for n in folded.graph.node] == ["Conv", "Conv", "BatchNormalization", "Add"]
    feeds = {"x": rand(1, 3, 8, 8, seed=7)}
    ref = run_onnxruntime(m, feeds)["y"]
    assert max_err_ratio(ref, run_onnxruntime(folded, feeds)["y"]) <= 1e-6
    got = run_keras(konnx.convert(m, fold_bn=True), m, feeds)[0]
    assert max_err_ratio(ref, got) <= RTOL


# ----------------------------------------------------------------------------- .keras, safe mode, fresh process
_RELOAD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    import konnx  # registers konnx's layers
    jobs = json.loads(sys.argv[1])
    res = {}
    for name, (keras_path, npz, out) in jobs.items():
        model = keras.models.load_model(keras_path, safe_mode=True)
        x = np.load(npz)["x"]
        np.save(out, keras.ops.convert_to_numpy(model(x)))
        res[name] = keras.backend.backend()
    print(json.dumps(res))
""")


def test_keras_file_reloads_in_safe_mode_in_a_fresh_process(nets, converted, tmp_path):
    jobs, refs = {}, {}
    for name, path in nets.items():
        proto = onnx.load(str(path))
        feeds = make_inputs(proto, seed=1)
        refs[name] = _ort(path, feeds)[1][0]
        keras_path = E.save_keras(converted[name][0], tmp_path / f"{name}.keras")
        np.savez(tmp_path / f"{name}.npz", x=feeds["x"])
        jobs[name] = [str(keras_path), str(tmp_path / f"{name}.npz"), str(tmp_path / f"{name}.npy")]
    assert not list(tmp_path.glob(".*")), "temporary files left behind"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-c", _RELOAD, json.dumps(jobs)], capture_output=True, text=True,
                       env=env, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    for name in nets:
        assert max_err_ratio(refs[name], np.load(tmp_path / f"{name}.npy")) <= RTOL, name


# ----------------------------------------------------------------------------- SavedModel
def test_saved_model_reloads_and_serves(nets, converted, tmp_path):
    import tensorflow as tf

    for name, path in nets.items():
        proto = onnx.load(str(path))
        feeds = make_inputs(proto, seed=2)
        ref = _ort(path, feeds)[1][0]
        model = converted[name][0]
        out = E.export_saved_model(model, tmp_path / name)
        loaded = tf.saved_model.load(str(out))
        assert max_err_ratio(ref, loaded.serve(feeds["x"]).numpy()) <= RTOL, name
        sig = loaded.signatures["serving_default"]
        (arg,) = sig.structured_input_signature[1]
        assert arg == model.inputs[0].name
        served = sig(**{arg: tf.constant(feeds["x"])})
        assert sorted(served) == ["output_0"]
        assert max_err_ratio(ref, served["output_0"].numpy()) <= RTOL, name
    # exporting again over an existing folder replaces it whole, with no temporary folder left
    mobilenet = converted["mobilenet"][0]
    E.export_saved_model(mobilenet, tmp_path / "resnet")
    x = make_inputs(onnx.load(str(nets["mobilenet"])))["x"]
    replaced = tf.saved_model.load(str(tmp_path / "resnet"))  # keep a reference: it owns the variables
    served = replaced.serve(x).numpy()
    assert max_err_ratio(np.asarray(mobilenet(x)), served) <= RTOL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mobilenet", "resnet"]


# ----------------------------------------------------------------------------- TFLite
@pytest.fixture(scope="module")
def tflite_files(nets, converted, tmp_path_factory):
    """(name, fp16) -> .tflite path: the ResNet in ONNX layout (dynamic batch), the MobileNet
    channels-last (the deployment layout)."""
    root = tmp_path_factory.mktemp("tflite")
    files = {}
    for name in nets:
        model = converted[name][0] if name == "resnet" else converted[name][1]
        for fp16 in (False, True):
            files[name, fp16] = E.export_tflite(model, root / f"{name}{'_fp16' if fp16 else ''}.tflite", fp16=fp16,
                                                batch_size=None if name == "resnet" else 1)
    return files


def test_tflite_fixes_a_dynamic_batch_by_default(nets, converted, tmp_path):
    """The default export fixes a dynamic batch to 1 (no shape arithmetic left for LiteRT: no
    SHAPE/PACK before the classifier's reshape), the check adapts its inputs to the
    fixed shape, and asking to check another batch is a konnx error."""
    model = converted["resnet"][1]
    assert model.inputs[0].shape[0] is None
    static = E.export_tflite(model, tmp_path / "static.tflite")
    dynamic = E.export_tflite(model, tmp_path / "dynamic.tflite", batch_size=None)
    assert E.tflite_input_shapes(static) == {"x": (1, 32, 32, 3)}
    assert E.tflite_input_shapes(dynamic) == {"x": (None, 32, 32, 3)}

    def op_names(path):
        interp = E.tflite_interpreter(path)
        return {op["op_name"] for op in interp._get_ops_details()}

    assert not op_names(static) & {"SHAPE", "PACK"}, op_names(static)
    assert "SHAPE" in op_names(dynamic)  # what the static signature removes
    result = E.check_tflite(static, nets["resnet"], model, channels_last_io=True, rtol=RTOL)
    assert result.ok and result.input_shapes["x"] == [1, 3, 32, 32], result
    with pytest.raises(E.ExportError, match="fixed to 1"):
        E.check_tflite(static, nets["resnet"], model, input_shapes={"x": (4, 3, 32, 32)}, channels_last_io=True)


def test_tflite_runs_in_litert_within_tolerance(nets, converted, tflite_files):
    interp = E.tflite_interpreter(tflite_files["resnet", False])
    assert type(interp).__module__.startswith("ai_edge_litert"), "LiteRT (ai-edge-litert) is not used"
    for name, path in nets.items():
        clio = name == "mobilenet"
        model = converted[name][1 if clio else 0]
        shapes = {"x": (3, 3, 32, 32)} if name == "resnet" else None  # the dynamic batch resized
        result = E.check_tflite(tflite_files[name, False], path, model, input_shapes=shapes, channels_last_io=clio,
                                rtol=RTOL)
        assert result.ok, (name, result.outputs)
        assert result.input_shapes["x"][0] == (3 if name == "resnet" else 1)


def test_tflite_fp16_within_bound(nets, converted, tflite_files):
    """fp16 weights: half the file, error within FP16_RTOL x max(1, max|ref|) (measured ~1e-3)."""
    measured = {}
    for name, path in nets.items():
        clio = name == "mobilenet"
        proto = onnx.load(str(path))
        full, half = tflite_files[name, False], tflite_files[name, True]
        assert half.stat().st_size < 0.75 * full.stat().st_size, name  # small tensors stay fp32
        worst = 0.0
        for seed in range(3):
            feeds = make_inputs(proto, seed=seed)
            x = np.transpose(feeds["x"], (0, 2, 3, 1)) if clio else feeds["x"]
            got = E.run_tflite(half, {converted[name][0].inputs[0].name: x})[0]
            worst = max(worst, max_err_ratio(_ort(path, feeds)[1][0], got))
        measured[name] = worst
        assert worst <= E.FP16_RTOL, (name, worst)
        assert worst > RTOL / 100, "fp16 weights should not be exact: is the file really fp16?"
    print(f"fp16 TFLite error / max(1, max|ref|): {measured}")


def test_tflite_falls_back_to_tf_lite_interpreter(nets, converted, tflite_files, monkeypatch):
    import tensorflow as tf

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # as if ai-edge-litert were not installed
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert isinstance(E.tflite_interpreter(tflite_files["mobilenet", False]), tf.lite.Interpreter)
        result = E.check_tflite(tflite_files["mobilenet", False], nets["mobilenet"], converted["mobilenet"][1],
                                channels_last_io=True)
    assert result.ok, result.outputs


def test_tflite_run_needs_the_signature_input_names(tflite_files):
    with pytest.raises(E.ExportError, match="inputs are"):
        E.run_tflite(tflite_files["resnet", False], {"nope": np.zeros((1, 3, 32, 32), np.float32)})


# ----------------------------------------------------------------------------- atomic writes
def test_staged_writes_are_atomic(tmp_path):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"old")

    def boom(tmp):
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        E.Staged(target, boom)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]
    s = E.Staged(target, lambda tmp: Path(tmp).write_bytes(b"new"))
    assert target.read_bytes() == b"old"  # nothing visible before commit
    s.commit()
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]
    d = E.Staged(tmp_path / "folder", lambda tmp: (Path(tmp).mkdir(), (Path(tmp) / "f").write_text("x")),
                 directory=True)
    d.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]
    with pytest.raises(E.ExportError, match=".keras"):
        E.save_keras(None, tmp_path / "model.h5")


# ----------------------------------------------------------------------------- command line
def _cli(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "konnx", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def test_cli_writes_every_output_in_one_call(nets, tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # the CLI refuses output folders that do not exist
    r = _cli("convert", nets["mobilenet"], "-o", out / "m.keras", "--saved-model", out / "sm",
             "--tflite", out / "m.tflite", "--fp16", "--channels-last-io", "--fold-bn", "--json", out / "r.json")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "TFLite (LiteRT interpreter) vs onnxruntime" in r.stderr
    payload = json.loads((out / "r.json").read_text())
    assert payload["verify"]["ok"] and payload["tflite_verify"]["ok"]
    err = payload["tflite_verify"]["outputs"][0]
    assert 0 < err["max_abs"] <= err["tolerance"]
    assert sorted(p.name for p in out.iterdir()) == ["m.keras", "m.tflite", "r.json", "sm"]
    assert (out / "sm" / "saved_model.pb").exists()


def test_cli_refuses_bad_targets_before_converting(nets, tmp_path, capsys):
    from konnx.cli import main

    assert main(["convert", str(nets["resnet"]), "--tflite", str(tmp_path / "m.bin")]) == 1
    assert main(["convert", str(nets["resnet"]), "-o", str(tmp_path / "m.keras"), "--fp16"]) == 1
    assert main(["convert", str(nets["resnet"]), "-o", str(tmp_path / "m.h5")]) == 1
    err = capsys.readouterr().err
    assert ".tflite" in err and "--tflite" in err and ".keras" in err
    assert not list(tmp_path.iterdir())


def test_export_refuses_a_bad_tflite_target_and_writes_nothing(converted, tmp_path):
    with pytest.raises(E.ExportError, match=".tflite"):
        E.export_tflite(converted["resnet"][0], tmp_path / "m.lite")
    assert not list(tmp_path.iterdir())
