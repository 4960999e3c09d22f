"""Deployment: .keras files, TensorFlow SavedModel, TFLite (and a check of the .tflite in the LiteRT
interpreter against onnxruntime).

This is the only konnx module that uses TensorFlow, and only inside the functions that need it
(SavedModel and TFLite export, the tf.lite.Interpreter fallback): building and running a converted
model under the JAX or PyTorch Keras backend never imports it.

Every writer is atomic: the artifact is written next to its destination under a temporary name and
renamed into place, so a destination never holds a half-written file or folder.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from . import layout as L
from .errors import ConversionError

# Bound of the fp16-weight TFLite model's error against onnxruntime, as a share of
# max(1, max|reference|). Measured (LiteRT 2.3, x86 CPU, seeded N(0, 1) inputs): 3e-5 (ResNet-50,
# 224x224) to 1.5e-3 (MobileNetV2-style) on classifiers, 2e-3 on an FCN and 6e-3 on a U-Net whose
# output is a dense map; tests/test_export.py::test_tflite_fp16_within_bound checks it. fp32: < 6e-6.
FP16_RTOL = 1e-2


class ExportError(ConversionError):
    """An export (SavedModel, TFLite) could not be produced."""


PathLike = Union[str, os.PathLike]


# ----------------------------------------------------------------------------- atomic writes
def _temp_sibling(path: Path, directory: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


class Staged:
    """An artifact written under a temporary name next to `path`; `commit()` renames it into place,
    `discard()` removes it. Staging every output first lets a caller write all or none of them."""

    def __init__(self, path: PathLike, write: Callable[[Path], None], directory: bool = False):
        self.path = Path(path)
        self.directory = directory
        if directory and self.path.exists() and not self.path.is_dir():
            raise ExportError(f"{self.path} exists and is not a folder")
        if not directory and self.path.is_dir():
            raise ExportError(f"{self.path} is a folder")
        self._tmp: Optional[Path] = _temp_sibling(self.path, directory)
        try:
            if directory:
                # the writer creates the folder itself; stage it inside the temporary folder
                write(self._tmp / "artifact")
            else:
                write(self._tmp)
        except BaseException:
            self.discard()
            raise

    def _staged(self) -> Path:
        return self._tmp / "artifact" if self.directory else self._tmp

    def commit(self) -> Path:
        if self._tmp is None:
            raise ExportError(f"{self.path}: already committed or discarded")
        staged = self._staged()
        if not self.directory:
            os.chmod(staged, 0o666 & ~_umask())  # mkstemp's 0600 is for the temporary name only
            os.replace(staged, self.path)
        else:
            # a folder cannot replace a non-empty folder in one rename: move the old one aside first
            old = None
            if self.path.exists():
                old = self._tmp / "previous"
                os.replace(self.path, old)
            try:
                os.replace(staged, self.path)
            except OSError:
                if old is not None:
                    os.replace(old, self.path)
                raise
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None
        return self.path

    def discard(self) -> None:
        if self._tmp is not None:
            _remove(self._tmp)
            self._tmp = None


def require_tensorflow_backend(what: str):
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(f"{what} export needs the TensorFlow Keras backend (KERAS_BACKEND=tensorflow); "
                          f"the active backend is {keras.backend.backend()!r}. Save a .keras file and export "
                          "it from a TensorFlow-backend process.")


# ----------------------------------------------------------------------------- .keras
def _write_keras(model, tmp: Path) -> None:
    model.save(str(tmp))


def stage_keras(model, path: PathLike) -> Staged:
    path = Path(path)
    if path.suffix != ".keras":
        raise ExportError(f"a Keras model file must end in .keras, got {path}")
    return Staged(path, lambda tmp: _write_keras(model, tmp))


def save_keras(model, path: PathLike) -> Path:
    """Save `model` as a .keras file (loads with keras.models.load_model(path, safe_mode=True)
    in any process that imported konnx), atomically."""
    return stage_keras(model, path).commit()


# ----------------------------------------------------------------------------- SavedModel
def _write_saved_model(model, tmp: Path) -> None:
    require_tensorflow_backend("SavedModel")
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(tmp), format="tf_saved_model", verbose=False)


def stage_saved_model(model, path: PathLike) -> Staged:
    require_tensorflow_backend("SavedModel")
    return Staged(path, lambda tmp: _write_saved_model(model, tmp), directory=True)


def export_saved_model(model, path: PathLike) -> Path:
    """Export a TensorFlow SavedModel folder with the `serve` endpoint and the `serving_default`
    signature (inputs named like the Keras model's inputs, outputs `output_0`, ...)."""
    return stage_saved_model(model, path).commit()


# ----------------------------------------------------------------------------- TFLite
def tflite_signature(model, batch_size: Optional[int] = 1) -> list:
    """One tf.TensorSpec per Keras input, named like the input. A dynamic batch dim (axis 0) becomes
    `batch_size` (None keeps it dynamic); other dims stay as the model has them. A static signature
    matters for speed: with a dynamic batch TensorFlow's converter keeps shape arithmetic (Shape,
    StridedSlice, Pack before a Reshape) that XNNPACK does not take, and the interpreter resizes."""
    import tensorflow as tf

    specs = []
    for t in model.inputs:
        shape = list(t.shape)
        if batch_size is not None and shape and shape[0] is None:
            shape[0] = int(batch_size)
        specs.append(tf.TensorSpec(shape, t.dtype, name=t.name))
    return specs


def _serving_module(model, specs):
    """A tf.Module holding the model's variables and one tf.function with the static signature
    `specs`, returning {'output_0': ..., ...} in the Keras model's output order."""
    import tensorflow as tf

    module = tf.Module()
    module.weights = [v.value for v in model.variables]  # tracked: saved as variables, frozen by the converter

    @tf.function(input_signature=specs, autograph=False)
    def serve(*args):
        out = model(args[0] if len(args) == 1 else list(args), training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return {f"output_{i}": o for i, o in enumerate(outs)}

    # `serve` is not attached to the module: TensorFlow's converter saves the module with the
    # concrete function as its signature, and an attached tf.function would be traced again in the
    # save (ResNet-50: a second trace of every layer, about 1 s)
    return module, serve.get_concrete_function()


@contextlib.contextmanager
def tflite_converter(model, *, batch_size: Optional[int] = 1):
    """TensorFlow's TFLiteConverter for `model` (TensorFlow backend), builtin ops only, with the
    static signature of tflite_signature: from one traced serving function and a tf.Module that
    tracks the variables (the converter freezes them into constants). Keras' ExportArchive, the
    path of TensorFlow's from_keras_model, traced the model several times and reloaded the
    SavedModel in Python: ResNet-50 took 11.5 s that way, 7 s this way (under load, same file)."""
    require_tensorflow_backend("TFLite")
    import tensorflow as tf

    module, fn = _serving_module(model, tflite_signature(model, batch_size))
    with contextlib.redirect_stdout(io.StringIO()):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    # TensorFlow's "conversion metadata" entry costs an unpack and repack of the whole flatbuffer in
    # Python (0.5-1 s on ResNet-50's 100 MB); konnx writes its own metadata (tflite_map)
    converter.exclude_conversion_metadata = True
    yield converter


def converter_error() -> type:
    """The exception class TensorFlow's TFLite converter raises."""
    try:
        from tensorflow.lite.python.convert_phase import ConverterError
    except ImportError:  # a TensorFlow without that module: its converter raises plain errors
        return RuntimeError
    return ConverterError


def run_converter(converter) -> bytes:
    """converter.convert(), its errors as ExportError."""
    ConverterError = converter_error()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            data = converter.convert()
    except (ConverterError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()
        raise ExportError("TensorFlow's TFLite converter refused the model"
                          f"{': ' + first[0] if first else ''}") from e
    return data


def tflite_model(model, *, fp16: bool = False, batch_size: Optional[int] = 1) -> bytes:
    """Convert a Keras model (TensorFlow backend) with TensorFlow's own TFLiteConverter, TFLite
    builtin ops only. fp16=True stores the weights in float16 (half the size; the CPU kernels still
    compute in float32 after dequantizing them). A dynamic batch dim is fixed to `batch_size`
    (default 1; None keeps it dynamic, which costs speed in LiteRT: see tflite_signature)."""
    require_tensorflow_backend("TFLite")  # before importing TensorFlow
    import tensorflow as tf

    from .tflite_map import embed

    with tflite_converter(model, batch_size=batch_size) as converter:
        if fp16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        data = run_converter(converter)
    return embed(data, model)  # the tensor map in the file's metadata: verify model.onnx model.tflite --bisect


def stage_tflite(model, path: PathLike, *, fp16: bool = False, content: Optional[bytes] = None,
                 batch_size: Optional[int] = 1) -> Staged:
    path = Path(path)
    if path.suffix != ".tflite":
        raise ExportError(f"a TFLite file must end in .tflite, got {path}")
    data = content if content is not None else tflite_model(model, fp16=fp16, batch_size=batch_size)
    return Staged(path, lambda tmp: tmp.write_bytes(data))


def export_tflite(model, path: PathLike, *, fp16: bool = False, batch_size: Optional[int] = 1) -> Path:
    """Write a .tflite file for `model` (see tflite_model), atomically."""
    return stage_tflite(model, path, fp16=fp16, batch_size=batch_size).commit()


def tflite_interpreter(model: Union[PathLike, bytes]):
    """A LiteRT interpreter (package ai-edge-litert), or tf.lite.Interpreter when it is missing."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    if isinstance(model, (bytes, bytearray)):
        return Interpreter(model_content=bytes(model))
    return Interpreter(model_path=str(model))


def _output_index(name: str, default: int) -> int:
    head, _, tail = name.rpartition("_")
    return int(tail) if head == "output" and tail.isdigit() else default


def tflite_runner(model: Union[PathLike, bytes]) -> Callable[[dict], list]:
    """A function running a .tflite model (path or bytes) through its serving signature, one
    interpreter for every call: inputs keyed by the signature's input names (the Keras model's),
    outputs in the Keras model's output order (`output_0`, `output_1`, ...)."""
    interp = tflite_interpreter(model)
    signatures = interp.get_signature_list()
    if not signatures:
        raise ExportError("the .tflite model has no signature; export it with konnx.export.export_tflite")
    key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
    expected = list(signatures[key]["inputs"])
    runner = interp.get_signature_runner(key)

    def run(inputs) -> list:
        if not isinstance(inputs, dict):
            if len(expected) != 1:
                raise ExportError(f"the .tflite model has inputs {expected}: pass a dict keyed by these names")
            inputs = {expected[0]: inputs}
        if sorted(inputs) != sorted(expected):
            raise ExportError(f"the .tflite model's inputs are {expected}, got {sorted(inputs)}")
        out = runner(**{k: np.ascontiguousarray(v) for k, v in inputs.items()})
        names = sorted(out, key=lambda n: (_output_index(n, len(out)), n))
        return [np.asarray(out[n]) for n in names]

    return run


def run_tflite(model: Union[PathLike, bytes], inputs) -> list[np.ndarray]:
    """Run a .tflite model (path or bytes) through its serving signature.

    `inputs` maps the signature's input names (the Keras model's input names) to arrays; a model
    with one input also takes the array itself. Dynamic dims are resized to the arrays' shapes.
    Returns the outputs in the Keras model's output order (`output_0`, `output_1`, ...)."""
    return tflite_runner(model)(inputs)


def tflite_input_shapes(tflite: Union[PathLike, bytes]) -> dict:
    """The serving signature's inputs: name -> shape, None where the dim is dynamic."""
    interp = tflite_interpreter(tflite)
    signatures = interp.get_signature_list()
    if not signatures:
        raise ExportError("the .tflite model has no signature; export it with konnx.export.export_tflite")
    key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
    details = interp.get_signature_runner(key).get_input_details()
    return {name: tuple(int(d) if d >= 0 else None for d in det["shape_signature"]) for name, det in details.items()}


def _fit_static_shapes(tflite, proto, names, input_shapes, channels_last_io) -> dict:
    """input_shapes (ONNX layout) completed with the .tflite file's static dims, so that the
    check's inputs fit a file whose batch was fixed at export; a requested dim that contradicts a
    static one is an error."""
    static = tflite_input_shapes(tflite)
    init = {i.name for i in proto.graph.initializer}
    onnx_inputs = [vi.name for vi in proto.graph.input if vi.name not in init]
    shapes = dict(input_shapes or {})
    for onnx_name, name in zip(onnx_inputs, names):
        dims = static.get(name)
        if dims is None:
            continue
        if channels_last_io and len(dims) >= 3:
            dims = tuple(dims[i] for i in L.inverse(L.channels_last(len(dims))))
        asked = shapes.get(onnx_name) or (None,) * len(dims)
        merged = []
        for axis, (a, d) in enumerate(zip(asked, dims)):
            if a is not None and d is not None and a != d:
                raise ExportError(f"input '{onnx_name}' axis {axis}: the .tflite file is fixed to {d}, "
                                  f"asked to check with {a}")
            merged.append(a if a is not None else d)
        shapes[onnx_name] = tuple(merged)
    return shapes


def check_tflite(tflite: Union[PathLike, bytes], onnx_model, keras_model, *, inputs: Optional[dict] = None,
                 input_shapes: Optional[dict] = None, channels_last_io: bool = False, rtol: float = 1e-4,
                 atol: float = 0.0, seed: int = 0, input_names: Optional[list] = None,
                 oracle_path: Optional[PathLike] = None):
    """Run the .tflite model in the LiteRT interpreter and onnxruntime on the same inputs (as
    `konnx verify` does) and compare every output. Returns a konnx.verify.VerifyResult.
    `keras_model` only names the file's signature inputs (in the ONNX inputs' order); a file
    written without a Keras model (konnx.tflite_direct) passes keras_model=None and `input_names`.
    `oracle_path`: the ONNX file onnxruntime reads itself (a large model is then not serialized
    again in this process), when `onnx_model` is a ModelProto read from it."""
    from . import loader
    from .oracle import VerifyResult, compare, make_inputs, run_onnxruntime

    proto = loader.load(onnx_model)
    names = list(input_names) if input_names is not None else [t.name for t in keras_model.inputs]
    if inputs is None:
        input_shapes = _fit_static_shapes(tflite, proto, names, input_shapes, channels_last_io)
    feeds = dict(inputs) if inputs is not None else make_inputs(proto, input_shapes, seed)
    init = {i.name for i in proto.graph.initializer}
    args = []
    for vi in proto.graph.input:
        if vi.name in init:
            continue
        x = np.asarray(feeds[vi.name])
        if channels_last_io and x.ndim >= 3:
            x = np.transpose(x, L.channels_last(x.ndim))
        args.append(x)
    got = run_tflite(tflite, dict(zip(names, args)))
    if len(got) != len(proto.graph.output):
        raise ExportError(f"the .tflite model has {len(got)} outputs, the ONNX model {len(proto.graph.output)}")
    ref = run_onnxruntime(oracle_path if oracle_path is not None else proto, feeds)
    outs = []
    for o, g in zip(proto.graph.output, got):
        if channels_last_io and g.ndim >= 3:
            g = np.transpose(g, L.inverse(L.channels_last(g.ndim)))
        outs.append(compare(o.name, ref[o.name], g, rtol, atol))
    return VerifyResult(all(o.ok for o in outs), outs, input_shapes={k: list(v.shape) for k, v in feeds.items()})
