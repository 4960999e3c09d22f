"""konnx.weights: layers whose variables are created from their values (issue 17, conversion
memory). The converted layers must hold exactly the ONNX weights (checked against onnxruntime
through the converted model) and keep their plain, serializable initializers."""
from __future__ import annotations

import keras
import numpy as np
import onnx
import pytest

import konnx
from konnx.weights import initial_values

from .util import assert_matches_ort, make_model, rand


def test_dense_and_conv_weights_from_values():
    """Gemm with transB=1 (the Dense kernel is a transposed view) after a Conv with a bias."""
    k, kb = rand(6, 3, 3, 3, seed=5), rand(6, seed=8)
    w, b = rand(8, 6 * 2 * 2, seed=6), rand(8, seed=4)
    nodes = [onnx.helper.make_node("Conv", ["x", "k", "kb"], ["c"], pads=[1, 1, 1, 1]),
             onnx.helper.make_node("Flatten", ["c"], ["f"]),
             onnx.helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1)]
    model = make_model(nodes, [("x", np.float32, [1, 3, 2, 2])], [("y", np.float32, [1, 8])],
                       [("k", k), ("kb", kb), ("w", w), ("b", b)])
    km = assert_matches_ort(model, {"x": rand(1, 3, 2, 2, seed=7)})
    checked = 0
    for layer in km.layers:
        cfg = layer.get_config()
        for key in ("kernel_initializer", "bias_initializer"):
            if key in cfg:
                assert cfg[key]["class_name"] == "Zeros", (layer.name, cfg[key])
                checked += 1
    assert checked == 4


def test_initial_values_refuses_wrong_shape():
    layer = keras.layers.Dense(3)
    with pytest.raises(konnx.ConversionError, match="expects shape"):
        with initial_values(layer, kernel_initializer=np.zeros((5, 3), np.float32)):
            layer(keras.Input((4,)))
    assert not hasattr(layer.kernel_initializer, "value")  # the layer's own initializer is back


def test_initial_values_casts_to_the_variable_dtype():
    layer = keras.layers.Dense(2, dtype="float64")
    value = np.arange(6, dtype=np.float32).reshape(3, 2)
    with initial_values(layer, kernel_initializer=value):
        layer(keras.Input((3,), dtype="float64"))
    got = keras.ops.convert_to_numpy(layer.kernel)
    assert got.dtype == np.float64 and np.array_equal(got, value.astype(np.float64))


def test_konnx_op_constants_from_values():
    """KonnxOp constants (a Gather table, a bool mask stored as uint8) made from their values."""
    table = rand(50, 8, seed=1)
    mask = np.random.default_rng(2).random((2, 3, 8)) > 0.5
    nodes = [onnx.helper.make_node("Gather", ["E", "ids"], ["a"]), onnx.helper.make_node("Where", ["M", "a", "z"], ["y"])]
    model = make_model(nodes, [("ids", np.int64, [2, 3])], [("y", np.float32, [2, 3, 8])],
                       [("E", table), ("M", mask), ("z", np.float32(0))])
    assert_matches_ort(model, {"ids": np.array([[1, 2, 3], [49, 0, 7]], np.int64)})
