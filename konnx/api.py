"""convert(): load -> check -> normalize -> emit -> keras.Model."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
import onnx
from onnx import numpy_helper

from . import layout as L
from . import loader
from .emit import Context, merge_shapes
from .errors import ConversionError, NodeConversionError, UnsupportedOpError
from .graph import Node
from .ops import load_all
from .ops.registry import lookup
from .values import Const, Tensor, has_dims


@dataclass
class Conversion:
    """The result of a conversion: the Keras model and what konnx decided on the way."""

    model: object
    decisions: list = field(default_factory=list)
    onnx_model: Optional[onnx.ModelProto] = None
    values: dict = field(default_factory=dict)
    opset: int = 0
    channels_last_io: bool = False


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
    from .errors import VerificationError
    from .verify import verify as run_verify

    try:
        result = run_verify(model, conversion.model, input_shapes=input_shapes, channels_last_io=channels_last_io)
    except ConversionError:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime refusing konnx's seeded inputs
        raise ConversionError(
            f"verify=True: the model could not be run on konnx's seeded random inputs ({type(e).__name__}: "
            f"{str(e)[:300]}); integer inputs such as masks or lengths may need real values: check with "
            "konnx.verify(model, keras_model, inputs={...}) instead") from e
    if not result.ok:
        raise VerificationError(result)


def convert_detailed(model, *, input_shapes=None, channels_last_io=False, progress=None,
                     fold_bn=False) -> Conversion:
    load_all()
    proto, folded = loader.load(model), []
    if fold_bn:
        from .fold import fold_batch_norms

        proto, folded = fold_batch_norms(proto)
    proto, weights = loader.split_weights(proto)
    opset = loader.check(proto)
    bad = loader.unsupported_nodes(proto, opset, weights)
    if bad:
        raise UnsupportedOpError(bad)
    proto = loader.normalize(proto, input_shapes)
    bad = loader.unsupported_nodes(proto, opset, weights)
    if bad:
        raise UnsupportedOpError(bad)
    result = _emit(proto, weights, opset, channels_last_io, progress)
    result.decisions.extend(folded)
    return result


def _io_perm(rank: int, channels_last_io: bool):
    return L.channels_last(rank) if channels_last_io and rank >= 3 else L.identity(rank)


def _emit(proto: onnx.ModelProto, weights: dict, opset: int, channels_last_io: bool, progress=None) -> Conversion:
    import keras

    shapes, types = loader.value_info(proto)
    ctx = Context(shapes, types)
    g = proto.graph
    for init in list(g.initializer) + list(weights.values()):
        ctx.values[init.name] = Const(numpy_helper.to_array(init))
    inputs = []
    for vi in g.input:
        if vi.name in ctx.values:
            continue  # an initializer listed as input (old exporters): a constant
        shape = shapes.get(vi.name)
        if shape is None:
            raise ConversionError(f"graph input '{vi.name}' has no tensor shape; pass input_shapes")
        dtype = onnx.helper.tensor_dtype_to_np_dtype(types[vi.name])
        perm = _io_perm(len(shape), channels_last_io)
        kshape = tuple(s if isinstance(s, int) and s > 0 else None for s in shape)
        kshape = tuple(kshape[p] for p in perm)
        kin = keras.Input(batch_shape=kshape, dtype=str(np.dtype(dtype)), name=_input_name(ctx, vi.name))
        inputs.append(kin)
        ctx.values[vi.name] = Tensor(kin, perm, shape, str(np.dtype(dtype)))

    nodes = [Node(p, opset, i) for i, p in enumerate(g.node)]
    for i, node in enumerate(nodes):
        ctx.node = node
        _convert_node(ctx, node)
        if progress is not None:
            progress(i + 1, len(nodes))

    ctx.node = None
    outputs = []
    for vo in g.output:
        v = ctx.values[vo.name]
        ctx.node = Node(onnx.helper.make_node("Identity", [vo.name], [vo.name], name=f"output_{vo.name}"), opset)
        if isinstance(v, Const):
            v = _const_output(ctx, vo.name, v, inputs)
        perm = _io_perm(v.rank, channels_last_io)
        kt = ctx.keras(v, perm)
        if any(kt is o for o in outputs) or any(kt is i for i in inputs):
            kt = ctx.op("identity", [kt], suffix="out")
        outputs.append(kt)
    ctx.node = None
    model = keras.Model(inputs=inputs[0] if len(inputs) == 1 else inputs,
                        outputs=outputs[0] if len(outputs) == 1 else outputs, name=_model_name(proto))
    return Conversion(model=model, decisions=ctx.decisions, onnx_model=proto, values=ctx.values, opset=opset,
                      channels_last_io=channels_last_io)


def _const_output(ctx: Context, name: str, v: Const, inputs: list) -> Tensor:
    """A graph output known at conversion time (e.g. Shape of a static tensor), emitted by a
    layer that reads the model's first input (a Keras model's outputs must depend on one)."""
    if not inputs:
        raise ConversionError(f"graph output '{name}' is a constant and the model has no input; "
                              "a Keras model needs at least one input")
    if has_dims(v.value):
        return ctx.materialize(v)  # computed at run time, in the value's own shape
    return ctx.tensor(ctx.op("constant", [inputs[0], np.asarray(v.value)], suffix="const"))


def _input_name(ctx: Context, name: str) -> str:
    saved = ctx.node
    ctx.node = Node(onnx.helper.make_node("Identity", [], [], name=name), 1)
    try:
        return ctx.name()
    finally:
        ctx.node = saved


def _model_name(proto) -> str:
    import re
    name = re.sub(r"[^A-Za-z0-9_]+", "_", proto.graph.name or "converted").strip("_")
    return name or "converted"


def _convert_node(ctx: Context, node: Node) -> None:
    spec = lookup(node.op_type, node.opset, node.domain)
    ins = [ctx.values.get(n) if n else None for n in node.inputs]
    for n, v in zip(node.inputs, ins):
        if n and n not in ctx.values:
            raise NodeConversionError(node, f"input '{n}' is produced by no node before it "
                                            "(the graph is not in topological order)")
    all_const = all(v is None or isinstance(v, Const) for v in ins) and node.op_type not in loader._NONDETERMINISTIC
    if all_const:
        folded = _fold(ctx, node, spec, ins)
        if folded is not None:
            _assign(ctx, node, folded)
            return
    if spec is None:
        raise NodeConversionError(node, "no converter for this op")
    try:
        out = spec.fn(ctx, node)
    except ConversionError:
        raise
    except (ValueError, TypeError, NotImplementedError) as e:
        raise NodeConversionError(node, f"conversion failed: {type(e).__name__}: {e}") from e
    _assign(ctx, node, out)


def _assign(ctx: Context, node: Node, out) -> None:
    if not isinstance(out, (list, tuple)):
        out = [out]
    for name, v in zip(node.outputs, out):
        if not name:
            continue
        if isinstance(v, Tensor):
            v.onnx_shape = merge_shapes(ctx.value_shapes.get(name), v.onnx_shape)
        elif isinstance(v, np.ndarray):
            v = Const(v)
        ctx.values[name] = v


def _fold(ctx: Context, node: Node, spec, ins):
    """Evaluate a node whose inputs are all constants. Returns None when it cannot."""
    arrays = [None if v is None else v.value for v in ins]
    if spec is not None and spec.fold is not None:
        return spec.fold(node, *arrays)
    if any(a is not None and has_dims(a) for a in arrays):
        return None
    if any(a is not None and a.dtype == object for a in arrays):
        arrays = [a if a is None or a.dtype != object else a.astype(np.int64) for a in arrays]
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if a is not None else "" for i, a in enumerate(arrays)]
    proto = onnx.NodeProto()
    proto.CopyFrom(node.proto)
    del proto.input[:]
    proto.input.extend(names)
    graph = onnx.helper.make_graph(
        [proto], "fold",
        [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
         for n, a in zip(names, arrays) if a is not None],
        [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.outputs if o])
    m = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", node.opset)])
    try:
        res = ReferenceEvaluator(m).run(None, {n: a for n, a in zip(names, arrays) if a is not None})
    except Exception as e:  # noqa: BLE001 - the reference implementation cannot fold it
        if spec is None:
            raise NodeConversionError(node, f"cannot evaluate this constant node: {e}") from e
        return None
    return [np.asarray(r) for r in res]
