"""An input declared with huge dims (1x3x100000x100000): conversion builds the model without
allocating it; the check against onnxruntime refuses to allocate seeded inputs that large (a konnx
error naming the input and its size), and `konnx convert` skips that default check with the message
instead of eating the machine's memory (issue 14)."""
from __future__ import annotations

import os
import resource
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper

import konnx
from konnx.errors import InputsTooLargeError
from konnx.oracle import MAX_SEEDED_ELEMENTS, make_inputs
from tests.util import make_model, rand

HUGE = [1, 3, 100000, 100000]


def _model(shape=HUGE):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    return make_model(nodes, [("x", np.float32, shape)], [("y", np.float32, None)], [("w", rand(4, 3, 3, 3))])


def test_seeded_inputs_refuse_huge_declared_dims():
    with pytest.raises(InputsTooLargeError, match=r"'x' \[1, 3, 100000, 100000\] \(30,000,000,000 elements"):
        make_inputs(_model())
    # just under the limit still builds (a dynamic dim fixed by input_shapes counts the same)
    side = int((MAX_SEEDED_ELEMENTS // 3) ** 0.5)
    feeds = make_inputs(_model([1, 3, "H", "W"]), {"x": (1, 3, side, side)})
    assert feeds["x"].shape == (1, 3, side, side)
    with pytest.raises(InputsTooLargeError):
        make_inputs(_model([1, 3, "H", "W"]), {"x": (1, 3, side * 2, side)})


def test_convert_and_verify_on_huge_dims():
    km = konnx.convert(_model())  # no check asked: converts, nothing allocated
    assert tuple(km.inputs[0].shape) == tuple(HUGE)
    with pytest.raises(InputsTooLargeError, match="nothing was allocated"):
        konnx.convert(_model(), verify=True)
    with pytest.raises(InputsTooLargeError):
        konnx.verify(_model(), km)


def _limit_memory():  # a regression must fail with MemoryError, not take the machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (12 << 30, 12 << 30))


def test_cli_convert_skips_the_check_with_a_message(tmp_path):
    src, out = tmp_path / "huge.onnx", tmp_path / "huge.keras"
    onnx.save(_model(), src)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    p = subprocess.run([sys.executable, "-m", "konnx", "convert", str(src), "-o", str(out)], capture_output=True,
                       text=True, env=env, timeout=600, preexec_fn=_limit_memory)
    err = " ".join(p.stderr.split())
    assert p.returncode == 0, err[-2000:]
    assert "check against onnxruntime skipped" in err and "30,000,000,000 elements" in err
    assert "MemoryError" not in err and out.exists()
    p = subprocess.run([sys.executable, "-m", "konnx", "verify", str(src), "-q"], capture_output=True, text=True,
                       env=env, timeout=600, preexec_fn=_limit_memory)
    assert p.returncode == 1 and "30,000,000,000 elements" in " ".join(p.stderr.split()), p.stderr[-2000:]
