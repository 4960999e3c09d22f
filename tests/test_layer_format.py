"""The `.keras` format konnx writes (docs/file-format.md): every registered function's name and
parameters match the golden file, configs without a format version (written before it existed)
load, configs of a newer version are refused with both versions named, and the upgrade path
turns an old config into the current one when the format moves on."""
from __future__ import annotations

import functools
import json
import warnings
import zipfile

import keras
import numpy as np
import pytest
from onnx import helper

import konnx
from konnx.errors import ConversionError
from konnx.layers import format as fmt
from konnx.layers.op import KonnxOp

from .golden.format import GOLDEN, describe, render
from .util import assert_matches_ort, make_model, rand, run_ort

REGEN = "PYTHONPATH=. python -m tests.golden.format"


def test_registry_matches_golden_file():
    live, golden = render(describe()), GOLDEN.read_text()
    if live != golden:
        old, new = set(golden.splitlines()), set(live.splitlines())
        diff = [f"- {x}" for x in sorted(old - new)] + [f"+ {x}" for x in sorted(new - old)]
        pytest.fail("the konnx layer format differs from tests/golden/konnx_functions.json:\n"
                    + "\n".join(diff) + f"\nIf the change is deliberate (old files must still load: see "
                    f"docs/file-format.md), bump the format version if needed and run: {REGEN}")


def test_golden_file_is_valid_json_of_the_live_version():
    data = json.loads(GOLDEN.read_text())
    assert data["format_version"] == fmt.FORMAT_VERSION
    assert "format_version" in data["konnx_op_config_keys"]


# ---------------------------------------------------------------- a saved model to edit
def _model():
    """Mod (a KonnxOp with an inline constant) then Add of a 100-element constant (stored as a
    weight when konnx emits a KonnxOp for it): at least one KonnxOp in the converted model."""
    c = np.linspace(1.0, 3.0, 100, dtype=np.float32).reshape(1, 100)
    m = make_model([helper.make_node("Mod", ["x", "d"], ["m"], fmod=1), helper.make_node("Add", ["m", "c"], ["y"])],
                   [("x", np.float32, [2, 100])], [("y", np.float32, [2, 100])],
                   initializers=[("d", np.full((1, 1), 0.7, np.float32)), ("c", c)], opset=13)
    return m, {"x": rand(2, 100, seed=1)}


def _saved(tmp_path, edit):
    """Convert, save, apply `edit` to every KonnxOp config in the file; return (path, onnx, feeds)."""
    m, feeds = _model()
    path = tmp_path / "m.keras"
    konnx.convert(m).save(path)
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    config = json.loads(files["config.json"])
    edited = 0
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "KonnxOp":
            assert layer["config"]["format_version"] == fmt.FORMAT_VERSION
            edit(layer["config"])
            edited += 1
    assert edited, "the test model has no KonnxOp"
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return path, m, feeds


def _assert_matches(loaded, m, feeds):
    (ref,) = run_ort(m, feeds)
    got = np.asarray(loaded(feeds["x"]))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4 * max(1.0, float(np.max(np.abs(ref)))))


def test_config_saved_without_version_loads(tmp_path):
    path, m, feeds = _saved(tmp_path, lambda c: c.pop("format_version"))
    loaded = keras.models.load_model(path, safe_mode=True)
    _assert_matches(loaded, m, feeds)
    ops = [l for l in loaded.layers if isinstance(l, KonnxOp)]
    assert ops and all(l.get_config()["format_version"] == fmt.FORMAT_VERSION for l in ops)


@pytest.mark.parametrize("version", [fmt.FORMAT_VERSION + 1, 0, "2.0"])
def test_newer_or_unknown_version_is_refused(tmp_path, version):
    path, _, _ = _saved(tmp_path, lambda c: c.update(format_version=version))
    with pytest.raises(fmt.FileFormatError) as err:
        keras.models.load_model(path, safe_mode=True)
    msg = str(err.value)
    assert f"format version {version!r}" in msg and f"writes format version {fmt.FORMAT_VERSION}" in msg
    assert isinstance(err.value, ConversionError)


