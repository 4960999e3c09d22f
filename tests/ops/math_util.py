"""Helpers for the element-wise / activation / norm / reduce / matmul op tests."""
from __future__ import annotations

import keras

import konnx
from tests.util import assert_matches_ort


def check(model, feeds, channels_last=False):
    """Compare konnx with onnxruntime; channels_last=True converts with channels_last_io so
    every rank>=3 input is stored channels-last inside (and transposes at the test's edge)."""
    if not channels_last:
        return assert_matches_ort(model, feeds)
    from .cl_helpers import ChannelsLastIO

    km = konnx.convert(model, channels_last_io=True)
    assert_matches_ort(model, feeds, keras_model=ChannelsLastIO(km))
    return km


def check_roundtrip(model, feeds, tmp_path):
    """Convert, save as .keras, reload in safe mode, compare the reloaded model with ORT."""
    km = assert_matches_ort(model, feeds)
    path = tmp_path / "m.keras"
    km.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert_matches_ort(model, feeds, keras_model=loaded)
    return loaded
