"""Real Keras layers where they compute exactly what konnx's function computes, and konnx's named
layers (konnx/layers/named.py) for the structural functions Keras lacks (issue 16 item 2).

The oracle is onnxruntime: element-wise ops that became Rescaling / Add / Multiply / Subtract
must match it bit for bit (they are the same IEEE operations), the sign of zero included; the
named layers must match it at the project tolerance, survive save/load in safe mode, refuse bad
arguments, and a file written in the old form (a KonnxOp naming the function) must still load.
"""
from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest
from onnx import helper

import konnx
from konnx.layers import NAMED_LAYERS, PROMOTED, FileFormatError, KonnxOp
from konnx.layers import named as N
from konnx.ops import keras_exact as E

from .util import assert_matches_ort, make_model, rand, run_keras, run_ort


def _classes(model) -> list:
    return [type(l).__name__ for l in model.layers if type(l).__name__ != "InputLayer"]


# ---------------------------------------------------------------- exact Keras layers
def _binary(op, const, dtype, swapped=False, shape=(3, 4, 5)):
    ins = ["c", "x"] if swapped else ["x", "c"]
    return make_model([helper.make_node(op, ins, ["y"])], [("x", dtype, list(shape))], [("y", dtype, list(shape))],
                      initializers=[("c", np.asarray(const, dtype=dtype))], opset=17)


EXACT_CASES = [
    ("Add", [0.25, -1.5, 3.0, 0.0, -0.0], False),   # per-channel bias: Rescaling(1, b)
    ("Add", 0.5, True),
    ("Sub", [[0.25, -1.5, 3.0, 0.0, -0.0]], False),  # x - b: Rescaling(1, -b)
    ("Sub", 2.0, True),                              # c - x: Rescaling(-1, c)
    ("Mul", float(np.float32(0.5946035)), False),   # x * s: Rescaling(s, -0.0)
    ("Mul", -3.0, True),
    ("Div", 4.0, False),                            # x / 4 = x * 0.25 exactly
]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("op,const,swapped", EXACT_CASES)
def test_scale_and_offset_by_constants_become_rescaling_bit_exact(op, const, swapped, dtype):
    m = _binary(op, const, dtype, swapped)
    x = rand(3, 4, 5, seed=3).astype(dtype)
    x[0, 0, :] = [0.0, -0.0, np.inf, -np.inf, 1e-3]
    km = konnx.convert(m)
    assert "Rescaling" in _classes(km) and "KonnxOp" not in _classes(km), _classes(km)
    (ref,) = run_ort(m, {"x": x})
    (got,) = run_keras(km, {"x": x}, m)
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))  # -0.0 stays -0.0


@pytest.mark.parametrize("op,const,dtype", [("Div", 3.0, np.float32), ("Mul", [1.0, 2.0, 3.0, 4.0, 5.0], np.float32),
                                            ("Mul", 0.1, np.float64)])
def test_inexact_or_channel_scale_keeps_the_function(op, const, dtype):
    """x / 3 is not x * (1/3); a vector scale is left out (Rescaling reshapes it under a
    channels_first global config); a float64 constant float32 cannot hold would be rounded by
    Rescaling: all stay KonnxOp and still match onnxruntime."""
    m = _binary(op, const, dtype)
    km = konnx.convert(m)
    assert "Rescaling" not in _classes(km)
    assert_matches_ort(m, {"x": rand(3, 4, 5, seed=4).astype(dtype)}, keras_model=km)


@pytest.mark.parametrize("op,layer", [("Add", "Add"), ("Sub", "Subtract"), ("Mul", "Multiply")])
def test_tensor_tensor_ops_of_one_shape_become_merge_layers(op, layer):
    m = make_model([helper.make_node(op, ["a", "b"], ["y"])], [("a", np.float32, ["n", 4, 5]),
                                                             ("b", np.float32, ["n", 4, 5])],
                   [("y", np.float32, ["n", 4, 5])])
    km = konnx.convert(m)
    assert layer in _classes(km), _classes(km)
    feeds = {"a": rand(2, 4, 5, seed=1), "b": rand(2, 4, 5, seed=2)}
    (ref,) = run_ort(m, feeds)
    (got,) = run_keras(km, feeds, m)
    np.testing.assert_array_equal(got, ref)


def test_merge_layer_needs_equal_static_shapes():
    """Keras infers (1, n) for (None, n) + (1, n): broadcasting operands keep the function."""
    a, b = keras.KerasTensor((None, 4)), keras.KerasTensor((1, 4))
    assert E.merge_layer([a, b], "add") is None
    assert E.merge_layer([a, keras.KerasTensor((None, 4))], "add") is keras.layers.Add
    assert E.merge_layer([a, keras.KerasTensor((None, 4), dtype="int64")], "add") is None


