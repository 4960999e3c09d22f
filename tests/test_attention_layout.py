"""Attention's scores (L x L, from L x d and d x L) keep ONNX's layout, the batched matmul's own,
so the TFLite file never transposes the largest tensor of the block (issue 17); the result
matches onnxruntime in Keras and in LiteRT."""
import numpy as np
import pytest
from onnx import helper

from konnx.api import convert_detailed
from tests.util import assert_matches_ort, make_model, rand, run_ort, tolerance

B, L, H, D = 1, 20, 2, 4
E = H * D


def attention(length=L):
    """ViT/BERT's head split and merge around softmax(q k^T * scale) v, as torch exports it."""
    nodes = [
        helper.make_node("MatMul", ["x", "w_qkv"], ["qkv"]),
        helper.make_node("Reshape", ["qkv", "split_shape"], ["qkv5"]),
        helper.make_node("Transpose", ["qkv5"], ["heads"], perm=[2, 0, 3, 1, 4]),  # (3, B, H, L, d)
        helper.make_node("Gather", ["heads", "i0"], ["q"], axis=0),
        helper.make_node("Gather", ["heads", "i1"], ["k"], axis=0),
        helper.make_node("Gather", ["heads", "i2"], ["v"], axis=0),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["raw"]),
        helper.make_node("Mul", ["raw", "scale"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["merged"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["merged", "merge_shape"], ["y"]),
    ]
    inits = [("w_qkv", rand(E, 3 * E, seed=1)), ("split_shape", np.array([B, length, 3, H, D], np.int64)),
             ("i0", np.array(0, np.int64)), ("i1", np.array(1, np.int64)), ("i2", np.array(2, np.int64)),
             ("scale", np.array(D ** -0.5, np.float32)), ("merge_shape", np.array([B, length, E], np.int64))]
    return make_model(nodes, [("x", np.float32, [B, length, E])], [("y", np.float32, None)], inits, opset=17)


@pytest.mark.parametrize("length", [L, 3], ids=["long", "short"])
def test_attention_matches_ort(length):
    """Long sequences (L > d) take the native score layout, short ones (L < d) the stored one."""
    assert_matches_ort(attention(length), {"x": rand(B, length, E)})


def test_scores_keep_the_onnx_layout():
    conv = convert_detailed(attention())
    assert conv.values["raw"].perm == (0, 1, 2, 3)
    assert conv.values["probs"].perm == (0, 1, 2, 3)
    # the merged heads are still found in place: (B, L, H, d) as stored
    assert conv.values["ctx"].perm == (0, 2, 1, 3)


def test_tflite_moves_no_score_tensor():
    pytest.importorskip("tensorflow")
    from ai_edge_litert.tools import flatbuffer_utils as fb

    import konnx
    from konnx import export as E_

    model = attention()
    data = E_.tflite_model(konnx.convert(model))
    fbm = fb.convert_bytearray_to_object(bytearray(data))
    sg = fbm.subgraphs[0]
    moved = [list(sg.tensors[op.outputs[0]].shape) for op in sg.operators
             if fb.opcode_to_name(fbm, op.opcodeIndex) == "TRANSPOSE"]
    assert all(np.prod(s) < H * L * L for s in moved), f"transposes of {moved}; scores are {H * L * L} elements"
    x = rand(B, L, E)
    ref = run_ort(model, {"x": x})[0]
    got = E_.run_tflite(data, {"x": x})[0]
    assert float(np.max(np.abs(got - ref))) <= tolerance(ref)
