"""KonnxOp states the output spec of reshape/expand/fill from their parameters (so the JAX and
PyTorch backends need not run them on placeholder sizes). The oracle: the spec Keras infers by
tracing the same layer on the TensorFlow backend, and the shape of a real run."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from konnx.layers.op import KonnxOp

CASES = [
    # input shape (None = dynamic), reshape spec ({"axis": k}: the input's size on axis k)
    ((None, 17, 32), [{"axis": 0}, 17, 4, -1]),
    ((None, 17, 32), [{"axis": 0}, -1, 8]),
    ((None, None, 32), [{"axis": 0}, {"axis": 1}, 4, 8]),
    ((None, None, 32), [{"axis": 0}, -1]),
    ((None, None, 4, 8), [{"axis": 0}, {"axis": 1}, -1]),
    ((None, 4, 8), [{"axis": 0}, {"axis": 0}, -1]),
    ((2, 3, 4), [-1, 4]),
]


@pytest.mark.parametrize("shape,spec", CASES)
def test_reshape_output_spec(shape, spec):
    """Every size the spec states is the size of real runs at two input sizes; and it knows at
    least every size TensorFlow's traced inference knows (so nothing downstream loses one)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the comparison is with TensorFlow's shape inference")
    x = keras.KerasTensor(shape, dtype="float32")
    op = KonnxOp("reshape", params={"shape": spec}, slots=[{"t": 0}])
    mine = op.compute_output_spec(x)
    traced = keras.layers.Layer.compute_output_spec(op, x)
    assert len(mine.shape) == len(traced.shape) and mine.dtype == traced.dtype
    for a, b in zip(mine.shape, traced.shape):
        assert b is None or a == b, f"{mine.shape}: TensorFlow knows more, {traced.shape}"
    for fill in (4, 8):  # (divides 32: the batch-used-twice case needs batch | 32)
        concrete = tuple(d if d is not None else fill for d in shape)
        y = op(np.zeros(concrete, np.float32))
        for a, b in zip(mine.shape, y.shape):
            assert a is None or a == b, f"{mine.shape} but a run with input {concrete} gives {tuple(y.shape)}"
