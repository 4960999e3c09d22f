"""Run fuzz cases in worker subprocesses and tabulate the outcomes.

    python -m tests.fuzz.run            # the fixed sample (the default test run)
    python -m tests.fuzz.run --all      # every case (>= 3,000)
    python -m tests.fuzz.run --ids a b  # given case ids

Cases are split into chunks, one worker process per chunk at a time (`--workers` at once);
a worker that goes silent for timeout + grace seconds is killed and its current case is a
HANG; a worker that dies mid-case makes that case a CRASH; the rest of its chunk goes to a
fresh worker.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRACE = 30  # seconds above the per-case alarm before the runner kills a silent worker
STARTUP = 300  # seconds a worker may take to start (imports, loading the node cases)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _run_chunk(ids: list, timeout: int, results: dict, grace: int = GRACE) -> None:
    pending = list(ids)
    verdicts: dict = {}  # case id -> konnx's verdict, told before onnxruntime runs
    while pending:
        # the ids go through a file: a pipe could fill while this thread reads the worker's output
        with tempfile.TemporaryFile("w+") as ids_file:
            ids_file.write("\n".join(pending) + "\n")
            ids_file.seek(0)
            proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker", str(timeout)], cwd=ROOT,
                                    env=_env(), stdin=ids_file, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True)
            current = _drain(proc, timeout, results, grace, verdicts)
        done = [i for i in pending if i in results]
        if current is not None and current not in results:
            results[current] = _oracle_death(current, proc, verdicts) or {
                "id": current, "outcome": current_outcome(proc),
                "detail": f"worker {'killed after timeout' if proc.returncode is None or proc.returncode == -9 else f'died (rc {proc.returncode})'}"}
        pending = [i for i in pending if i not in results]
        if not done and current is None:  # the worker died before its first case
            for i in pending:
                results[i] = {"id": i, "outcome": "crash", "detail": f"worker failed to start (rc {proc.returncode})"}
            pending = []


def _oracle_death(case_id: str, proc, verdicts: dict):
    """The result of a case whose worker stopped inside onnxruntime after konnx refused the
    model: onnxruntime aborting the process on a model is its refusal of it (both refuse);
    onnxruntime never answering (killed by the watchdog) is its hang, not konnx's, which
    answered in time (ort_hangs). None when that is not what happened (a death or hang after
    konnx converted the model stays a failure: nothing judged its outputs)."""
    v = verdicts.get(case_id)
    if v is None or v["state"] != "refused":
        return None
    if getattr(proc, "_konnx_killed", False):
        return {"id": case_id, "outcome": "ort_hangs",
                "detail": f"ort: no answer after konnx refused the model | konnx: {v['detail']}"}
    return {"id": case_id, "outcome": "both_refuse",
            "detail": f"ort: died (rc {proc.returncode}) on the model | konnx: {v['detail']}"}


def current_outcome(proc) -> str:
    return "hang" if getattr(proc, "_konnx_killed", False) else "crash"


def _drain(proc, timeout: int, results: dict, grace: int = GRACE, verdicts=None):
    """Read the worker's JSON lines; kill it when it is silent too long. Returns the id of the
    case in progress when it stopped (None if it finished cleanly)."""
    current = [None]
    last = [time.monotonic() + STARTUP]  # the worker imports Keras and loads the cases first

    def watchdog():
        while proc.poll() is None:
            if time.monotonic() - last[0] > timeout + grace:
                proc._konnx_killed = True
                proc.kill()
                return
            time.sleep(1)

    threading.Thread(target=watchdog, daemon=True).start()
    for line in proc.stdout:
        last[0] = time.monotonic()
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "ready" in msg:
            continue
        if "konnx" in msg:
            if verdicts is not None:
                verdicts[msg["konnx"]] = msg
            continue
        if "start" in msg:
            current[0] = msg["start"]
        else:
            results[msg["id"]] = msg
            current[0] = None
    proc.wait()
    return current[0]


def run(ids: list, workers: int = 2, timeout: int = 60, chunk: int = 0, grace: int = GRACE) -> dict:
    """id -> {"outcome", "detail"} for every case."""
    results: dict = {}
    chunk = chunk or max(1, -(-len(ids) // workers))
    chunks = [ids[i:i + chunk] for i in range(0, len(ids), chunk)]
    queue = list(chunks)
    lock = threading.Lock()

    def loop():
        while True:
            with lock:
                if not queue:
                    return
                c = queue.pop(0)
            _run_chunk(c, timeout, results, grace)

    threads = [threading.Thread(target=loop) for _ in range(min(workers, len(chunks)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def table(results: dict) -> str:
    counts = collections.Counter(r["outcome"] for r in results.values())
    lines = ["| outcome | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    lines.append(f"| total | {sum(counts.values())} |")
    return "\n".join(lines)


def failures(results: dict) -> list:
    from tests.fuzz.worker import FAIL_OUTCOMES

    return sorted((r for r in results.values() if r["outcome"] in FAIL_OUTCOMES), key=lambda r: r["id"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--all", action="store_true", help="every case, not the fixed sample")
    p.add_argument("--ids", nargs="*", help="run these case ids")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=int, default=60, help="seconds per case")
    p.add_argument("--json", help="write every outcome to this file (JSON lines)")
    args = p.parse_args(argv)
    from tests.fuzz.generate import all_ids, sample_ids

    ids = args.ids or (all_ids() if args.all else sample_ids())
    start = time.monotonic()
    results = run(ids, args.workers, args.timeout)
    print(table(results))
    print(f"{len(ids)} cases in {time.monotonic() - start:.0f} s")
    for r in failures(results):
        print(f"{r['outcome'].upper()}: {r['id']}: {r['detail']}")
    if args.json:
        with open(args.json, "w") as f:
            for r in results.values():
                f.write(json.dumps(r) + "\n")
    return 1 if failures(results) else 0


if __name__ == "__main__":
    sys.exit(main())
