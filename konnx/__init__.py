"""konnx: ONNX -> Keras 3 conversion that gets padding right, and proves it."""
from __future__ import annotations

from .errors import ConversionError, InvalidModelError, NodeConversionError, UnsupportedOpError
from . import layers as _layers  # registers konnx's Keras layers for loading .keras files
from . import tensor_map as _tensor_map  # registers KonnxModel (the model class carrying the tensor map)
from .api import convert, convert_detailed
from .verify import verify

__version__ = "0.1.0"

__all__ = ["convert", "convert_detailed", "verify", "ConversionError", "InvalidModelError",
           "NodeConversionError", "UnsupportedOpError", "__version__"]
