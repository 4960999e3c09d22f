"""The plan stage: every refusal known without building is reported at once, before any Keras
layer exists; `konnx check` and `konnx ops` read the contracts without importing Keras; the
backend's parameter inputs come from the declared contracts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import konnx
from konnx.plan import PaddingDecision, plan
from tests.util import make_model

BAD_NODES = ["no_converter", "weight_is_input", "ambiguous_pool"]


def _three_problems() -> onnx.ModelProto:
    """A Conv whose weight is a graph input, a pooling konnx refuses (SAME with dilations: the
    oracles disagree), and an op konnx has no converter for."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="weight_is_input", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="fine"),
        helper.make_node("MaxPool", ["r"], ["p"], name="ambiguous_pool", kernel_shape=[3, 3], strides=[2, 2],
                         dilations=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Bernoulli", ["p"], ["y"], name="no_converter"),
    ]
    return make_model(nodes, [("x", np.float32, (1, 2, 8, 8)), ("w", np.float32, (2, 2, 3, 3))],
                      [("y", np.float32, None)], opset=17)


def test_three_problems_one_error_before_any_layer(monkeypatch):
    import keras

    built = []
    original = keras.layers.Layer.__init__

    def counting_init(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(keras.layers.Layer, "__init__", counting_init)
    with pytest.raises(konnx.UnsupportedOpError) as info:
        konnx.convert(_three_problems())
    assert sorted(n.name for n in info.value.nodes) == sorted(BAD_NODES)
    text = str(info.value)
    assert "no converter" in text and "graph input" in text and "refuses" in text
    assert built == [], f"layers were built before the refusal: {built}"


def test_plan_records_padding_without_keras():
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                         strides=[2, 2])],
                       [("x", np.float32, (1, 2, 8, 8))], [("y", np.float32, None)], opset=17,
                       initializers=[("w", np.zeros((4, 2, 3, 3), np.float32))])
    model = onnx.shape_inference.infer_shapes(model)
    p = plan(model, 17)
    assert p.refusals == []
    d = p.padding["c"]
    assert isinstance(d, PaddingDecision)
    # TF 'same' pads (0, 1) on an even input with stride 2; the explicit pads are (1, 1)
    assert d.mode == "explicit" and d.pads == ((1, 1), (1, 1)) and d.input_size == (8, 8)
    assert p.layout["c"].wants == "spatial"


def _run(code: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})


# The check/ops machinery must not import Keras or TensorFlow. The package's __init__ (which
# registers konnx's layers for load_model) is bypassed here, so this tests what the check and
# ops commands themselves import.
_NO_INIT = textwrap.dedent("""
    import importlib.util, json, sys, types, pathlib
    root = pathlib.Path(importlib.util.find_spec("konnx").origin).parent
    pkg = types.ModuleType("konnx"); pkg.__path__ = [str(root)]; sys.modules["konnx"] = pkg
    from konnx.cli import main
    rc = main(sys.argv[1:])
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tensorflow"))
    print("HEAVY=" + json.dumps(heavy))
    sys.exit(rc)
""")


def test_konnx_check_lists_the_three_without_keras(tmp_path):
    path = tmp_path / "bad.onnx"
    onnx.save(_three_problems(), path)
    res = _run(_NO_INIT, "check", str(path), "--json", str(tmp_path / "r.json"))
    assert res.returncode == 4, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    for name in BAD_NODES:
        assert name in res.stdout
    assert "HEAVY=[]" in res.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert sorted(r["node"] for r in data["refusals"]) == sorted(BAD_NODES)
    status = {o["op_type"]: o["status"] for o in data["ops"]}
    assert status == {"Conv": "refused", "Relu": "supported", "MaxPool": "refused", "Bernoulli": "refused"}


def test_konnx_check_json_on_stdout(tmp_path):
    path = tmp_path / "bad.onnx"
    onnx.save(_three_problems(), path)
    res = _run(_NO_INIT, "check", str(path), "--json", "-")
    assert res.returncode == 4, res.stderr
    data = json.loads(res.stdout.split("HEAVY=")[0])
    assert data["supported"] is False and data["opset"] == 17
    assert sorted(r["node"] for r in data["refusals"]) == sorted(BAD_NODES)


