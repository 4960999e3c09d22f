"""Gemm, MatMul and Einsum against onnxruntime."""
import numpy as np
import pytest
from onnx import helper

from tests.ops.math_util import check, check_roundtrip
from tests.util import make_model, rand

M, K, N = 3, 4, 5

C_SHAPES = {"none": None, "vec": [N], "row": [1, N], "scalar": [], "full": [M, N], "col": [M, 1]}


@pytest.mark.parametrize("c", sorted(C_SHAPES))
@pytest.mark.parametrize("trans", [(0, 0), (1, 0), (0, 1), (1, 1)], ids=["nn", "tn", "nt", "tt"])
@pytest.mark.parametrize("b_const", [True, False])
@pytest.mark.parametrize("opset", [7, 13])
def test_gemm(opset, b_const, trans, c):
    ta, tb = trans
    a_shape = [K, M] if ta else [M, K]
    b_shape = [N, K] if tb else [K, N]
    cshape = C_SHAPES[c]
    if cshape is None and opset < 11:
        cshape = [N]
    ins = ["a", "b"] + (["c"] if cshape is not None else [])
    node = helper.make_node("Gemm", ins, ["y"], transA=ta, transB=tb, alpha=0.7, beta=1.3)
    b = rand(*b_shape, seed=2)
    inits = [("b", b)] if b_const else []
    if cshape is not None:
        inits.append(("c", rand(*cshape, seed=3) if cshape else np.array(0.4, np.float32)))
    inputs = [("a", np.float32, a_shape)] + ([] if b_const else [("b", np.float32, b_shape)])
    m = make_model([node], inputs, [("y", np.float32, None)], inits, opset=opset)
    feeds = {"a": rand(*a_shape)}
    if not b_const:
        feeds["b"] = b
    check(m, feeds)


@pytest.mark.parametrize("cshape", [[N], [M, N], [M, 1]])
def test_gemm_runtime_c(cshape):
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], beta=0.5)
    m = make_model([node], [("a", np.float32, [M, K]), ("c", np.float32, cshape)], [("y", np.float32, None)],
                   [("b", rand(K, N, seed=2))], opset=13)
    check(m, {"a": rand(M, K), "c": rand(*cshape, seed=4)})


def test_gemm_uses_dense():
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transB=1)
    m = make_model([node], [("a", np.float32, [M, K])], [("y", np.float32, None)],
                   [("b", rand(N, K, seed=2)), ("c", rand(N, seed=3))], opset=13)
    km = check(m, {"a": rand(M, K)})
    # the Identity naming the output after the ONNX output "y" (konnx.naming) aside
    assert [type(layer).__name__ for layer in km.layers if layer.name not in km.output_names] == ["InputLayer", "Dense"]


# (a_shape, b_shape, b_const)
MATMULS = {
    "4d_const": ([2, 3, 4, 5], [5, 6], True),
    "3d_const": ([2, 4, 5], [5, 6], True),
    "2d_const": ([4, 5], [5, 6], True),
    "vec_const": ([5], [5, 6], True),
    "const_vec": ([2, 4, 5], [5], True),
    "batched": ([2, 3, 4, 5], [2, 3, 5, 6], False),
    "bcast_batch": ([2, 1, 4, 5], [3, 5, 6], False),
    "bcast_rank": ([4, 5], [2, 3, 5, 6], False),
    "3d_2d": ([2, 4, 5], [5, 6], False),
    "vec_tensor": ([5], [2, 5, 6], False),
    "tensor_vec": ([2, 3, 4, 5], [5], False),
    "4d_const_batched": ([2, 3, 4, 5], [3, 5, 6], True),
}


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("case", sorted(MATMULS))
def test_matmul(case, channels_last):
    a_shape, b_shape, b_const = MATMULS[case]
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    b = rand(*b_shape, seed=2)
    inputs = [("a", np.float32, a_shape)] + ([] if b_const else [("b", np.float32, b_shape)])
    m = make_model([node], inputs, [("y", np.float32, None)], [("b", b)] if b_const else [], opset=13)
    feeds = {"a": rand(*a_shape)}
    if not b_const:
        feeds["b"] = b
    check(m, feeds, channels_last)


