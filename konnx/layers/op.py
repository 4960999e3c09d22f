"""KonnxOp: one registered Keras layer that applies a named, whitelisted keras.ops function.

Unlike a Lambda layer it holds no Python code: the config names a function from
`konnx.layers.functions.FUNCTIONS` and its JSON parameters, so it loads in safe mode and runs
on every Keras backend. Constant operands are stored as non-trainable weights (large ones)
or inline in the config (small ones).
"""
from __future__ import annotations

import numpy as np
import keras
from keras import ops

from . import format as fmt
from .format import VERSION_KEY, FileFormatError
from .functions import CHOICES, FUNCTIONS, OUTPUT_SPECS
from ..weights import initial_value

INLINE_MAX = 64  # constants up to this many elements are stored inline in the config


def _inline(a: np.ndarray):
    return {"value": a.tolist(), "dtype": str(a.dtype), "shape": list(a.shape)}


@keras.saving.register_keras_serializable(package="konnx")
class KonnxOp(keras.layers.Layer):
    """Applies ``FUNCTIONS[fn](*args, **params)``.

    `slots` describes the positional arguments in order: ``{"t": i}`` is the i-th tensor
    input, ``{"w": j}`` the j-th stored constant, ``{"c": {...}}`` an inline constant and
    ``{"none": True}`` a missing optional operand.

    The config records the layer format version (konnx/layers/format.py); `from_config` upgrades
    older configs and refuses newer ones."""

    def __init__(self, fn: str, params=None, slots=None, weight_specs=None, consts=None,
                 format_version=None, **kwargs):
        kwargs.setdefault("autocast", False)
        if format_version is not None and format_version != fmt.FORMAT_VERSION:
            # from_config upgrades older configs; a direct call with one must not guess
            fmt.config_version({VERSION_KEY: format_version, "name": kwargs.get("name")})  # newer: refused
            raise FileFormatError(f"KonnxOp {kwargs.get('name')!r}: a format version {format_version} "
                                  f"config must be upgraded by KonnxOp.from_config (this konnx writes "
                                  f"version {fmt.FORMAT_VERSION})")
        super().__init__(**kwargs)
        if fn not in FUNCTIONS:
            raise FileFormatError(
                f"KonnxOp {self.name!r}: unknown function {fn!r}: this konnx (format version "
                f"{fmt.FORMAT_VERSION}) registers {len(FUNCTIONS)} functions and not this one; the file "
                "may come from a newer konnx")
        self.fn = fn
        self.params = dict(params or {})
        for param, allowed in CHOICES.get(fn, {}).items():
            if param in self.params and self.params[param] not in allowed:
                raise FileFormatError(f"KonnxOp {self.name!r}: {fn} {param}={self.params[param]!r} is not "
                                      f"one of {allowed} (format version {fmt.FORMAT_VERSION})")
        self.slots = list(slots or [])
        self.weight_specs = list(weight_specs or [])
        self._pending = consts
        self._consts = []

    def build(self, input_shape=None):
        self._consts = []
        for j, spec in enumerate(self.weight_specs):
            dtype = spec["dtype"]
            store = "uint8" if dtype == "bool" else dtype
            # a conversion creates the variable from the constant (konnx.weights: no zero-filled
            # variable assigned over); a loaded file's weights are read into zeros
            init = "zeros" if self._pending is None else initial_value(self._pending[j], f"{self.name}.const{j}")
            w = self.add_weight(name=f"const{j}", shape=tuple(spec["shape"]), dtype=store, initializer=init,
                                trainable=False)
            self._consts.append(w)
        self._pending = None
        self.built = True

    def _arg(self, slot, tensors):
        if "t" in slot:
            return tensors[slot["t"]]
        if "w" in slot:
            spec = self.weight_specs[slot["w"]]
            v = self._consts[slot["w"]]
            v = ops.convert_to_tensor(v)
            if spec["dtype"] == "bool":
                v = ops.cast(v, "bool")
            return v
        if "c" in slot:
            c = slot["c"]
            return ops.convert_to_tensor(np.asarray(c["value"], dtype=c["dtype"]).reshape(c["shape"]))
        return None

    def call(self, inputs):
        tensors = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        args = [self._arg(s, tensors) for s in self.slots]
        return FUNCTIONS[self.fn](*args, **self.params)

    def compute_output_spec(self, inputs):
        spec_fn = OUTPUT_SPECS.get(self.fn)
        if spec_fn is None:
            return super().compute_output_spec(inputs)
        tensors = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        args = []
        for s in self.slots:
            if "t" in s:
                args.append(tensors[s["t"]])
            elif "w" in s:
                args.append(keras.KerasTensor(tuple(self.weight_specs[s["w"]]["shape"]),
                                              dtype=self.weight_specs[s["w"]]["dtype"]))
            elif "c" in s:
                args.append(keras.KerasTensor(tuple(s["c"]["shape"]), dtype=s["c"]["dtype"]))
            else:
                args.append(None)
        shape, dtype = spec_fn(*args, **self.params)
        return keras.KerasTensor(shape, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        config.update(fn=self.fn, params=self.params, slots=self.slots, weight_specs=self.weight_specs)
        config[VERSION_KEY] = fmt.FORMAT_VERSION
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**fmt.upgrade_config(config))


def make_slots(args):
    """Split converter arguments into (tensor inputs, slots, weight specs, const arrays)."""
    tensors, slots, specs, consts = [], [], [], []
    for a in args:
        if a is None:
            slots.append({"none": True})
        elif isinstance(a, np.ndarray):
            if a.size <= INLINE_MAX:
                slots.append({"c": _inline(a)})
            else:
                slots.append({"w": len(specs)})
                specs.append({"shape": list(a.shape), "dtype": str(a.dtype)})
                consts.append(a)
        else:
            slots.append({"t": len(tensors)})
            tensors.append(a)
    return tensors, slots, specs, consts
