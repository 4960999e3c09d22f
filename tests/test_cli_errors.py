"""Bad invocations of the `konnx` command line, run as a user would (a subprocess): each one gets
its exit code and a one-line message, never a traceback, and leaves exactly the files it should.

Path and argument errors are refused before any conversion work (and before Keras loads), so
most cases here take a fraction of a second."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import konnx
from konnx import cli
from tests.util import make_model, rand

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tiny_resnet.onnx"
ERROR, USAGE, MISMATCH, UNSUPPORTED, INTERNAL = 1, 2, 3, 4, 5


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "konnx", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def files(folder: Path) -> set:
    """Every file and folder under `folder` (temporary ones included), relative."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def expect(r, code: int, *fragments: str) -> None:
    assert r.returncode == code, f"exit {r.returncode}, expected {code}:\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr[-3000:]
    for f in fragments:
        assert f in r.stderr, f"{f!r} not in stderr:\n{r.stderr[-3000:]}"


def _relu_model(fixed_batch: bool = False):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    return make_model(nodes, [("x", np.float32, (2 if fixed_batch else "N", 3, 8, 8))],
                      [("y", np.float32, None)])


@pytest.fixture()
def relu(tmp_path):
    src = tmp_path / "relu.onnx"
    onnx.save(_relu_model(), src)
    return src


# ----------------------------------------------------------------------------- the model argument
@pytest.mark.parametrize("kind, fragment", [
    ("missing", "not found"), ("folder", "not a file"), ("garbage", "not a readable ONNX model"),
    ("truncated", "not a readable ONNX model"), ("empty", "empty")])
