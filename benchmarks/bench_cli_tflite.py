"""`konnx convert MODEL --tflite FILE --channels-last-io`, phase by phase, in one process: the same
calls the CLI makes (conversion, onnxruntime verification, TFLite conversion with its tensor map,
LiteRT check against onnxruntime, the staged write), each timed in wall and CPU seconds.

    python benchmarks/bench_cli_tflite.py [resnet50] [--repeat 3]

"beyond Keras" is what --tflite adds to a plain `konnx convert`: TFLite conversion + check + write.
Medians over --repeat runs (the first run in the process pays TensorFlow's one-time setup and is
reported apart). CPU seconds move less than wall seconds when other jobs share the machine."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


class Clock:
    def __init__(self):
        self.wall, self.cpu = {}, {}

    def __call__(self, name, fn, *a, **k):
        w, c = time.perf_counter(), time.process_time()
        out = fn(*a, **k)
        self.wall[name], self.cpu[name] = time.perf_counter() - w, time.process_time() - c
        return out


def one_run(path: Path, out: Path) -> Clock:
    from konnx import export as E
    from konnx.api import convert_detailed
    from konnx.tflite_map import embed
    from konnx.verify import verify

    clock = Clock()
    res = clock("convert", convert_detailed, str(path), channels_last_io=True)
    check = clock("verify", verify, str(path), res.model, channels_last_io=True, conversion=res)
    assert check.ok, check

    def convert_only():
        with E.tflite_converter(res.model, batch_size=1) as conv:
            return E.run_converter(conv)
    raw = clock("tflite converter", convert_only)
    data = clock("tensor map", embed, raw, res.model)
    tcheck = clock("tflite check", E.check_tflite, data, str(path), res.model, channels_last_io=True)
    assert tcheck.ok, tcheck
    clock("write", lambda: E.stage_tflite(res.model, out, content=data).commit())
    return clock


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="resnet50")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from bench_convert import ensure_onnx

    path = ensure_onnx(args.model)
    out = Path(tempfile.gettempdir()) / f"konnx_bench_{args.model}.tflite"
    runs = [one_run(path, out) for _ in range(args.repeat + 1)]
    first, rest = runs[0], runs[1:]
    beyond = ("tflite converter", "tensor map", "tflite check", "write")
    print(f"{args.model}: {len(rest)} runs after a first one; medians (first run in parentheses)")
    print(f"{'phase':>18} {'wall s':>8} {'cpu s':>8}")
    for name in first.wall:
        w = statistics.median(r.wall[name] for r in rest)
        c = statistics.median(r.cpu[name] for r in rest)
        print(f"{name:>18} {w:8.2f} {c:8.2f}   ({first.wall[name]:.2f} / {first.cpu[name]:.2f})")
    w = statistics.median(sum(r.wall[n] for n in beyond) for r in rest)
    c = statistics.median(sum(r.cpu[n] for n in beyond) for r in rest)
    print(f"{'beyond Keras':>18} {w:8.2f} {c:8.2f}   (TFLite conversion, tensor map, check, write)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
