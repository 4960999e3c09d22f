"""ResNet-50: konnx conversion time, and latency of the converted model against onnxruntime and
keras.applications.ResNet50(weights=None), measured in the same process on the same inputs.

    python benchmarks/bench_resnet50.py [--runs 30] [--dynamo] [--threads N]

Prints median latencies and the median over rounds of the per-round ratios (converted / native
Keras, converted / onnxruntime); in each round the three run back to back, in rotating order."""
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


def interleaved_times(fns, runs):
    """Milliseconds of each function per round. Rounds rotate the order (A B C, B C A, C A B, ...;
    two functions simply alternate, A B A B) so that each takes each place equally often and none
    runs twice in a row: with reversed rounds (A B C, C B A, A B C) the outer two each ran back to
    back across a round boundary, on caches warm with their own weights, the middle one never."""
    for fn in fns:
        fn()
        fn()  # warm-up (graph tracing, allocator)
    times = [[] for _ in fns]
    n = len(fns)
    for r in range(runs):
        order = [(r * (n > 2) + j) % n for j in range(n)]
        for i in order:
            t = time.perf_counter()
            fns[i]()
            times[i].append((time.perf_counter() - t) * 1000)
    return times


def median_ratio(a, b):
    """Median over rounds of a[i] / b[i]: each ratio compares two runs taken back to back."""
    return statistics.median(x / y for x, y in zip(a, b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--dynamo", action="store_true", help="export with torch.onnx dynamo=True")
    ap.add_argument("--onnx", help="use this ResNet-50 .onnx instead of exporting one")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads of TensorFlow and onnxruntime "
                    "(inter-op 1 for both); 0 keeps each library's default. One thread compares the kernels "
                    "themselves and moves least when other jobs share the machine")
    args = ap.parse_args()

    import numpy as np
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
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
    so = ort.SessionOptions()
    if args.threads:
        so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name

    print(f"model: {path}; threads: {args.threads or 'library defaults'}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"conversion: {conversion:.2f} s (median of 3; first in process {first:.2f} s)")
    print(f"{'batch':>5} {'konnx ms':>10} {'keras ms':>10} {'ort ms':>10} {'konnx/keras':>12} {'konnx/ort':>10}")
    for batch in (1, 8):
        x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        ref = sess.run(None, {in_name: x})[0]
        got = np.asarray(converted.predict_on_batch(x))
        err = float(np.max(np.abs(got - ref)))
        k, n, o = interleaved_times([lambda: converted.predict_on_batch(x),
                                     lambda: native.predict_on_batch(x_nhwc),
                                     lambda: sess.run(None, {in_name: x})], args.runs)
        print(f"{batch:>5} {statistics.median(k):>10.1f} {statistics.median(n):>10.1f} "
              f"{statistics.median(o):>10.1f} {median_ratio(k, n):>12.2f} {median_ratio(k, o):>10.2f}   "
              f"(max abs error vs onnxruntime {err:.2e})")


if __name__ == "__main__":
    main()
