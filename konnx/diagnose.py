"""Per-node error metrics and the likely cause of a divergence, for `verify --bisect`.

A row per ONNX node output: max abs / max relative error, RMSE, cosine similarity and the
share of mismatching elements against onnxruntime. The cause is stated from what konnx
decided for the node (its recorded decisions) and what its inputs looked like: NaN/Inf,
values beyond float16, exp of huge logits, and whether the error was already in its inputs
(inherited) or appears at this node (created).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

FLOAT16_MAX = 65504.0
_EXP_OPS = {"Softmax", "LogSoftmax", "ReduceLogSumExp", "Exp", "Softplus", "Sigmoid"}
_EXP_LIMIT = {"float16": 11.0, "bfloat16": 88.0, "float32": 88.0, "float64": 709.0}
_DECISION_KEYS = ("decision", "pads", "ceil_mode", "count_include_pad", "coordinate_transformation_mode",
                  "mode", "folded_into")


@dataclass
class NodeError:
    index: int
    node: str
    op_type: str
    output: str
    shape: list
    max_abs: float
    max_rel: float
    rmse: float
    cosine: float
    mismatch: float
    tolerance: float
    ok: bool
    module: Optional[str] = None
    source: Optional[str] = None
    origin: str = ""  # "created" | "inherited" | "" (agrees)
    causes: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    samples_diverging: int = 0
    judge: str = "onnxruntime"  # "onnx.reference": onnxruntime differs, the reference sides with konnx

    @property
    def excess(self) -> float:
        """How far beyond the tolerance (max abs / tolerance)."""
        if self.ok:
            return 0.0
        return float("inf") if self.tolerance <= 0 else self.max_abs / self.tolerance


def rmse_cosine(ref: np.ndarray, got: np.ndarray) -> tuple:
    """RMSE and cosine similarity (1.0 for two zero tensors). Where the two disagree on NaN/Inf
    elements, RMSE is inf and the cosine undefined (nan)."""
    r = np.asarray(ref, dtype=np.float64).ravel()
    g = np.asarray(got, dtype=np.float64).ravel()
    if r.shape != g.shape or r.size == 0:
        return (float("inf"), 0.0) if r.shape != g.shape else (0.0, 1.0)
    finite = np.isfinite(r) & np.isfinite(g)
    nonfinite_disagree = False
    if not finite.all():
        nonfinite_disagree = bool(np.any(~finite & ~((np.isnan(r) & np.isnan(g)) | (r == g))))
        r, g = r[finite], g[finite]
    d = r - g  # elementwise sums, not BLAS dot: no thread start-up for one pass over the data
    rmse = float("inf") if nonfinite_disagree else (float(np.sqrt(np.mean(d * d))) if r.size else 0.0)
    nr, ng = float(np.sqrt(np.sum(r * r))), float(np.sqrt(np.sum(g * g)))
    cosine = 1.0 if nr == 0 and ng == 0 else (float(np.sum(r * g) / (nr * ng)) if nr and ng else 0.0)
    return rmse, (float("nan") if nonfinite_disagree else cosine)


def _stats(a) -> dict:
    a = np.asarray(a)
    if a.size == 0 or not np.issubdtype(a.dtype, np.floating):
        return {"nan": 0, "inf": 0, "max_abs": 0.0, "dtype": str(a.dtype)}
    finite = a[np.isfinite(a)]
    return {"nan": int(np.isnan(a).sum()), "inf": int(np.isinf(a).sum()),
            "max_abs": float(np.max(np.abs(finite))) if finite.size else 0.0, "dtype": str(a.dtype)}


def _value_causes(op_type: str, ins_ref: list, ins_got: list, out_ref, out_got) -> list:
    causes = []
    for side, ins, out in (("konnx", ins_got, out_got), ("onnxruntime", ins_ref, out_ref)):
        s_in = [_stats(a) for a in ins if a is not None]
        s_out = _stats(out)
        bad_in = sum(s["nan"] + s["inf"] for s in s_in)
        if bad_in:
            causes.append(f"{side}: the inputs hold {bad_in} NaN/Inf value(s)")
        elif s_out["nan"] + s_out["inf"]:
            causes.append(f"{side}: this node produces {s_out['nan']} NaN and {s_out['inf']} Inf value(s) "
                          "from finite inputs")
    ref_in = [_stats(a) for a in ins_ref if a is not None]
    big = max([s["max_abs"] for s in ref_in] + [_stats(out_ref)["max_abs"]] + [0.0])
    dtypes = {s["dtype"] for s in ref_in} | {_stats(out_ref)["dtype"]}
    overflow = {side for side, out in (("konnx", out_got), ("onnxruntime", out_ref)) if _stats(out)["inf"]}
    finite_in = not any(s["nan"] + s["inf"] for s in ref_in)
    if "float16" in dtypes and (big > FLOAT16_MAX / 4 or (finite_in and len(overflow) == 1)):
        causes.append(f"float16 overflow: inputs up to |x| = {big:.4g}; "
                      + (f"only {overflow.pop()} overflows to Inf, so " if len(overflow) == 1 else "")
                      + f"an intermediate of this node (a square, a sum) exceeds the float16 maximum {FLOAT16_MAX:g} "
                      "where one side computes it in float16 and the other in float32")
    if op_type in _EXP_OPS and ref_in:
        dt = ref_in[0]["dtype"]
        lim = _EXP_LIMIT.get(dt, 88.0)
        if ref_in[0]["max_abs"] > lim:
            causes.append(f"ill-conditioned: {op_type} of inputs up to |x| = {ref_in[0]['max_abs']:.4g} "
                          f"(exp overflows {dt} above {lim:g}); results depend on max-subtraction and accumulation")
    if op_type.startswith("Reduce") and "float16" in dtypes:
        causes.append("a float16 reduction: accumulation precision differs between implementations")
    return causes


def _decision_text(d: dict) -> str:
    parts = [f"{k}={d[k]}" for k in _DECISION_KEYS if k in d]
    head = f"{d.get('kind', d.get('op_type', 'decision'))}: " + ", ".join(parts)
    return head + (f" ({d['reason']})" if d.get("reason") else "")


def explain(row: NodeError, input_rows: list, ins_ref: list, ins_got: list, out_ref, out_got) -> None:
    """Fill row.origin and row.causes. input_rows: the rows of the node's inputs (None when the
    input is a graph input or a constant, which are identical on both sides)."""
    known = [r for r in input_rows if r is not None]
    diverging = [r for r in known if not r.ok]
    if diverging:
        worst = max(diverging, key=lambda r: r.excess)
        row.origin = "inherited"
        growth = row.max_abs / worst.max_abs if worst.max_abs else float("inf")
        row.causes.append(f"inherited: input '{worst.output}' (node {worst.node}) already differs by "
                          f"{worst.max_abs:.3g}; this node changes the error x{growth:.3g}")
    else:
        row.origin = "created"
        row.causes.append("created here: every input of this node agrees with onnxruntime and its output does not "
                          "(the node's computation, its weights or its conversion decision differ)")
    row.causes.extend(_value_causes(row.op_type, ins_ref, ins_got, out_ref, out_got))
    row.causes.extend(f"konnx decision: {_decision_text(d)}" for d in row.decisions)


def worst(rows: list, n: int = 5) -> list:
    """The diverging rows the error is created at, worst first, then the inherited ones."""
    bad = [r for r in rows if not r.ok]
    return sorted(bad, key=lambda r: (r.origin != "created", -min(r.excess, 1e300)))[:n]


def merge_samples(per_sample: list) -> list:
    """One row per node over several samples: the worst figures of any sample."""
    counts = [sum(1 for s in per_sample if not s[i].ok) for i in range(len(per_sample[0]))]
    rows = per_sample[0]
    for other in per_sample[1:]:
        for r, o in zip(rows, other):
            r.max_abs, r.max_rel, r.rmse = max(r.max_abs, o.max_abs), max(r.max_rel, o.max_rel), max(r.rmse, o.rmse)
            r.cosine = float("nan") if np.isnan(r.cosine) or np.isnan(o.cosine) else min(r.cosine, o.cosine)
            r.mismatch = max(r.mismatch, o.mismatch)
            r.tolerance = min(r.tolerance, o.tolerance)
            if not o.ok and r.ok:
                r.origin, r.causes = o.origin, o.causes
            r.ok = r.ok and o.ok
    for r, n in zip(rows, counts):
        r.samples_diverging = n
    return rows
