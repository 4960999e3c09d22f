"""Full-integer (int8) post-training quantization of a converted model, held to an error budget.

    result = quantize_int8(keras_model, "model.onnx", "calib/")   # .npy / .npz / a folder of them
    result.data        # the .tflite bytes; result.float_layers: what stayed float, and why

1. The calibration samples (ONNX layout, as the ONNX model eats them) are split: every fifth one is
   held out, the rest calibrate TensorFlow's converter (representative dataset, int8 weights and
   activations, float32 interface: a QUANTIZE after the inputs, a DEQUANTIZE before the outputs).
2. The int8 file runs in LiteRT on the held-out samples against onnxruntime on the ONNX model. The
   budget (BUDGET_DEFAULT, `--int8-budget`) bounds, per output, the cosine similarity of every
   held-out sample and, for classifier-shaped outputs ((batch, classes)), the share of samples
   whose top-1 class agrees.
3. If it misses, TensorFlow's QuantizationDebugger measures each layer's own quantization error
   (RMSE of the layer's int8 output against its float output from the same quantized inputs, in
   units of its int8 step); the most sensitive layer is kept in float (`denylisted_nodes`), the
   file re-quantized and re-checked, one layer at a time, until the budget holds or
   `max_float_layers` are float (then the result says it cannot).
Speed: op types whose int8 kernel LiteRT's XNNPACK delegate does not take (HARD_SWISH in LiteRT
2.3) but whose float kernel it does stay float from the start (`Int8Result.float_ops`): on the
reference kernels they made an int8 MobileNetV3 1.8x slower than its float file.

TensorFlow is imported inside the functions only, like konnx.export."""
from __future__ import annotations

import copy
import csv
import io
import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import numpy as np

from . import layout as L
from .calibration import HOLD_OUT_EVERY, QuantizationError, load_calibration, split
from .export import require_tensorflow_backend, tflite_converter

BUDGET_DEFAULT = "cos=0.99,top1=0.99"


@dataclass
class Budget:
    """min_cosine: every held-out sample's cosine similarity to onnxruntime, per output.
    min_top1: share of held-out samples whose argmax agrees, for (batch, classes) outputs."""
    min_cosine: float = 0.99
    min_top1: float = 0.99

    @classmethod
    def parse(cls, text: Optional[str]) -> "Budget":
        """'cos=0.99,top1=0.95' (either key may be left out: its default stays)."""
        values = {}
        for item in filter(None, (text or BUDGET_DEFAULT).replace(" ", "").split(",")):
            key, _, val = item.partition("=")
            if key not in ("cos", "top1"):
                raise QuantizationError(f"--int8-budget: unknown key {key!r} in {text!r}; expected cos=X,top1=Y")
            try:
                values[key] = float(val)
            except ValueError:
                raise QuantizationError(f"--int8-budget: {key} needs a number in [0, 1], got {val!r}") from None
            if not 0.0 <= values[key] <= 1.0:
                raise QuantizationError(f"--int8-budget: {key} must lie in [0, 1], got {values[key]}")
        return cls(values.get("cos", cls.min_cosine), values.get("top1", cls.min_top1))


@dataclass
class OutputError:
    name: str
    min_cosine: float
    top1_agreement: Optional[float]  # None: not classifier-shaped
    max_abs: float
    ok: bool


@dataclass
class FloatLayer:
    tensor: str       # the layer's output tensor in the TFLite model (what denylisted_nodes names)
    op: str           # its TFLite op
    sensitivity: float  # RMSE of its int8 output / its int8 step, from the QuantizationDebugger


@dataclass
class Int8Result:
    data: bytes = field(repr=False)
    ok: bool
    outputs: list
    float_layers: list
    steps: list           # (layers kept float, worst cosine, worst top-1) per attempt
    calibration_samples: int
    held_out_samples: int
    reason: str = ""
    float_ops: list = field(default_factory=list)  # op types kept float for speed (XNNPACK)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("data")
        d["bytes"] = len(self.data)
        return d


# ----------------------------------------------------------------------------- the check
def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


def evaluate(refs: list, gots: list, names: list, budget: Budget) -> list:
    """refs/gots: per held-out batch, the list of outputs (ONNX layout). One OutputError per output."""
    outs = []
    for i, name in enumerate(names):
        ref = np.concatenate([r[i] for r in refs])
        got = np.concatenate([g[i] for g in gots])
        cos = min(cosine(r, g) for r, g in zip(ref, got))
        top1 = None
        if ref.ndim == 2 and ref.shape[1] > 1:
            top1 = float(np.mean(np.argmax(ref, 1) == np.argmax(got, 1)))
        ok = cos >= budget.min_cosine and (top1 is None or top1 >= budget.min_top1)
        outs.append(OutputError(name, cos, top1, float(np.max(np.abs(ref - got))), ok))
    return outs


