"""konnx's own serializable Keras layers (registered under the package name "konnx")."""
from .op import KonnxOp
from .functions import FUNCTIONS, function

__all__ = ["KonnxOp", "FUNCTIONS", "function"]
