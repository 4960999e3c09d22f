"""Helpers for the tensor/shape/resize op tests: the channels-last I/O path and save/reload."""
from __future__ import annotations

import numpy as np
import keras
from onnx import helper

import konnx
from konnx import layout as L

from ..util import assert_matches_ort


class ChannelsLastIO:
    """A model converted with channels_last_io=True, called with and returning ONNX layout."""

    def __init__(self, model):
        self.model = model

    def __call__(self, inputs):
        single = not isinstance(inputs, list)
        xs = [inputs] if single else inputs
        xs = [np.transpose(x, L.channels_last(x.ndim)) if np.ndim(x) >= 3 else x for x in xs]
        out = self.model(xs[0] if single else xs)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        res = []
        for o in outs:
            o = np.asarray(o)
            res.append(np.transpose(o, L.inverse(L.channels_last(o.ndim))) if o.ndim >= 3 else o)
        return res if isinstance(out, (list, tuple)) else res[0]


def check(model, feeds, channels_last=False, **kwargs):
    """Convert (optionally with channels-last I/O) and compare with onnxruntime."""
    if channels_last:
        km = konnx.convert(model, channels_last_io=True, **kwargs)
        assert_matches_ort(model, feeds, keras_model=ChannelsLastIO(km))
        return km
    return assert_matches_ort(model, feeds, **kwargs)


def check_reload(model, feeds, tmp_path, **kwargs):
    """Convert, save as .keras, reload with safe_mode=True, compare the reloaded model."""
    km = konnx.convert(model, **kwargs)
    path = tmp_path / "model.keras"
    km.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert_matches_ort(model, feeds, keras_model=loaded)
    return loaded


def model(nodes, inputs, outputs, initializers=(), opset=17, out_dtype=np.float32):
    """make_model whose output shapes come from ONNX shape inference. outputs: names, or
    (name, dtype) pairs."""
    import onnx
    from ..util import make_model

    outs = [(o, out_dtype) if isinstance(o, str) else o for o in outputs]
    m = make_model(nodes, inputs, [(n, t, None) for n, t in outs], initializers, opset=opset)
    inferred = onnx.shape_inference.infer_shapes(m)
    known = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for o in m.graph.output:
        vi = known.get(o.name)
        if vi is not None and vi.type.tensor_type.HasField("shape"):
            o.type.CopyFrom(vi.type)
        else:
            o.type.tensor_type.shape.SetInParent()  # unknown dims, but a shape field
    return m


def one(op, x_shape, inits=(), opset=13, inputs=None, outputs=("y",), dtype=np.float32, **attrs):
    """A one-node model: x (+ constant inputs by name) -> op -> outputs."""
    names = inputs if inputs is not None else ["x"] + [n for n, _ in inits]
    node = helper.make_node(op, names, list(o if isinstance(o, str) else o[0] for o in outputs), **attrs)
    return model([node], [("x", dtype, list(x_shape))], list(outputs), list(inits), opset=opset, out_dtype=dtype)
