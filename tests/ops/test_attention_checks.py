"""Attention's input checks (konnx/ops/attention_checks.py, issue 14): each spec rule refuses a
bad model with a konnx error naming the node and the expectation, where onnxruntime refuses the
same model too; the valid neighbour of each bad model still converts and matches onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx

from ..util import assert_matches_ort, make_model, rand, run_ort

F, F16, B = np.float32, np.float16, np.bool_
INPUTS = ("Q", "K", "V", "attn_mask", "past_key", "past_value")


def _model(shapes, opset=23, dtypes=None, **attrs):
    """Attention over inputs named in INPUTS; shapes[i] None leaves input i out."""
    names = [n if s is not None else "" for n, s in zip(INPUTS, shapes)]
    while names and not names[-1]:
        names.pop()
    dtypes = dtypes or {}
    ins = [(n, dtypes.get(n, F), s) for n, s in zip(INPUTS, shapes) if s is not None]
    outs = [("Y", F, None)] + ([("present_key", F, None), ("present_value", F, None)] if shapes[4:] else [])
    node = helper.make_node("Attention", names, [o[0] for o in outs], name="att", **attrs)
    model = make_model([node], ins, outs, opset=opset)
    feeds = {n: (rand(*s, seed=i) > 0 if dtypes.get(n) is B else rand(*s, seed=i).astype(dtypes.get(n, F)))
             for i, (n, _, s) in enumerate(ins)}
    return model, feeds


def _refused(model, feeds, expect):
    with pytest.raises(konnx.UnsupportedOpError) as info:
        konnx.convert(model)
    msg = str(info.value)
    assert "'att'" in msg and expect in msg, msg
    with pytest.raises(Exception):  # the oracle refuses the same model (session or run)
        run_ort(model, feeds)


Q3, KV3 = [2, 4, 24], [2, 6, 24]
Q4, KV4 = [2, 3, 4, 8], [2, 3, 6, 8]

BAD = {  # name: (shapes, attrs, expected words, the valid neighbour's shapes and attrs)
    "heads_divide_hidden": ([Q3, KV3, [2, 6, 30]], dict(q_num_heads=3, kv_num_heads=7), "not divisible by kv_num_heads=7",
                            ([Q3, KV3, [2, 6, 30]], dict(q_num_heads=3, kv_num_heads=3))),
    "huge_heads": ([Q3, KV3, KV3], dict(q_num_heads=3, kv_num_heads=2**40), "not divisible",
                   ([Q3, KV3, KV3], dict(q_num_heads=3, kv_num_heads=3))),
    "gqa_multiple": ([[2, 4, 24], KV3, KV3], dict(q_num_heads=2, kv_num_heads=3), "Q and K must share the head size",
                     ([[2, 4, 48], KV3, KV3], dict(q_num_heads=6, kv_num_heads=3))),
    "gqa_heads": ([[2, 2, 4, 8], [2, 3, 6, 8], [2, 3, 6, 8]], {}, "not a multiple of the 3 key/value heads",
                  ([[2, 6, 4, 8], [2, 3, 6, 8], [2, 3, 6, 8]], {})),
    "ranks": ([Q3, [1, 2, 6, 24], KV3], dict(q_num_heads=3, kv_num_heads=3), "same rank",
              ([Q3, KV3, KV3], dict(q_num_heads=3, kv_num_heads=3))),
    "kv_length": ([Q4, KV4, [2, 3, 5, 8]], {}, "key/value sequence length", ([Q4, KV4, KV4], {})),
    "negative_scale": ([Q4, KV4, KV4], dict(scale=-1.0), "scale=-1.0", ([Q4, KV4, KV4], dict(scale=0.5))),
    "mask_rows": ([Q4, KV4, KV4, [3, 6]], {}, "axis -2 must be 1 or q_length=4", ([Q4, KV4, KV4, [4, 6]], {})),
    "mask_heads": ([Q4, KV4, KV4, [4, 4, 6]], {}, "axis -3 must be 1 or q_num_heads=3",
                   ([Q4, KV4, KV4, [3, 4, 6]], {})),
    "past_alone": ([Q4, KV4, KV4, None, None, [2, 3, 12, 8]], {}, "past_value is given without past_key",
                   ([Q4, KV4, KV4, None, [2, 3, 12, 8], [2, 3, 12, 8]], {})),
    "past_head_size": ([Q4, KV4, KV4, None, [2, 3, 12, 7], [2, 3, 12, 8]], {}, "past_key has shape [2, 3, 12, 7]",
                       ([Q4, KV4, KV4, None, [2, 3, 12, 8], [2, 3, 12, 8]], {})),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_refused_with_valid_neighbour(name):
    shapes, attrs, expect, (good_shapes, good_attrs) = BAD[name]
    _refused(*_model(shapes, **attrs), expect)
    assert_matches_ort(*_model(good_shapes, **good_attrs))


def test_softmax_precision_outside_the_spec():
    # onnxruntime ignores the attribute; the spec allows only float types: konnx refuses and says so
    model, _ = _model([Q4, KV4, KV4], opset=24, softmax_precision=-7)
    with pytest.raises(konnx.UnsupportedOpError, match=r"'att'.*softmax_precision=-7: the spec allows the float types"):
        konnx.convert(model)
    assert_matches_ort(*_model([Q4, KV4, KV4], opset=24, softmax_precision=1))


def test_float16_mask_on_float32_scores():
    # the spec's mask type U is any numeric type: it is added to the float32 scores
    assert_matches_ort(*_model([Q4, KV4, KV4, [4, 6]], dtypes={"attn_mask": F16}))


def test_zero_scale_follows_the_reference():
    # the spec puts no bound on scale (Q and K are scaled by sqrt(scale)): 0 gives every key the
    # same score; onnxruntime's kernel wants scale > 0 and refuses the model, the reference runs it
    from onnx.reference import ReferenceEvaluator

    model, feeds = _model([Q4, KV4, KV4], scale=0.0)
    with pytest.raises(Exception, match="scale must be greater than 0"):
        run_ort(model, feeds)
    ref = ReferenceEvaluator(model).run(None, feeds)[0]
    got = np.asarray(konnx.convert(model)([feeds[n] for n in ("Q", "K", "V")]))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ref, np.broadcast_to(feeds["V"].mean(axis=2, keepdims=True), ref.shape), rtol=1e-5)


def _with_qk_output(mode):
    """Attention (4-D, no cache) also giving its 4th output, the QK scores selected by `mode`."""
    node = helper.make_node("Attention", ["Q", "K", "V"], ["Y", "", "", "qk"], name="att", qk_matmul_output_mode=mode)
    ins = [("Q", F, Q4), ("K", F, KV4), ("V", F, KV4)]
    model = make_model([node], ins, [("Y", F, None), ("qk", F, None)], opset=23)
    return model, {n: rand(*s, seed=i) for i, (n, _, s) in enumerate(ins)}


@pytest.mark.parametrize("mode", [7, -3, 2**31])
def test_qk_matmul_output_mode_outside_the_spec(mode):
    _refused(*_with_qk_output(mode), f"qk_matmul_output_mode={mode}: the spec defines 0 (raw scores)")
    assert_matches_ort(*_with_qk_output(3))
