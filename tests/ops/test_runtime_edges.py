"""Run-time edges and attribute values found by the fuzz suite (issue 14): each case either
matches onnxruntime (the reference implementation where onnxruntime cannot be run) or is
refused by konnx with an error naming the node and what was expected, never a crash of the
process (onnx's shape inference aborts on some of these models: konnx/infer_guard.py) and never
a TensorFlow error when the converted model runs."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

import konnx
from konnx.errors import InvalidModelError
from konnx.limits import ATTRIBUTE_BUDGET

from ..util import assert_matches_ort, assert_refused_like_ort, make_model, rand, run_ort

F32 = np.float32


# --------------------------------------------------------------------- refused before inference
def _layer_norm(axis):
    node = helper.make_node("LayerNormalization", ["x", "w", "b"], ["y"], name="ln", axis=axis)
    model = make_model([node], [("x", F32, [2, 3, 4, 5]), ("w", F32, [4, 5]), ("b", F32, [4, 5])],
                       [("y", F32, None)], opset=17)
    return model, {"x": rand(2, 3, 4, 5), "w": rand(4, 5, seed=1), "b": rand(4, 5, seed=2)}


def test_axis_beyond_int32_is_refused_before_shape_inference():
    """onnx's LayerNormalization inference segfaults on axis=2**31; onnxruntime refuses it."""
    model, feeds = _layer_norm(2**31)
    with pytest.raises(InvalidModelError, match=r"LayerNormalization node 'ln': attribute axis=2147483648.*\[-rank, rank - 1\]"):
        konnx.convert(model)
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises several types
        run_ort(model, feeds)
    assert_matches_ort(*_layer_norm(-2))


def test_axis_beyond_int32_inside_a_subgraph():
    bad = _layer_norm(-(2**40))[0].graph
    cond = helper.make_tensor("c", onnx.TensorProto.BOOL, [], [True])
    node = helper.make_node("If", ["c"], ["y"], name="if", then_branch=bad, else_branch=bad)
    model = make_model([node], [("x", F32, [2, 3, 4, 5]), ("w", F32, [4, 5]), ("b", F32, [4, 5])],
                       [("y", F32, None)], opset=17)
    model.graph.initializer.append(cond)
    with pytest.raises(InvalidModelError, match=r"node 'ln': attribute axis=-1099511627776"):
        konnx.convert(model)


def _split(num_outputs, outputs):
    node = helper.make_node("Split", ["x"], [f"y{i}" for i in range(outputs)], name="sp", axis=0,
                            num_outputs=num_outputs)
    model = make_model([node], [("x", F32, [7])], [(f"y{i}", F32, None) for i in range(outputs)], opset=18)
    return model, {"x": rand(7)}


def test_split_num_outputs_must_match_the_outputs():
    """onnx's Split inference and onnxruntime both abort the process on this model (so
    onnxruntime is not run on it here); the reference implementation fails on it too."""
    model, feeds = _split(2, 4)
    with pytest.raises(InvalidModelError, match=r"Split node 'sp': attribute num_outputs=2 but the node has 4 outputs"):
        konnx.convert(model)
    from onnx.reference import ReferenceEvaluator

    with pytest.raises(Exception):  # noqa: B017
        ReferenceEvaluator(model).run(None, feeds)
    assert_matches_ort(*_split(4, 4))


def _transpose(perm, shape=(2, 3, 4, 2)):
    node = helper.make_node("Transpose", ["x"], ["y"], name="n", perm=perm)
    return make_model([node], [("x", F32, list(shape))], [("y", F32, None)], opset=13), {"x": rand(*shape)}


def test_transpose_perm_of_the_wrong_length():
    """onnx's inference checks perm's entries, not its length; onnxruntime refuses it when run."""
    assert_refused_like_ort(_transpose([1, 0, 2]), _transpose([1, 0, 3, 2]),
                            "perm=[1, 0, 2] is not a permutation of the 4 axes")


