"""RNN/GRU/LSTM input checks (konnx/ops/rnn_checks.py, issue 14): each spec shape rule refuses a
bad model with a konnx error naming the node and the expected shape, where onnxruntime refuses
the same model too; the valid neighbour still converts and matches onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import konnx

from ..util import assert_matches_ort, make_model, rand, run_ort

NAMES = ("X", "W", "R", "B")


def _model(cell, shapes, **attrs):
    ins = [(n, np.float32, s) for n, s in zip(NAMES, shapes)]
    node = helper.make_node(cell, [n for n, _, _ in ins], ["Y", "Y_h"], name="rec", **attrs)
    model = make_model([node], ins, [("Y", np.float32, None), ("Y_h", np.float32, None)], opset=14)
    return model, {n: rand(*s, seed=i) for i, (n, _, s) in enumerate(ins)}


CASES = {  # cell, bad shapes, bad attrs, expected words, good shapes, good attrs
    "gru_hidden_vs_W": ("GRU", [[1, 3, 2], [1, 15, 2], [1, 15, 5]], dict(hidden_size=7), "W has shape [1, 15, 2], expected (1, 21, 2)",
                        [[1, 3, 2], [1, 15, 2], [1, 15, 5]], dict(hidden_size=5)),
    "lstm_negative_hidden": ("LSTM", [[1, 3, 2], [1, 12, 2], [1, 12, 3]], dict(hidden_size=-1), "hidden_size=-1",
                             [[1, 3, 2], [1, 12, 2], [1, 12, 3]], dict(hidden_size=3)),
    "rnn_R_rank": ("RNN", [[2, 3, 3], [1, 5, 3], [1, 5, 5, 1]], dict(hidden_size=5), "R has rank 4, expected shape (1, 5, 5)",
                   [[2, 3, 3], [1, 5, 3], [1, 5, 5]], dict(hidden_size=5)),
    "rnn_input_size": ("RNN", [[2, 3, 4], [1, 5, 3], [1, 5, 5]], dict(hidden_size=5), "expected (1, 5, 4)",
                       [[2, 3, 3], [1, 5, 3], [1, 5, 5]], dict(hidden_size=5)),
    "gru_bias": ("GRU", [[2, 3, 3], [1, 6, 3], [1, 6, 2], [1, 6]], dict(hidden_size=2), "B has shape [1, 6], expected (1, 12)",
                 [[2, 3, 3], [1, 6, 3], [1, 6, 2], [1, 12]], dict(hidden_size=2)),
    "bidirectional_W": ("LSTM", [[2, 3, 3], [1, 8, 3], [1, 8, 2]], dict(hidden_size=2, direction="bidirectional"),
                        "W has shape [1, 8, 3], expected (2, 8, 3)",
                        [[2, 3, 3], [2, 8, 3], [2, 8, 2]], dict(hidden_size=2, direction="bidirectional")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_with_valid_neighbour(name):
    cell, bad, bad_attrs, expect, good, good_attrs = CASES[name]
    model, feeds = _model(cell, bad, **bad_attrs)
    with pytest.raises(konnx.UnsupportedOpError) as info:
        konnx.convert(model)
    assert "'rec'" in str(info.value) and expect in str(info.value), str(info.value)
    with pytest.raises(Exception):  # onnxruntime refuses it too (session or run)
        run_ort(model, feeds)
    assert_matches_ort(*_model(cell, good, **good_attrs))
