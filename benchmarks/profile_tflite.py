"""Op-by-op latency of a .tflite file under XNNPACK, and which ops XNNPACK takes.

    python benchmarks/profile_tflite.py model.tflite [--threads 1] [--runs 7]

The ai_edge_litert wheel has no op profiler reachable from Python, so every operator is cut out
into a one-op .tflite (its constant operands kept, its other inputs made graph inputs, filled
with N(0, 1) data) and timed alone in the LiteRT interpreter (median of --runs). An op counts as
delegated when XNNPACK replaces it by a DELEGATE node. The sum of the ops approximates the whole
model (no cross-op fusion such as a PAD folded into the next CONV). Static shapes only: export
with a fixed batch (the default) to profile."""
from __future__ import annotations

import argparse
import collections
import copy
import statistics
import time

import numpy as np


def _constant(model, tensor) -> bool:
    data = model.buffers[tensor.buffer].data
    return data is not None and len(data) > 0


def profile(path: str, threads: int = 1, runs: int = 7) -> list:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model(path)
    sg = model.subgraphs[0]
    rows = []
    for k, op in enumerate(sg.operators):
        m, s = copy.copy(model), copy.copy(sg)
        s.operators = [op]
        s.inputs = [i for i in op.inputs if i >= 0 and not _constant(model, sg.tensors[i])]
        s.outputs = list(op.outputs)
        m.subgraphs, m.signatureDefs = [s], []
        interp = Interpreter(model_content=bytes(fb.convert_object_to_bytearray(m)), num_threads=threads)
        for d in interp.get_input_details():
            interp.resize_tensor_input(d["index"], [max(1, v) for v in d["shape_signature"]])
        interp.allocate_tensors()
        rng = np.random.default_rng(0)
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], rng.standard_normal(d["shape"]).astype(d["dtype"]))
        delegated = any(o["op_name"] == "DELEGATE" for o in interp._get_ops_details())
        interp.invoke()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            interp.invoke()
            times.append((time.perf_counter() - t) * 1000)
        rows.append((k, fb.opcode_to_name(model, op.opcodeIndex), statistics.median(times), delegated))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tflite")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    rows = profile(args.tflite, args.threads, args.runs)
    total = sum(r[2] for r in rows)
    by = collections.defaultdict(lambda: [0, 0.0, 0])
    for _, name, ms, dlg in rows:
        by[name][0] += 1
        by[name][1] += ms
        by[name][2] += dlg
    print(f"{len(rows)} ops, sum {total:.1f} ms ({args.threads} thread(s))")
    print(f"{'op':>20} {'count':>6} {'ms':>8} {'share':>6} {'XNNPACK':>8}")
    for name, (n, ms, dlg) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:>20} {n:>6} {ms:>8.2f} {100 * ms / total:>5.1f}% {dlg:>4}/{n}")


if __name__ == "__main__":
    main()
