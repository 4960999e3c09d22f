"""Op converters, one module per op family. Importing a module registers its converters."""
from __future__ import annotations

import importlib

_MODULES = ["conv", "pool", "norm", "elementwise", "cast", "activation", "tensor", "axes", "tensor_index", "tensor_pad", "shape", "reduce",
            "resize", "matmul", "attention", "quant", "loss", "select", "scatter", "text", "rnn", "sample", "control", "spectral", "detect",
            "contrib"]
_loaded = False


def load_all() -> None:
    global _loaded
    if _loaded:
        return
    for m in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{m}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{m}":
                raise
    _loaded = True