@pytest.mark.parametrize("in_shape,spec,target", [
    ((None, 17, 96), [-1, 17, 3, 32], (17, 3, 32)),        # -1 first, the rest known: batch kept
    ((17, None, 32), [17, -1, 8], (-1, 8)),                  # equal known first size
    ((None, 6), [{"axis": 0}, 2, 3], (2, 3)),                # copied first size
    ((None, 17, 4, 8), [-1, 32], None),                      # merges the first axis
    ((None, None, 32), [-1, 4, 8], None),                    # -1 first with an unknown size left
    ((None, 6), [{"axis": 0}, {"axis": 1}], (6,)),
    ((None, None, 6), [{"axis": 0}, {"axis": 1}, 6], None),  # an unknown copied size
])
def test_reshape_target_keeps_the_first_axis_only_when_provable(in_shape, spec, target):
    assert E.reshape_target(in_shape, spec) == target


# ---------------------------------------------------------------- named layers
def test_every_promoted_function_has_one_registered_class():
    assert len({c.FN for c in NAMED_LAYERS}) == len(NAMED_LAYERS) == len(PROMOTED)
    import konnx.layers
    for cls in NAMED_LAYERS:
        assert keras.saving.get_registered_object(f"konnx>{cls.__name__}") is cls
        assert cls.__name__ in konnx.layers.__all__ and getattr(konnx.layers, cls.__name__) is cls  # codegen imports it


def test_named_layer_validates_its_arguments():
    with pytest.raises(FileFormatError, match="missing argument.*'slices'"):
        N.Slice(name="s")
    with pytest.raises(FileFormatError, match="argument axes=.*expected a JSON value"):
        N.FullTranspose(axes=np.array([1, 0]), name="t")
    with pytest.raises(FileFormatError, match="format version 99"):
        N.Slice.from_config({"name": "s", "slices": [[0, 1, None]], "format_version": 99})


@pytest.mark.parametrize("cls,kwargs,shapes", [
    (N.Slice, {"slices": [[None, None, None], [1, None, 2]]}, [(None, 7)]),
    (N.FullTranspose, {"axes": [1, 0, 2]}, [(None, 3, 4)]),
    (N.FullReshape, {"shape": [-1, 12]}, [(2, 3, 4)]),
    (N.Einsum, {"equation": "abc,acd->abd"}, [(None, 3, 4), (None, 4, 5)]),
    (N.Squeeze, {"axes": [1]}, [(None, 1, 4)]),
    (N.ExpandDims, {"axes": [0]}, [(None, 4)]),
])
def test_named_layer_output_shape_and_config_roundtrip(cls, kwargs, shapes):
    layer = cls(name="probe", **kwargs)
    inputs = [keras.Input(batch_shape=s) for s in shapes]
    out = layer(inputs if len(inputs) > 1 else inputs[0])
    assert layer.compute_output_shape(shapes if len(shapes) > 1 else shapes[0]) == tuple(out.shape)
    config = layer.get_config()
    assert "fn" not in config and "params" not in config and "slots" not in config
    assert {k: config[k] for k in kwargs} == kwargs
    again = cls.from_config(config)
    assert again.get_config() == config


# ---------------------------------------------------------------- old files keep loading
def _structural_model():
    """Transpose of the batch axis, Slice, Einsum, Pad(reflect), Gather: each a named
    layer today, each a KonnxOp in a file written before the named layers existed."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
        helper.make_node("Slice", ["t", "s0", "s1", "sa"], ["s"]),
        helper.make_node("Einsum", ["s", "s"], ["e"], equation="abc,abd->acd"),
        helper.make_node("Pad", ["e", "p"], ["pd"], mode="reflect"),
        helper.make_node("Gather", ["pd", "g"], ["y"], axis=2),
    ]
    inits = [("s0", np.array([1], np.int64)), ("s1", np.array([3], np.int64)), ("sa", np.array([0], np.int64)),
             ("p", np.array([0, 0, 1, 0, 0, 1], np.int64)), ("g", np.array([0, 2, 1], np.int64))]
    m = make_model(nodes, [("x", np.float32, [2, 4, 3])], [("y", np.float32, [2, 5, 3])],
                   initializers=inits, opset=17)
    return m, {"x": rand(2, 4, 3, seed=5)}


def _to_old_form(layer: dict) -> bool:
    """A named layer's config written as the KonnxOp of format version 1 (no version key)."""
    cls = keras.saving.get_registered_object(layer.get("registered_name") or "")
    if cls is None or cls not in NAMED_LAYERS:
        return False
    cfg = dict(layer["config"])
    base = {k: cfg.pop(k) for k in ("name", "trainable", "dtype") if k in cfg}
    cfg.pop("format_version")
    slots, specs = cfg.pop("slots", None), cfg.pop("weight_specs", [])
    n = len(layer["inbound_nodes"][0]["args"][0]) if isinstance(layer["inbound_nodes"][0]["args"][0], list) else 1
    layer["class_name"], layer["registered_name"], layer["module"] = "KonnxOp", "konnx>KonnxOp", "konnx.layers.op"
    layer["config"] = {**base, "fn": cls.FN, "params": cfg, "slots": slots or [{"t": i} for i in range(n)],
                       "weight_specs": specs}
    return True