def test_bad_model_file(tmp_path, kind, fragment):
    src = tmp_path / "m.onnx"
    if kind == "folder":
        src.mkdir()
    elif kind == "garbage":
        src.write_bytes(b"\x00\x01 this is not protobuf \xff\xfe")
    elif kind == "truncated":
        data = EXAMPLE.read_bytes()
        src.write_bytes(data[:len(data) // 2])
    elif kind == "empty":
        src.write_bytes(b"")
    before = files(tmp_path)
    r = run("convert", src, "-o", tmp_path / "m.keras", "--report", tmp_path / "r.md")
    expect(r, ERROR, fragment)
    assert files(tmp_path) == before


@pytest.mark.parametrize("args, fragment", [
    (["convert", "{model}", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["convert", "{model}", "{tmp}/out.keras"], "-o FILE.keras"),  # the output given as a positional
    (["convert"], "required: model"),
    (["verify"], "required: model"),
    (["convert", "{model}", "--rtol", "tight"], "invalid float value"),
    (["padding", "--size", "5"], "required: --kernel"),
    ([], "usage: konnx"),
])
def test_usage_errors_exit_2(tmp_path, relu, args, fragment):
    args = [a.format(model=relu, tmp=tmp_path) for a in args]
    before = files(tmp_path)
    expect(run(*args), USAGE, fragment)
    assert files(tmp_path) == before


# ----------------------------------------------------------------------------- output paths
OUTPUTS = {  # option -> (a good name, a wrong extension or None)
    "-o": ("m.keras", "m.h5"),
    "--report": ("r.md", "r.html"),
    "--json": ("r.json", "r.txt"),
    "--saved-model": ("sm", None),
    "--tflite": ("m.tflite", "m.bin"),
}


def _bad_path(tmp_path: Path, option: str, problem: str) -> Path:
    good, wrong_ext = OUTPUTS[option]
    if problem == "missing folder":
        return tmp_path / "no" / "such" / good
    if problem == "file as folder":
        (tmp_path / "plain.txt").write_text("a file")
        return tmp_path / "plain.txt" / good
    if problem == "unwritable":
        return Path("/proc") / good
    if problem == "extension":
        return tmp_path / wrong_ext
    if problem == "is a folder":  # a file output onto a folder, or a SavedModel onto a file
        if option == "--saved-model":
            (tmp_path / good).write_text("a file")
        else:
            (tmp_path / good).mkdir()
        return tmp_path / good
    raise AssertionError(problem)


FRAGMENTS = {"missing folder": "does not exist", "file as folder": "is not a folder",
             "unwritable": "cannot create files in /proc", "extension": "must end in",
             "is a folder": "folder"}
CASES = [(o, p) for o in OUTPUTS for p in FRAGMENTS if not (p == "extension" and OUTPUTS[o][1] is None)]


@pytest.mark.parametrize("option, problem", CASES, ids=[f"{o}-{p}" for o, p in CASES])
def test_bad_output_path_refused_before_converting(tmp_path, relu, option, problem):
    target = _bad_path(tmp_path, option, problem)
    others = [] if option == "-o" else ["-o", tmp_path / "ok.keras"]
    before = files(tmp_path)
    r = run("convert", relu, option, target, *others)
    expect(r, ERROR, option, FRAGMENTS[problem], "nothing written")
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert files(tmp_path) == before, "a refused call must write nothing"


def test_verify_json_path_refused(tmp_path, relu):
    before = files(tmp_path)
    expect(run("verify", relu, "--json", tmp_path / "no" / "v.json"), ERROR, "--json", "does not exist")
    expect(run("verify", relu, "--json", tmp_path / "v.html"), ERROR, "must end in .json")
    assert files(tmp_path) == before


def test_two_outputs_on_one_path_refused(tmp_path, relu):
    before = files(tmp_path)
    expect(run("convert", relu, "-o", tmp_path / "m.keras", "--report", tmp_path / "r.json", "--json",
               tmp_path / "r.json"), ERROR, "--json", "is also --report")
    assert files(tmp_path) == before


def test_padding_picture_path_refused(tmp_path):
    expect(run("padding", "--size", "5", "--kernel", "2", "--png", tmp_path / "no" / "p.png"), ERROR,
           "--png", "does not exist")
    expect(run("padding", "--size", "5", "--kernel", "2", "--svg", tmp_path / "p.png"), ERROR, "must end in .svg")
    assert not list(tmp_path.iterdir())


def test_existing_outputs_left_intact_when_a_call_fails(tmp_path):
    """An unsupported op fails after the checks: the outputs already there keep their content."""
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Frobnicate", ["a"], ["b"], name="frob", domain="com.example")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, [1, 3])])
    src = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                  helper.make_opsetid("com.example", 3)]), src)
    old = {"m.keras": "old model", "r.md": "old report", "r.json": "old json"}
    for name, text in old.items():
        (tmp_path / name).write_text(text)
    before = files(tmp_path)
    r = run("convert", src, "-o", tmp_path / "m.keras", "--report", tmp_path / "r.md", "--json", tmp_path / "r.json")
    expect(r, UNSUPPORTED, "Frobnicate", "frob", "opset 3", "nothing written")
    assert "opset 17" not in r.stderr, "a custom-domain op is reported with its own domain's opset"
    assert files(tmp_path) == before
    assert {n: (tmp_path / n).read_text() for n in old} == old


def test_failed_staging_writes_nothing_and_keeps_old_outputs(tmp_path, monkeypatch, capsys):
    """Every output is staged before any is renamed into place: when the last one (--json) cannot
    be written, the .keras and the report already staged are discarded and the old files stay."""
    from konnx import cli_outputs

    src = tmp_path / "relu.onnx"
    onnx.save(_relu_model(), src)
    (tmp_path / "m.keras").write_text("old model")

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli_outputs, "stage_text", disk_full)
    code = cli.main(["convert", str(src), "-o", str(tmp_path / "m.keras"), "--report", str(tmp_path / "r.md"),
                     "--json", str(tmp_path / "r.json"), "-q"])
    err = capsys.readouterr().err
    assert code == ERROR and "No space left on device" in err and "Traceback" not in err
    assert files(tmp_path) == {"relu.onnx", "m.keras"}, "staged temporaries must be removed"
    assert (tmp_path / "m.keras").read_text() == "old model"


