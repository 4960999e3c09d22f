"""The inputs `konnx verify` runs on: read from an .npz file and checked against what the model
expects (names, shapes, dtypes), with a message naming what the model wants."""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
import onnx

from . import layout as L
from .errors import ConversionError
from .inputs import dims_of, dims_text, real_inputs


def load_inputs(path) -> dict:
    """Arrays keyed by input name from an .npz file (np.savez(path, name=array, ...))."""
    if not os.path.exists(path):
        raise ConversionError(f"inputs file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ConversionError(f"{path}: not a readable .npz file ({e}); write one with "
                              "numpy.savez(path, input_name=array, ...)") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ConversionError(f"{path}: expected an .npz file keyed by input name, got a single array; "
                              "write it with numpy.savez(path, input_name=array, ...)")
    with data:
        try:
            return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as e:
            raise ConversionError(f"{path}: cannot read its arrays ({e})") from None


def expected_inputs(model: onnx.ModelProto, input_shapes: Optional[dict] = None) -> dict:
    """The model's real inputs (initializers excluded): name -> (numpy dtype, dims with None for
    a dynamic dim), `input_shapes` applied."""
    out = {}
    for name, vi in real_inputs(model).items():
        if not vi.type.HasField("tensor_type"):
            continue
        dims = dims_of(vi)
        fixed = (input_shapes or {}).get(name)
        if fixed is not None and len(fixed) == len(dims):
            dims = [f if f is not None else d for f, d in zip(fixed, dims)]
        out[name] = (np.dtype(onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)), dims)
    return out


def _describe(expected: dict) -> str:
    return ", ".join(f"{n} {dt} {dims_text(dims)}" for n, (dt, dims) in expected.items())


def check_inputs(model: onnx.ModelProto, feeds: dict, input_shapes: Optional[dict] = None) -> dict:
    """Refuse inputs that do not fit the model, naming what it expects; returns them as arrays."""
    expected = expected_inputs(model, input_shapes)
    want = f"the model expects {_describe(expected)} (ONNX layout)"
    missing = [n for n in expected if n not in feeds]
    unknown = [n for n in feeds if n not in expected]
    if missing or unknown:
        parts = ([f"missing {missing}"] if missing else []) + ([f"unknown {unknown}"] if unknown else [])
        raise ConversionError(f"inputs: {'; '.join(parts)}: {want}")
    arrays = {}
    for name, (dtype, dims) in expected.items():
        x = np.asarray(feeds[name])
        if len(x.shape) != len(dims) or any(d is not None and d != s for d, s in zip(dims, x.shape)):
            hint = ""
            as_nhwc = [dims[p] for p in L.channels_last(len(dims))]
            if len(x.shape) == len(dims) >= 3 and all(d is None or d == s for d, s in zip(as_nhwc, x.shape)):
                hint = " (it looks channels-last: the inputs are given in ONNX layout, NCHW, even with " \
                       "--channels-last-io)"
            raise ConversionError(f"input '{name}' has shape {list(x.shape)}{hint}: {want}")
        if x.dtype != dtype:
            raise ConversionError(f"input '{name}' has dtype {x.dtype}, expected {dtype} "
                                  f"(convert it with .astype('{dtype}')): {want}")
        arrays[name] = x
    return arrays


def keras_model_arg(keras_model):
    """verify's `keras_model`: None, a Keras model (any callable), a .tflite path (kept as a path)
    or a .keras path (loaded); anything else refused naming what is accepted."""
    if keras_model is None or callable(keras_model):
        return keras_model
    if not isinstance(keras_model, (str, os.PathLike)):
        raise ConversionError(f"keras_model must be a Keras model, the path of a .keras or .tflite file, or None "
                              f"(convert now); got {type(keras_model).__name__} {str(keras_model)[:80]!r}")
    path = str(keras_model)
    if not os.path.isfile(path):
        raise ConversionError(f"keras_model: file not found: {path}")
    if path.endswith(".tflite"):
        return path
    if not path.endswith(".keras"):
        raise ConversionError(f"keras_model: {path} is neither a .keras nor a .tflite file")
    import zipfile

    import keras

    try:
        return keras.models.load_model(path, safe_mode=True)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as e:
        raise ConversionError(f"cannot load {path} as a Keras model: {str(e).strip()[:200]}") from e


def samples_arg(inputs) -> list:
    """verify's `inputs` as a list of dicts (one per sample), refused unless a dict of arrays or a
    non-empty list of them."""
    from collections.abc import Mapping

    if isinstance(inputs, Mapping):
        return [dict(inputs)]
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(s, Mapping) for s in inputs):
        return [dict(s) for s in inputs]
    got = "an empty list" if isinstance(inputs, (list, tuple)) and not inputs else type(inputs).__name__
    raise ConversionError(f"inputs: expected a dict mapping input names to arrays, or a non-empty list of such dicts "
                          f"(one per sample); got {got}")


def check_tolerances(rtol, atol) -> None:
    import math

    for name, v in (("rtol", rtol), ("atol", atol)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not math.isfinite(v) or v < 0:
            raise ConversionError(f"{name} must be a finite number >= 0, got {type(v).__name__} {v!r}")
