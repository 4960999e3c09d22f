"""The conversion report: every spatial node's padding decision, with a reason."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

_SPATIAL = ("conv", "conv_transpose", "maxpool", "avgpool")


def decisions(result) -> list[dict]:
    return [d for d in result.decisions if d.get("kind") in _SPATIAL]


def to_json(result) -> dict:
    ds = decisions(result)
    counts = Counter(d["decision"] for d in ds)
    return {"counts": dict(counts), "nodes": [_plain(d) for d in ds]}


def _plain(d: dict) -> dict:
    return json.loads(json.dumps(d, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


def to_markdown(result) -> str:
    ds = decisions(result)
    counts = Counter(d["decision"] for d in ds)
    lines = ["# konnx conversion report", ""]
    lines.append(f"{len(ds)} spatial node(s): " + ", ".join(f"{n} {k}" for k, n in counts.most_common()))
    lines += ["", "| node | op | kernel | strides | pads (begin, end) | decision | reason |",
              "|---|---|---|---|---|---|---|"]
    for d in ds:
        pads = ", ".join(f"({b},{e})" for b, e in d.get("pads", []))
        lines.append(f"| {d['node']} | {d['op_type']} | {d.get('kernel')} | {d.get('strides')} | {pads} "
                     f"| {d['decision']} | {d['reason']} |")
    return "\n".join(lines) + "\n"


def write_report(result, path) -> None:
    path = Path(path)
    if path.suffix == ".json":
        path.write_text(json.dumps(to_json(result), indent=2))
    else:
        path.write_text(to_markdown(result))
