"""A model's real inputs (initializers are not inputs), and the checks of what a user says about
them (`input_shapes`). Imports no Keras: the command line runs these checks before loading it."""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import onnx

from .errors import ConversionError, InvalidModelError


def real_inputs(proto: onnx.ModelProto) -> dict:
    """name -> ValueInfoProto of every graph input that is not an initializer."""
    init = {i.name for i in proto.graph.initializer}
    return {vi.name: vi for vi in proto.graph.input if vi.name not in init}


def dims_of(vi) -> list:
    """An input's dims: ints, None where dynamic."""
    return [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]


def dims_text(dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


_SHAPES_EXAMPLE = "e.g. input_shapes={'image': (1, 3, 224, 224)}, None for a dim that stays dynamic"


def _shape_of(name, shape) -> tuple:
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise ConversionError(f"input_shapes['{name}'] must be a tuple or list of dims, got "
                              f"{type(shape).__name__} {shape!r} ({_SHAPES_EXAMPLE})")
    dims = []
    for d in shape:
        if d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0):
            dims.append(None if d is None else int(d))
        else:
            raise ConversionError(f"input_shapes['{name}'] = {tuple(shape)!r}: each dim must be a positive int "
                                  f"or None, got {type(d).__name__} {d!r}")
    return tuple(dims)


def check_input_shapes(proto: onnx.ModelProto, input_shapes) -> Optional[dict]:
    """Validate `input_shapes` against the model's real inputs (initializers are not inputs):
    a dict of input name -> dims, each a positive int or None (dynamic)."""
    if input_shapes is None:
        return None
    if not isinstance(input_shapes, Mapping):
        raise ConversionError(f"input_shapes must be a dict mapping input names to shapes ({_SHAPES_EXAMPLE}), "
                              f"got {type(input_shapes).__name__} {input_shapes!r}")
    inputs = real_inputs(proto)
    unknown = sorted(str(n) for n in input_shapes if n not in inputs)
    if unknown:
        raise InvalidModelError(f"input_shapes names unknown inputs {unknown}; the model's inputs are "
                                f"{sorted(inputs)}")
    out = {}
    for name, shape in input_shapes.items():
        dims = _shape_of(name, shape)
        model_dims = dims_of(inputs[name])
        if len(model_dims) != len(dims):
            raise InvalidModelError(f"input_shapes['{name}'] = {dims} has rank {len(dims)}; the model's input "
                                    f"'{name}' has rank {len(model_dims)}: {dims_text(model_dims)}")
        clash = [f"dim {i} is {m} in the model, {d} requested" for i, (m, d) in enumerate(zip(model_dims, dims))
                 if m is not None and d is not None and m != d]
        if clash:
            raise InvalidModelError(f"input_shapes['{name}'] = {dims} conflicts with the model's fixed dims "
                                    f"({'; '.join(clash)}); the model's input is {dims_text(model_dims)}")
        out[name] = dims
    return out