def test_matmul_const_left():
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    m = make_model([node], [("b", np.float32, [2, 5, 6])], [("y", np.float32, None)], [("a", rand(4, 5))])
    check(m, {"b": rand(2, 5, 6, seed=1)}, True)


def test_matmul_dense_keeps_layout():
    """A constant right operand on a rank-3 input whose last axis is stored last: one Dense, no transposes."""
    nodes = [helper.make_node("Relu", ["a"], ["r"]), helper.make_node("MatMul", ["r", "b"], ["y"])]
    m = make_model(nodes, [("a", np.float32, [2, 4, 5])], [("y", np.float32, None)], [("b", rand(5, 6, seed=2))])
    km = check(m, {"a": rand(2, 4, 5)})
    # the Identity naming the output after the ONNX output "y" (konnx.naming) aside
    assert [type(layer).__name__ for layer in km.layers if layer.name not in km.output_names] == ["InputLayer", "ReLU", "Dense"]


EINSUMS = [
    ("bij,bjk->bik", [[2, 3, 4], [2, 4, 5]]),
    ("nchw,c->nhw", [[2, 3, 4, 5], [3]]),
    ("nchw->nc", [[2, 3, 4, 5]]),
    ("ij,jk", [[3, 4], [4, 5]]),
    ("...ij,...jk->...ik", [[2, 3, 4], [2, 4, 5]]),
    ("nchw,nqhw->ncq", [[2, 3, 4, 5], [2, 6, 4, 5]]),
    ("ii->i", [[4, 4]]),
]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("eq,shapes", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum(eq, shapes, channels_last):
    names = [f"x{i}" for i in range(len(shapes))]
    node = helper.make_node("Einsum", names, ["y"], equation=eq)
    m = make_model([node], [(n, np.float32, s) for n, s in zip(names, shapes)], [("y", np.float32, None)],
                   opset=13)
    check(m, {n: rand(*s, seed=i) for i, (n, s) in enumerate(zip(names, shapes))}, channels_last)


def test_einsum_const_operand():
    node = helper.make_node("Einsum", ["x", "w"], ["y"], equation="nchw,dc->ndhw")
    m = make_model([node], [("x", np.float32, [2, 3, 4, 5])], [("y", np.float32, None)], [("w", rand(6, 3))],
                   opset=13)
    check(m, {"x": rand(2, 3, 4, 5)}, True)


def test_roundtrip(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["a"]), helper.make_node("MatMul", ["a", "x2"], ["b"]),
             helper.make_node("Gemm", ["b2", "g"], ["y"], transB=1)]
    nodes.insert(2, helper.make_node("Reshape", ["b", "shape"], ["b2"]))
    m = make_model(nodes, [("x", np.float32, [2, 4, 5]), ("x2", np.float32, [2, 6, 3])], [("y", np.float32, None)],
                   [("w", rand(5, 6, seed=2)), ("g", rand(7, 12, seed=3)), ("shape", np.array([2, 12], np.int64))])
    feeds = {"x": rand(2, 4, 5), "x2": rand(2, 6, 3, seed=4)}
    check_roundtrip(m, feeds, tmp_path)


@pytest.mark.parametrize("channels_last", [False, True])
def test_dynamic_dims(channels_last):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["a"]), helper.make_node("MatMul", ["a", "x2"], ["y"]),
             helper.make_node("Gemm", ["g", "w"], ["z"])]
    m = make_model(nodes, [("x", np.float32, ["N", "T", 5]), ("x2", np.float32, ["N", 6, 3]),
                           ("g", np.float32, ["M", 5])],
                   [("y", np.float32, None), ("z", np.float32, None)], [("w", rand(5, 6, seed=2))])
    check(m, {"x": rand(2, 4, 5), "x2": rand(2, 6, 3, seed=4), "g": rand(3, 5, seed=5)}, channels_last)