# ------------------------------------------------------------------------------- TfIdfVectorizer
def _tfidf(**over):
    attrs = dict(mode="TF", min_gram_length=2, max_gram_length=2, max_skip_count=0, ngram_counts=[0, 4],
                 ngram_indexes=[0, 1, 2, 3, 4, 5, 6], pool_int64s=[2, 3, 5, 4, 5, 6, 7, 8, 6, 7])
    attrs.update(over)
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], name="n", **attrs)
    model = make_model([node], [("x", np.int32, [12])], [("y", F32, None)], opset=9)
    return model, {"x": np.array([1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8], np.int32)}


def test_tfidf_max_gram_length_beyond_ngram_counts():
    assert_refused_like_ort(_tfidf(max_gram_length=2**31), _tfidf(),
                            "max_gram_length=2147483648: expected 1 <= min <= max <= 2")


@pytest.mark.parametrize("over,expect", [
    # onnxruntime aborts the process on this one (an assertion on the n-gram id): not run
    (dict(ngram_counts=[0, 2], ngram_indexes=[0, 1, 2]), "ngram_indexes has 3 entries, the pool holds 6 n-grams"),
    (dict(ngram_counts=[0, 3]), "the 2-grams take pool entries [3, 10)"),
    (dict(ngram_counts=[0, 5]), "holds a 1-gram twice"),
    (dict(ngram_indexes=[0, 1, 2, 3, 4, 5, 2**40]), "over konnx's budget"),
])
def test_tfidf_pool_that_cannot_agree(over, expect):
    with pytest.raises(konnx.UnsupportedOpError) as info:
        konnx.convert(_tfidf(**over)[0])
    assert "'n'" in str(info.value) and expect in str(info.value), str(info.value)
    assert ATTRIBUTE_BUDGET < 2**40


def test_tfidf_skips_beyond_the_sequence_count_nothing_more():
    """A skip count of 2**40 (onnxruntime loops over every skip distance: not run) counts the
    same n-grams as the largest skip that fits the 12 tokens."""
    huge = konnx.convert(_tfidf(max_skip_count=2**40)[0])
    model, feeds = _tfidf(max_skip_count=11)
    assert_matches_ort(model, feeds, keras_model=huge)


# ----------------------------------------------------------------------------------------- Range
def _range(dtype, start, limit, delta):
    node = helper.make_node("Range", ["s", "l", "d"], ["y"], name="n")
    # float16 from opset 27 on
    model = make_model([node], [(n, dtype, []) for n in "sld"], [("y", dtype, None)], opset=27 if dtype == np.float16 else 11)
    return model, {n: np.array(v, dtype) for n, v in zip("sld", (start, limit, delta))}


@pytest.mark.parametrize("dtype,start,limit,delta", [
    (np.float32, 1.0, 0.0, 2.0),         # the limit behind start: empty (TensorFlow's range raises)
    (np.float16, 1.0, 0.0, 2.0),
    (np.float32, 1.0, 5.0, -1.0),
    (np.float16, 1.0, np.inf, 2.0),      # an infinite count: onnxruntime gives an empty output
    (np.int64, 5, 1, 1),
    (np.int32, -3, 4, -2),
    (np.float32, 1.0, 8.5, 2.0),         # the ordinary neighbours
    (np.int64, 7, -4, -3),
])
def test_range_counts_as_the_spec_at_run_time(dtype, start, limit, delta):
    assert_matches_ort(*_range(dtype, start, limit, delta))


# -------------------------------------------------------------------------- empty reductions
@pytest.mark.parametrize("op", ["ReduceMin", "ReduceMax"])
@pytest.mark.parametrize("shape,axes", [((0, 4), [1]), ((2, 0, 4), [0]), ((2, 0, 4), [2])])
def test_min_max_of_an_empty_tensor(op, shape, axes):
    """An empty input reduced over non-empty axes: an empty output (Keras' min/max refuse any
    empty input). An empty reduced axis (the identity, +-inf) is the ONNX backend's
    test_reduce_min_empty_set."""
    node = helper.make_node(op, ["x", "a"], ["y"], name="n", keepdims=1)
    model = make_model([node], [("x", F32, list(shape))], [("y", F32, None)],
                       initializers=[("a", np.array(axes, np.int64))], opset=18)
    assert_matches_ort(model, {"x": np.zeros(shape, F32)})


