"""Register konnx's Keras layers as soon as Keras is importable, without importing Keras early.

`keras.models.load_model(path, safe_mode=True)` only finds the classes registered in the running
process (Keras never imports the module a saved config names), so konnx's layers must be
registered whenever konnx and keras are both imported, in either order, while `import konnx`
alone stays cheap (no Keras, no TensorFlow: the command line's help starts in well under a second).

- keras already imported: konnx.layers is imported now.
- otherwise: a finder on sys.meta_path wraps keras' loader once, and konnx.layers is imported
  right after the `keras` package finishes executing. The finder removes itself when it fires;
  the module keeps its own loader.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

# konnx's registered Keras classes: its layers and KonnxModel (the model class carrying the
# tensor map that `verify --bisect` reads)
_REGISTERING = ("konnx.layers", "konnx.tensor_map")


def _register() -> None:
    for name in _REGISTERING:
        importlib.import_module(name)


class _LoaderWrapper(importlib.abc.Loader):
    """Runs keras' own loader, then registers konnx's layers."""

    def __init__(self, loader, finder):
        self._loader = loader
        self._finder = finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        spec = module.__spec__
        spec.loader = self._loader
        module.__loader__ = self._loader
        try:
            self._loader.exec_module(module)
        except BaseException:
            self._finder.install()  # keras failed to import: try again on the next import
            raise
        _register()

    def __getattr__(self, name):  # get_resource_reader, is_package, get_filename, ...
        return getattr(self._loader, name)


class _KerasFinder(importlib.abc.MetaPathFinder):
    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        self.uninstall()
        spec = None
        for finder in list(sys.meta_path):  # the finders after this one, in their order
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _LoaderWrapper(spec.loader, self)
        return spec


_FINDER = _KerasFinder()


def register_layers_when_keras_loads() -> None:
    """Register konnx's layers now if keras is imported, else right after it is."""
    if "keras" in sys.modules:
        _register()
    else:
        _FINDER.install()
