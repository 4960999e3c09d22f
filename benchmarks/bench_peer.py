"""konnx's TFLite file against the strongest peer's (onnx2tf 2.x), side by side in one process.

    python benchmarks/bench_peer.py [resnet50 mobilenet_v3 efficientnet_b0 vit_s16] [--rounds 21]
        [--threads 1] [--peer-venv /work/venv-onnx2tf] [--konnx-flag=--fold-bn ...] [--keep DIR]

Per model (random weights, plain torch.nn, nothing downloaded): torch exports the ONNX file with a
batch of 1; `konnx convert model.onnx --tflite k.tflite --channels-last-io --input-shape
input=1,3,224,224` and `onnx2tf -i model.onnx -b 1` (float32 file, run in its own virtual
environment: onnx2tf 2.x needs Python >= 3.12 and no TensorFlow) each run in a subprocess, timed
wall to wall (konnx's time includes its onnxruntime verification and LiteRT check; onnx2tf also
writes a float16 file). Both files then load in this process in the LiteRT interpreter (XNNPACK,
the same --threads), are checked against onnxruntime on the same input, and are timed with
onnxruntime in rotating order (A B C, B C A, C A B, ...). Printed: medians of per-round ratios
konnx/onnxruntime, peer/onnxruntime and konnx/peer, max abs error, size, and operator counts read
from each file's flatbuffer. A model is skipped for the peer (with a message) when the peer's
virtual environment is absent or its conversion fails.

Setting up the peer (never in konnx's environment):
    python3.12 -m venv /work/venv-onnx2tf && /work/venv-onnx2tf/bin/pip install onnx2tf==2.6.9
It then uses its bundled TFLite schema (the ONNX2TF_TFLITE_SCHEMA_* variables are removed from its
environment so it never fetches one) and, for float32, no calibration data."""
from __future__ import annotations

import argparse
import collections
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_resnet50 import interleaved_times, median_ratio  # noqa: E402  (one timing loop for every benchmark)

MODELS = ["resnet50", "mobilenet_v3", "efficientnet_b0", "vit_s16"]


def export_onnx(name: str, path: Path) -> Path:
    """Batch 1 (ResNet-50's exporter leaves the batch dynamic: both tools are told to fix it)."""
    if name == "resnet50":
        import resnet50_torch

        return resnet50_torch.export(path)
    import models_torch

    return models_torch.export(name, path)


def run_timed(cmd: list, env=None) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - t, proc


def convert_konnx(onnx_path: Path, out: Path, flags: list) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "konnx", "convert", str(onnx_path), "--tflite", str(out), "--channels-last-io",
           "--input-shape", "input=1,3,224,224", "-q", *flags]
    seconds, proc = run_timed(cmd)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"konnx convert failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, " ".join(["konnx convert", "--tflite", "--channels-last-io", "--input-shape", *flags])


def convert_peer(venv: Path, onnx_path: Path, out_dir: Path) -> tuple[float, Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONNX2TF_") and k != "PYTHONPATH"}
    cmd = [str(venv / "bin" / "onnx2tf"), "-i", str(onnx_path), "-o", str(out_dir), "-b", "1", "-n"]
    seconds, proc = run_timed(cmd, env)
    files = sorted(out_dir.glob("*_float32.tflite"))
    if proc.returncode != 0 or not files:
        raise RuntimeError(f"onnx2tf failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}")
    return seconds, files[0]


def op_counts(data: bytes) -> collections.Counter:
    """Operators of the main subgraph by builtin name, read from the flatbuffer."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.convert_bytearray_to_object(bytearray(data))
    return collections.Counter(fb.opcode_to_name(model, op.opcodeIndex) for op in model.subgraphs[0].operators)


def litert_fn(data: bytes, x_nchw, threads: int):
    """Runner of a .tflite file fed x in whichever layout its input declares (NCHW or NHWC)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data, num_threads=threads)
    detail = interp.get_input_details()[0]
    shape = list(detail["shape"])
    if shape == list(x_nchw.shape):
        x = x_nchw
    elif shape == [x_nchw.shape[i] for i in (0, 2, 3, 1)]:
        x = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
    else:
        raise ValueError(f"input shape {shape} is neither NCHW nor NHWC of {x_nchw.shape}")
    interp.allocate_tensors()
    out = interp.get_output_details()[0]["index"]
    delegated = sum(o["op_name"] == "DELEGATE" for o in interp._get_ops_details())

    def run():
        interp.set_tensor(detail["index"], x)
        interp.invoke()
        return interp.get_tensor(out)

    run.delegate_nodes = delegated
    return run


