"""One fuzz worker process: `python -m tests.fuzz.worker TIMEOUT < ids` runs each case id (one
per line) and prints one JSON line per case: {"start": id} before it, then {"id", "outcome",
"detail"} after it. The runner (tests/fuzz/run.py) kills a worker that stops answering (HANG)
and counts a case that kills its worker as a CRASH, unless the worker died inside onnxruntime
after konnx had refused the model (then both refuse it: BOTH_REFUSE).

Outcomes (OK_OUTCOMES are not failures):
- match: konnx's model gives onnxruntime's outputs;
- ort_deviates: they differ, and the ONNX reference implementation gives konnx's outputs;
- konnx_refuses: onnxruntime runs the model, konnx refuses it with its own error;
- both_refuse: onnxruntime refuses the model (or its inputs) and konnx refuses it too;
- ort_unsupported: onnxruntime has no kernel for this valid model (NOT_IMPLEMENTED, an input
  type its Python API cannot take), konnx converts it and gives the reference implementation's
  outputs;
- invalid_inputs: onnxruntime loads the model but refuses to run it on these inputs (indices out
  of range, integer division by zero, a feed of another type): the inputs, not the model, are
  invalid, and what konnx's model does with them is not judged;
- converts_invalid: onnxruntime refuses the model when loading it, konnx converts it (a failure
  unless tests/fuzz/known.py says why converting it is right);
- oracles_disagree: the inputs hold NaN/Inf, and onnxruntime and the reference implementation
  disagree with each other as well as with konnx (which bins of a DFT of inf come out inf, -inf or
  NaN depends on the algorithm's inf - inf and inf * 0): there is no oracle;
- wrong: both run and disagree, the reference implementation does not side with konnx;
- crash: any exception that is not a konnx ConversionError, or konnx's internal-error wrapper;
- ort_hangs: konnx refused the model, then onnxruntime (run after it) gave no answer within the
  timeout (decided by the runner);
- hang: no answer within the timeout (decided by the runner).
"""
from __future__ import annotations

import json
import os
import re
import resource
import signal
import sys
import tempfile
import traceback
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

OK_OUTCOMES = ("match", "ort_deviates", "oracles_disagree", "konnx_refuses", "both_refuse", "ort_unsupported",
               "invalid_inputs", "ort_hangs")
FAIL_OUTCOMES = ("wrong", "crash", "hang", "converts_invalid")
ORT_LACKS = ("NOT_IMPLEMENTED", "can't be converted to MLDataType")
INTERNAL_MARKERS = ("conversion failed:", "internal error", "internal:")
MEMORY_LIMIT = 6 << 30


class CaseTimeout(BaseException):
    """Raised by the per-case alarm (a BaseException, so no `except Exception` swallows it)."""


def _alarm(signum, frame):
    raise CaseTimeout()


