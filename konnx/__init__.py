"""konnx: ONNX -> Keras 3 conversion that gets padding right, and proves it."""
from __future__ import annotations

from .errors import ConversionError, InvalidModelError, NodeConversionError, UnsupportedOpError, VerificationError
from . import layers as _layers  # registers konnx's Keras layers for loading .keras files
from .api import convert, convert_detailed
from .verify import verify

__version__ = "0.1.0"

__all__ = ["convert", "convert_detailed", "verify", "ConversionError", "InvalidModelError",
           "NodeConversionError", "UnsupportedOpError", "VerificationError", "__version__"]
