"""konnx.onnx_to_keras: onnx2keras's call, answered by konnx, checked against onnxruntime; its
arguments are checked and the ones konnx does not support are refused with what to use instead."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import konnx
from tests.util import make_model, rand, run_ort, tolerance

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tiny_resnet.onnx"


@pytest.fixture(scope="module")
def example():
    return onnx.load(str(EXAMPLE))


def _close(ref, got):
    got = np.asarray(got)
    assert ref.shape == got.shape and np.max(np.abs(ref - got)) <= tolerance(ref)


def test_example_like_onnx2keras(example):
    x = rand(2, 3, 64, 64, seed=3)
    ref = run_ort(example, {"image": x})[0]
    model = konnx.onnx_to_keras(example, ["image"])
    _close(ref, model(x))
    assert not [layer for layer in model.layers if type(layer).__name__ == "Lambda"]


def test_example_change_ordering(example):
    x = rand(2, 3, 64, 64, seed=4)
    ref = run_ort(example, {"image": x})[0]
    model = konnx.onnx_to_keras(example, ["image"], verbose=False, change_ordering=True)
    assert tuple(model.inputs[0].shape) == (None, 64, 64, 3)
    _close(ref, model(np.transpose(x, (0, 2, 3, 1))))


def test_input_shapes_without_batch_as_onnx2keras(example, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(example, str(path))
    model = konnx.onnx_to_keras(str(path), ["image"], input_shapes=[(3, 64, 64)])
    assert tuple(model.inputs[0].shape) == (None, 3, 64, 64)
    x = rand(1, 3, 64, 64, seed=5)
    _close(run_ort(example, {"image": x})[0], model(x))


def test_inputs_follow_input_names():
    m = make_model([helper.make_node("Sub", ["a", "b"], ["y"])], [("a", np.float32, [2, 3]), ("b", np.float32, [2, 3])],
                   [("y", np.float32, [2, 3])])
    a, b = rand(2, 3, seed=1), rand(2, 3, seed=2)
    ref = run_ort(m, {"a": a, "b": b})[0]
    _close(ref, konnx.onnx_to_keras(m, ["a", "b"])([a, b]))
    _close(ref, konnx.onnx_to_keras(m, ["b", "a"])([b, a]))


@pytest.mark.parametrize("kwargs, message", [
    ({"input_names": ["input"]}, r"input_names \['input'\] are not inputs of the model; its inputs are \['image'\]"),
    ({"input_names": []}, r"must name each of the model's inputs \['image'\] once"),
    ({"input_names": ["image"], "name_policy": "renumerate"}, "name_policy='renumerate' is not supported.*use "
                                                              "name_policy=None"),
    ({"input_names": ["image"], "name_policy": "short"}, "name_policy='short' is not supported"),
    ({"input_names": ["image"], "change_ordering": "yes"}, "change_ordering must be True or False, got 'yes'"),
    ({"input_names": ["image"], "input_shapes": [(64, 64)]}, "the input has rank 4, so give 3 dims"),
    ({"input_names": ["image"], "input_shapes": [(3, 64, 64), (3, 64, 64)]}, "one shape per name"),
])
def test_refusals(example, kwargs, message):
    with pytest.raises(konnx.ConversionError, match=message):
        konnx.onnx_to_keras(example, **kwargs)