def _ort(model_bytes: bytes, feeds: dict):
    """('ok', outputs) | ('invalid', msg) (session refused) | ('runtime', msg) (run refused)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - any refusal by the oracle is an answer
        return "invalid", f"{type(e).__name__}: {str(e)[:200]}"
    try:
        return "ok", sess.run(None, feeds)
    except Exception as e:  # noqa: BLE001
        return "runtime", f"{type(e).__name__}: {str(e)[:200]}"


def _konnx(model, feeds: dict):
    """('ok', outputs) | ('refused', msg) | ('crash', msg)."""
    import keras
    import numpy as np

    import konnx
    from konnx.errors import ConversionError

    try:
        km = konnx.convert(model)
    except ConversionError as e:
        msg = str(e)
        if any(k in msg for k in INTERNAL_MARKERS):
            cause = e.__cause__
            tail = f" | cause: {str(cause)[-300:]} @ {_where(cause)}" if cause is not None else ""
            return "crash", f"{type(e).__name__}: {msg[:200]}{tail}"
        return "refused", f"{type(e).__name__}: {msg[:300]}"
    except CaseTimeout:
        raise
    except BaseException as e:  # noqa: BLE001 - anything else leaving konnx.convert is a bug
        return "crash", f"{type(e).__name__} in convert: {str(e)[:200]} @ {_where(e)}"
    names = [t.name.split(":")[0] for t in km.inputs]
    try:
        args = [feeds[n] for n in _input_order(model, names, feeds)]
        out = km(args if len(args) != 1 else args[0])
    except CaseTimeout:
        raise
    except BaseException as e:  # noqa: BLE001
        return "run_error", f"{type(e).__name__} running the model: {str(e)[:200]}"
    out = out if isinstance(out, (list, tuple)) else [out]
    try:
        return "ok", [np.asarray(o) for o in out]
    except (TypeError, ValueError):  # e.g. bfloat16 tensors numpy cannot take directly
        return "ok", [np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(o, "float32"))) for o in out]


def _input_order(model, names, feeds):
    init = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in init]


def _where(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    mine = [f for f in tb if "konnx" in f.filename] or tb
    f = mine[-1] if mine else None
    return f"{os.path.basename(f.filename)}:{f.lineno}" if f else "?"


def agree(ref, got) -> bool:
    """Same count and shapes; equal NaN positions and infinities; finite values within
    1e-4 x max(1, max|ref|) + 1e-3 |ref| (float), exactly equal otherwise."""
    import numpy as np

    if len(ref) != len(got):
        return False
    for r, g in zip(ref, got):
        r, g = np.asarray(r), np.asarray(g)
        if r.shape != g.shape:
            return False
        if _low_precision(r) or _low_precision(g):  # bfloat16 / float8: two of the type's epsilons
            tol = 2 * max(_eps(r), _eps(g))
            r, g = r.astype(np.float64), g.astype(np.float64)
            if not np.array_equal(np.isnan(r), np.isnan(g)) or not np.array_equal(r[np.isinf(r)], g[np.isinf(r)]):
                return False
            fin = np.isfinite(r)
            scale = max(1.0, float(np.max(np.abs(r[fin])))) if fin.any() else 1.0
            if not np.all(np.abs(g[fin] - r[fin]) <= tol * scale):
                return False
            continue
        if r.dtype.kind not in "fc":
            if not np.array_equal(r.astype(np.float64), g.astype(np.float64)):
                return False
            continue
        r64, g64 = r.astype(np.float64), g.astype(np.float64)
        if not np.array_equal(np.isnan(r64), np.isnan(g64)):
            return False
        fin = np.isfinite(r64)
        if not np.array_equal(r64[~fin & ~np.isnan(r64)], g64[~fin & ~np.isnan(r64)]):
            return False
        if fin.any():
            scale = max(1.0, float(np.max(np.abs(r64[fin]))))
            if not np.all(np.abs(g64[fin] - r64[fin]) <= 1e-4 * scale + 1e-3 * np.abs(r64[fin])):
                return False
    return True


def _low_precision(a) -> bool:
    """A float type numpy has no kind for (ml_dtypes' bfloat16, float8 types: kind 'V')."""
    return a.dtype.kind == "V" and ("float" in a.dtype.name)


def _eps(a) -> float:
    import ml_dtypes
    import numpy as np

    return float(ml_dtypes.finfo(a.dtype).eps) if _low_precision(a) else float(np.finfo(np.float32).eps)


def _reference(model, feeds):
    from onnx.reference import ReferenceEvaluator

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ReferenceEvaluator(model).run(None, feeds)
    except CaseTimeout:
        raise
    except BaseException:  # noqa: BLE001 - the reference cannot decide
        return None


def _selftest(kind: str) -> tuple[str, str]:
    """Cases that exercise the harness itself (tests/fuzz/test_fuzz.py): a hang the alarm
    interrupts, a hang it cannot (SIGALRM blocked), a worker that dies, an exception."""
    import time

    if kind == "sleep":
        time.sleep(3600)
    elif kind == "block":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)
    elif kind == "exit":
        os._exit(3)
    raise RuntimeError("selftest")


def classify(case_id: str, note=None) -> tuple[str, str]:
    """(outcome, detail) of one case; `note(dict)` is told konnx's verdict before onnxruntime runs."""
    from tests.fuzz.generate import build

    if case_id.startswith("selftest:"):
        return _selftest(case_id.split(":")[1])
    model, feeds = build(case_id)
    if isinstance(model, bytes):
        return _classify_file(model)
    # konnx first, its verdict reported before onnxruntime runs: onnxruntime aborts the process
    # on a few invalid models (a failed assertion in its shape inference), and the runner then
    # still knows whether konnx refused the model (run.py: _oracle_death)
    k_state, k_out = _konnx(model, feeds)
    if note is not None:
        note({"konnx": case_id, "state": k_state, "detail": str(k_out)[:300] if k_state != "ok" else ""})
    ort_state, ort_out = _ort(model.SerializeToString(), feeds)
    return _decide(ort_state, ort_out, k_state, k_out, lambda: _reference(model, feeds), _nonfinite(feeds))


