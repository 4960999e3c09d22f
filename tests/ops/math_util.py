"""Helpers for the element-wise / activation / norm / reduce / matmul op tests."""
from __future__ import annotations

import numpy as np
import keras

import konnx
from tests.util import assert_matches_ort


def _to_cl(a):
    a = np.asarray(a)
    if a.ndim < 3:
        return a
    return np.transpose(a, (0,) + tuple(range(2, a.ndim)) + (1,))


def _from_cl(a):
    a = np.asarray(a)
    if a.ndim < 3:
        return a
    return np.transpose(a, (0, a.ndim - 1) + tuple(range(1, a.ndim - 1)))


def check(model, feeds, channels_last=False):
    """Compare konnx with onnxruntime; channels_last=True converts with channels_last_io so
    every rank>=3 input is stored channels-last inside (and transposes at the test's edge)."""
    if not channels_last:
        return assert_matches_ort(model, feeds)
    km = konnx.convert(model, channels_last_io=True)

    def run(x):
        xs = [_to_cl(a) for a in x] if isinstance(x, list) else _to_cl(x)
        out = km(xs)
        if isinstance(out, (list, tuple)):
            return [_from_cl(o) for o in out]
        return _from_cl(out)

    assert_matches_ort(model, feeds, keras_model=run)
    return km


def check_roundtrip(model, feeds, tmp_path):
    """Convert, save as .keras, reload in safe mode, compare the reloaded model with ORT."""
    km = assert_matches_ort(model, feeds)
    path = tmp_path / "m.keras"
    km.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert_matches_ort(model, feeds, keras_model=loaded)
    return loaded
