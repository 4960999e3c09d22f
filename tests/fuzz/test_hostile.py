"""The crash classes issue 14 lists, one model each: konnx refuses with its own error (a
ConversionError naming the node or input and what was expected), never a raw exception and
never its internal-error wrapper. onnxruntime refuses each of these models too (checked)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import konnx
from konnx.errors import ConversionError
from tests.util import make_model

F = TensorProto.FLOAT


def _ort_refuses(model: onnx.ModelProto, feeds: dict) -> bool:
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        sess.run(None, feeds)
    except Exception:  # noqa: BLE001 - any refusal
        return True
    return False


def _refused(model, *words, **kwargs) -> str:
    with pytest.raises(ConversionError) as info:
        konnx.convert(model, **kwargs)
    msg = str(info.value)
    assert "internal error" not in msg and "conversion failed" not in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


X4 = ("x", F, [1, 4, 5, 5])
FEED4 = {"x": np.ones((1, 4, 5, 5), np.float32)}
W = ("w", np.ones((4, 4, 3, 3), np.float32))


@pytest.mark.parametrize("node,words", [
    (helper.make_node("Softmax", ["x"], ["y"], axis=7, name="sm"), ("sm", "axis")),
    (helper.make_node("Conv", ["x", "w"], ["y"], strides=[0, 0], name="cv"), ("cv", "strides")),
    (helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[-3, 3], name="cv"), ("cv", "kernel_shape")),
    (helper.make_node("Conv", ["x", "w"], ["y"], group=3, name="cv"), ("cv", "group=3")),
    (helper.make_node("ReduceSum", ["x"], ["y"], keepdims=2, name="rs"), ("rs", "keepdims=2")),
    (helper.make_node("Flatten", ["x"], ["y"], axis=9, name="fl"), ("fl", "axis")),
    (helper.make_node("ArgMax", ["x"], ["y"], axis=-9, name="am"), ("am", "axis")),
])
def test_attribute_out_of_range(node, words):
    inits = [W] if node.op_type == "Conv" else []
    m = make_model([node], [X4], [("y", F, None)], initializers=inits)
    # onnxruntime runs keepdims=2 as keepdims=1; the spec allows only 0 or 1 (konnx says so)
    assert _ort_refuses(m, FEED4) or node.op_type == "ReduceSum"
    _refused(m, *words)


def test_unknown_element_type():
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [2])], [("y", F, [2])])
    m.graph.input[0].type.tensor_type.elem_type = 999
    _refused(m, "'x'", "999")


def test_range_with_zero_delta():
    m = make_model([helper.make_node("Range", ["s", "l", "d"], ["r"], name="rg"),
                    helper.make_node("Add", ["x", "r"], ["y"])],
                   [("x", F, [1])], [("y", F, None)],
                   initializers=[("s", np.float32(0)), ("l", np.float32(5)), ("d", np.float32(0))])
    _refused(m, "rg", "delta")


def test_huge_constant_is_not_materialized():
    m = make_model([helper.make_node("ConstantOfShape", ["s"], ["c"], name="big"),
                    helper.make_node("Add", ["x", "c"], ["y"])],
                   [("x", F, [1])], [("y", F, None)], initializers=[("s", np.array([100000, 100000], np.int64))])
    _refused(m, "big", "budget")


def test_invalid_utf8_attribute():
    node = helper.make_node("Pad", ["x", "p"], ["y"], name="pd")
    node.attribute.append(helper.make_attribute("mode", b"\xff\xfe"))
    m = make_model([node], [X4], [("y", F, None)], initializers=[("p", np.zeros(8, np.int64))])
    assert _ort_refuses(m, FEED4)
    _refused(m, "pd")


def test_input_shapes_of_the_wrong_type():
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [2])], [("y", F, [2])])
    _refused(m, "input_shapes", input_shapes="x")


def test_shapes_that_cannot_agree():
    m = make_model([helper.make_node("Add", ["x", "z"], ["y"], name="ad")],
                   [("x", F, [2, 3]), ("z", F, [2, 4])], [("y", F, None)])
    assert _ort_refuses(m, {"x": np.ones((2, 3), np.float32), "z": np.ones((2, 4), np.float32)})
    _refused(m, "Add")


def test_wrong_declared_output_shape_is_ignored_like_onnxruntime():
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [2, 3])], [("y", F, [5])])
    x = np.array([[-1, 2, 3], [4, -5, 6]], np.float32)
    out = np.asarray(konnx.convert(m)(x))
    ref = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("case", ["nul", "negative", "text", "long", "loop", "fifo"])
def test_external_data_tricks(tmp_path, case):
    (tmp_path / "w.bin").write_bytes(np.ones(4, np.float32).tobytes())
    location, offset = {"nul": ("w\0.bin", None), "negative": ("w.bin", "-5"), "text": ("w.bin", "abc"),
                        "long": ("x" * 300, None), "loop": ("loop", None), "fifo": ("fifo", None)}[case]
    if case == "loop":
        (tmp_path / "loop").symlink_to(tmp_path / "loop")
    if case == "fifo":
        import os

        os.mkfifo(tmp_path / "fifo")
    t = onnx.numpy_helper.from_array(np.ones(4, np.float32), "w")
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    for key, value in (("location", location), ("offset", offset)):
        if value is not None:
            entry = t.external_data.add()
            entry.key, entry.value = key, value
    m = make_model([helper.make_node("Add", ["x", "w"], ["y"])], [("x", F, [4])], [("y", F, [4])])
    m.graph.initializer.append(t)
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    _refused(str(path), "tensor 'w'")


def test_deep_chain_converts():
    """3,000 layers deep: Keras builds the Model recursively; konnx gives it the room."""
    n = 3000
    nodes = [helper.make_node("Add", [f"t{i}", "c"], [f"t{i + 1}"]) for i in range(n)]
    m = make_model(nodes, [("t0", F, [1, 4])], [(f"t{n}", F, [1, 4])], initializers=[("c", np.float32(0.5))])
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    ref = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"t0": x})[0]
    import sys

    limit = sys.getrecursionlimit()
    np.testing.assert_allclose(np.asarray(konnx.convert(m)(x)), ref, rtol=1e-5)
    assert sys.getrecursionlimit() == limit  # scoped, restored


def test_long_static_sequence_loops_instead_of_unrolling(monkeypatch):
    """A static sequence longer than fn_rnn.UNROLL_LIMIT runs as a keras.ops.scan loop (100,000
    unrolled steps hung the conversion); both directions still match onnxruntime."""
    from konnx.layers import fn_rnn
    from konnx.layers.fn_rnn import UNROLL_LIMIT

    def no_unroll(*args, **kwargs):
        raise AssertionError("a sequence longer than UNROLL_LIMIT was unrolled")

    monkeypatch.setattr(fn_rnn, "_unroll", no_unroll)

    steps, hidden, rng = 4 * UNROLL_LIMIT, 4, np.random.default_rng(0)
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y", "yh"], hidden_size=hidden, direction="bidirectional")
    m = make_model([node], [("x", F, [steps, 1, 2])], [("y", F, None), ("yh", F, None)],
                   initializers=[("W", 0.3 * rng.standard_normal((2, 4 * hidden, 2)).astype(np.float32)),
                                 ("R", 0.3 * rng.standard_normal((2, 4 * hidden, hidden)).astype(np.float32))])
    x = rng.standard_normal((steps, 1, 2)).astype(np.float32)
    km = konnx.convert(m)
    ref = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for got, want in zip(km(x), ref):
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin", "Hardmax", "TopK"])
def test_nan_ranks_as_the_reference_does(op):
    """NaN is the extreme for ArgMax/ArgMin/Hardmax (first NaN wins, as numpy's argmax in the
    ONNX reference implementation; konnx used to return the out-of-range index n) and ranks
    above every number in TopK (reference and onnxruntime agree)."""
    from onnx.reference import ReferenceEvaluator

    x = np.array([[1, np.nan, 3, 2], [5, 1, -np.inf, np.nan], [0, 7, 7, 1]], np.float32)
    if op == "TopK":
        node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1)
        m = make_model([node], [("x", F, [3, 4])], [("v", F, None), ("i", TensorProto.INT64, None)],
                       initializers=[("k", np.array([2], np.int64))])
    else:
        out_type = TensorProto.INT64 if op.startswith("Arg") else F
        m = make_model([helper.make_node(op, ["x"], ["y"], axis=1)], [("x", F, [3, 4])], [("y", out_type, None)])
    ref = ReferenceEvaluator(m).run(None, {"x": x})
    got = konnx.convert(m)(x)
    for g, r in zip(got if isinstance(got, (list, tuple)) else [got], ref):
        np.testing.assert_array_equal(np.asarray(g), r)


def test_window_beyond_int32_is_refused_not_aborted():
    """onnxruntime runs a stride of 2**40; TensorFlow's int32 window indexing aborts the process:
    konnx refuses it, saying why."""
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[1 << 40, 1], name="mp")
    m = make_model([node], [X4], [("y", F, None)])
    _refused(m, "mp", "strides", "int32")