def test_a_file_written_with_konnxop_for_these_functions_still_loads(tmp_path):
    m, feeds = _structural_model()
    km = konnx.convert(m)
    named = {type(l).__name__ for l in km.layers} & {c.__name__ for c in NAMED_LAYERS}
    assert {"Slice", "Einsum", "ModePad", "Gather"} <= named, named
    path = tmp_path / "m.keras"
    km.save(path)
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    config = json.loads(files["config.json"])
    rewritten = sum(_to_old_form(layer) for layer in config["config"]["layers"])
    assert rewritten == len([l for l in km.layers if type(l) in NAMED_LAYERS])
    files["config.json"] = json.dumps(config).encode()
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(old, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    loaded = keras.models.load_model(old, safe_mode=True)
    assert not any(type(l) in NAMED_LAYERS for l in loaded.layers)
    assert sum(type(l) is KonnxOp for l in loaded.layers) == rewritten
    assert_matches_ort(m, feeds, keras_model=loaded)
    assert_matches_ort(m, feeds, keras_model=keras.models.load_model(path, safe_mode=True))


@pytest.mark.parametrize("op,layer,keepdims", [("ReduceMean", "GlobalAveragePooling2D", 1),
                                               ("ReduceMax", "GlobalMaxPooling2D", 0)])
def test_reduction_over_the_spatial_axes_becomes_global_pooling(op, layer, keepdims):
    w = rand(4, 3, 1, 1, seed=7)
    m = make_model([helper.make_node("Conv", ["x", "w"], ["c"]),
                    helper.make_node(op, ["c"], ["y"], axes=[2, 3], keepdims=keepdims)],
                   [("x", np.float32, ["n", 3, 6, 5])], [("y", np.float32, None)],
                   initializers=[("w", w)], opset=17)
    km = konnx.convert(m)
    # (the keepdims output goes back to NCHW through the output's layout move)
    assert layer in _classes(km) and not any(getattr(l, "fn", "") == "math.reduce" for l in km.layers), _classes(km)
    feeds = {"x": rand(2, 3, 6, 5, seed=8)}
    assert_matches_ort(m, feeds, keras_model=km)


def test_square_is_a_multiply_layer_bit_exact():
    m = make_model([helper.make_node("Pow", ["x", "e"], ["y"])], [("x", np.float32, ["n", 4, 5])],
                   [("y", np.float32, ["n", 4, 5])], initializers=[("e", np.array(2.0, np.float32))])
    km = konnx.convert(m)
    assert "Multiply" in _classes(km) and "KonnxOp" not in _classes(km), _classes(km)
    feeds = {"x": rand(2, 4, 5, seed=9)}
    np.testing.assert_array_equal(run_keras(km, feeds, m)[0], run_ort(m, feeds)[0])


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_keras_reshape_keeps_the_float_dtype(dtype):
    """keras.layers.Reshape is built in its constructor: it must be given the input's dtype, or it
    casts float16 / float64 to float32 (onnx backend case test_attention_4d_fp16_expanded)."""
    m = make_model([helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("Unsqueeze", ["r", "a"], ["y"])],
                   [("x", dtype, ["n", 4, 6])], [("y", dtype, ["n", 2, 1, 12])],
                   initializers=[("s", np.array([0, 2, 12], np.int64)), ("a", np.array([2], np.int64))])
    km = konnx.convert(m)
    assert _classes(km).count("Reshape") == 2, _classes(km)
    feeds = {"x": rand(3, 4, 6, seed=10).astype(dtype)}
    (got,), (ref,) = run_keras(km, feeds, m), run_ort(m, feeds)
    assert got.dtype == ref.dtype == dtype
    np.testing.assert_array_equal(got, ref)