def _classify_file(data: bytes) -> tuple[str, str]:
    import onnx

    from tests.fuzz.generate import random_feeds

    try:
        model = onnx.load_from_string(data)
        feeds = random_feeds(model)
    except Exception:  # noqa: BLE001 - not parseable: only konnx's refusal is checked
        model, feeds = None, {}
    ort_state, ort_out = _ort(data, feeds) if model is not None else ("invalid", "unparseable")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        with open(path, "wb") as f:
            f.write(data)
        k_state, k_out = _konnx_path(path, model, feeds)
    return _decide(ort_state, ort_out, k_state, k_out, lambda: _reference(model, feeds), _nonfinite(feeds))


def _konnx_path(path, model, feeds):
    import konnx
    from konnx.errors import ConversionError

    if model is None:  # unparseable: convert must refuse it cleanly
        try:
            konnx.convert(path)
        except ConversionError as e:
            msg = str(e)
            return ("crash" if any(k in msg for k in INTERNAL_MARKERS) else "refused"), msg[:300]
        except CaseTimeout:
            raise
        except BaseException as e:  # noqa: BLE001
            return "crash", f"{type(e).__name__} in convert: {str(e)[:200]} @ {_where(e)}"
        return "ok", []
    return _konnx(model, feeds)


def _nonfinite(feeds: dict) -> bool:
    import numpy as np

    return any(np.asarray(v).dtype.kind in "fc" and not np.isfinite(np.asarray(v)).all() for v in feeds.values())


def _decide(ort_state, ort_out, k_state, k_out, reference, nonfinite_inputs: bool = False) -> tuple[str, str]:
    if k_state == "crash":
        return "crash", k_out
    if ort_state != "ok":
        if k_state == "refused":
            return "both_refuse", f"ort: {ort_out} | konnx: {k_out}"
        if any(m in ort_out for m in ORT_LACKS):  # a valid model onnxruntime has no kernel (or feed) for
            ref = reference() if k_state == "ok" else None
            if ref is not None and agree(ref, k_out):
                return "ort_unsupported", f"ort: {ort_out} | konnx gives the reference implementation's outputs"
            why = "konnx failed to run it" if k_state != "ok" else (
                "the reference implementation fails on it" if ref is None else "the reference implementation differs from konnx")
            return "converts_invalid", f"ort: {ort_out} | {why}"
        if ort_state == "runtime":
            return "invalid_inputs", f"ort: {ort_out}"
        return "converts_invalid", f"ort: {ort_out}"
    if k_state == "refused":
        return "konnx_refuses", k_out
    if k_state == "run_error":
        return "crash", k_out
    if agree(ort_out, k_out):
        return "match", ""
    ref = reference()
    if ref is not None and agree(ref, k_out):
        return "ort_deviates", "the reference implementation gives konnx's outputs"
    if ref is not None and nonfinite_inputs and not agree(ref, ort_out):
        return "oracles_disagree", ("NaN/Inf inputs on which onnxruntime and the reference implementation disagree "
                                    "with each other too: the spec leaves the result to the algorithm")
    return "wrong", f"konnx disagrees with onnxruntime (reference {'fails' if ref is None else 'agrees with neither/ort'})"


def main() -> None:
    timeout = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    signal.signal(signal.SIGALRM, _alarm)
    warnings.simplefilter("ignore")
    out = sys.stdout
    sys.stdout = sys.stderr  # only the JSON lines go to the runner
    import keras  # noqa: F401 - warm up outside the per-case alarm
    import konnx  # noqa: F401
    from tests.fuzz.generate import base_cases

    base_cases()
    print(json.dumps({"ready": True}), file=out, flush=True)
    for line in sys.stdin:
        case_id = line.strip()
        if not case_id:
            continue
        print(json.dumps({"start": case_id}), file=out, flush=True)
        signal.alarm(timeout)
        try:
            outcome, detail = classify(case_id, lambda msg: print(json.dumps(msg), file=out, flush=True))
        except CaseTimeout:
            outcome, detail = "hang", f"no answer in {timeout} s"
        except BaseException as e:  # noqa: BLE001 - the harness itself: reported, not hidden
            outcome, detail = "crash", f"harness: {type(e).__name__}: {str(e)[:200]} @ {_where(e)}"
        finally:
            signal.alarm(0)
        detail = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(detail)).split())
        print(json.dumps({"id": case_id, "outcome": outcome, "detail": detail}), file=out, flush=True)


if __name__ == "__main__":
    main()
