"""konnx's named layers: the structural functions Keras has no exact layer for (slicing and
reshaping over every axis, einsum, gather, padded pooling with exact divisors, resize, pad,
attention, recurrent sequences), each as a registered layer class of its own with validated
arguments, where a KonnxOp would only name the function in its config.

A named layer is a KonnxOp whose function is fixed by its class: `Slice(slices=...)` computes
what `KonnxOp("slice", params={"slices": ...})` computes, with the same function
(konnx/layers/functions.py and the fn_*.py modules) and the same constant operands (stored as
its weights). Its config holds the function's parameters as keyword arguments, and `slots` /
`weight_specs` only where the operands are not simply its tensor inputs in order.
KonnxOp and every function stay registered: files written before these classes existed (a
KonnxOp naming the function) keep loading (tests/test_layer_format.py loads one).
"""
from __future__ import annotations

import inspect

import keras

from . import format as fmt
from .format import FileFormatError
from .functions import FUNCTIONS, OUTPUT_SPECS
from .op import KonnxOp

# function name -> the named layer class that applies it (emit.Context.op builds from it)
PROMOTED: dict[str, type] = {}
_JSON = (int, float, str, bool, list, dict, type(None))


def _params_of(fn_name: str) -> dict:
    """The function's keyword-only parameters: name -> default (inspect.Parameter.empty if required)."""
    sig = inspect.signature(FUNCTIONS[fn_name])
    return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}


class FunctionLayer(KonnxOp):
    """Base of the named layers: a KonnxOp applying the class's function `FN`."""

    FN = ""

    def __init__(self, slots=None, weight_specs=None, consts=None, format_version=None, **kwargs):
        declared = _params_of(self.FN)
        params = {k: kwargs.pop(k) for k in list(kwargs) if k in declared}
        name = kwargs.get("name")
        missing = [k for k, d in declared.items() if d is inspect.Parameter.empty and k not in params]
        if missing:
            raise FileFormatError(f"{type(self).__name__} {name!r}: missing argument(s) {missing}; "
                                  f"expected {sorted(declared)}")
        for key, value in params.items():
            if not isinstance(value, _JSON):
                raise FileFormatError(f"{type(self).__name__} {name!r}: argument {key}={value!r} is a "
                                      f"{type(value).__name__}, expected a JSON value (number, string, list, ...)")
        self._default_slots = slots is None
        super().__init__(self.FN, params=params, slots=slots, weight_specs=weight_specs, consts=consts,
                         format_version=format_version, **kwargs)

    def _fill_slots(self, inputs):
        if self._default_slots and not self.slots:
            tensors = inputs if isinstance(inputs, (list, tuple)) else [inputs]
            self.slots = [{"t": i} for i in range(len(tensors))]

    def call(self, inputs):
        self._fill_slots(inputs)
        return super().call(inputs)

    def compute_output_spec(self, inputs):
        self._fill_slots(inputs)
        if self.FN in OUTPUT_SPECS:
            return super().compute_output_spec(inputs)
        # trace call() symbolically (Layer.compute_output_spec would ask compute_output_shape,
        # which asks this method)
        return keras.Operation.compute_output_spec(self, inputs)

    def compute_output_shape(self, input_shape):
        many = isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple))
        shapes = list(input_shape) if many else [input_shape]
        kts = [keras.KerasTensor(tuple(s)) for s in shapes]
        out = self.compute_output_spec(kts if many else kts[0])
        return keras.tree.map_structure(lambda t: tuple(t.shape), out)

    def get_config(self):
        config = super().get_config()
        config.pop("fn")
        params = config.pop("params")
        if self._default_slots:
            config.pop("slots")
        if not config["weight_specs"]:
            config.pop("weight_specs")
        config.update(params)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        version = fmt.config_version(config)  # newer versions refused with both versions named
        config[fmt.VERSION_KEY] = max(version, fmt.FORMAT_VERSION)
        return cls(**config)

    @classmethod
    def argument_defaults(cls) -> dict:
        """The function parameters' defaults (konnx.codegen leaves arguments at them out)."""
        return {k: v for k, v in _params_of(cls.FN).items() if v is not inspect.Parameter.empty}


