"""konnx/ops/tensor_index.py (Gather family, Trilu, OneHot, CumSum) against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ..util import rand
from .cl_helpers import check, model, one

I64 = np.int64
CL = [False, True]


# ----------------------------------------------------------------------------- Gather family
@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("axis,idx", [(0, 1), (1, -1), (1, [[0, 2], [-1, 1]]), (3, [4, 0, -2]), (-2, [])])
def test_gather(axis, idx, channels_last):
    m = one("Gather", [2, 3, 4, 5], [("i", np.array(idx, I64))], axis=axis)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


@pytest.mark.parametrize("axis", [0, 1])
def test_gather_runtime_indices(axis):
    # an embedding-style lookup (constant table, runtime ids) and data+ids both runtime
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], axis=axis),
             helper.make_node("Gather", ["x", "ids"], ["y"], axis=axis)]
    m = model(nodes, [("x", np.float32, [4, 5, 2]), ("ids", np.int64, [2, 3])], ["e", "y"],
              [("table", rand(4, 5, seed=3))], opset=13)
    ids = np.array([[0, 3, -1], [2, 1, -4]], I64)
    check(m, {"x": rand(4, 5, 2), "ids": ids})


@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("axis", [0, 1, 3])
def test_gather_elements(axis, channels_last):
    ishape = [2, 3, 4, 5]
    ishape[(axis + 1) % 4] -= 1  # indices smaller than data on another axis
    n = [2, 3, 4, 5][axis]
    idx = np.random.default_rng(axis).integers(-n, n, size=ishape)
    m = one("GatherElements", [2, 3, 4, 5], [("i", idx.astype(I64))], axis=axis)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


@pytest.mark.parametrize("batch_dims,idx", [
    (0, [[0, 1], [1, -1]]),
    (0, [[[1]], [[0]]]),
    (1, [[1], [0]]),
    (1, [[[0, 2]], [[1, -1]]]),
])
def test_gather_nd(batch_dims, idx):
    m = one("GatherND", [2, 3, 4], [("i", np.array(idx, I64))], batch_dims=batch_dims)
    check(m, {"x": rand(2, 3, 4)})


# ----------------------------------------------------------------------------- Trilu / OneHot / CumSum
@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("upper,k", [(1, 0), (0, 0), (1, -1), (0, 2)])
def test_trilu(upper, k, channels_last):
    m = one("Trilu", [2, 3, 4, 5], [("k", np.array(k, I64))], opset=14, upper=upper)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot(axis):
    nodes = [helper.make_node("OneHot", ["ids", "d", "v"], ["y"], axis=axis)]
    m = model(nodes, [("ids", np.int64, [2, 3])], ["y"],
              [("d", np.array(4, I64)), ("v", np.array([-2.0, 5.0], np.float32))], opset=11)
    check(m, {"ids": np.array([[0, 3, -1], [5, -4, 2]], I64)})


@pytest.mark.parametrize("channels_last", CL)
@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumsum(exclusive, reverse, channels_last):
    m = one("CumSum", [2, 3, 4, 5], [("a", np.array(1, I64))], opset=14, exclusive=exclusive, reverse=reverse)
    check(m, {"x": rand(2, 3, 4, 5)}, channels_last=channels_last)
