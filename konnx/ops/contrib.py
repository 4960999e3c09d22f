"""onnxruntime's contrib ops (domain com.microsoft) konnx converts: Gelu and FastGelu, which
konnx/fuse.py also writes in place of the GELU decompositions exporters emit below opset 20."""
from __future__ import annotations

from .activation import elementwise_fn, keras_activation, native_float
from .registry import FOLLOWS, converter

CONTRIB = "com.microsoft"


def _fold(approximate: str):
    """A GELU of a constant, evaluated by onnx's reference implementation of opset 20's Gelu."""
    def fold(node, x, *rest):
        import onnx
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        if rest and rest[0] is not None:
            return None  # FastGelu with a bias: the converter's check refuses it
        t = helper.np_dtype_to_tensor_dtype(x.dtype)
        graph = helper.make_graph([helper.make_node("Gelu", ["x"], ["y"], approximate=approximate)], "fold",
                                  [helper.make_tensor_value_info("x", t, x.shape)],
                                  [helper.make_tensor_value_info("y", onnx.TensorProto.UNDEFINED, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
        return [ReferenceEvaluator(model).run(None, {"x": x})[0]]
    return fold


@converter("Gelu", domain=CONTRIB, layout=FOLLOWS, fold=_fold("none"))
def gelu(ctx, node):
    """x * 0.5 * (1 + erf(x / sqrt(2))): keras.layers.Activation('gelu') on float32 (TFLite's GELU)."""
    x = ctx.input(0)
    if native_float(x):
        return keras_activation(ctx, x, "gelu")
    return elementwise_fn(ctx, x, "math.gelu", approximate=False)


def _fast_gelu_check(node, facts):
    if node.has_input(1):
        return "FastGelu with a bias input is not supported (expected the input alone)"
    return None


@converter("FastGelu", domain=CONTRIB, layout=FOLLOWS, check=_fast_gelu_check, fold=_fold("tanh"))
def fast_gelu(ctx, node):
    """0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3))): keras.ops.gelu(approximate=True)."""
    return elementwise_fn(ctx, ctx.input(0), "math.gelu", approximate=True)
