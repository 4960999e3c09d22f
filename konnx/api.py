"""convert(): load -> check -> normalize -> plan -> emit -> keras.Model."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Union

import numpy as np
import onnx
from onnx import numpy_helper

from . import loader
from .errors import ConversionError
from .graph import Node
from .inputs import check_input_shapes
from .layout_plan import io_perm
from .limits import recursion_room
from .ops import load_all
from .plan import Plan, plan_model
from .values import Const, Tensor, has_dims

if TYPE_CHECKING:
    from .emit import Context


@dataclass
class Conversion:
    """The result of a conversion: the Keras model and what konnx decided on the way."""

    model: object
    decisions: list = field(default_factory=list)
    onnx_model: Optional[onnx.ModelProto] = None
    values: dict = field(default_factory=dict)
    opset: int = 0
    channels_last_io: bool = False
    plan: Optional[Plan] = None


def convert(model: Union[str, os.PathLike, onnx.ModelProto], *, input_shapes: Optional[dict] = None,
            channels_last_io: bool = False, fold_bn: bool = False, verify: bool = False):
    """Convert an ONNX model (path or ModelProto) into a `keras.Model` computing the same function.

    input_shapes: fix dynamic input dims by input name, e.g. ``{"x": (1, 3, 224, 224)}``
        (None entries stay dynamic).
    channels_last_io: inputs and outputs of rank >= 3 are channels-last (NHWC) instead of
        ONNX's NCHW; faster to deploy, no transposes at the model's edges.
    fold_bn: fold each BatchNormalization that follows a Conv (whose output only it reads) into
        the conv's kernel and bias, for inference speed; by default it stays a trainable
        keras.layers.BatchNormalization.
    verify: run the converted model and onnxruntime on the same seeded inputs (dynamic dims at
        konnx.verify's default sizes) and raise konnx.VerificationError naming every output
        beyond 1e-4 x max(1, max|onnxruntime|), as the CLI does before writing anything.
    """
    conversion = convert_detailed(model, input_shapes=input_shapes, channels_last_io=channels_last_io,
                                  fold_bn=fold_bn)
    if verify:
        _verify_or_raise(model, conversion, input_shapes, channels_last_io)
    return conversion.model


def _verify_or_raise(model, conversion: Conversion, input_shapes, channels_last_io: bool) -> None:
    """konnx.verify's check on seeded inputs, from the oracle's primitives (konnx.verify itself may
    convert, so the converter does not import it)."""
    from .errors import VerificationError
    from .oracle import VerifyResult, compare, make_inputs, run_keras, run_onnxruntime
    from .reference import deviation_note, judge
    from .tolerances import DEFAULT_ATOL, DEFAULT_RTOL

    proto = loader.load(model)
    try:
        feeds = make_inputs(proto, input_shapes)
        ref = run_onnxruntime(proto, feeds)
        got = run_keras(conversion.model, proto, feeds, channels_last_io)
    except ConversionError:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime refusing konnx's seeded inputs
        raise ConversionError(
            f"verify=True: the model could not be run on konnx's seeded random inputs ({type(e).__name__}: "
            f"{str(e)[:300]}); integer inputs such as masks or lengths may need real values: check with "
            "konnx.verify(model, keras_model, inputs={...}) instead") from e
    outs = [compare(o.name, ref[o.name], g, DEFAULT_RTOL, DEFAULT_ATOL) for o, g in zip(proto.graph.output, got)]
    outs = judge(proto, feeds, got, outs, DEFAULT_RTOL, DEFAULT_ATOL, ort=ref)  # the spec decides where onnxruntime differs
    result = VerifyResult(all(o.ok for o in outs), outs, input_shapes={k: list(v.shape) for k, v in feeds.items()},
                          note=deviation_note(outs))
    if not result.ok:
        raise VerificationError(result)
    if result.note:
        import warnings

        warnings.warn(f"konnx.convert(verify=True): {result.note}", UserWarning, stacklevel=3)


def convert_detailed(model, *, input_shapes=None, channels_last_io=False, progress=None,
                     fold_bn=False) -> Conversion:
    load_all()
    proto, folded = loader.load(model), []
    input_shapes = check_input_shapes(proto, input_shapes)
    if fold_bn:
        from .fold import fold_batch_norms

        proto, folded = fold_batch_norms(proto)
    proto, weights = loader.split_weights(proto)
    opset = loader.check(proto)
    proto, the_plan = plan_model(proto, opset, weights, input_shapes, channels_last_io)
    the_plan.raise_refusals()  # every refusal known without building, at once, before any layer
    with recursion_room(len(proto.graph.node)):  # Keras builds the Model recursively
        result = _emit(proto, weights, opset, channels_last_io, progress, the_plan)
    result.decisions.extend(folded)
    if folded:
        from .tensor_map import add_decisions

        add_decisions(result.model, folded)  # the bisect names folded BatchNorms as a likely cause
    return result


def _emit(proto: onnx.ModelProto, weights: dict, opset: int, channels_last_io: bool, progress=None,
          the_plan: Optional[Plan] = None) -> Conversion:
    import keras

    from .emit import Context

    shapes, types = loader.value_info(proto)
    ctx = Context(shapes, types, the_plan)
    g = proto.graph
    ctx.namer = _namer(g, weights)
    release = _last_uses(g, set(weights))
    _constants(ctx, list(g.initializer), weights)
    inputs = []
    for vi in g.input:
        if vi.name in ctx.values:
            continue  # an initializer listed as input (old exporters): a constant
        shape = shapes.get(vi.name)
        if shape is None:
            raise ConversionError(f"graph input '{vi.name}' has no tensor shape; pass input_shapes")
        dtype = onnx.helper.tensor_dtype_to_np_dtype(types[vi.name])
        perm = (the_plan.perms.get(vi.name) if the_plan is not None else None) or io_perm(len(shape), channels_last_io)
        kshape = tuple(s if isinstance(s, int) and s > 0 else None for s in shape)
        kshape = tuple(kshape[p] for p in perm)
        kin = keras.Input(batch_shape=kshape, dtype=str(np.dtype(dtype)), name=ctx.namer.claim(vi.name))
        inputs.append(kin)
        ctx.values[vi.name] = Tensor(kin, perm, shape, str(np.dtype(dtype)))

    nodes = [Node(p, opset, i) for i, p in enumerate(g.node)]
    for i, node in enumerate(nodes):
        ctx.node = node
        ctx.convert_node(node)
        for name in release.get(i, ()):
            ctx.values[name] = Released(ctx.values[name])
        if progress is not None:
            progress(i + 1, len(nodes))

    ctx.node = None
    outputs = []
    for vo in g.output:
        v = ctx.values[vo.name]
        ctx.node = Node(onnx.helper.make_node("Identity", [vo.name], [vo.name], name=f"output_{vo.name}"), opset)
        if isinstance(v, Const):
            v = _const_output(ctx, vo.name, v, inputs)
        outputs.append(_named_output(ctx, vo.name, ctx.keras(v, io_perm(v.rank, channels_last_io))))
        for layer_name in [k for k, r in ctx.namer.layer_nodes.items() if r["node"] == ctx.node.name]:
            del ctx.namer.layer_nodes[layer_name]  # made for the output, for no ONNX node of the file
    ctx.node = None
    model = keras.Model(inputs=inputs[0] if len(inputs) == 1 else inputs,
                        outputs=outputs[0] if len(outputs) == 1 else outputs, name=_model_name(proto))
    from .tensor_map import (
        attach,  # record which ONNX tensor each Keras tensor computes (bisect)
    )

    model = attach(model, proto, ctx.values, ctx.decisions, channels_last_io, ctx.namer.layer_nodes)
    return Conversion(model=model, decisions=ctx.decisions, onnx_model=proto, values=ctx.values, opset=opset,
                      channels_last_io=channels_last_io, plan=the_plan)


def _constants(ctx: Context, small: list, weights: dict) -> None:
    """Initializers as numpy constants. The weights' protos are dropped from `weights` as they
    are read: they are the last references to the loaded model's protobuf, which then goes
    before any Keras variable is allocated (one copy of the weights less at peak)."""
    for init in small:
        ctx.values[init.name] = Const(numpy_helper.to_array(init))
    for name in list(weights):
        ctx.values[name] = Const(numpy_helper.to_array(weights.pop(name)))


class Released:
    """A weight whose consumers are all built: its data now lives in Keras variables, so the numpy
    copy is dropped (one copy of the weights less at peak); its shape stays for reports."""

    def __init__(self, const: Const):
        self.shape, self.dtype = const.shape, const.value.dtype


def _reads(graph: onnx.GraphProto):
    """Every tensor name a graph's nodes read, their subgraphs' (If/Loop/Scan bodies) included."""
    for node in graph.node:
        yield from node.input
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _reads(sub)


def _last_uses(g: onnx.GraphProto, names: set) -> dict:
    """node index -> the weights (of `names`) no node after it reads; graph outputs are kept."""
    last = {}
    for i, node in enumerate(g.node):
        for n in set(node.input) | {n for a in node.attribute for sub in ([a.g] if a.HasField("g") else [])
                                    + list(a.graphs) for n in _reads(sub)}:
            if n in names:
                last[n] = i
    for o in g.output:
        last.pop(o.name, None)
    out = {}
    for n, i in last.items():
        out.setdefault(i, []).append(n)
    return out


def _const_output(ctx: Context, name: str, v: Const, inputs: list) -> Tensor:
    """A graph output known at conversion time (e.g. Shape of a static tensor), emitted by a
    layer that reads the model's first input (a Keras model's outputs must depend on one)."""
    if not inputs:
        raise ConversionError(f"graph output '{name}' is a constant and the model has no input; "
                              "a Keras model needs at least one input")
    if has_dims(v.value):
        return ctx.materialize(v)  # computed at run time, in the value's own shape
    return ctx.tensor(ctx.op("constant", [inputs[0], np.asarray(v.value)], suffix="const"))


def _namer(g: onnx.GraphProto, weights: dict):
    """Layer names from the graph's module paths, the graph's input and output names reserved."""
    from .naming import Namer

    inits = {i.name for i in g.initializer} | set(weights)
    io_names = [vi.name for vi in g.input if vi.name not in inits] + [vo.name for vo in g.output]
    return Namer(g.node, initializers=inits, reserved=io_names)


def _named_output(ctx: Context, name: str, kt):
    """`kt` as the model output named after ONNX output `name` (Keras' model.output_names): the
    weightless layer konnx made for this output alone (a layout move back) takes the name, else
    an Identity layer named so is added (the output comes from a named layer, an input, or
    another output)."""
    import keras

    layer = kt._keras_history.operation
    made = ctx.namer.layer_nodes.get(layer.name, {}).get("node") == ctx.node.name
    if made and not layer.weights and len(layer._inbound_nodes) == 1:
        ctx.namer.used.discard(layer.name)
        layer.name = ctx.namer.claim(name)
        return kt
    # built at construction, so given its input's dtype here: Keras would cast float64/16 to float32
    dtype = keras.backend.standardize_dtype(kt.dtype)
    return keras.layers.Identity(name=ctx.namer.claim(name), dtype=dtype if "float" in dtype else None)(kt)


def _model_name(proto) -> str:
    import re
    name = re.sub(r"[^A-Za-z0-9_]+", "_", proto.graph.name or "converted").strip("_")
    return name or "converted"
