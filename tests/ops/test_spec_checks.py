"""Small per-op spec checks (konnx/ops/spec_checks.py, issue 14): each bad model is refused with
a konnx error naming the node and the expectation, onnxruntime refuses it too, and the valid
neighbour still converts and matches onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper


from ..util import assert_refused_like_ort, make_model, rand

I64 = np.int64


def _model(op, ins, attrs=None, opset=20, inits=()):
    """One `op` node named 'n'; ins: (name, dtype, shape) graph inputs; inits: (name, array)."""
    names = [n for n, _, _ in ins] + [n for n, _ in inits]
    order = attrs.pop("_order") if attrs and "_order" in attrs else names
    node = helper.make_node(op, order, ["y"], name="n", **(attrs or {}))
    model = make_model([node], list(ins), [("y", np.float32, None)], initializers=inits, opset=opset)
    return model, {n: rand(*s, seed=i).astype(t) for i, (n, t, s) in enumerate(ins)}


F = np.float32


@pytest.mark.parametrize("groups,expect", [(-1, "num_groups=-1: must be a positive"), (3, "num_groups=3 does not divide the 4")])
def test_group_norm_groups(groups, expect):
    def m(g):
        ins = [("x", F, [3, 4, 2, 2]), ("s", F, [4]), ("b", F, [4])]
        return _model("GroupNormalization", ins, dict(num_groups=g), opset=21)
    assert_refused_like_ort(m(groups), m(2), expect)


def test_clip_bounds_are_scalars():
    def m(shape):
        return _model("Clip", [("x", F, [3, 4]), ("lo", F, shape)], opset=13)
    assert_refused_like_ort(m([2]), m([]), "min has shape [2]: the spec wants a scalar")


def test_gather_nd_batch_dims():
    def m(b):
        model = make_model([helper.make_node("GatherND", ["x", "i"], ["y"], name="n", batch_dims=b)],
                           [("x", F, [2, 2, 2]), ("i", I64, [2, 1])], [("y", F, None)], opset=13)
        return model, {"x": rand(2, 2, 2), "i": np.array([[1], [0]], I64)}
    assert_refused_like_ort(m(-1), m(1), "batch_dims=-1: must be in [0, 1]")


def test_affine_grid_theta_shape():
    def m(theta):
        return _model("AffineGrid", [("theta", F, theta)], dict(_order=["theta", "size"]), opset=20,
                      inits=[("size", np.array([2, 1, 3, 4], I64))])
    assert_refused_like_ort(m([2, 2, 2]), m([2, 2, 3]), "theta has shape [2, 2, 2], expected [2, 2, 3] for a 2-D grid")


def test_col2im_columns():
    def m(cols):
        return _model("Col2Im", [("x", F, [1, 4, cols])], dict(_order=["x", "img", "blk"]), opset=18,
                      inits=[("img", np.array([3, 3], I64)), ("blk", np.array([2, 2], I64))])
    assert_refused_like_ort(m(5), m(4), "input axis 2 has 5 columns, the image holds 4 block positions")


def test_range_inputs_are_scalars():
    def m(shape):
        return _model("Range", [("a", F, []), ("b", F, shape), ("d", F, [])], opset=13)
    bad, good = m([2]), m([])
    good[1].update({"a": np.array(0, F), "b": np.array(5, F), "d": np.array(1, F)})
    assert_refused_like_ort(bad, good, "limit has shape [2]: the spec wants a scalar")


def test_prelu_slope_broadcasts():
    def m(slope):
        return _model("PRelu", [("x", F, [3, 4, 5]), ("s", F, slope)], opset=16)
    assert_refused_like_ort(m([4, 6]), m([4, 1]), "slope has shape [4, 6]: it must broadcast to X's shape [3, 4, 5]")


def test_scatter_elements_updates_shape():
    def m(upd):
        model = make_model([helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], name="n", axis=0)],
                           [("x", F, [3, 3]), ("i", I64, [1, 3]), ("u", F, upd)], [("y", F, None)], opset=16)
        return model, {"x": rand(3, 3), "i": np.array([[1, 0, 2]], I64), "u": rand(*upd, seed=2)}
    assert_refused_like_ort(m([2, 3]), m([1, 3]), "updates have shape [2, 3], indices [1, 3]")


def test_einsum_term_length_against_rank():
    def m(eq):
        return _model("Einsum", [("x", F, [3, 4])], dict(equation=eq), opset=12)
    # an empty equation slips past onnx shape inference (a wrong letter count does not)
    assert_refused_like_ort(m(""), m("ab->a"), "term '' has 0 letters for input 0 of rank 2")


def test_resize_unknown_nearest_mode():
    def m(mode):
        return _model("Resize", [("x", F, [1, 1, 2, 2])], dict(_order=["x", "", "sc"], mode="nearest", nearest_mode=mode),
                      opset=13, inits=[("sc", np.array([1, 1, 2, 2], F))])
    assert_refused_like_ort(m("nearest_odd"), m("floor"), "unknown nearest_mode 'nearest_odd'")