# ---------------------------------------------------------------------------------------- Resize
def test_zero_size_input_under_a_declared_output_shape_inference_cannot_check():
    """X (1, 0, 2, 4) resized on axes 2, 3; the graph output still declares (1, 1, 2, 3) (the
    shape before the input became empty): onnx's inference leaves axis 1 unknown and keeps the
    declared 1, onnxruntime gives (1, 0, 2, 3)."""
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="n", axes=[2, 3], mode="nearest",
                            keep_aspect_ratio_policy="not_smaller")
    model = make_model([node], [("x", F32, [1, 0, 2, 4])], [("y", F32, [1, 1, 2, 3])],
                       initializers=[("sizes", np.array([1, 3], np.int64))], opset=19)
    assert_matches_ort(model, {"x": np.zeros((1, 0, 2, 4), F32)})


# ------------------------------------------------------------------ axes given by inputs or scales
def _quant(op, axis, scale_len):
    x_type = np.uint8 if op == "DequantizeLinear" else F32
    node = helper.make_node(op, ["x", "s", "z"], ["y"], name="n", axis=axis)
    model = make_model([node], [("x", x_type, [2, 3, 4, 5])], [("y", F32 if x_type is np.uint8 else np.uint8, None)],
                       initializers=[("s", np.full(scale_len, 0.5, F32)), ("z", np.full(scale_len, 3, np.uint8))],
                       opset=19)
    x = np.arange(120).reshape(2, 3, 4, 5)
    return model, {"x": x.astype(np.uint8) if x_type is np.uint8 else (x / 7).astype(F32)}


@pytest.mark.parametrize("op", ["QuantizeLinear", "DequantizeLinear"])
@pytest.mark.parametrize("axis,scale_len,expect", [(4, 3, "axis=4 is outside [-4, 3]"),
                                                   (-5, 3, "axis=-5 is outside [-4, 3]"),
                                                   (2, 3, "the scale has 3 entries: per-axis quantization wants one per entry of axis 2 (4)")])
def test_per_axis_quantization_axis(op, axis, scale_len, expect):
    assert_refused_like_ort(_quant(op, axis, scale_len), _quant(op, 1, 3), expect)


@pytest.mark.parametrize("op", ["QuantizeLinear", "DequantizeLinear"])
def test_per_tensor_quantization_ignores_the_axis(op):
    assert_matches_ort(*_quant(op, 9, ()))


def _cumsum(axis):
    node = helper.make_node("CumSum", ["x", "a"], ["y"], name="n")
    model = make_model([node], [("x", F32, [2, 3, 4])], [("y", F32, None)],
                       initializers=[("a", np.array(axis, np.int64))], opset=14)
    return model, {"x": rand(2, 3, 4)}


@pytest.mark.parametrize("axis", [3, -4, 2**31])
def test_cumsum_axis_input_out_of_range(axis):
    assert_refused_like_ort(_cumsum(axis), _cumsum(-1), f"input 1 (axis) holds [{axis}]: expected one axis in [-3, 2]")


# --------------------------------------------------------------- sizes taken from attributes
def _sized(op, attrs=None, inits=(), shape=(1, 1, 2, 2), opset=17):
    ins = ["x"] + [n for n, _ in inits]
    node = helper.make_node(op, ins, ["y"], name="n", **(attrs or {}))
    model = make_model([node], [("x", F32, list(shape))], [("y", F32, None)], initializers=list(inits), opset=opset)
    return model, {"x": rand(*shape)}


