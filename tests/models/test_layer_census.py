"""Converted models read like Keras (issue 16 item 2): the ViT-like and BERT-like encoders of
nets_seq.py (plain torch.nn, TorchScript and dynamo exports) keep KonnxOp layers at or below a
quarter of their layers, a ResNet-18-like CNN at or below 5%; the rest are Keras' own layers
(Reshape, Rescaling, Add, ...) and konnx's named layers (Slice, Einsum, ...).
`python -m tools.layer_census` prints the same counts per layer class."""
from __future__ import annotations

from pathlib import Path

import pytest

from tools.layer_census import EXCERPTS, census, excerpt, export

README = Path(__file__).resolve().parents[2] / "README.md"

SHARE = {"vit": 0.25, "bert": 0.25, "resnet18": 0.05}
CASES = [(n, e) for n in ("vit", "bert") for e in ("legacy", "dynamo")] + [("resnet18", "legacy"), ("resnet18", "dynamo")]


@pytest.mark.parametrize("name,exporter", CASES, ids=[f"{n}-{e}" for n, e in CASES])
def test_konnx_op_share(name, exporter, exports, conversions, tmp_path):
    path = exports.get_seq(name, exporter) if name != "resnet18" else export(name, exporter, tmp_path)
    c = census(conversions.get(path))
    share = c["konnx_op"] / c["layers"]
    assert share <= SHARE[name], f"{name} ({exporter}): {c['konnx_op']} of {c['layers']} layers are KonnxOp: {c}"
    # the named layers and Keras' own layers are what replaced them
    assert sum(v for k, v in c["classes"].items() if k != "KonnxOp") == c["layers"] - c["konnx_op"]


@pytest.mark.parametrize("name,exporter,head,tail", EXCERPTS, ids=[f"{e[0]}-{e[1]}" for e in EXCERPTS])
def test_readme_summary_excerpts_are_the_conversions(name, exporter, head, tail, exports, conversions, tmp_path):
    """The README's model.summary() excerpts are what the conversion gives today (regenerate them
    with `python -m tools.layer_census --summary`)."""
    path = exports.get_seq(name, exporter) if name != "resnet18" else export(name, exporter, tmp_path)
    text = excerpt(conversions.get(path), head, tail)
    assert f"```\n{text}\n```" in README.read_text(), f"README excerpt of {name} ({exporter}) is stale:\n{text}"
