"""konnx's own serializable Keras layers (registered under the package name "konnx"): KonnxOp
and the whitelist of functions it may apply (docs/file-format.md). Importing this package
registers every function, whichever module holds it, and the named layers (konnx/layers/named.py):
one class per structural function Keras has no exact layer for."""
from .op import KonnxOp
from .format import FORMAT_VERSION, FileFormatError
from .functions import FUNCTIONS, function
from . import (  # noqa: F401  (each module registers its functions)
    fn_activation, fn_attention, fn_detect, fn_index, fn_loss, fn_math, fn_pool, fn_quant, fn_resize, fn_rnn,
    fn_sample, fn_spectral, fn_tensor, fn_text,
)
from .named import (  # after the fn_* modules: each class applies a registered function
    NAMED_LAYERS, PROMOTED, ConstantPad, DepthToSpace, DotProductAttention, DynamicReshape, Einsum,
    ExactAveragePooling, Expand, ExpandDims, FullReshape, FullTranspose, FunctionLayer, Gather, LpPooling,
    MatMul, ModePad, PaddedMaxPooling, Recurrent, ResizeAxis, Slice, SoftmaxNaNRows, SpaceToDepth, Split,
    Squeeze, Tile,
)

__all__ = [
    "KonnxOp", "FUNCTIONS", "function", "FORMAT_VERSION", "FileFormatError", "FunctionLayer", "NAMED_LAYERS",
    "PROMOTED", "ConstantPad", "DepthToSpace", "DotProductAttention", "DynamicReshape", "Einsum",
    "ExactAveragePooling", "Expand", "ExpandDims", "FullReshape", "FullTranspose", "Gather", "LpPooling", "MatMul",
    "ModePad", "PaddedMaxPooling", "Recurrent", "ResizeAxis", "Slice", "SoftmaxNaNRows", "SpaceToDepth", "Split",
    "Squeeze", "Tile",
]
