"""The conversion report: every Conv, ConvTranspose and pooling node, its pads, the padding
decision konnx took and a one-sentence reason, with the counts at the top.

The rows render the plan's typed records (konnx.plan.PaddingDecision: the node's geometry,
auto_pad, ceil_mode, count_include_pad, as decided before building) completed by the decision
emit took on the built tensors (`ctx.record(...)`: the final mode, e.g. a divisor map or -inf
padding, and sizes only the built tensors know). The plan's node list proves the report
complete: a spatial node without an emit record is listed as "unrecorded", never dropped.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from . import layout as L

SPATIAL_OPS = {"Conv": "conv", "ConvTranspose": "conv_transpose", "MaxPool": "maxpool",
               "AveragePool": "avgpool", "LpPool": "lppool"}
GLOBAL_OPS = ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
_SPATIAL = tuple(SPATIAL_OPS.values())

# The report's vocabulary for a decision, in the order the counts are printed.
LABELS = {
    "same": "Keras padding='same' (identical to the explicit pads)",
    "valid": "no padding: padding='valid'",
    "zero_pad": "explicit zero padding, then padding='valid'",
    "-inf_pad": "max pooling padded with -inf",
    "divisor_map": "average pooling with an exact divisor map",
    "crop": "transposed convolution cropped to the ONNX pads",
}
_RAW = {"explicit": "zero_pad", "zero_pad": "zero_pad", "explicit_-inf": "-inf_pad", "same": "same",
        "valid": "valid", "divisor_map": "divisor_map", "crop": "crop"}


def decisions(result) -> list[dict]:
    """The converters' records for spatial nodes, in conversion order."""
    return [d for d in result.decisions if d.get("kind") in _SPATIAL]


def label(d: dict) -> str:
    """Map a record's decision onto the report's vocabulary (unknown values pass through)."""
    raw = str(d.get("decision"))
    if d.get("kind") == "conv_transpose" and raw == "crop":
        if all(tuple(p) == (0, 0) for p in d.get("pads") or []) and not any(d.get("output_padding") or []):
            return "valid"
    return _RAW.get(raw, raw)


def _sentence(text: str) -> str:
    text = " ".join(str(text or "").split())
    if not text:
        return "No reason recorded."
    first = text.split(" ", 1)[0]
    if first.isalpha():  # leave identifiers (count_include_pad=1, 'same') as they are
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _graph_nodes(result):
    """node name -> (op type, the plan's PaddingDecision or None, output shape) for every
    spatial/global node the plan saw, in graph order."""
    the_plan = getattr(result, "plan", None)
    if the_plan is None:
        return {}
    values = getattr(result, "values", {}) or {}
    out = {}
    for node, _ in the_plan.nodes:
        if node.op_type in SPATIAL_OPS or node.op_type in GLOBAL_OPS:
            v = values.get(node.outputs[0]) if node.outputs else None
            shape = getattr(v, "onnx_shape", None)
            out[node.name] = (node.op_type, the_plan.padding.get(node.name), list(shape[2:]) if shape else None)
    return out


def _row(d: dict, graph: dict) -> dict:
    _, planned, out_shape = graph.get(d.get("node"), (None, None, None))
    nsp = len(d.get("kernel") or []) or len(d.get("pads") or [])
    ext = list(d.get("ceil_extension") or [])
    row = {
        "node": d.get("node"), "op_type": d.get("op_type"),
        "input_size": list(d.get("input_size") or []), "output_size": out_shape,
        "kernel": list((planned.kernel if planned else None) or d.get("kernel") or []),
        "strides": list(d.get("strides") or (planned.strides if planned else None) or [1] * nsp),
        "dilations": list(d.get("dilations") or (planned.dilations if planned else None) or [1] * nsp),
        "pads": [list(p) for p in d.get("pads") or []],
        "auto_pad": planned.auto_pad if planned else "NOTSET",
        "decision": label(d), "decision_raw": d.get("decision"),
        "reason": _sentence(d.get("reason")),
    }
    if d.get("kind") in ("maxpool", "avgpool", "lppool"):
        row["ceil_mode"] = bool(d.get("ceil_mode", planned.ceil_mode if planned else False))
        row["ceil_extension"] = ext
    if d.get("kind") == "avgpool":
        row["count_include_pad"] = bool(d.get("count_include_pad", planned.count_include_pad if planned else False))
    if d.get("kind") == "conv_transpose":
        row["output_padding"] = list(d.get("output_padding") or [])
    if d.get("conv_kind"):
        row["conv_kind"] = d["conv_kind"]
    same_possible = d.get("kind") == "maxpool" or (d.get("kind") == "avgpool" and not row["count_include_pad"])
    if same_possible and row["decision"] != "same" and "'same'" not in row["reason"]:
        row["reason"] = row["reason"][:-1] + _why_not_same(row) + "."
    return row


