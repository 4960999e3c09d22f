"""Printing `konnx verify`'s results (per output, and per node with --bisect) and writing the
per-node table of `--bisect` as CSV."""
from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

COLUMNS = ("index", "node", "op_type", "output", "module", "source", "shape", "max_abs", "max_rel", "rmse",
           "cosine", "mismatch", "tolerance", "ok", "origin", "samples_diverging", "causes")
MAX_ROWS = 15


def _name(r) -> str:
    return f"{r.node} [{r.module}]" if r.module else r.node


def print_verify(console, result) -> None:
    """The per-output table of `konnx verify` (and codegen's check), then the bisect table if any."""
    from rich.table import Table

    table = Table(title="konnx vs onnxruntime", title_justify="left")
    for col in ("output", "shape", "max abs err", "max rel err", "mismatch", "tolerance", ""):
        table.add_column(col, justify="right" if col not in ("output", "") else "left")
    for o in result.outputs:
        status = "[green]ok[/]" if o.ok else f"[red]DIFFERS[/] {o.note}"
        if o.ok and getattr(o, "judge", "onnxruntime") != "onnxruntime":
            status = "[yellow]ok: matches the ONNX reference implementation[/] (onnxruntime deviates)"
        table.add_row(o.name, "x".join(map(str, o.shape)), f"{o.max_abs:.3g}", f"{o.max_rel:.3g}",
                      f"{o.mismatch:.2%}", f"{o.tolerance:.3g}", status)
    console.print(table)
    if getattr(result, "note", ""):
        console.print(f"[yellow]note:[/] {result.note}", highlight=False, soft_wrap=True)
    if getattr(result, "bisect_checked", 0):
        print_bisect(console, result)  # per-node table, first diverging node, its likely cause


def print_bisect(console, result) -> None:
    from rich.table import Table

    rows = result.nodes
    bad = [r for r in rows if not r.ok]
    judged = sum(1 for r in rows if getattr(r, "judge", "") == "onnx.reference")
    excused = (f" ({judged} of them differ from onnxruntime, but on their own inputs konnx computes what the ONNX "
               "reference implementation computes: onnxruntime deviates from the spec there)") if judged else ""
    if not bad:
        console.print(f"bisect: all {result.bisect_checked} intermediate tensors agree{excused}", highlight=False)
        return
    table = Table(title=f"diverging nodes ({len(bad)} of {len(rows)}, topological order)", title_justify="left")
    for col in ("#", "node [module]", "op", "max abs", "max rel", "rmse", "cosine", "mismatch", "origin"):
        table.add_column(col, justify="left" if col in ("node [module]", "op", "origin") else "right",
                         overflow="fold", min_width=8 if col == "node [module]" else None)
    for r in bad[:MAX_ROWS]:
        table.add_row(str(r.index), _name(r), r.op_type, f"{r.max_abs:.3g}", f"{r.max_rel:.3g}", f"{r.rmse:.3g}",
                      f"{r.cosine:.6f}", f"{r.mismatch:.2%}",
                      "[bold red]created[/]" if r.origin == "created" else r.origin)
    console.print(table)
    if len(bad) > MAX_ROWS:
        console.print(f"  ... {len(bad) - MAX_ROWS} more (--csv / --json list every node)", highlight=False)
    if judged:
        console.print(f"bisect: {judged} more node(s) differ from onnxruntime where konnx matches the ONNX reference "
                      "implementation on their own inputs (onnxruntime deviates from the spec there)", highlight=False)
    d = result.bisect
    console.print(f"[bold red]first diverging node[/] (of {result.bisect_checked} checked): "
                  f"[bold]{d.node}[/] ({d.op_type}) output '{d.output}'"
                  + (" - from onnxruntime, which deviates from the spec on this model (see the note)"
                     if getattr(result, "note", "") else ""), highlight=False)
    if d.module or d.source:
        console.print(f"  PyTorch: {d.module or '?'}" + (f"  at {d.source}" if d.source else ""),
                      highlight=False, markup=False)
    console.print(f"  max abs error {d.max_abs:.3g} > tolerance {d.tolerance:.3g}", highlight=False)
    console.print(f"  input shapes: {d.input_shapes}", highlight=False, markup=False)
    console.print(f"  attributes: {d.attributes}", highlight=False, markup=False)
    for cause in d.causes:
        console.print(f"  - {cause}", highlight=False, markup=False)
    if result.worst:
        console.print("worst nodes: " + ", ".join(result.worst), highlight=False, markup=False)
    for s in result.samples:
        console.print(f"sample {s['index']}: {'ok' if s['ok'] else 'DIFFERS'}"
                      + (f", first diverging node {s['first_diverging']}" if s.get("first_diverging") else ""),
                      highlight=False, markup=False)


def write_csv(path, result) -> None:
    """One row per ONNX node output, every column of the per-node table."""
    path = Path(path)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in result.nodes:
            row = asdict(r)
            row["shape"] = "x".join(map(str, row["shape"]))
            row["causes"] = " | ".join(row["causes"])
            w.writerow(row)
