"""`konnx convert MODEL --tflite FILE` as a user runs it (a fresh process each time, imports, checks
and write included): konnx's direct TFLite writer (the default when it covers the model) against
TensorFlow's converter path (`--tflite-converter`), alternating, wall and CPU seconds per run.

    python benchmarks/bench_cli_direct.py [resnet50 mobilenet_v3 efficientnet_b0 vgg11_bn] [--rounds 3]
        [--channels-last-io]

CPU seconds (user + system of the child, from resource.getrusage) move less than wall seconds when
other jobs share the machine. Medians over rounds; the order alternates every round."""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def run(cmd: list) -> tuple:
    """(wall s, cpu s) of one child process; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["resnet50"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--channels-last-io", action="store_true")
    args = ap.parse_args()
    from bench_convert import ensure_onnx

    for name in args.models:
        path = ensure_onnx(name)
        out = Path(tempfile.gettempdir()) / f"konnx_bench_cli_{name}.tflite"
        base = [sys.executable, "-m", "konnx", "convert", str(path), "--tflite", str(out), "-q"]
        base += ["--channels-last-io"] if args.channels_last_io else []
        paths = {"direct": base, "converter": base + ["--tflite-converter"]}
        got = {k: [] for k in paths}
        for r in range(args.rounds):
            for label in (list(paths) if r % 2 == 0 else list(paths)[::-1]):
                got[label].append(run(paths[label]))
        print(f"{name}: `konnx convert --tflite` in a fresh process, {args.rounds} alternating rounds (medians)")
        for label, rows in got.items():
            walls, cpus = [w for w, _ in rows], [c for _, c in rows]
            print(f"  {label:>9}: wall {statistics.median(walls):5.2f} s ({', '.join(f'{w:.2f}' for w in walls)})  "
                  f"cpu {statistics.median(cpus):5.2f} s ({', '.join(f'{c:.2f}' for c in cpus)})")
        print(f"  load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
