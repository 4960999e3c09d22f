"""The ONNX reference implementation (onnx.reference.ReferenceEvaluator) as the judge when konnx
and onnxruntime disagree. onnxruntime is the everyday oracle; where it deviates from the ONNX
spec (TopK sorted=0 order, NaN handling in ArgMax/Clip/GridSample, ...) the reference
implementation, which follows the spec's text, decides: an output konnx computes as the
reference does is not a konnx failure, and verify says that onnxruntime deviates.

The reference runs in a child process (`python -m konnx.reference DIR`), so a model too slow for
its numpy loops is stopped at a time limit instead of hanging verify; models above a size limit
are not given to it at all. This module imports neither Keras nor konnx.api."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from typing import Optional

import numpy as np
import onnx

REFERENCE_TIMEOUT = 60.0  # seconds the reference implementation may take on one sample
REFERENCE_MAX_ELEMENTS = 20_000_000  # weights + inputs; above that the reference is not tried
_CHILD_ERROR = 3


def _elements(model: onnx.ModelProto, feeds: dict) -> int:
    n = sum(int(np.prod(t.dims, dtype=np.int64)) for t in model.graph.initializer)
    return n + sum(int(np.asarray(v).size) for v in feeds.values())


def run_reference(model: onnx.ModelProto, feeds: dict, outputs: list,
                  timeout: float = REFERENCE_TIMEOUT) -> tuple[Optional[dict], str]:
    """The reference implementation's values of `outputs` on `feeds`: (values by name, "") or
    (None, why it could not decide: too large, timed out, failed)."""
    size = _elements(model, feeds)
    if size > REFERENCE_MAX_ELEMENTS:
        return None, (f"not tried: the model's weights and inputs hold {size:,} elements, above the "
                      f"{REFERENCE_MAX_ELEMENTS:,} the reference implementation is given")
    if model.ByteSize() >= 2**31 - 1:
        return None, "not tried: the model is over 2 GB"
    with tempfile.TemporaryDirectory(prefix="konnx_ref_") as d:
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(model.SerializeToString())
        np.savez(os.path.join(d, "feeds.npz"), **{k: np.asarray(v) for k, v in feeds.items()})
        with open(os.path.join(d, "outputs.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(outputs))
        try:
            proc = subprocess.run([sys.executable, "-m", "konnx.reference", d], capture_output=True, text=True,
                                  timeout=timeout, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:g} s"
        except OSError as e:
            return None, f"could not start it: {e}"
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            return None, f"it failed on this model: {lines[-1][:300] if lines else f'exit code {proc.returncode}'}"
        with np.load(os.path.join(d, "result.npz"), allow_pickle=False) as data:
            return {name: data[f"o{i}"] for i, name in enumerate(outputs)}, ""


def overflows(ort, got, feeds: dict) -> bool:
    """konnx gives inf/NaN where onnxruntime stays finite, on finite inputs: precision lost (a
    float16 sum of squares that overflows where onnxruntime accumulates in float32), which the
    reference implementation, computing the formula in the input's type, may share; it is not
    onnxruntime deviating from the spec, so the reference does not excuse it."""
    ort, got = np.asarray(ort), np.asarray(got)
    if ort.shape != got.shape or ort.dtype.kind != "f" or got.dtype.kind != "f":
        return False
    floats = [np.asarray(v) for v in feeds.values() if np.asarray(v).dtype.kind == "f"]
    if not all(np.isfinite(v).all() for v in floats):
        return False
    return bool(np.any(np.isfinite(ort) & ~np.isfinite(got)))


def judge(model: onnx.ModelProto, feeds: dict, got: list, comparisons: list, rtol: float, atol: float,
          timeout: float = REFERENCE_TIMEOUT, ort: Optional[dict] = None) -> list:
    """`comparisons` (konnx vs onnxruntime, per graph output, `got` konnx's values, `ort`
    onnxruntime's by name) with each failing one judged by the reference implementation: konnx
    matching the reference makes it ok (judge 'onnx.reference', onnxruntime deviating); else it
    stays a failure, the note saying what the reference gave. konnx overflowing finite inputs
    where onnxruntime does not is never excused (see overflows)."""
    from .oracle import compare

    ort = ort or {}
    overflow = {c.name for c, g in zip(comparisons, got)
                if not c.ok and c.name in ort and overflows(ort[c.name], g, feeds)}
    bad = [c.name for c in comparisons if not c.ok and c.name not in overflow]
    ref, why = run_reference(model, feeds, bad, timeout) if bad else (None, "")
    out = []
    for c, g in zip(comparisons, got):
        if c.ok:
            out.append(c)
        elif c.name in overflow:
            out.append(replace(c, note=_join(c.note, _OVERFLOW_NOTE)))
        elif ref is None:
            out.append(replace(c, note=_join(c.note, f"the ONNX reference implementation could not judge: {why}")))
        else:
            rc = compare(c.name, ref[c.name], g, rtol, atol)
            if rc.ok:
                out.append(replace(c, ok=True, judge="onnx.reference", reference_max_abs=rc.max_abs,
                                   note="onnxruntime deviates from the ONNX spec here: konnx matches the ONNX "
                                        f"reference implementation (max abs error {rc.max_abs:.3g}), onnxruntime "
                                        f"differs by {c.max_abs:.3g}"))
            else:
                out.append(replace(c, reference_max_abs=rc.max_abs,
                                   note=_join(c.note, "the ONNX reference implementation differs from konnx too "
                                                      f"(max abs error {rc.max_abs:.3g})")))
    return out


_OVERFLOW_NOTE = ("konnx overflows to inf/NaN on finite inputs where onnxruntime does not: precision lost, not "
                  "judged by the reference implementation")


def deviation_note(outputs: list) -> str:
    """One line naming the outputs where only onnxruntime deviates from the spec ('' if none)."""
    names = list(dict.fromkeys(o.name for o in outputs if getattr(o, "judge", "") == "onnx.reference"))
    if not names:
        return ""
    return (f"onnxruntime deviates from the ONNX spec on this model: on output(s) {', '.join(names)} konnx matches "
            "the ONNX reference implementation (onnx.reference) and onnxruntime does not; the conversion is correct")


def judge_nodes(proto: onnx.ModelProto, cases: list, rtol: float, atol: float,
                timeout: float = REFERENCE_TIMEOUT) -> dict:
    """Per-node judgement for the bisect: `cases` are (node, its input values as konnx computed
    them, the output's name, konnx's value of it). The reference implementation runs every such
    node alone on konnx's own inputs (one child process for all); returns {output: max abs error}
    for the outputs where konnx computes what the reference computes. A node whose inputs are not
    all known, or holding a subgraph, is not judged."""
    from .oracle import compare

    nodes, feeds, wanted = [], {}, {}
    for i, (node, values, out, got) in enumerate(cases):
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            continue
        names = [n for n in node.input if n]
        if any(v is None or np.asarray(v).dtype.kind not in "biuf" for v in values) or len(values) != len(names):
            continue
        rename = {n: f"k{i}_in{j}" for j, n in enumerate(names)}
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [rename[n] if n else "" for n in node.input]
        copy.output[:] = [f"k{i}_out{j}" if o else "" for j, o in enumerate(node.output)]
        nodes.append(copy)
        feeds.update({rename[n]: np.asarray(v) for n, v in zip(names, values)})
        wanted[out] = (f"k{i}_out{list(node.output).index(out)}", got)
    if not wanted:
        return {}
    graph = onnx.helper.make_graph(
        nodes, "konnx_node_judge",
        [onnx.helper.make_tensor_value_info(k, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for k, v in feeds.items()],
        [onnx.helper.make_empty_tensor_value_info(name) for name, _ in wanted.values()])
    model = onnx.helper.make_model(graph, opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
    model.functions.extend(proto.functions)
    ref, _ = run_reference(model, feeds, [name for name, _ in wanted.values()], timeout)
    if ref is None:
        return {}
    out = {}
    for onnx_name, (name, got) in wanted.items():
        c = compare(onnx_name, ref[name], got, rtol, atol)
        if c.ok:
            out[onnx_name] = c.max_abs
    return out


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _child(folder: str) -> None:
    import warnings

    from onnx.reference import ReferenceEvaluator

    with open(os.path.join(folder, "outputs.txt"), encoding="utf-8") as f:
        outputs = f.read().split("\n")
    with np.load(os.path.join(folder, "feeds.npz"), allow_pickle=False) as data:
        feeds = {k: data[k] for k in data.files}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = ReferenceEvaluator(os.path.join(folder, "model.onnx")).run(outputs, feeds)
    np.savez(os.path.join(folder, "result.npz"), **{f"o{i}": np.asarray(v) for i, v in enumerate(values)})


if __name__ == "__main__":
    try:
        _child(sys.argv[1])
    except Exception as e:  # noqa: BLE001 - any failure of the reference: reported to the parent as text
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(_CHILD_ERROR)
