"""Layer census of converted models: how many layers of each class, and what the KonnxOp
layers apply (issue 16 item 2). Exports a ResNet-18-like CNN, the ViT-like and BERT-like
encoders of tests/models/nets_seq.py (plain torch.nn) with TorchScript and dynamo, converts
each with konnx and prints the counts per layer class.

    PYTHONPATH=. python -m tools.layer_census [--json FILE]
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

EXPORTS = [("resnet18", "legacy"), ("resnet18", "dynamo"), ("vit", "legacy"), ("vit", "dynamo"),
           ("bert", "legacy"), ("bert", "dynamo")]


def resnet18():
    """ResNet-18's shape: 7x7 stem, max pool, 4 stages of 2 BasicBlocks, global pool, fc."""
    from tests.models import nets
    return nets.ResNet(nets.BasicBlock, (2, 2, 2, 2), widths=(16, 32, 64, 128)).eval()


def export(name: str, exporter: str, folder: Path) -> Path:
    import torch

    from tests.models import export as ex
    path = folder / f"{name}-{exporter}.onnx"
    if name == "resnet18":
        torch.manual_seed(0)
        return ex.export(resnet18(), torch.randn(2, 3, 64, 64), exporter == "dynamo", True, path)
    return ex.export_seq(name, exporter, path)


def census(keras_model) -> dict:
    """{'layers': n, 'konnx_op': n, 'classes': {cls: n}, 'functions': {fn: n}} over the model's
    layers (InputLayers left out)."""
    classes, functions = collections.Counter(), collections.Counter()
    for layer in keras_model.layers:
        cls = type(layer).__name__
        if cls == "InputLayer":
            continue
        classes[cls] += 1
        if cls == "KonnxOp":
            functions[layer.fn] += 1
    total = sum(classes.values())
    return {"layers": total, "konnx_op": classes.get("KonnxOp", 0), "classes": dict(classes.most_common()),
            "functions": dict(functions.most_common())}


# the README's model.summary() excerpts: (model, exporter, first layers shown, last layers shown)
EXCERPTS = [("resnet18", "legacy", 14, 4), ("vit", "dynamo", 30, 4)]


def excerpt(keras_model, head: int, tail: int) -> str:
    """`model.summary()`-style lines (layer name (class), output shape) for the first `head`
    and last `tail` layers, "..." between them."""
    rows = []
    for layer in keras_model.layers:
        shape = layer.output.shape if not isinstance(layer.output, (list, tuple)) else layer.output[0].shape
        rows.append((f"{layer.name} ({type(layer).__name__})", str(tuple(shape))))
    shown = rows if len(rows) <= head + tail else rows[:head] + [("...", "")] + rows[-tail:]
    width = max(len(r[0]) for r in shown) + 2
    return "\n".join(f" {n.ljust(width)}{s}".rstrip() for n, s in shown)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--only", nargs="*", help="model names (resnet18, vit, bert)")
    parser.add_argument("--summary", action="store_true", help="print the README's model.summary() excerpts")
    args = parser.parse_args(argv)
    import konnx
    if args.summary:
        with tempfile.TemporaryDirectory() as tmp:
            for name, exporter, head, tail in EXCERPTS:
                model = konnx.convert(str(export(name, exporter, Path(tmp))))
                print(f"{name} ({exporter}):\n```\n{excerpt(model, head, tail)}\n```")
        return 0
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, exporter in EXPORTS:
            if args.only and name not in args.only:
                continue
            model = konnx.convert(str(export(name, exporter, Path(tmp))))
            c = census(model)
            results[f"{name}-{exporter}"] = c
            share = c["konnx_op"] / max(c["layers"], 1)
            print(f"{name} ({exporter}): {c['layers']} layers, {c['konnx_op']} KonnxOp ({share:.0%})")
            print("   classes: " + ", ".join(f"{k} {v}" for k, v in c["classes"].items()))
            if c["functions"]:
                print("   KonnxOp: " + ", ".join(f"{k} {v}" for k, v in c["functions"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
