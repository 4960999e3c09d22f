"""TFLite latency of konnx's files against onnxruntime, in one process, on the same input.

    python benchmarks/bench_tflite.py [resnet50 mobilenet_v3 efficientnet_b0 vit_s16] [--rounds 15]
        [--threads 1] [--int8 resnet50 mobilenet_v3] [--dynamic]

Per model: konnx.convert(channels_last_io=True) -> konnx.export.tflite_model (batch fixed to 1,
the default), run in the LiteRT interpreter (XNNPACK) and onnxruntime (CPU provider) with the same
number of threads. Each round runs every contender once, in rotating order (A B C, B C A, ...);
the figure is the median over rounds of the per-round ratio file/onnxruntime. --dynamic adds the
file with a dynamic batch (what konnx wrote before the batch was fixed). --int8 adds, per model
named, the int8 file from konnx.quantize (calibration: N(0, 1) samples; random-weight models have
no data distribution) with its size, latency ratio and error against onnxruntime. The file of
konnx's direct writer (konnx.tflite_direct: no TensorFlow, what `convert --tflite` alone writes)
is timed beside the converter's ("konnx direct"; --no-direct leaves it out), with the median of
per-round direct/converter ratios."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_resnet50 import interleaved_times, median_ratio  # noqa: E402  (one timing loop for every benchmark)


def litert_fn(data: bytes, x_nhwc, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data, num_threads=threads)
    detail = interp.get_input_details()[0]
    if list(detail["shape"]) != list(x_nhwc.shape):
        interp.resize_tensor_input(detail["index"], x_nhwc.shape)
    interp.allocate_tensors()
    out = interp.get_output_details()[0]["index"]

    def run():
        interp.set_tensor(detail["index"], x_nhwc)
        interp.invoke()
        return interp.get_tensor(out)

    return run


def size_breakdown(data: bytes) -> dict:
    """Bytes of a .tflite file by what holds them: constant buffers by tensor type, quantization
    parameters (per-channel scales are float32, zero points int64: TFLite's schema) and the rest
    (graph, names). Shows whether anything besides the biases (int32) stays wider than int8."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.convert_bytearray_to_object(bytearray(data))
    names = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 9: "int8"}
    out, seen = {}, set()
    for sg in model.subgraphs:
        for t in sg.tensors:
            buf = model.buffers[t.buffer].data
            if buf is not None and len(buf) and t.buffer not in seen:
                seen.add(t.buffer)
                key = f"{names.get(t.type, t.type)} constants"
                out[key] = out.get(key, 0) + len(buf)
            q = t.quantization
            if q is not None:
                n = sum(len(v) * w for v, w in ((q.scale, 4), (q.zeroPoint, 8), (q.min, 4), (q.max, 4)) if v is not None)
                out["quantization parameters"] = out.get("quantization parameters", 0) + n
    out["rest"] = len(data) - sum(out.values())
    return out


def direct_file(path) -> tuple:
    """(the direct writer's .tflite bytes with channels-last I/O, seconds), or (None, why)."""
    import onnx

    from konnx.tflite_direct import DirectUnsupported, plan_for_tflite, write

    t = time.perf_counter()
    try:
        normalized, plan, weights, opset = plan_for_tflite(onnx.load(str(path)), None, True)
        data = write(normalized, plan, weights, opset, channels_last_io=True)
    except DirectUnsupported as e:
        return None, str(e)
    return data, time.perf_counter() - t


def onnx_path(name: str) -> Path:
    from bench_convert import ensure_onnx

    return ensure_onnx(name)


def bench_model(name, args, rng):
    import numpy as np
    import onnxruntime as ort

    import konnx
    from konnx import export as E
    from konnx import quantize as Q

    path = onnx_path(name)
    model = konnx.convert(path, channels_last_io=True)
    t = time.perf_counter()
    files = {"konnx": E.tflite_model(model)}
    tflite_s = time.perf_counter() - t
    if args.dynamic:
        files["konnx dynamic batch"] = E.tflite_model(model, batch_size=None)
    direct_note = ""
    if args.direct:
        data, took = direct_file(path)
        if data is None:
            direct_note = f", direct writer: not covered ({took})"
        else:
            files["konnx direct"] = data
            direct_note = f", direct writer {took:.1f} s"
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    iname = sess.get_inputs()[0].name
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    ref = sess.run(None, {iname: x})[0]
    notes = {}
    if name in args.int8:
        cal = rng.standard_normal((args.calibration, 3, 224, 224)).astype(np.float32)
        t = time.perf_counter()
        res = Q.quantize_int8(model, path, {iname: cal}, channels_last_io=True)
        files["konnx int8"] = res.data
        notes["konnx int8"] = (f"int8: {time.perf_counter() - t:.0f} s to quantize, {len(res.float_layers)} layer(s) "
                               f"kept float, held-out cosine {res.outputs[0].min_cosine:.4f}, top-1 "
                               f"{res.outputs[0].top1_agreement}")
    fns = [lambda: sess.run(None, {iname: x})] + [litert_fn(d, x_nhwc, args.threads) for d in files.values()]
    times = interleaved_times(fns, args.rounds)
    print(f"\n{name}: onnxruntime {statistics.median(times[0]):.1f} ms (median), {args.threads} thread(s), "
          f"TFLite conversion {tflite_s:.1f} s{direct_note}")
    for (label, data), fn, t in zip(files.items(), fns[1:], times[1:]):
        got = fn()
        cos = Q.cosine(ref, got)
        err = float(np.max(np.abs(got - ref)))
        print(f"  {label:22s} {statistics.median(t):7.1f} ms  ratio vs onnxruntime {median_ratio(t, times[0]):5.2f}"
              f"  size {len(data) / 2**20:6.1f} MB  max abs err {err:.2e}  cosine {cos:.5f}"
              f"  top-1 {'same' if np.argmax(got) == np.argmax(ref) else 'differs'}")
        if label in notes:
            print(f"  {'':22s} {notes[label]}")
    if "konnx direct" in files:
        print(f"  direct / converter: latency {median_ratio(times[list(files).index('konnx direct') + 1], times[1]):.3f}"
              f" (median of per-round ratios), size {len(files['konnx direct']) / len(files['konnx']):.4f}")
    if "konnx int8" in files:
        print(f"  int8 / float: size {len(files['konnx int8']) / len(files['konnx']):.2f}, latency "
              f"{median_ratio(times[list(files).index('konnx int8') + 1], times[1]):.2f}")
        for label in ("konnx", "konnx int8"):
            parts = ", ".join(f"{k} {v / 2**20:.2f} MB" for k, v in size_breakdown(files[label]).items())
            print(f"  {label} file: {parts}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["resnet50", "mobilenet_v3", "efficientnet_b0", "vit_s16"])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dynamic", action="store_true", help="also time the dynamic-batch file")
    ap.add_argument("--no-direct", dest="direct", action="store_false", help="leave out the direct writer's file")
    ap.add_argument("--int8", nargs="*", default=[], help="models to quantize as well")
    ap.add_argument("--calibration", type=int, default=25, help="N(0, 1) calibration samples for --int8")
    args = ap.parse_args()
    import numpy as np

    rng = np.random.default_rng(0)
    for name in args.models:
        bench_model(name, args, rng)


if __name__ == "__main__":
    main()
