"""konnx: ONNX -> Keras 3 conversion that gets padding right, and proves it.

Importing konnx is cheap: Keras (and TensorFlow behind it) loads only when a conversion, a
verification or konnx's layers need it. konnx's Keras layers are registered for
`keras.models.load_model(path, safe_mode=True)` as soon as both konnx and keras are imported,
in either order: Keras does not import the modules a saved config names, so konnx registers its
layers right after `keras` finishes importing (a post-import hook, see `_keras_hook`).
"""
from __future__ import annotations

import sys
import types

from ._keras_hook import register_layers_when_keras_loads
from .errors import ConversionError, InvalidModelError, NodeConversionError, UnsupportedOpError, VerificationError

from ._version import __version__

__all__ = ["convert", "convert_detailed", "verify", "from_torch", "onnx_to_keras", "weight_names", "ConversionError",
           "InvalidModelError", "NodeConversionError", "UnsupportedOpError", "VerificationError",
           "__version__"]

_LAZY = {"convert": "api", "convert_detailed": "api", "verify": "verify", "from_torch": "torch_export",
         "onnx_to_keras": "compat", "weight_names": "naming"}


def __getattr__(name: str):
    """convert, convert_detailed, verify, from_torch and onnx_to_keras import their modules (and Keras, or
    torch) on first use; so does a submodule named as an attribute (`konnx.api`, `konnx.export`, ...)."""
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """`konnx.verify` is the function: importing the submodule konnx.verify (which Python binds
    as an attribute of the package) must not shadow it."""

    def __setattr__(self, name, value):
        if name in _LAZY and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
register_layers_when_keras_loads()
