"""Build a konnx function as its named layer (konnx/layers/named.py: Slice, Einsum, Recurrent,
...) where it has one, else as a KonnxOp (`ctx.op`). Same function, same operands, same layer
name: only the layer class (and so the saved config and the generated code) reads better."""
from __future__ import annotations

from ..layers.named import PROMOTED
from ..layers.op import make_slots


def op(ctx, fn: str, args, suffix: str = "", **params):
    """Like `ctx.op(fn, args, suffix, **params)`, as the named layer for `fn` if there is one."""
    cls = PROMOTED.get(fn)
    tensors, slots, specs, consts = make_slots(args)
    if cls is None or not tensors:
        return ctx.op(fn, args, suffix=suffix, **params)
    plain = slots == [{"t": i} for i in range(len(tensors))]
    layer = cls(slots=None if plain else slots, weight_specs=specs, consts=consts, name=ctx.name(suffix or fn),
                **params)
    return layer(tensors if len(tensors) > 1 else tensors[0])
