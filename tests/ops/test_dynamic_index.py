"""GatherND / ScatterND / ScatterElements / Gather on dynamic data shapes and index lengths
(issue 12: GPT-2's padding-mask indexing and last-token gather under the dynamo exporter).
Each model is converted ONCE with symbolic dims and run at two sizes against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx

from ..util import assert_matches_ort, make_model


def _run_two_sizes(m, make_feeds):
    km = konnx.convert(m)
    for size in ((2, 5), (3, 9)):
        assert_matches_ort(m, make_feeds(*size), keras_model=km)
    return km


@pytest.mark.parametrize("batch_dims", [0, 1])
def test_gather_nd_dynamic_data_and_indices(batch_dims):
    """data (B, L, 3) dynamic B and L; indices (B, K, 2 - batch_dims) with K dynamic too."""
    k = 2 - batch_dims
    m = make_model([helper.make_node("GatherND", ["x", "i"], ["y"], batch_dims=batch_dims)],
                   [("x", np.float32, ["B", "L", 3]), ("i", np.int64, ["B", "K", k])], [("y", np.float32, None)])

    def feeds(b, length):
        rng = np.random.default_rng(b * length)
        hi = np.array([b, length][batch_dims:batch_dims + k])
        idx = rng.integers(0, hi, size=(b, length + 1, k))
        idx[:, 0] -= hi  # negative indices too
        return {"x": rng.standard_normal((b, length, 3)).astype(np.float32), "i": idx.astype(np.int64)}
    _run_two_sizes(m, feeds)


def test_last_token_gather():
    """logits[arange(B), mask.sum(-1) - 1] written as GatherND over computed (B, 2) indices."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"]),
        helper.make_node("Gather", ["shp", "zero"], ["b"], axis=0),
        helper.make_node("Range", ["zero", "b", "one"], ["rows"]),
        helper.make_node("ReduceSum", ["mask", "ax"], ["len"], keepdims=0),
        helper.make_node("Sub", ["len", "one"], ["last"]),
        helper.make_node("Unsqueeze", ["rows", "ax"], ["r2"]),
        helper.make_node("Unsqueeze", ["last", "ax"], ["l2"]),
        helper.make_node("Concat", ["r2", "l2"], ["idx"], axis=1),
        helper.make_node("GatherND", ["x", "idx"], ["y"]),
    ]
    inits = [("zero", np.array(0, np.int64)), ("one", np.array(1, np.int64)), ("ax", np.array([1], np.int64))]
    m = make_model(nodes, [("x", np.float32, ["B", "L", 4]), ("mask", np.int64, ["B", "L"])],
                   [("y", np.float32, None)], inits)

    def feeds(b, length):
        mask = np.ones((b, length), np.int64)
        for r in range(b):
            mask[r, max(1, length - 2 * r):] = 0
        return {"x": np.random.default_rng(length).standard_normal((b, length, 4)).astype(np.float32), "mask": mask}
    _run_two_sizes(m, feeds)


def test_scatter_nd_dynamic_data():
    m = make_model([helper.make_node("ScatterND", ["x", "i", "u"], ["y"])],
                   [("x", np.float32, ["B", "L", 3]), ("i", np.int64, [2, 1]), ("u", np.float32, [2, "L", 3])],
                   [("y", np.float32, None)])

    def feeds(b, length):
        rng = np.random.default_rng(b + length)
        return {"x": rng.standard_normal((b, length, 3)).astype(np.float32),
                "i": np.array([[b - 1], [0]], np.int64),
                "u": rng.standard_normal((2, length, 3)).astype(np.float32)}
    _run_two_sizes(m, feeds)


@pytest.mark.parametrize("reduction", ["none", "add", "max"])
def test_scatter_elements_dynamic_data(reduction):
    m = make_model([helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], axis=1, reduction=reduction)],
                   [("x", np.float32, ["B", "L"]), ("i", np.int64, ["B", 2]), ("u", np.float32, ["B", 2])],
                   [("y", np.float32, None)], opset=18)

    def feeds(b, length):
        rng = np.random.default_rng(b * 3 + length)
        idx = np.stack([rng.permutation(length)[:2] for _ in range(b)]).astype(np.int64)
        idx[:, 1] -= length  # a negative index
        return {"x": rng.standard_normal((b, length)).astype(np.float32), "i": idx,
                "u": rng.standard_normal((b, 2)).astype(np.float32)}
    _run_two_sizes(m, feeds)


def test_gather_of_dynamic_data_by_dynamic_indices():
    m = make_model([helper.make_node("Gather", ["x", "i"], ["y"], axis=1)],
                   [("x", np.float32, ["B", "L", 3]), ("i", np.int64, ["K"])], [("y", np.float32, None)])

    def feeds(b, length):
        rng = np.random.default_rng(b + 7 * length)
        return {"x": rng.standard_normal((b, length, 3)).astype(np.float32),
                "i": rng.integers(-length, length, size=(length + 2,)).astype(np.int64)}
    _run_two_sizes(m, feeds)
