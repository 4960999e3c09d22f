"""The fuzz suite (issue 14): hostile mutations of the ONNX node tests and of a test network,
each compared with onnxruntime (and, on disagreement, the ONNX reference implementation).

- test_sample: a fixed sample of SAMPLE cases (about 1-3 minutes on 2 cores); fails on any
  wrong answer, crash or hang that is not listed in known.KNOWN with its reason, and on a
  listed case that no longer fails (so the list shrinks as konnx improves);
- test_all (slow): every case (`python -m tests.fuzz.run --all` prints the table);
- the harness itself: a hang, a blocked hang, a dying worker and an exception are classified.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.fuzz import known, run
from tests.fuzz.generate import all_ids, build, sample_ids
from tests.fuzz.worker import FAIL_OUTCOMES, _decide, agree

SAMPLE = 500


def _check(results: dict) -> None:
    new = [r for r in run.failures(results) if r["id"] not in known.KNOWN]
    fixed = [i for i in results if i in known.KNOWN and results[i]["outcome"] not in FAIL_OUTCOMES]
    lines = [f"{r['outcome'].upper()}: {r['id']}: {r['detail'][:300]}" for r in new]
    lines += [f"now passes ({results[i]['outcome']}), remove it from tests/fuzz/known.py: {i}" for i in fixed]
    assert not lines, run.table(results) + "\n" + "\n".join(lines)


def test_sample():
    ids = sample_ids(SAMPLE)
    results = run.run(ids, workers=2, timeout=60)
    assert set(results) == set(ids)
    _check(results)


@pytest.mark.slow
def test_all():
    ids = all_ids()
    assert len(ids) >= 3000
    results = run.run(ids, workers=2, timeout=120)
    assert set(results) == set(ids)
    _check(results)


def test_cases_are_deterministic():
    ids = sample_ids(SAMPLE)
    assert ids == sample_ids(SAMPLE) and len(set(ids)) == len(ids) == SAMPLE
    for cid in ids[::97]:
        (m1, f1), (m2, f2) = build(cid), build(cid)
        if isinstance(m1, bytes):
            assert m1 == m2
            continue
        assert m1.SerializeToString() == m2.SerializeToString()
        assert f1.keys() == f2.keys() and all(np.array_equal(f1[k], f2[k], equal_nan=True) for k in f1)


def test_harness_classifies_hangs_deaths_and_exceptions():
    ids = ["selftest:sleep", "selftest:raise", "node:test_abs:none:0", "selftest:exit", "selftest:block"]
    results = run.run(ids, workers=1, timeout=2, grace=3)
    got = {i: results[i]["outcome"] for i in ids}
    assert got == {"selftest:sleep": "hang", "selftest:block": "hang", "selftest:exit": "crash",
                   "selftest:raise": "crash", "node:test_abs:none:0": "match"}, results


def test_agreement_rule():
    nan, inf = float("nan"), float("inf")
    assert agree([np.array([1.0, nan, inf])], [np.array([1.00001, nan, inf])])
    assert not agree([np.array([1.0, nan])], [np.array([1.0, 0.0])])
    assert not agree([np.array([inf])], [np.array([-inf])])
    assert not agree([np.array([1.0, 2.0])], [np.array([[1.0, 2.0]])])
    assert not agree([np.array([1, 2])], [np.array([1, 3])])
    import ml_dtypes

    bf = ml_dtypes.bfloat16
    assert agree([np.array([1.0, 100.0, nan], bf)], [np.array([1.0078125, 100.5, nan], bf)])  # one bfloat16 step
    assert not agree([np.array([1.0, 100.0], bf)], [np.array([1.0, 105.0], bf)])
    assert not agree([np.array([1.0, nan], bf)], [np.array([1.0, 0.0], bf)])


def test_decision_table():
    ok, ref_konnx = ("ok", [np.array([1.0])]), lambda: [np.array([2.0])]
    assert _decide(*ok, "ok", [np.array([2.0])], ref_konnx)[0] == "ort_deviates"
    assert _decide(*ok, "ok", [np.array([2.0])], lambda: None)[0] == "wrong"
    ref_other = lambda: [np.array([3.0])]  # noqa: E731 - the reference disagreeing with both
    assert _decide(*ok, "ok", [np.array([2.0])], ref_other)[0] == "wrong"  # finite inputs: ort is the oracle
    assert _decide(*ok, "ok", [np.array([2.0])], ref_other, True)[0] == "oracles_disagree"
    assert _decide(*ok, "ok", [np.array([2.0])], lambda: [np.array([1.0])], True)[0] == "wrong"
    assert _decide(*ok, "refused", "x", ref_konnx)[0] == "konnx_refuses"
    assert _decide("invalid", "x", "refused", "y", ref_konnx)[0] == "both_refuse"
    assert _decide("invalid", "x", "ok", [], ref_konnx)[0] == "converts_invalid"
    lacks = "NOT_IMPLEMENTED : Could not find an implementation for Max(13)"
    assert _decide("invalid", lacks, "ok", [np.array([2.0])], ref_konnx)[0] == "ort_unsupported"
    assert _decide("invalid", lacks, "ok", [np.array([3.0])], ref_konnx)[0] == "converts_invalid"
    assert _decide("invalid", lacks, "ok", [np.array([2.0])], lambda: None)[0] == "converts_invalid"
    assert _decide("runtime", "indices out of range", "ok", [], ref_konnx)[0] == "invalid_inputs"
    assert _decide("runtime", lacks, "refused", "y", ref_konnx)[0] == "both_refuse"
    assert _decide(*ok, "crash", "x", ref_konnx)[0] == "crash"
    assert _decide(*ok, "run_error", "x", ref_konnx)[0] == "crash"


def test_oracle_death_after_konnx_refused():
    """A worker that dies inside onnxruntime after konnx refused the model: both refuse it; one
    the watchdog kills there: onnxruntime hangs, konnx answered; a death or a kill after konnx
    converted it stays a failure."""
    class Proc:
        returncode = -6

    refused = {"c": {"konnx": "c", "state": "refused", "detail": "InvalidModelError: Split node 'sp': ..."}}
    assert run._oracle_death("c", Proc(), refused)["outcome"] == "both_refuse"
    assert run._oracle_death("c", Proc(), {"c": {"konnx": "c", "state": "ok", "detail": ""}}) is None
    assert run._oracle_death("c", Proc(), {}) is None
    killed = Proc()
    killed._konnx_killed = True
    assert run._oracle_death("c", killed, refused)["outcome"] == "ort_hangs"
    assert run._oracle_death("c", killed, {"c": {"konnx": "c", "state": "ok", "detail": ""}}) is None
