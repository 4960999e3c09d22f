"""Activations (placeholder: Relu only, to exercise the pipeline)."""
import keras
from ..ops.registry import converter


@converter("Relu")
def relu(ctx, node):
    x = ctx.input(0)
    return ctx.tensor(ctx.layer(keras.layers.ReLU(name=ctx.name()), ctx.keras(x)), x.perm)