def test_mismatch_writes_nothing_and_points_at_verify_bisect(tmp_path, monkeypatch, capsys):
    import dataclasses

    from konnx.ops import load_all
    from konnx.ops.registry import REGISTRY

    load_all()

    def off_by_one(spec):
        def fn(ctx, node):
            out = spec.fn(ctx, node)
            return ctx.tensor(ctx.op("binary", [out.kt, np.float32(1.0)], suffix="sabotage", op="add"), out.perm)
        return dataclasses.replace(spec, fn=fn)

    monkeypatch.setitem(REGISTRY, ("", "Relu"), [off_by_one(s) for s in REGISTRY[("", "Relu")]])
    src = tmp_path / "relu.onnx"
    onnx.save(_relu_model(), src)
    (tmp_path / "m.keras").write_text("old model")
    code = cli.main(["convert", str(src), "-o", str(tmp_path / "m.keras"), "--json", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == MISMATCH
    assert f"konnx verify {src} --bisect" in err and "convert --bisect" not in err
    assert files(tmp_path) == {"relu.onnx", "m.keras"} and (tmp_path / "m.keras").read_text() == "old model"


# ----------------------------------------------------------------------------- --input-shape
@pytest.mark.parametrize("shape, fragment", [
    ("x", "expects NAME=D1,D2"), ("x=", "expects NAME=D1,D2"), ("x=1,three,8,8", "dims must be integers"),
    ("x=0,3,8,8", "positive"), ("nope=1,3,8,8", "unknown inputs ['nope']; the model's inputs are ['x']"),
    ("x=1,3,8", "rank 3"), ("x:2,4,8,8", "dim 1 is 3 in the model, 4 requested"),
])
def test_bad_input_shape(tmp_path, relu, shape, fragment):
    before = files(tmp_path)
    expect(run("convert", relu, "-o", tmp_path / "m.keras", "--input-shape", shape), ERROR, fragment)
    assert files(tmp_path) == before


def test_input_shape_with_colon_is_accepted(tmp_path):
    out = tmp_path / "m.keras"
    r = run("convert", EXAMPLE, "-o", out, "--input-shape", "image:1,3,64,64")
    expect(r, 0)
    import keras

    assert keras.models.load_model(out, safe_mode=True).inputs[0].shape == (1, 3, 64, 64)


# ----------------------------------------------------------------------------- verify --inputs
@pytest.mark.parametrize("feeds, fragment", [
    ({"image": rand(2, 3, 64, 64)}, "missing ['x']"),
    ({"x": rand(2, 3, 8, 8), "y": rand(2, 3, 8, 8)}, "unknown ['y']"),
    ({"x": rand(2, 3, 8)}, "input 'x' has shape [2, 3, 8]"),
    ({"x": rand(2, 3, 8, 4)}, "input 'x' has shape [2, 3, 8, 4]"),
    ({"x": rand(2, 8, 8, 3)}, "looks channels-last"),
    ({"x": rand(2, 3, 8, 8).astype(np.float64)}, "dtype float64, expected float32"),
])
def test_bad_verify_inputs(tmp_path, relu, feeds, fragment):
    npz = tmp_path / "in.npz"
    np.savez(npz, **feeds)
    r = run("verify", relu, "--inputs", npz)
    expect(r, ERROR, fragment, "the model expects x float32 [?, 3, 8, 8]")


def test_verify_inputs_not_npz(tmp_path, relu):
    npy = tmp_path / "in.npy"
    np.save(npy, rand(2, 3, 8, 8).astype(np.float64))  # one .npy feeds a one-input model, checked the same way
    expect(run("verify", relu, "--inputs", npy), ERROR, "dtype float64, expected float32")
    single = tmp_path / "in.arr"  # a single array under another suffix: not taken for an .npz
    with open(single, "wb") as f:
        np.save(f, rand(2, 3, 8, 8))
    expect(run("verify", relu, "--inputs", single), ERROR, "expected an .npz file keyed by input name")
    garbage = tmp_path / "in.npz"
    garbage.write_bytes(b"not a zip")
    expect(run("verify", relu, "--inputs", garbage), ERROR, "not a readable .npz file")
    expect(run("verify", relu, "--inputs", tmp_path / "none.npz"), ERROR, "no such file or folder")


def test_verify_missing_keras_file(tmp_path, relu):
    expect(run("verify", relu, tmp_path / "none.keras"), ERROR, "Keras model file not found")
    bad = tmp_path / "bad.keras"
    bad.write_text("not a zip")
    expect(run("verify", relu, bad), ERROR, "cannot load")


def test_verify_keras_model_of_another_onnx(tmp_path, relu):
    """A .keras file whose inputs are not the ONNX model's: a user error, not an internal one."""
    other = make_model([helper.make_node("Add", ["a", "b"], ["y"])], [("a", np.float32, ("N", 4)),
                                                                     ("b", np.float32, ("N", 4))],
                       [("y", np.float32, None)])
    konnx.convert(other).save(tmp_path / "add.keras")
    r = run("verify", relu, tmp_path / "add.keras")
    expect(r, ERROR, "does not run on", "inputs")


# ----------------------------------------------------------------------------- the Python API
@pytest.mark.parametrize("shapes, fragment", [
    ("x", "input_shapes must be a dict mapping input names to shapes"),
    ({"x": "1,3,8,8"}, "must be a tuple or list of dims, got str"),
    ({"x": 4}, "must be a tuple or list of dims, got int"),
    ({"x": (1, 3, 8.0, 8)}, "each dim must be a positive int or None, got float"),
    ({"x": (2, 4, 8, 8)}, r"dim 1 is 3 in the model, 4 requested"),
])
def test_convert_input_shapes_type_errors(shapes, fragment):
    with pytest.raises(konnx.ConversionError) as info:
        konnx.convert(_relu_model(fixed_batch=True), input_shapes=shapes)
    assert fragment in str(info.value)


def test_verify_api_checks_inputs_and_shapes():
    with pytest.raises(konnx.ConversionError, match=r"missing \['x'\].*the model expects x float32 \[2, 3, 8, 8\]"):
        konnx.verify(_relu_model(fixed_batch=True), inputs={"y": rand(2, 3, 8, 8)})
    with pytest.raises(konnx.ConversionError, match="input_shapes must be a dict"):
        konnx.verify(_relu_model(), input_shapes=[1, 3, 8, 8])


def test_unknown_input_lists_only_real_inputs():
    """Large initializers are declared as inputs internally: they are not the model's inputs."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])]
    m = make_model(nodes, [("x", np.float32, (1, 3, 16, 16))], [("y", np.float32, None)],
                   [("w", rand(64, 3, 3, 3))])
    with pytest.raises(konnx.InvalidModelError) as info:
        konnx.convert(m, input_shapes={"nope": (1, 3, 16, 16)})
    assert "the model's inputs are ['x']" in str(info.value)


def test_conv_weight_that_is_a_graph_input_is_named_so():
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="dyn_conv", kernel_shape=[1, 1])]
    m = make_model(nodes, [("x", np.float32, (1, 2, 4, 4)), ("w", np.float32, (2, 2, 1, 1))],
                   [("y", np.float32, (1, 2, 4, 4))])
    with pytest.raises(konnx.ConversionError) as info:
        konnx.convert(m)
    assert "is a graph input" in str(info.value) and "computed by the graph" not in str(info.value)


# ----------------------------------------------------------------------------- missing extras, bugs
def _main_without(module: str, args: list) -> subprocess.CompletedProcess:
    """Run konnx's CLI in a process where `module` cannot be imported (as if not installed)."""
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "from konnx.cli import main\n"
            f"sys.exit(main({[str(a) for a in args]!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_missing_tensorflow_is_one_line_naming_the_extra(tmp_path, relu):
    r = _main_without("tensorflow", ["convert", relu, "-o", tmp_path / "m.keras"])
    expect(r, ERROR, 'pip install "konnx[tf]"')
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "m.keras").exists()


def test_missing_matplotlib_is_one_line_naming_the_extra(tmp_path):
    r = _main_without("matplotlib", ["padding", "--size", "5", "--kernel", "2", "--png", tmp_path / "p.png"])
    expect(r, ERROR, 'pip install "konnx[plot]"')
    assert not list(tmp_path.iterdir())
    r = _main_without("matplotlib", ["padding", "--size", "5", "--kernel", "2", "--svg", tmp_path / "p.svg"])
    expect(r, 0)
    assert (tmp_path / "p.svg").exists(), "SVG is drawn without matplotlib"


def test_internal_error_is_one_line_unless_verbose(tmp_path, relu, monkeypatch, capsys):
    from konnx import api

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "convert_detailed", boom)
    assert cli.main(["convert", str(relu), "-o", str(tmp_path / "m.keras")]) == INTERNAL
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err and "report" in err and "Traceback" not in err
    assert cli.main(["convert", str(relu), "-o", str(tmp_path / "m.keras"), "--verbose"]) == INTERNAL
    assert "Traceback" in capsys.readouterr().err
    assert files(tmp_path) == {"relu.onnx"}