def test_unknown_function_is_refused(tmp_path):
    path, _, _ = _saved(tmp_path, lambda c: c.update(fn="no_such_function"))
    with pytest.raises(fmt.FileFormatError, match="unknown function 'no_such_function'"):
        keras.models.load_model(path, safe_mode=True)


def test_upgrade_path_loads_an_old_file(tmp_path, monkeypatch):
    """Pretend the format moved on twice (a function and a parameter renamed): a file written
    with the old names, without a version, loads through the two upgrade steps."""
    def to_old(c):
        c.pop("format_version")
        if c["fn"] == "math.mod":
            c["fn"] = "old_mod"
            c["params"] = {"old_fmod" if k == "fmod" else k: v for k, v in c["params"].items()}

    path, m, feeds = _saved(tmp_path, to_old)
    with pytest.raises(fmt.FileFormatError, match="unknown function 'old_mod'"):
        keras.models.load_model(path, safe_mode=True)
    monkeypatch.setattr(fmt, "FORMAT_VERSION", 3)
    monkeypatch.setattr(fmt, "UPGRADES", {1: fmt.rename_function("old_mod", "math.mod"),
                                          2: fmt.rename_param("math.mod", "old_fmod", "fmod")})
    loaded = keras.models.load_model(path, safe_mode=True)
    _assert_matches(loaded, m, feeds)
    mods = [l for l in loaded.layers if isinstance(l, KonnxOp) and l.fn == "math.mod"]
    assert mods and mods[0].params.get("fmod") == 1 and mods[0].get_config()["format_version"] == 3


def test_direct_construction_with_another_version_is_refused():
    with pytest.raises(fmt.FileFormatError, match=f"format version {fmt.FORMAT_VERSION + 1}"):
        KonnxOp("identity", slots=[{"t": 0}], format_version=fmt.FORMAT_VERSION + 1, name="x")


@pytest.mark.parametrize("fn,shape,target", [("reshape_dynamic", (2, 3, 4), [4, 6]),
                                             ("broadcast_dynamic", (3, 1), [2, 3, 4])])
def test_functions_kept_only_for_old_files_still_run(fn, shape, target):
    """No converter emits these any more; a file written when one did (no format version) still
    loads and computes what numpy does."""
    x = rand(*shape)
    config = {"name": "old", "fn": fn, "params": {},
              "slots": [{"t": 0}, {"c": {"value": target, "dtype": "int64", "shape": [len(target)]}}]}
    got = np.asarray(KonnxOp.from_config(config)(x))
    expect = np.reshape(x, target) if fn == "reshape_dynamic" else np.broadcast_to(x, target)
    np.testing.assert_array_equal(got, expect)


def test_a_parameter_value_outside_its_declared_choices_is_refused():
    KonnxOp.from_config({"name": "u", "fn": "math.unary", "params": {"op": "exp"}, "slots": [{"t": 0}]})
    with pytest.raises(fmt.FileFormatError, match=r"math.unary op='cube' is not one of \["):
        KonnxOp.from_config({"name": "u", "fn": "math.unary", "params": {"op": "cube"}, "slots": [{"t": 0}]})


