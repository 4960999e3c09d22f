"""ResNet-50: konnx conversion time, and latency of the converted model against onnxruntime and
keras.applications.ResNet50(weights=None), measured in the same process on the same inputs.

    python benchmarks/bench_resnet50.py [--runs 30] [--dynamo]

Prints medians and ratios (converted / native Keras, converted / onnxruntime)."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def interleaved_medians(fns, runs):
    """Median ms of each function, timed round-robin so that load from other processes
    drifts over all of them alike."""
    for fn in fns:
        fn()
        fn()  # warm-up (graph tracing, allocator)
    times = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append((time.perf_counter() - t) * 1000)
    return [statistics.median(t) for t in times]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--dynamo", action="store_true", help="export with torch.onnx dynamo=True")
    ap.add_argument("--onnx", help="use this ResNet-50 .onnx instead of exporting one")
    args = ap.parse_args()

    import numpy as np
    import keras
    import onnxruntime as ort
    import konnx

    path = args.onnx
    if path is None:
        import resnet50_torch

        path = Path(tempfile.gettempdir()) / f"konnx_resnet50{'_dynamo' if args.dynamo else ''}.onnx"
        if not path.exists():
            resnet50_torch.export(path, dynamo=args.dynamo)
    import onnx

    proto = onnx.load(str(path))
    t = time.perf_counter()
    konnx.convert(proto)  # first conversion in the process pays Keras' one-time setup
    first = time.perf_counter() - t
    conv_times = []
    for _ in range(3):
        t = time.perf_counter()
        converted = konnx.convert(proto)
        conv_times.append(time.perf_counter() - t)
    conversion = statistics.median(conv_times)

    native = keras.applications.ResNet50(weights=None)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name

    print(f"model: {path}")
    print(f"conversion: {conversion:.2f} s (median of 3; first in process {first:.2f} s)")
    print(f"{'batch':>5} {'konnx ms':>10} {'keras ms':>10} {'ort ms':>10} {'konnx/keras':>12} {'konnx/ort':>10}")
    for batch in (1, 8):
        x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        ref = sess.run(None, {in_name: x})[0]
        got = np.asarray(converted.predict_on_batch(x))
        err = float(np.max(np.abs(got - ref)))
        k, n, o = interleaved_medians([lambda: converted.predict_on_batch(x),
                                       lambda: native.predict_on_batch(x_nhwc),
                                       lambda: sess.run(None, {in_name: x})], args.runs)
        print(f"{batch:>5} {k:>10.1f} {n:>10.1f} {o:>10.1f} {k / n:>12.2f} {k / o:>10.2f}   "
              f"(max abs error vs onnxruntime {err:.2e})")


if __name__ == "__main__":
    main()
