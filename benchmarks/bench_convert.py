"""Conversion cost: wall time and peak RSS of konnx.convert per model, each in a fresh process.

    python benchmarks/bench_convert.py [resnet50 vgg11_bn wide_mlp ...] [--tflite]

Peak RSS is resource.getrusage(RUSAGE_SELF).ru_maxrss of the child process; "baseline" is the RSS
after importing konnx, Keras and TensorFlow (before loading the model), so `peak - baseline` is
what the conversion itself adds; the ratio divides that by the float32 weights' size."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = r"""
import json, os, resource, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, keras, tensorflow, onnx, konnx
from konnx import export as E

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def current_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

path, tflite = sys.argv[1], sys.argv[2] == "1"
base = current_mb()
t = time.perf_counter()
model = konnx.convert(path)
conv = time.perf_counter() - t
params = model.count_params()
out = {"params": params, "convert_s": conv, "baseline_mb": base, "peak_convert_mb": rss_mb()}
if tflite:
    t = time.perf_counter()
    data = E.tflite_model(model)
    out["tflite_s"] = time.perf_counter() - t
    out["peak_tflite_mb"] = rss_mb()
print(json.dumps(out))
"""


def ensure_onnx(name: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"konnx_bench_{name}.onnx"
    if not path.exists():
        sys.path.insert(0, str(HERE))
        if name == "resnet50":
            import resnet50_torch

            resnet50_torch.export(path)
        else:
            import models_torch

            models_torch.export(name, path)
    return path


def measure(name: str, tflite: bool) -> dict:
    path = Path(tempfile.gettempdir()) / f"konnx_bench_{name}.onnx"
    if not path.exists():
        # exported in its own process: a child forked from a parent that built a 1.3 GB torch model
        # starts with the parent's peak RSS as its own (ru_maxrss survives fork and exec)
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(HERE)!r}); "
                        f"import bench_convert; bench_convert.ensure_onnx({name!r})"], check=True)
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), "1" if tflite else "0"], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: the conversion process failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["resnet50", "vgg11_bn", "wide_mlp"])
    ap.add_argument("--tflite", action="store_true", help="also time the TFLite conversion (batch fixed to 1)")
    args = ap.parse_args()
    print(f"{'model':>16} {'params':>8} {'weights':>9} {'convert':>8} {'baseline':>9} {'peak':>8} "
          f"{'(peak-base)/weights':>20}" + ("  tflite s  peak w/ tflite" if args.tflite else ""))
    for name in args.models:
        r = measure(name, args.tflite)
        weights = r["params"] * 4 / 2**20
        extra = (r["peak_convert_mb"] - r["baseline_mb"]) / weights
        line = (f"{name:>16} {r['params'] / 1e6:>7.1f}M {weights:>7.0f}MB {r['convert_s']:>7.1f}s "
                f"{r['baseline_mb']:>7.0f}MB {r['peak_convert_mb']:>6.0f}MB {extra:>20.2f}")
        if args.tflite:
            line += f"  {r['tflite_s']:>8.1f}  {r['peak_tflite_mb']:>8.0f}MB"
        print(line, flush=True)


if __name__ == "__main__":
    main()