class _Samples:
    """The samples batched like the .tflite's static inputs, in the Keras layout."""

    def __init__(self, samples: dict, onnx_names: list, keras_names: list, batch: int, channels_last_io: bool):
        n = len(next(iter(samples.values())))
        samples = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in samples.items()}
        self.onnx = [{k: samples[k][i:i + batch] for k in onnx_names} for i in range(0, n - batch + 1, batch)]
        self.keras = []
        for feeds in self.onnx:
            row = {}
            for o, k in zip(onnx_names, keras_names):
                x = feeds[o]
                row[k] = np.ascontiguousarray(np.transpose(x, L.channels_last(x.ndim)) if channels_last_io
                                              and x.ndim >= 3 else x)
            self.keras.append(row)


def _batch(model) -> int:
    dims = [t.shape[0] for t in model.inputs]
    return int(dims[0]) if dims and dims[0] is not None else 1


# ----------------------------------------------------------------------------- quantization
def _input_order(tflite: bytes) -> list:
    """The signature's input names in the interpreter's input order (what the debugger feeds)."""
    from .export import tflite_interpreter

    interp = tflite_interpreter(tflite)
    key = next(iter(interp.get_signature_list()))
    by_index = {d["index"]: n for n, d in interp.get_signature_runner(key).get_input_details().items()}
    return [by_index[d["index"]] for d in interp.get_input_details()]


def _sensitivities(debugger) -> list:
    """The debugger's per-layer statistics, most sensitive first: RMSE of the layer's int8 output
    against the float op on the same (quantized) inputs, divided by the layer's int8 step."""
    debugger.run()
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    buf.seek(0)
    layers = []
    for row in csv.DictReader(buf):
        scale, mse = float(row["scale"]), float(row["mean_squared_error"])
        sens = math.sqrt(mse) / scale if scale > 0 and math.isfinite(mse) else math.inf
        layers.append(FloatLayer(row["tensor_name"], row["op_name"], sens))
    return sorted(layers, key=lambda f: -f.sensitivity)


def _quantized(debugger, denylist: list, ops: Optional[list] = None) -> bytes:
    """The calibrated model quantized with `denylist` nodes and `ops` types kept float: what the
    debugger's get_nondebug_quantized_model does, without re-instrumenting a debug model for
    each selection (its options setter does that, and fails when whole op types are kept float)."""
    from tensorflow.lite.python import convert

    try:
        return convert.mlir_quantize(debugger.calibrated_model, fully_quantize=False, enable_numeric_verify=False,
                                     disable_per_channel=debugger.converter._experimental_disable_per_channel,
                                     denylisted_ops=ops or None, denylisted_nodes=denylist or None)
    except (ValueError, RuntimeError) as e:
        raise QuantizationError(f"TensorFlow's quantizer failed (float layers {denylist}, ops {ops}): {e}") from e


_FLOAT32, _INT8 = 0, 9  # TFLite tensor types


def _constant(model, tensor) -> bool:
    data = model.buffers[tensor.buffer].data
    return data is not None and len(data) > 0


def _one_op_models(tflite: bytes, tensor_type: int):
    """(op type, one-op .tflite bytes) for the first op of each type whose output has `tensor_type`."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.convert_bytearray_to_object(bytearray(tflite))
    sg, seen = model.subgraphs[0], set()
    for op in sg.operators:
        name = fb.opcode_to_name(model, op.opcodeIndex)
        if name in seen or name in ("QUANTIZE", "DEQUANTIZE") or sg.tensors[op.outputs[0]].type != tensor_type:
            continue
        seen.add(name)
        sub = copy.copy(sg)
        sub.operators, sub.outputs = [op], list(op.outputs)
        sub.inputs = [i for i in op.inputs if i >= 0 and not _constant(model, sg.tensors[i])]
        one = copy.copy(model)
        one.subgraphs, one.signatureDefs = [sub], []
        yield name, bytes(fb.convert_object_to_bytearray(one))


def undelegated_ops(tflite: bytes, tensor_type: int = _INT8) -> list:
    """Op types in `tflite` (with outputs of `tensor_type`, int8 by default) that LiteRT's XNNPACK
    delegate does not take: they run on the reference kernels (int8 HARD_SWISH made a MobileNetV3
    1.8x slower than float). Each type is tried as a one-op model. Empty without ai-edge-litert."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return []
    out = []
    for name, data in _one_op_models(tflite, tensor_type):
        interp = Interpreter(model_content=data)
        interp.allocate_tensors()  # XNNPACK is applied here
        if not any(o["op_name"] == "DELEGATE" for o in interp._get_ops_details()):
            out.append(name)
    return out


