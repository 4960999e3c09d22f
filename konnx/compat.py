"""`onnx_to_keras`: the call onnx2keras users have in their code, answered by konnx.

onnx2keras's signature is kept (`onnx_to_keras(onnx_model, input_names, input_shapes=None,
name_policy=None, verbose=True, change_ordering=False)`); what konnx does differently is said by
the errors: it never emits Lambda layers and pads exactly as PyTorch did. `change_ordering=True`
means channels-last inputs and outputs (`konnx.convert(..., channels_last_io=True)`)."""
from __future__ import annotations

import logging

from .errors import ConversionError

NAME_POLICIES = (None, "default")
_log = logging.getLogger("konnx")


def _check_flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConversionError(f"onnx_to_keras: {name} must be True or False, got {value!r}")
    return value


def _input_names(proto, input_names) -> list:
    from .inputs import real_inputs

    real = list(real_inputs(proto))
    if isinstance(input_names, str):
        input_names = [input_names]
    if not isinstance(input_names, (list, tuple)) or not all(isinstance(n, str) for n in input_names):
        raise ConversionError(f"onnx_to_keras: input_names must be a list of the model's input names "
                              f"({real}), got {input_names!r}")
    unknown = [n for n in input_names if n not in real]
    if unknown:
        raise ConversionError(f"onnx_to_keras: input_names {unknown} are not inputs of the model; its inputs "
                              f"are {real}")
    missing = [n for n in real if n not in input_names]
    if missing or len(set(input_names)) != len(input_names):
        raise ConversionError(f"onnx_to_keras: input_names must name each of the model's inputs {real} once, "
                              f"got {list(input_names)}")
    return list(input_names)


def _input_shapes(proto, names: list, input_shapes):
    """onnx2keras's shapes are per name in `input_names` order, without the batch dim (as
    `keras.Input(shape=...)`); a shape of the input's full rank is taken as is."""
    from .inputs import dims_of, real_inputs

    if input_shapes is None:
        return None
    if isinstance(input_shapes, dict):
        return input_shapes  # konnx's own form: checked by konnx.convert
    if not isinstance(input_shapes, (list, tuple)) or len(input_shapes) != len(names):
        raise ConversionError(f"onnx_to_keras: input_shapes must give one shape per name in input_names "
                              f"({names}), got {input_shapes!r}")
    real, shapes = real_inputs(proto), {}
    for name, shape in zip(names, input_shapes):
        dims = dims_of(real[name])
        shape = tuple(shape)
        if len(shape) == len(dims) - 1:
            batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None
            shape = (batch,) + shape
        elif len(shape) != len(dims):
            raise ConversionError(f"onnx_to_keras: input_shapes for '{name}' is {shape}: the input has rank "
                                  f"{len(dims)}, so give {len(dims) - 1} dims (without the batch) or {len(dims)}")
        shapes[name] = shape
    return shapes


def onnx_to_keras(onnx_model, input_names, input_shapes=None, name_policy=None, verbose=True,
                  change_ordering=False):
    """Convert like onnx2keras's `onnx_to_keras`, with konnx: returns a keras.Model whose inputs
    follow `input_names`. name_policy "short"/"renumerate" are refused (konnx names layers after
    the source modules, else the ONNX nodes); change_ordering=True gives channels-last (NHWC)
    inputs and outputs."""
    from . import loader
    from .api import convert_detailed
    from .inputs import real_inputs

    if name_policy not in NAME_POLICIES:
        raise ConversionError(f"onnx_to_keras: name_policy={name_policy!r} is not supported: konnx names every "
                              "layer after the PyTorch module (else the ONNX node) it came from: unique, and "
                              "traceable to the source; use name_policy=None, and rename layers on the Keras "
                              "model if you must")
    change_ordering = _check_flag("change_ordering", change_ordering)
    verbose = _check_flag("verbose", verbose)
    proto = loader.load(onnx_model)
    names = _input_names(proto, input_names)
    shapes = _input_shapes(proto, names, input_shapes)
    conversion = convert_detailed(proto, input_shapes=shapes, channels_last_io=change_ordering)
    model = conversion.model
    if verbose:
        _log.info("konnx: converted %d ONNX nodes into %d Keras layers (%d padding/layout decisions)",
                  len(proto.graph.node), len(model.layers), len(conversion.decisions))
    graph_order = list(real_inputs(proto))  # konnx's model.inputs follow the ONNX graph's order
    if names != graph_order:  # onnx2keras's inputs follow input_names
        import keras

        by_name = dict(zip(graph_order, model.inputs))
        outputs = model.outputs if len(model.outputs) > 1 else model.outputs[0]
        model = keras.Model(inputs=[by_name[n] for n in names], outputs=outputs, name=model.name)
    return model