@pytest.mark.parametrize("op,big,small", [
    ("Tile", dict(inits=[("r", np.array([1, 1, 2**40, 1], np.int64))]),
     dict(inits=[("r", np.array([1, 1, 3, 1], np.int64))])),
    ("Resize", dict(attrs=dict(mode="nearest"), inits=[("", None), ("s", np.array([1, 1, 1e10, 1e10], F32))]),
     dict(attrs=dict(mode="nearest"), inits=[("", None), ("s", np.array([1, 1, 2, 3], F32))])),
    ("Expand", dict(inits=[("r", np.array([2**40, 1, 2, 2], np.int64))]),
     dict(inits=[("r", np.array([3, 1, 2, 2], np.int64))])),
])
def test_outputs_over_the_tensor_budget_are_refused(op, big, small):
    """Sizes from a constant (repeats, scales, a shape): refused naming the budget before any
    table or tensor is built (a MemoryError or a TensorFlow OOM before); the small neighbour
    converts and matches onnxruntime."""
    def build(spec):
        inits = [(n, a) for n, a in spec.get("inits", ()) if n]
        model, feeds = _sized(op, spec.get("attrs"), inits)
        if op == "Resize":  # roi given as ''
            model.graph.node[0].input[:] = ["x", "", "s"]
        return model, feeds

    with pytest.raises(konnx.UnsupportedOpError, match=r"'n'.*output 0 would hold 4.4e\+12 elements|'n'.*output 0 would hold 4e\+20"):
        konnx.convert(build(big)[0])
    assert_matches_ort(*build(small))


@pytest.mark.parametrize("k", [2**40, -(2**40), 4, -3, 1])
def test_eyelike_offset_beyond_the_matrix(k):
    assert_matches_ort(*_sized("EyeLike", dict(k=k), shape=(3, 4)))


@pytest.mark.parametrize("op,out_type", [("ArgMax", np.int64), ("ArgMin", np.int64), ("Hardmax", F32)])
@pytest.mark.parametrize("shape,axis", [((0, 4), 1), ((2, 0, 4), 2), ((2, 0, 4), 0)])
def test_index_of_the_extreme_in_an_empty_tensor(op, out_type, shape, axis):
    node = helper.make_node(op, ["x"], ["y"], name="n", axis=axis)
    model = make_model([node], [("x", F32, list(shape))], [("y", out_type, None)], opset=13)
    assert_matches_ort(model, {"x": np.zeros(shape, F32)})


def test_gather_nd_batch_dims_of_int32_min():
    """onnx's GatherND inference segfaults on batch_dims=-2**31 (the pre-inference guard)."""
    node = helper.make_node("GatherND", ["x", "i"], ["y"], name="gnd", batch_dims=-(2**31))
    model = make_model([node], [("x", F32, [2, 3]), ("i", np.int64, [2, 1])], [("y", F32, None)], opset=13)
    with pytest.raises(InvalidModelError, match=r"GatherND node 'gnd': attribute batch_dims=-2147483648"):
        konnx.convert(model)


def test_memory_error_while_building_is_a_resource_error(monkeypatch):
    """A converter running out of memory (tables sized by hostile attributes) is reported as
    that, naming the node, not as an internal konnx bug."""
    import dataclasses

    from konnx.ops import load_all
    from konnx.ops.registry import REGISTRY

    load_all()

    def exhausted(ctx, node):
        raise MemoryError("Unable to allocate 74.5 GiB")

    specs = REGISTRY[("", "Relu")]
    monkeypatch.setitem(REGISTRY, ("", "Relu"), [dataclasses.replace(s, fn=exhausted) for s in specs])
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    model = make_model([node], [("x", F32, [2, 3])], [("y", F32, None)])
    with pytest.raises(konnx.errors.NodeConversionError) as info:
        konnx.convert(model)
    assert "Relu node 'r': ran out of memory building this node" in str(info.value)
    assert "internal error" not in str(info.value)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,axis", [([0, 4], -1), ([3, 0], -1), ([0, 4], 0), ([2, 0, 3], 1)])
def test_softmax_of_an_empty_tensor(op, shape, axis):
    """An empty input gives an empty output (the row maximum Softmax subtracts, and the NaN-row
    step after Keras' Softmax, reduce an empty tensor: Keras' max refuses one)."""
    node = helper.make_node(op, ["x"], ["y"], axis=axis, name="n")
    model = make_model([node], [("x", np.float32, shape)], [("y", np.float32, None)], opset=13)
    assert_matches_ort(model, {"x": np.zeros(shape, np.float32)})