def _named(class_name: str, fn: str, doc: str) -> type:
    cls = type(class_name, (FunctionLayer,), {"FN": fn, "__doc__": doc, "__module__": __name__})
    cls = keras.saving.register_keras_serializable(package="konnx")(cls)
    if fn in PROMOTED:
        raise ValueError(f"function {fn!r} already has the named layer {PROMOTED[fn].__name__}")
    PROMOTED[fn] = cls
    return cls


# structural ops on every axis (the Keras batch axis included, which keras.layers.Reshape /
# Permute / Cropping leave alone)
Slice = _named("Slice", "slice", "x[start:stop:step] on each axis: `slices` holds one [start, stop, step] per axis.")
Squeeze = _named("Squeeze", "squeeze", "Drops the size-1 `axes`.")
ExpandDims = _named("ExpandDims", "expand_dims", "Inserts size-1 axes at the output positions `axes`.")
FullReshape = _named("FullReshape", "reshape", "Reshape of every axis (batch included): `shape` holds ints "
                     "(one may be -1) and {'axis': k} for a size copied from the input.")
DynamicReshape = _named("DynamicReshape", "reshape_spec", "Reshape to a shape computed at run time from the "
                        "sizes of the reference inputs (`spec`).")
FullTranspose = _named("FullTranspose", "transpose", "Transpose of every axis (batch included) by `axes`.")
Expand = _named("Expand", "broadcast_spec", "Broadcast to a shape computed from the reference inputs (`spec`).")
Tile = _named("Tile", "tile", "Repeats the input `repeats[i]` times along axis i.")
Split = _named("Split", "split", "Splits along `axis` into pieces of `sizes`.")
Gather = _named("Gather", "gather", "Takes the entries at `indices` along `axis` (ONNX Gather).")
Einsum = _named("Einsum", "math.einsum", "keras.ops.einsum(`equation`, *inputs).")
MatMul = _named("MatMul", "math.matmul", "Batched matrix product with ONNX (numpy) broadcasting.")
DepthToSpace = _named("DepthToSpace", "depth_to_space", "ONNX DepthToSpace on channels-last input (`block`, `mode`).")
SpaceToDepth = _named("SpaceToDepth", "space_to_depth", "ONNX SpaceToDepth on channels-last input (`block`, `mode`).")
# windows, resampling and padding Keras cannot express exactly
ExactAveragePooling = _named("ExactAveragePooling", "avg_pool", "Average pooling divided by the count of "
                             "`counted` window cells (padding included or not, ceil_mode's extension never), as ONNX.")
PaddedMaxPooling = _named("PaddedMaxPooling", "max_pool", "Max pooling with explicit -inf padding and "
                          "ceil_mode's extension, as ONNX.")
LpPooling = _named("LpPooling", "lp_pool", "ONNX LpPool: the p-norm of each window.")
ResizeAxis = _named("ResizeAxis", "resize_axis", "Resampling along one `axis` by gathered `indices` and "
                    "interpolation `weights` (ONNX Resize, one axis at a time).")
ConstantPad = _named("ConstantPad", "pad_constant", "Pads with `constant` (or a run-time value), negative pads crop.")
ModePad = _named("ModePad", "pad_mode", "Pads in `mode` reflect, edge or wrap.")
# the spec's float semantics beside a Keras layer
SoftmaxNaNRows = _named("SoftmaxNaNRows", "math.softmax_nan_rows", "After keras.layers.Softmax(x): NaN on every "
                        "row along `axis` whose max(x) is not finite (a NaN, +inf or only -inf), as ONNX Softmax.")
# sequence blocks
DotProductAttention = _named("DotProductAttention", "attention", "ONNX Attention: scaled dot-product attention "
                             "with optional mask, causal/windowed masking, grouped heads and past keys/values.")
Recurrent = _named("Recurrent", "rnn", "An ONNX RNN/GRU/LSTM over the whole sequence (`cell`, `direction`, `hidden`).")

NAMED_LAYERS = sorted(PROMOTED.values(), key=lambda c: c.__name__)
