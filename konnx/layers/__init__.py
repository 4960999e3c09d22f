"""konnx's own serializable Keras layers (registered under the package name "konnx")."""
from .op import KonnxOp
from .functions import FUNCTIONS, function
from . import fn_pool  # noqa: F401  (registers pooling functions)
from . import fn_tensor  # noqa: F401  (registers tensor/shape/resize functions)
from . import fn_math  # noqa: F401  (registers math functions)
from . import fn_attention  # noqa: F401  (registers attention functions)
from . import fn_detect, fn_index, fn_loss, fn_resize, fn_rnn, fn_sample, fn_spectral  # noqa: F401  (and the rest)

__all__ = ["KonnxOp", "FUNCTIONS", "function"]