def test_konnx_check_passes_a_supported_model(tmp_path):
    path = tmp_path / "ok.onnx"
    onnx.save(make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", np.float32, (1, 3))],
                         [("y", np.float32, (1, 3))]), path)
    res = subprocess.run([sys.executable, "-m", "konnx", "check", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Relu" in res.stdout and "supported" in res.stdout


def test_konnx_ops_without_keras():
    res = _run(_NO_INIT, "ops")
    assert res.returncode == 0, res.stderr
    assert "Conv\t" in res.stdout and "HEAVY=[]" in res.stdout


def test_parameter_inputs_come_from_the_contracts():
    """The backend binds exactly the inputs the converters declare as conversion-time values;
    this is the table the ONNX backend suite was run with when it was written by hand."""
    from konnx.backend import PARAMETER_INPUTS
    from konnx.ops.registry import parameter_inputs

    expected = {
        "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
        "Slice": (1, 2, 3, 4), "Pad": (1, 3), "Split": (1,), "TopK": (1,), "OneHot": (1,),
        "CumSum": (1,), "CumProd": (1,), "Trilu": (1,), "Resize": (1, 2, 3), "Upsample": (1,),
        "CenterCropPad": (1,), "Dropout": (1, 2), "Col2Im": (1, 2), "AffineGrid": (1,), "Loop": (0, 1),
        "DFT": (1, 2), "STFT": (1, 3), "NonMaxSuppression": (2, 3, 4), "MaxUnpool": (2,),
        "Conv": (1, 2), "ConvTranspose": (1, 2),
        **{op: (1,) for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                               "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")},
    }
    assert PARAMETER_INPUTS == parameter_inputs() == expected


def test_refusal_inside_a_loop_body_still_named():
    """Nodes of subgraphs are not planned; emit runs their declared checks before building them."""
    body_pool = helper.make_node("MaxPool", ["xin"], ["pooled"], kernel_shape=[3, 3], strides=[2, 2],
                                 dilations=[2, 2], auto_pad="SAME_UPPER", name="body_pool")
    then = helper.make_graph([body_pool], "then", [], [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Identity", ["xin"], ["same"])], "else", [],
                              [helper.make_tensor_value_info("same", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
             helper.make_node("Identity", ["x"], ["xin"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=other, name="branch")]
    model = make_model(nodes, [("x", np.float32, (1, 2, 8, 8))], [("y", np.float32, None)], opset=17)
    with pytest.raises(konnx.NodeConversionError, match="body_pool.*refuses"):
        konnx.convert(model)


def _konnx_imports() -> dict:
    """module -> konnx modules it imports (at module level or inside functions)."""
    import ast
    import pathlib

    root = pathlib.Path(konnx.__file__).parent
    mods = {}
    for p in root.rglob("*.py"):
        parts = p.relative_to(root.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    edges = {}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        out = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                out |= {t for t in [target] + [f"{target}.{a.name}" for a in node.names] if t in mods}
            elif isinstance(node, ast.ImportFrom) and node.module in mods:
                out.add(node.module)
        edges[m] = out - {m}
    return edges


def test_core_modules_import_no_converter_module():
    """api/emit/plan/check/loader/dims reach converters only through the registry, and converter
    modules import no other module's private names."""
    import ast
    import pathlib

    edges = _konnx_imports()
    for core in ("konnx.api", "konnx.emit", "konnx.plan", "konnx.check", "konnx.loader", "konnx.dims"):
        bad = sorted(e for e in edges[core] if e.startswith("konnx.ops.") and e != "konnx.ops.registry")
        assert bad == [], f"{core} imports converter modules {bad}"
    root = pathlib.Path(konnx.__file__).parent
    # the command-line modules are being reorganized separately (issue 11)
    for p in [p for p in root.rglob("*.py") if not p.name.startswith("cli")]:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("konnx")):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
                assert private == [], f"{p.name} imports private names {private} from {node.module}"
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in ("loader", "padding", "api", "emit", "plan") and node.attr.startswith("_"):
                raise AssertionError(f"{p.name} reaches for {node.value.id}.{node.attr}")