def _why_not_same(row: dict) -> str:
    """'; 'same' would pad ...' for a pooling row whose pads Keras 'same' does not reproduce."""
    from .padding import tf_same_pads

    sizes, pads = row["input_size"], row["pads"]
    if not pads or len(sizes) != len(pads) or all(tuple(p) == (0, 0) for p in pads):
        return ""
    diffs = []
    for i, (n, k, s, d, p) in enumerate(zip(sizes, row["kernel"], row["strides"], row["dilations"], pads)):
        if n is None:
            continue
        same = tf_same_pads(n, k, s, d)
        if tuple(same) != tuple(p):
            diffs.append(f"{same} on axis {i}")
    return ("; 'same' would pad " + ", ".join(diffs)) if diffs else ""


def build(result) -> dict:
    """The whole report as plain data (what --report FILE.json writes)."""
    graph = _graph_nodes(result)
    rows = [_row(d, graph) for d in decisions(result)]
    recorded = {r["node"] for r in rows}
    counts = Counter(r["decision"] for r in rows)
    ordered = {k: counts[k] for k in list(LABELS) + sorted(set(counts) - set(LABELS)) if counts[k]}
    globals_ = [{"node": name, "op_type": op, "output_size": shape,
                 "reason": "Global pooling covers the whole input, so there is no padding to decide."}
                for name, (op, _, shape) in graph.items() if op in GLOBAL_OPS]
    unrecorded = [{"node": name, "op_type": op} for name, (op, _, _) in graph.items()
                  if op in SPATIAL_OPS and name not in recorded]
    return {
        "layout": layout_summary(result),
        "counts": ordered,
        "by_op": dict(Counter(r["op_type"] for r in rows)),
        "ceil_mode_extended": sum(1 for r in rows if any(r.get("ceil_extension") or [])),
        "nodes": rows,
        "global_pools": globals_,
        "unrecorded": unrecorded,
    }


def _perm_kind(perm) -> str:
    if L.is_identity(perm):
        return "onnx"
    return "channels_last" if len(perm) >= 3 and tuple(perm) == L.channels_last(len(perm)) else "other"


def layout_summary(result) -> dict:
    """The plan's layout decisions: how many computed tensors are stored in each layout, how
    many the plan left to emit, and the transposes ("moves") it asks for."""
    the_plan = getattr(result, "plan", None)
    if the_plan is None:
        return {}
    kinds = Counter(_perm_kind(p) for p in the_plan.perms.values())
    undecided = len(the_plan.undecided)
    moves = [{"node": m.node or "(graph output)", "op_type": m.op_type, "input": m.input, "tensor": m.tensor,
              "from": list(m.src), "to": list(m.dst)} for m in the_plan.moves]
    deviations = [d for d in result.decisions if d.get("kind") == "layout_deviation"]
    return {"tensors": dict(kinds), "decided_at_emit": undecided, "moves": moves, "deviations": deviations}