# ------------------------------------------------- functions tests/ops does not reach
# One ONNX backend node case per registered function that the per-op tests (tests/ops, whose
# helper round-trips every model) do not reach: the converted model must use that function,
# and survive get_config/from_config and a .keras save/reload, matching the suite's expected
# outputs (the ONNX reference implementation's) as tests/test_backend_suite.py does.
BACKEND_CASES = {
    "affine_grid": "test_affine_grid_2d", "bit_shift": "test_bitshift_right_uint8",
    "causal_conv_with_state": "test_causal_conv_with_state_with_bias", "col2im": "test_col2im_pads",
    "compress": "test_compress_0", "cumprod": "test_cumprod_1d_exclusive",
    "deform_conv": "test_deform_conv_with_mask_bias", "dequantize_linear": "test_dequantizelinear_axis",
    "det": "test_det_nd", "dft": "test_dft_axis_opset19", "dynamic_quantize_linear": "test_dynamicquantizelinear",
    "eye_like": "test_eyelike_populate_off_main_diagonal", "grid_sample": "test_gridsample_border_padding",
    "int_conv": "test_convinteger_with_padding", "int_matmul": "test_matmulinteger",
    "linear_attention": "test_linear_attention_gated", "lp_pool": "test_lppool_2d_default",
    "max_pool_argmax": "test_maxpool_with_argmax_2d_precomputed_strides",
    "max_unpool": "test_maxunpool_export_with_output_shape", "nll_loss": "test_nllloss_NCd1d2_reduction_mean",
    "non_max_suppression": "test_nonmaxsuppression_suppress_by_IOU", "nonzero": "test_nonzero_example",
    "qlinear_conv": "test_qlinearconv", "qlinear_matmul": "test_qlinearmatmul_2D_uint8_float32",
    "quantize_linear": "test_quantizelinear_axis", "reverse_sequence": "test_reversesequence_batch",
    "roi_align": "test_roialign_aligned_true", "rotary_embedding": "test_rotary_embedding_interleaved",
    "scatter_elements": "test_scatter_elements_with_axis", "scatter_nd": "test_scatternd_add",
    "shrink": "test_shrink_soft", "stft": "test_stft_with_window", "swiglu": "test_swiglu_alpha",
    "swish": "test_swish", "tensor_scatter": "test_tensorscatter_circular",
    "tfidf": "test_tfidfvectorizer_tf_only_bigrams_skip0", "top_k": "test_top_k_same_values",
    "unique": "test_unique_not_sorted_without_axis", "window": "test_hannwindow",
}


@functools.lru_cache(maxsize=1)
def _node_cases() -> dict:
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():  # the case generators warn about float overflow / log(0)
        warnings.simplefilter("ignore")
        return {c.name: c for c in load_model_tests(kind="node")}


@pytest.mark.parametrize("fn,name", sorted(BACKEND_CASES.items()))
def test_function_survives_config_and_file_roundtrip(fn, name, tmp_path):
    from konnx.backend import KonnxBackend

    case = _node_cases()[name]
    ins, expected = case.data_sets[0]
    rep = KonnxBackend.prepare(case.model)
    rep.run(list(ins))
    model = rep._model_for(rep._feeds(list(ins)))
    assert fn in {getattr(layer, "fn", None) for layer in model.layers}, f"{name} no longer uses {fn!r}"
    twin = keras.Model.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    path = tmp_path / "m.keras"
    model.save(path)
    args = [a for n, a in zip(rep.input_names, ins) if n not in rep.bound_inputs]
    for label, m in (("from_config", twin), ("reloaded", keras.models.load_model(path, safe_mode=True))):
        out = m(args[0] if len(args) == 1 else args)
        out = out if isinstance(out, (list, tuple)) else [out]
        assert len(out) == len(expected), label
        for got, ref in zip(out, expected):
            got = np.asarray(got)
            assert got.shape == ref.shape and got.dtype == ref.dtype, f"{label}: {got.shape} {got.dtype} vs {ref.shape} {ref.dtype}"
            np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-7, err_msg=label)


def test_constant_output_survives_roundtrip():
    """A graph output that is a constant becomes the "constant" function (tied to an input)."""
    value = helper.make_tensor("v", 1, [2], [1.5, -2.0])
    m = make_model([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Constant", [], ["c"], value=value)],
                   [("x", np.float32, [1, 3])], [("y", np.float32, [1, 3]), ("c", np.float32, [2])])
    km = assert_matches_ort(m, {"x": rand(1, 3)})  # also rebuilt from its config and (once) saved
    assert "constant" in {getattr(layer, "fn", None) for layer in km.layers}
