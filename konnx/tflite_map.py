"""The tensor map inside a .tflite file, so `verify model.onnx model.tflite --bisect` can compare
the interpreter's own intermediate tensors with onnxruntime's.

At export, each recorded Keras tensor is matched to the TFLite tensor computing it by value: the
Keras model and the LiteRT interpreter (experimental_preserve_all_tensors) run on the same seeded
input and the TFLite tensor of the same shape holding the same values is taken (names only break
ties: TFLite fuses ops and renames scopes, so a name alone does not say which layer a tensor is).
Tensors fused away (a Conv's output inside Conv+Relu) are not in the map. The map is stored as
the model's "konnx_tensor_map" metadata entry (zlib-compressed JSON), keyed by TFLite tensor index.
"""
from __future__ import annotations

import json
import zlib
from typing import Optional

import numpy as np

from .errors import ConversionError

META_NAME = "konnx_tensor_map"


def interpreter(data: bytes):
    """A LiteRT interpreter that keeps every intermediate tensor readable after a run."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # tf.lite.Interpreter takes the same flag
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging": it is
        return Interpreter(model_content=bytes(data), experimental_preserve_all_tensors=True)


def signature_runner(interp):
    signatures = interp.get_signature_list()
    key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
    return interp.get_signature_runner(key), list(signatures[key]["inputs"])


def _by_shape(details: list, values: dict) -> dict:
    """shape -> the tensor details of that shape that hold a value (the candidates of _match)."""
    out: dict = {}
    for d in details:
        if d["index"] in values:
            out.setdefault(tuple(values[d["index"]].shape), []).append(d)
    return out


def _match(candidates: dict, values: dict, want: np.ndarray, layer: str) -> Optional[int]:
    """The index of the TFLite tensor holding `want` (same shape, same values); name breaks ties.
    `candidates`: _by_shape's index (comparing only same-shape tensors keeps this linear in the
    number of tensors; ResNet-50 spent 0.4 s here comparing every pair)."""
    tol = 1e-3 * max(1.0, float(np.max(np.abs(want)))) if want.size else 0.0
    head = want.reshape(-1)[:64]
    hits = [d for d in candidates.get(tuple(want.shape), ())  # the first elements rule most out cheaply
            if np.allclose(values[d["index"]].reshape(-1)[:64], head, rtol=0, atol=tol)
            and np.allclose(values[d["index"]], want, rtol=0, atol=tol)]
    named = [d for d in hits if f"/{layer}" in d["name"].split(";")[0]]
    return (named or hits or [{"index": None}])[0]["index"]


def embed(data: bytes, keras_model, seed: int = 0) -> bytes:
    """`data` (a .tflite flatbuffer of `keras_model`) with the tensor map in its metadata; unchanged
    when the Keras model carries no tensor map or the interpreter cannot run it on a test input
    (the file then works as before; only its bisect is refused)."""
    record = getattr(keras_model, "konnx_tensor_map", None)
    if not isinstance(record, dict):
        return data
    try:
        tensors = _matched_tensors(data, keras_model, record, seed)
    except (ValueError, RuntimeError, KeyError) as e:
        import warnings

        warnings.warn(f"konnx: no tensor map in the .tflite file (the check run failed: {e}); "
                      "verify --bisect will refuse it", stacklevel=2)
        return data
    payload = zlib.compress(json.dumps({**record, "tensors": tensors}, separators=(",", ":")).encode(), 9)
    return _with_metadata(data, META_NAME, payload)


def _matched_tensors(data: bytes, keras_model, record: dict, seed: int) -> list:
    import keras

    from . import tensor_map

    probe, entries = tensor_map.probe_model(keras_model, record)
    interp = interpreter(data)
    runner, names = signature_runner(interp)
    rng = np.random.default_rng(seed)
    feeds = {}
    for kin in keras_model.inputs:
        shape = [d if d else 1 for d in kin.shape]
        feeds[kin.name] = rng.standard_normal(shape).astype(str(kin.dtype)) if "float" in str(kin.dtype) \
            else np.zeros(shape, str(kin.dtype))
    runner(**feeds)
    details = interp.get_tensor_details()
    values = {}
    for d in details:
        try:
            values[d["index"]] = interp.get_tensor(d["index"])
        except ValueError:  # tensors without data (e.g. optional inputs)
            continue
    args = [feeds[k.name] for k in keras_model.inputs]
    got = probe(args[0] if len(args) == 1 else args)
    got = [np.asarray(keras.ops.convert_to_numpy(g)) for g in got][len(keras_model.outputs):]
    tensors, candidates = [], _by_shape(details, values)
    for e, g in zip(entries, got):
        index = _match(candidates, values, g, e["layer"])
        if index is not None:
            tensors.append({**e, "tflite_index": int(index)})
    return tensors


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as S
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as S
    return S


def _with_metadata(data: bytes, name: str, payload: bytes) -> bytes:
    import flatbuffers

    S = _schema()
    model = S.ModelT.InitFromPackedBuf(bytearray(data), 0)
    buf = S.BufferT()
    buf.data = np.frombuffer(payload, dtype=np.uint8)
    model.buffers.append(buf)
    meta = S.MetadataT()
    meta.name, meta.buffer = name, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (name, name.encode())] + [meta]
    builder = flatbuffers.Builder(len(data) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read(data: bytes) -> dict:
    """The tensor map stored in a .tflite file's metadata."""
    S = _schema()
    model = S.Model.GetRootAs(bytearray(data), 0)
    for i in range(model.MetadataLength()):
        meta = model.Metadata(i)
        if meta.Name() and meta.Name().decode() == META_NAME:
            return json.loads(zlib.decompress(model.Buffers(meta.Buffer()).DataAsNumpy().tobytes()).decode())
    raise ConversionError("this .tflite file carries no konnx tensor map: it was not exported by this konnx "
                          "(konnx convert --tflite), so its tensors cannot be matched to ONNX tensors")
