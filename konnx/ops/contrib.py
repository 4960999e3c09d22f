"""onnxruntime's contrib ops (domain com.microsoft) konnx converts: Gelu and FastGelu, which
konnx/fuse.py also writes in place of the GELU decompositions exporters emit below opset 20."""
from __future__ import annotations

from .activation import _activation, _fn, _native
from .registry import FOLLOWS, converter

CONTRIB = "com.microsoft"


@converter("Gelu", domain=CONTRIB, layout=FOLLOWS)
def gelu(ctx, node):
    """x * 0.5 * (1 + erf(x / sqrt(2))): keras.layers.Activation('gelu') on float32 (TFLite's GELU)."""
    x = ctx.input(0)
    if _native(x):
        return _activation(ctx, x, "gelu")
    return _fn(ctx, x, "math.gelu", approximate=False)


def _fast_gelu_check(node, facts):
    if node.has_input(1):
        return "FastGelu with a bias input is not supported (expected the input alone)"
    return None


@converter("FastGelu", domain=CONTRIB, layout=FOLLOWS, check=_fast_gelu_check)
def fast_gelu(ctx, node):
    """0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3))): keras.ops.gelu(approximate=True)."""
    return _fn(ctx, ctx.input(0), "math.gelu", approximate=True)