def _check(data: bytes, held: "_Samples", refs: list, names: list, channels_last_io: bool, budget: Budget):
    from .export import tflite_runner

    run = tflite_runner(data)
    gots = []
    for feeds in held.keras:
        outs = run(feeds)
        gots.append([np.transpose(g, L.inverse(L.channels_last(g.ndim))) if channels_last_io and g.ndim >= 3
                     else g for g in outs])
    return evaluate(refs, gots, names, budget)


def quantize_int8(keras_model, onnx_model, calibration, *, channels_last_io: bool = False,
                  budget: Optional[Budget] = None, max_float_layers: int = 16,
                  log: Optional[Callable[[str], None]] = None) -> Int8Result:
    """int8 .tflite bytes for `keras_model` (converted from `onnx_model`) within `budget`, keeping
    the most sensitive layers in float one at a time if needed. `calibration`: a path (see
    load_calibration) or a dict of sample arrays in the ONNX layout, keyed by ONNX input name."""
    require_tensorflow_backend("int8 TFLite")
    import tensorflow as tf

    from . import loader
    from .export import converter_error
    from .oracle import run_onnxruntime

    ConverterError = converter_error()
    budget = budget or Budget.parse(None)
    log = log or (lambda msg: None)
    proto = loader.load(onnx_model)
    init = {i.name for i in proto.graph.initializer}
    onnx_inputs = {vi.name: tuple(d.dim_value or None for d in vi.type.tensor_type.shape.dim)
                   for vi in proto.graph.input if vi.name not in init}
    samples = load_calibration(calibration, onnx_inputs)
    calib, held_out = split(samples)
    keras_names = [t.name for t in keras_model.inputs]
    batch = _batch(keras_model)
    cal = _Samples(calib, list(onnx_inputs), keras_names, batch, channels_last_io)
    held = _Samples(held_out, list(onnx_inputs), keras_names, batch, channels_last_io)
    if not cal.keras or not held.keras:
        raise QuantizationError(f"{len(next(iter(samples.values())))} calibration samples are too few for "
                                f"batches of {batch} (one in {HOLD_OUT_EVERY} is held out)")
    out_names = [o.name for o in proto.graph.output]
    refs = [[run_onnxruntime(proto, feeds)[n] for n in out_names] for feeds in held.onnx]
    order: list = []

    def representative():
        for row in cal.keras:
            yield [row[n] for n in order] if order else row

    with tflite_converter(keras_model, batch_size=batch) as converter:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        log(f"calibrating on {len(cal.keras)} batches")
        try:
            debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=representative)
        except (ConverterError, ValueError, RuntimeError) as e:
            raise QuantizationError(f"TensorFlow's converter could not calibrate the model: {e}") from e
    order[:] = _input_order(debugger.quant_model)
    result = _search(debugger, held, refs, out_names, channels_last_io, budget, max_float_layers, log)
    result.calibration_samples, result.held_out_samples = len(cal.keras) * batch, len(held.keras) * batch
    return result


def _float_where_faster(debugger, log) -> list:
    """Op types to keep float for speed: int8 kernels XNNPACK does not take, whose float kernels it
    does (checked on the model quantized with them kept float)."""
    slow = undelegated_ops(_quantized(debugger, []))
    if not slow:
        return []
    still = set(undelegated_ops(_quantized(debugger, [], slow), _FLOAT32))
    keep = [name for name in slow if name not in still]
    if keep:
        log(f"keeping {', '.join(keep)} float: XNNPACK has no int8 kernel for them")
    return keep


def _search(debugger, held, refs, names, channels_last_io, budget, max_float_layers, log) -> Int8Result:
    """All-int8 first; then the most sensitive layers in float, one more per attempt."""
    ranked: Optional[list] = None
    kept: list = []
    steps = []
    slow = _float_where_faster(debugger, log)
    while True:
        data = _quantized(debugger, [f.tensor for f in kept], slow)
        outs = _check(data, held, refs, names, channels_last_io, budget)
        worst_top1 = min((o.top1_agreement for o in outs if o.top1_agreement is not None), default=None)
        steps.append((len(kept), min(o.min_cosine for o in outs), worst_top1))
        log(f"{len(kept)} layer(s) in float: cosine {steps[-1][1]:.5f}"
            + (f", top-1 agreement {worst_top1:.3f}" if worst_top1 is not None else ""))
        if all(o.ok for o in outs):
            return Int8Result(data, True, outs, kept, steps, 0, 0, float_ops=slow)
        if ranked is None:
            log("measuring each layer's quantization error (QuantizationDebugger)")
            ranked = _sensitivities(debugger)
        left = [f for f in ranked if f not in kept]
        if len(kept) >= max_float_layers or not left:
            why = (f"still outside the budget with the {len(kept)} most sensitive layers in float "
                   f"(limit {max_float_layers})" if left else "outside the budget with every measured layer in float")
            return Int8Result(data, False, outs, kept, steps, 0, 0, reason=why, float_ops=slow)
        kept.append(left[0])
