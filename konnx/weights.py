"""Keras variables created from their values (issue 17: conversion memory).

`layer.set_weights` after building a layer with zero initializers costs the zero-filled variable,
the value's tensor and a new variable buffer: measured on a 392 MB Dense kernel, +1213 MB at peak
and +821 MB kept after it (TensorFlow backend). Building the layer with initializers that return
the values themselves creates each variable once from its value: +805 MB at peak, +413 MB kept.
The layer's own (serializable) initializers are put back as soon as it is built, so its config and
saved files are unchanged."""
from __future__ import annotations

import contextlib
from typing import Optional

import numpy as np

from .errors import ConversionError
from .lazy_keras import keras


class _Value:
    """An initializer returning one given array, once (it drops the array then)."""

    def __init__(self, value: np.ndarray, what: str):
        self.value, self.what = value, what

    def __call__(self, shape, dtype=None):
        value, self.value = self.value, None
        if value is None:
            raise ConversionError(f"internal: the initial value of {self.what} was used twice")
        if tuple(value.shape) != tuple(shape):
            raise ConversionError(f"internal: {self.what} expects shape {tuple(shape)}, got {value.shape}")
        target = _np_dtype(keras.backend.standardize_dtype(dtype or "float32"))
        # the torch backend's tensors share a numpy array's memory: give it its own copy
        copy = keras.backend.backend() == "torch" or value.dtype != target
        return np.array(value, dtype=target, copy=True) if copy else value


def _np_dtype(name: str) -> np.dtype:
    """numpy's dtype for a Keras dtype name (bfloat16 comes from ml_dtypes, which Keras depends on)."""
    try:
        return np.dtype(name)
    except TypeError:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))


def initial_value(value, what: str):
    """An initializer for add_weight that creates the variable from `value` (one copy), once."""
    return _Value(np.asarray(value), what)


@contextlib.contextmanager
def initial_values(layer, **values: Optional[np.ndarray]):
    """Inside the block, building `layer` creates the variables of the given initializer attributes
    (e.g. kernel_initializer=w, bias_initializer=b; None entries are left alone) from those values."""
    saved = {}
    for attr, value in values.items():
        if value is None:
            continue
        if not hasattr(layer, attr):
            raise ConversionError(f"internal: {type(layer).__name__} has no {attr}")
        saved[attr] = getattr(layer, attr)
        setattr(layer, attr, _Value(np.asarray(value), f"{layer.name}.{attr}"))
    try:
        yield layer
    finally:
        for attr, init in saved.items():
            left = getattr(layer, attr).value is not None
            setattr(layer, attr, init)
            if left and layer.built:
                raise ConversionError(f"internal: {layer.name} was built without using its {attr} value")