def describe(label, data, fn, seconds, ref):
    import numpy as np

    got = fn().reshape(ref.shape)
    ops = op_counts(data)
    top = ", ".join(f"{k} {v}" for k, v in ops.most_common())
    print(f"  {label:6s} conversion {seconds:5.1f} s  size {len(data) / 2**20:6.1f} MB  "
          f"max abs err {float(np.max(np.abs(got - ref))):.2e}  top-1 "
          f"{'same' if np.argmax(got) == np.argmax(ref) else 'DIFFERS'}  "
          f"{sum(ops.values())} ops, {fn.delegate_nodes} XNNPACK partition(s) after delegation")
    print(f"  {'':6s} ops: {top}")


def bench_model(name, args, tmp: Path, rng):
    import numpy as np
    import onnxruntime as ort

    onnx_path = export_onnx(name, tmp / f"{name}.onnx")
    k_file = tmp / f"{name}_konnx.tflite"
    k_s, _ = convert_konnx(onnx_path, k_file, args.konnx_flag)
    files = {"konnx": (k_file.read_bytes(), k_s)}
    if not (args.peer_venv / "bin" / "onnx2tf").exists():
        print(f"\n{name}: peer skipped: {args.peer_venv}/bin/onnx2tf is absent (see this file's docstring)")
    else:
        try:
            p_s, p_file = convert_peer(args.peer_venv, onnx_path, tmp / f"{name}_peer")
            files["peer"] = (p_file.read_bytes(), p_s)
        except RuntimeError as e:
            print(f"\n{name}: peer skipped: {e}")
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    iname = sess.get_inputs()[0].name
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    ref = sess.run(None, {iname: x})[0]
    runners = {label: litert_fn(data, x, args.threads) for label, (data, _) in files.items()}
    times = interleaved_times([lambda: sess.run(None, {iname: x}), *runners.values()], args.rounds)
    ort_t, by = times[0], dict(zip(runners, times[1:]))
    print(f"\n{name}: onnxruntime {statistics.median(ort_t):.1f} ms (median of {args.rounds} rounds), "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for label, (data, seconds) in files.items():
        describe(label, data, runners[label], seconds, ref)
    ratios = {f"{k}/onnxruntime": median_ratio(t, ort_t) for k, t in by.items()}
    if "peer" in by:
        ratios["konnx/peer"] = median_ratio(by["konnx"], by["peer"])
    print("  latency: " + ", ".join(f"{label} {statistics.median(t):.1f} ms" for label, t in by.items()))
    print("  median per-round ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    return {"model": name, "ort_ms": statistics.median(ort_t), **ratios,
            **{f"{k}_s": s for k, (_, s) in files.items()}, **{f"{k}_mb": len(d) / 2**20 for k, (d, _) in files.items()},
            **{f"{k}_ops": sum(op_counts(d).values()) for k, (d, _) in files.items()}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=MODELS)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--peer-venv", type=Path, default=Path("/work/venv-onnx2tf"))
    ap.add_argument("--konnx-flag", action="append", default=[], help="extra flag for konnx convert (repeatable)")
    ap.add_argument("--keep", type=Path, help="write the .onnx/.tflite files here instead of a temp dir")
    args = ap.parse_args()
    import numpy as np

    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="konnx_peer_") as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            rows.append(bench_model(name, args, base, rng))
    print("\n| model | konnx/ort | peer/ort | konnx/peer | conversion konnx / peer | size MB | ops konnx / peer |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        g = lambda k, f="{:.2f}": f.format(r[k]) if k in r else "-"  # noqa: E731
        print(f"| {r['model']} | {g('konnx/onnxruntime')} | {g('peer/onnxruntime')} | {g('konnx/peer')} | "
              f"{g('konnx_s', '{:.1f}')} s / {g('peer_s', '{:.1f}')} s | {g('konnx_mb', '{:.1f}')} / "
              f"{g('peer_mb', '{:.1f}')} | {g('konnx_ops', '{}')} / {g('peer_ops', '{}')} |")


if __name__ == "__main__":
    main()