def _layout_lines(rep: dict) -> list:
    lay = rep.get("layout")
    if not lay:
        return []
    t = lay["tensors"]
    summary = (f"Computed tensors stored channels-last: {t.get('channels_last', 0)}, in the ONNX layout: "
               f"{t.get('onnx', 0)}, in another order (a Transpose kept as a view): {t.get('other', 0)}; "
               f"layouts left to emit (sizes the inferred shapes do not know): {lay['decided_at_emit']}.")
    lines = ["", "## Layout", "", summary]
    if lay["deviations"]:
        lines.append(f"**Warning:** {len(lay['deviations'])} output(s) built in another layout than planned "
                     "(moved to the planned one; a konnx bug, please report it).")
    lines.append(f"{len(lay['moves'])} layout move(s), where a consumer needs another layout than its input "
                 "is stored in (a transpose, or a reshape when only size-1 axes move):")
    if lay["moves"]:
        lines += ["", "| node | op | input | tensor | from | to |", "|---|---|---|---|---|---|"]
        lines += [f"| {_cell(m['node'])} | {m['op_type']} | {m['input']} | {_cell(m['tensor'])} | {m['from']} | "
                  f"{m['to']} |" for m in lay["moves"]]
    return lines


def to_json(result) -> dict:
    return json.loads(json.dumps(build(result), default=_plain))


def _plain(o):
    if isinstance(o, (tuple, set)):
        return list(o)
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def _cell(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _dims(v) -> str:
    return "x".join("?" if d is None else str(d) for d in v) if v else "?"


def to_markdown(result) -> str:
    rep = build(result)
    rows = rep["nodes"]
    lines = ["# konnx conversion report", ""]
    counts = ", ".join(f"{n} {k}" for k, n in rep["counts"].items()) or "none"
    by_op = ", ".join(f"{n} {k}" for k, n in rep["by_op"].items()) or "none"
    lines.append(f"**{len(rows)} spatial node(s)** ({by_op}): {counts}.")
    if rep["ceil_mode_extended"]:
        lines.append(f"{rep['ceil_mode_extended']} pooling node(s) extended at the end for ceil_mode.")
    if rep["global_pools"]:
        lines.append(f"{len(rep['global_pools'])} global pooling node(s): no padding to decide.")
    if rep["unrecorded"]:
        names = ", ".join(f"{u['node']} ({u['op_type']})" for u in rep["unrecorded"])
        lines.append(f"**Warning:** {len(rep['unrecorded'])} spatial node(s) without a recorded decision: {names}.")
    lines += ["", "| decision | meaning |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(LABELS.get(k, k))} |" for k in rep["counts"]]
    lines += ["", "| node | op | in | out | kernel | strides | dilations | pads (begin, end) | decision | reason |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pads = ", ".join(f"({b},{e})" for b, e in r["pads"])
        if r["auto_pad"] != "NOTSET":
            pads += f" [auto_pad={r['auto_pad']}]"
        extra = []
        if r.get("ceil_mode"):
            extra.append(f"ceil_mode, +{r['ceil_extension']} at the end")
        if r.get("count_include_pad"):
            extra.append("count_include_pad")
        if any(r.get("output_padding") or []):
            extra.append(f"output_padding {r['output_padding']}")
        decision = r["decision"] + (f" ({'; '.join(extra)})" if extra else "")
        lines.append("| " + " | ".join(_cell(c) for c in (
            r["node"], r["op_type"], _dims(r["input_size"]), _dims(r["output_size"]), _dims(r["kernel"]),
            _dims(r["strides"]), _dims(r["dilations"]), pads, decision, r["reason"])) + " |")
    for g in rep["global_pools"]:
        lines.append(f"| {_cell(g['node'])} | {g['op_type']} | | {_dims(g['output_size'])} | | | | | none "
                     f"| {g['reason']} |")
    lines += _layout_lines(rep)
    return "\n".join(lines) + "\n"


def write_report(result, path) -> None:
    path = Path(path)
    if path.suffix == ".json":
        path.write_text(json.dumps(to_json(result), indent=2) + "\n")
    else:
        path.write_text(to_markdown(result))
