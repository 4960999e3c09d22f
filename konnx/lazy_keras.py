"""`keras`, imported on first use: converter modules refer to ``keras.layers.Conv2D`` at module
level, yet `konnx check` and `konnx ops` import them (for the registry and the contracts)
without ever loading Keras or TensorFlow.

Once Keras is loaded, attribute access returns the real objects (so ``isinstance(x,
keras.KerasTensor)`` works); before that it returns a placeholder that imports Keras when it
is called or looked into.
"""
from __future__ import annotations

import importlib
import sys


class LazyKeras:
    __slots__ = ("_path",)

    def __init__(self, path: tuple = ()):
        self._path = path

    def _resolve(self):
        obj = importlib.import_module("keras")
        for name in self._path:
            obj = getattr(obj, name)
        return obj

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if "keras" in sys.modules:
            return getattr(self._resolve(), name)
        return LazyKeras(self._path + (name,))

    def __call__(self, *args, **kwargs):
        return self._resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<lazy keras.{'.'.join(self._path)}>"


keras = LazyKeras()
