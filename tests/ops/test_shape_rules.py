"""Input shapes that cannot agree are refused naming the node (konnx/ops/shape_rules.py, issue 14):
the rules on their own, a model whose mismatch ONNX shape inference cannot see (compared with
onnxruntime, which refuses it too), and the fuzz cases that used to fail inside Keras."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import konnx
from konnx.errors import ConversionError
from konnx.graph import Node
from konnx.ops.registry import Facts
from konnx.ops.shape_rules import shape_reason
from tests.util import assert_refused_like_ort, make_model, rand, run_ort


def _reason(op, shapes, attrs=None, known=None, opset=18, n_out=1):
    ins = [f"i{k}" for k in range(len(shapes))]
    proto = helper.make_node(op, ins, [f"o{k}" for k in range(n_out)], **(attrs or {}))
    node = Node(proto, opset, 0)
    return shape_reason(node, Facts(node, dict(zip(ins, shapes)), known or {}))


@pytest.mark.parametrize("op, shapes, expect", [
    ("Add", [(2, 3), (2, 4)], "cannot broadcast"),
    ("Mul", [(2, 4, 8), (2, 4, 8, 1)], "cannot broadcast"),
    ("Where", [(3,), (2, 3), (2, 2)], "cannot broadcast"),
    ("Add", [(2, 3), (1, 3)], None),
    ("Add", [(2, "n"), (2, 5)], None),  # a symbolic dim never refuses
    ("Add", [(2, None), (4, 3)], "cannot broadcast"),
    ("Max", [(5, 1, 3), (4, 1), (3,)], None),
    ("Concat", [(2, 3), (2, 3, 1)], "one rank"),
    ("Concat", [(2, 3), (4, 5)], "differ on axis 0"),
    ("Concat", [(2, 3), (2, 5)], None),
    ("Concat", [(2, 3), (0, 5)], None),  # an empty input is left out, as onnxruntime does
    ("MatMul", [(2, 3), (4, 5)], "inner sizes 3 and 4"),
    ("MatMul", [(3,), (3,)], None),
    ("MatMul", [(2, 1, 2, 3), (5, 3, 4)], None),
    ("MatMul", [(2, 2, 3), (5, 3, 4)], "batch axes cannot broadcast"),
])
def test_rules(op, shapes, expect):
    why = _reason(op, shapes, {"axis": 1} if op == "Concat" else None)
    assert (why is None) if expect is None else (why is not None and expect in why), why


@pytest.mark.parametrize("attrs, split, n_out, expect", [
    ({"axis": 0}, [8, 0], 2, "sums to 8"),
    ({"axis": 1}, [4], 2, "1 sizes for 2 outputs"),
    ({"axis": 1}, [6, -1], 2, "negative"),
    ({"axis": 1}, [3, 5], 2, None),
    ({"axis": 1, "num_outputs": 1 << 40}, None, 2, "num_outputs=1099511627776"),
    ({"axis": 1, "num_outputs": 2}, None, 2, None),
    ({"axis": 1, "num_outputs": 2}, [4, 4], 2, "one"),
])
def test_split(attrs, split, n_out, expect):
    shapes = [(2, 8)] + ([(len(split),)] if split is not None else [])
    known = {"i1": np.array(split, np.int64)} if split is not None else {}
    why = _reason("Split", shapes, attrs, known, n_out=n_out)
    assert (why is None) if expect is None else (why is not None and expect in why), why


def _rotary_split(end: int):
    """Split sizes built by shape arithmetic as in RotaryEmbedding's expansion: [4] + (Shape(x)[3:end]
    - 4). With end=-1 the slice is empty: one size for two outputs, which ONNX shape inference
    does not see (the sizes are computed) but onnxruntime refuses."""
    nodes = [helper.make_node("Shape", ["x"], ["hs"], start=3, end=end),
             helper.make_node("Sub", ["hs", "four"], ["rest"]),
             helper.make_node("Concat", ["four", "rest"], ["sizes"], axis=0),
             helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=-1, name="n"),
             helper.make_node("Add", ["a", "b"], ["y"])]
    m = make_model(nodes, [("x", TensorProto.FLOAT, [2, 3, 4, 8])], [("y", TensorProto.FLOAT, None)],
                   initializers=[("four", np.array([4], np.int64))], opset=18)
    return m, {"x": rand(2, 3, 4, 8)}


def test_split_sizes_from_shape_arithmetic():
    assert_refused_like_ort(_rotary_split(-1), _rotary_split(4), "1 sizes for 2 outputs")


# fuzz cases (tests/fuzz) onnxruntime refuses, that used to fail inside Keras or numpy
FUZZ = {
    "node:test_rotary_embedding_expanded:attr:0": ("Split", "num_outputs=1099511627776"),
    "node:test_rotary_embedding_expanded:attr:2": ("Split", "must add up"),
    "node:test_rotary_embedding_no_position_ids_rotary_dim_expanded:attr:0": ("Split", "sizes for 2 outputs"),
    "node:test_linear_attention_gated_delta_gqa_expanded:attr:2": ("Mul", "cannot broadcast"),
    "node:test_linear_attention_gated_delta_gqa_expanded:shape:0": ("Mul", "cannot broadcast"),
    "node:test_linear_attention_linear_expanded:shape:1": ("Add", "cannot broadcast"),
    # the loss input is a Reshape to Shape(x) with x's rank changed: the built rank (not the
    # declared output shape of an Identity of it) is what the loss's check sees
    "node:test_sce_mean_3d_log_prob_expanded:shape:0": ("NegativeLogLikelihoodLoss", "target has rank 2, expected 3"),
    "node:test_sce_mean_no_weight_ii_3d_log_prob_expanded:shape:1": ("NegativeLogLikelihoodLoss",
                                                                     "target has rank 2, expected 1"),
}


@pytest.mark.parametrize("case_id", sorted(FUZZ))
def test_fuzz_cases_refused_like_ort(case_id):
    from tests.fuzz.generate import build

    model, feeds = build(case_id)
    op, expect = FUZZ[case_id]
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises several types
        run_ort(model, feeds)
    with pytest.raises(ConversionError) as info:
        konnx.convert(model)
    msg = str(info.value)
    assert f"{op} node '" in msg or f"{op} (node '" in msg, msg
    assert expect in msg and "internal error" not in msg, msg



def test_huge_num_outputs_refused_before_shape_inference():
    """onnx's Split inference allocates num_outputs sizes (std::bad_alloc at 2**40), so the count
    is checked first, naming the node; onnxruntime refuses the model too."""
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=1 << 40, name="n"),
             helper.make_node("Add", ["a", "b"], ["y"])]
    m = make_model(nodes, [("x", TensorProto.FLOAT, [2, 8])], [("y", TensorProto.FLOAT, None)], opset=18)
    with pytest.raises(konnx.InvalidModelError, match="Split node 'n': attribute num_outputs=1099511627776"):
        konnx.convert(m)
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises several types
        run_ort(m, {"x": rand(2, 8)})


@pytest.mark.parametrize("attrs, shapes, expect", [
    ({}, [(2, 3), (3, 4), (4,)], None),
    ({"transA": 1}, [(3, 2), (3, 4), (2, 1)], None),
    ({}, [(2, 3), (4, 5)], "inner sizes 3 and 4"),
    ({"transB": 1}, [(2, 3), (3, 5)], "inner sizes 3 and 5"),
    ({}, [(2, 3), (3, 4), (3,)], "does not broadcast"),
    ({}, [(2, 3, 1), (3, 4)], "rank 2"),
])
def test_gemm(attrs, shapes, expect):
    why = _reason("Gemm", shapes, attrs)
    assert (why is None) if expect is None else (why is not None and expect in why), why


@pytest.mark.parametrize("shape, target, expect", [
    ((3, 1), [2, 3, 4], None),
    ((3, 2), [3, 1], None),  # bidirectional: 2 against 1 keeps 2
    ((3, 2), [4, 2], "cannot be expanded"),
])
def test_expand(shape, target, expect):
    why = _reason("Expand", [shape, (len(target),)], known={"i1": np.array(target, np.int64)})
    assert (why is None) if expect is None else (why is not None and expect in why), why
