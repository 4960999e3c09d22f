"""onnx's own 'light' model zoo (onnx/backend/test/data/light/*.onnx) against onnxruntime.

These are the real architectures (AlexNet, DenseNet-121, Inception v1/v2, ResNet-50,
ShuffleNet, SqueezeNet, VGG-19, ZFNet-512) at opset 9, IR 3, with every weight replaced by a
ConstantOfShape(0.02). Such constant weights make the softmax outputs uniform (all 0.001),
so a comparison of those alone proves little. `test_light_model` runs them as shipped;
`test_light_model_random_weights` swaps every ConstantOfShape weight for a seeded random
initializer of a realistic scale (He for conv/FC, realistic BatchNorm statistics) and also
exposes the logits that feed each output Softmax as extra graph outputs.
"""
from __future__ import annotations

import math
import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import konnx
from tests.util import run_keras, run_ort

from .checks import assert_close

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
LIGHT_MODELS = sorted(f for f in os.listdir(LIGHT_DIR) if f.endswith(".onnx")) if os.path.isdir(LIGHT_DIR) else []
# hundreds of MB of fully-connected weights: drawing random ones takes 10-30 s a model
HEAVY = {"light_vgg19.onnx", "light_bvlc_alexnet.onnx", "light_zfnet512.onnx"}


def _params(heavy_slow: bool):
    return [pytest.param(f, id=f[len("light_"):-len(".onnx")],
                         marks=[pytest.mark.slow] if heavy_slow and f in HEAVY else []) for f in LIGHT_MODELS]


def _data_inputs(proto: onnx.ModelProto) -> list:
    init = {i.name for i in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in init]


def _feeds(proto: onnx.ModelProto, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in _data_inputs(proto):
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.dim_value > 0 else 1 for d in tt.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
        feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def _compare(proto: onnx.ModelProto) -> None:
    feeds = _feeds(proto)
    keras_model = konnx.convert(proto)
    ref = run_ort(proto, feeds)
    got = run_keras(keras_model, feeds, proto)
    assert len(got) == len(ref), f"keras model has {len(got)} outputs, onnxruntime {len(ref)}"
    names = [o.name for o in proto.graph.output]
    for name, g, r in zip(names, got, ref):
        assert_close(g, r, f"keras vs onnxruntime, output '{name}'")


def test_light_models_found():
    assert LIGHT_MODELS, f"no light models under {LIGHT_DIR}"


@pytest.mark.parametrize("fname", _params(heavy_slow=False))
def test_light_model(fname):
    _compare(onnx.load(os.path.join(LIGHT_DIR, fname)))


@pytest.mark.parametrize("fname", _params(heavy_slow=True))
def test_light_model_random_weights(fname):
    _compare(randomize_weights(onnx.load(os.path.join(LIGHT_DIR, fname)), seed=0))


# ---------------------------------------------------------------- weight randomization

def _consumers(graph) -> dict:
    out: dict = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            out.setdefault(name, []).append((node, i))
    return out


def _role(name: str, consumers: dict) -> tuple:
    """(op_type, input index) of the first consumer, looking through Unsqueeze/Reshape."""
    seen = 0
    while seen < 4:
        uses = consumers.get(name, [])
        if not uses:
            return ("", -1, None)
        node, i = uses[0]
        if node.op_type in ("Unsqueeze", "Reshape", "Identity") and i == 0:
            name, seen = node.output[0], seen + 1
            continue
        return (node.op_type, i, node)
    return ("", -1, None)


def _he(rng, shape, fan_in) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(2.0 / max(fan_in, 1)))


def _random_weight(shape, role, rng) -> np.ndarray:
    op, idx, node = role
    shape = tuple(int(s) for s in shape)
    if op in ("Conv", "ConvTranspose") and idx == 1:
        return _he(rng, shape, int(np.prod(shape[1:])) if len(shape) > 1 else 1)
    if op == "Gemm" and idx == 1:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return _he(rng, shape, shape[1] if trans_b else shape[0])
    if op == "MatMul" and idx == 1:
        return _he(rng, shape, shape[0])
    if op == "BatchNormalization":
        return {1: rng.uniform(0.5, 1.5, shape), 2: rng.normal(0, 0.1, shape),
                3: rng.normal(0, 0.1, shape), 4: rng.uniform(0.5, 2.0, shape)}.get(idx, rng.normal(0, 0.1, shape))
    if op in ("Add", "Sub", "Sum") or idx == 2:
        return rng.normal(0, 0.1, shape)
    return rng.uniform(0.5, 1.5, shape)    # scales (Mul, PRelu, ...)


def randomize_weights(proto: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """Replace every ConstantOfShape whose shape is an initializer with a random initializer,
    and add the input of every output Softmax as a graph output (the logits)."""
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    g = m.graph
    rng = np.random.default_rng(seed)
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers = _consumers(g)
    keep, new_inits, used_shapes = [], [], set()
    for node in g.node:
        if node.op_type == "ConstantOfShape" and node.input and node.input[0] in inits:
            shape = inits[node.input[0]]
            value = next((numpy_helper.to_array(a.t) for a in node.attribute if a.name == "value"), None)
            dtype = value.dtype if value is not None else np.float32
            if np.issubdtype(dtype, np.floating):
                w = _random_weight(shape, _role(node.output[0], consumers), rng).astype(dtype)
                new_inits.append(numpy_helper.from_array(w, node.output[0]))
                used_shapes.add(node.input[0])
                continue
        keep.append(node)
    del g.node[:]
    g.node.extend(keep)
    still_used = {n for node in g.node for n in node.input}
    dead = used_shapes - still_used
    kept_inits = [i for i in g.initializer if i.name not in dead]
    del g.initializer[:]
    g.initializer.extend(kept_inits + new_inits)
    kept_inputs = [i for i in g.input if i.name not in dead]
    del g.input[:]
    g.input.extend(kept_inputs)
    if m.ir_version < 4:   # IR < 4: every initializer is also a graph input
        g.input.extend(helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in new_inits)
    outputs = {o.name for o in g.output}
    inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(proto).graph.value_info}
    for node in g.node:
        if node.op_type == "Softmax" and node.output[0] in outputs and node.input[0] not in outputs:
            g.output.append(inferred[node.input[0]])
    return m
