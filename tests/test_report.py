"""The conversion report (`konnx convert --report`): every Conv, ConvTranspose and pooling
node with its pads, the decision konnx took and why, and the counts at the top."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import konnx
from konnx import report
from konnx.cli import main as konnx_main
from konnx.padding_explain import explain
from tests.util import assert_matches_ort, make_model, rand

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tiny_resnet.onnx"

# node name -> (ONNX node, the decision it must get); the expectations follow from the
# padding rules in DESIGN.md, one node per kind of decision.
NODES = {
    "conv_same": (helper.make_node("Conv", ["x", "w"], ["conv_same"], name="conv_same",
                                   kernel_shape=[3, 3], pads=[1, 1, 1, 1]), "same"),
    "conv_stride2": (helper.make_node("Conv", ["x", "w"], ["conv_stride2"], name="conv_stride2",
                                      kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), "zero_pad"),
    "deconv": (helper.make_node("ConvTranspose", ["x", "wt"], ["deconv"], name="deconv", kernel_shape=[3, 3],
                                strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]), "crop"),
    "maxpool_pad": (helper.make_node("MaxPool", ["x"], ["maxpool_pad"], name="maxpool_pad", kernel_shape=[3, 3],
                                     strides=[2, 2], pads=[1, 1, 1, 1]), "-inf_pad"),
    "maxpool_valid": (helper.make_node("MaxPool", ["x"], ["maxpool_valid"], name="maxpool_valid",
                                       kernel_shape=[2, 2], strides=[2, 2]), "valid"),
    "avgpool_ceil": (helper.make_node("AveragePool", ["x"], ["avgpool_ceil"], name="avgpool_ceil",
                                      kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), "divisor_map"),
    "avgpool_include": (helper.make_node("AveragePool", ["x"], ["avgpool_include"], name="avgpool_include",
                                         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                         count_include_pad=1), "zero_pad"),
    "gap": (helper.make_node("GlobalAveragePool", ["x"], ["gap"], name="gap"), None),
}


@pytest.fixture(scope="module")
def network():
    m = make_model([n for n, _ in NODES.values()], [("x", np.float32, [1, 2, 8, 8])],
                   [(name, np.float32, None) for name in NODES],
                   [("w", rand(3, 2, 3, 3, seed=1)), ("wt", rand(2, 3, 3, 3, seed=2))])
    result = konnx.convert_detailed(m)
    assert_matches_ort(m, {"x": rand(1, 2, 8, 8, seed=3)}, keras_model=result.model)
    return m, result


def test_every_spatial_node_with_its_decision(network):
    _, result = network
    rep = report.to_json(result)
    got = {r["node"]: r for r in rep["nodes"]}
    expected = {name: want for name, (_, want) in NODES.items() if want is not None}
    assert {n: r["decision"] for n, r in got.items()} == expected
    assert rep["unrecorded"] == []
    assert [g["node"] for g in rep["global_pools"]] == ["gap"]
    want_counts = {}
    for d in expected.values():
        want_counts[d] = want_counts.get(d, 0) + 1
    assert rep["counts"] == want_counts
    assert rep["by_op"] == {"Conv": 2, "ConvTranspose": 1, "MaxPool": 2, "AveragePool": 2}
    assert rep["ceil_mode_extended"] == 1
    ceil = got["avgpool_ceil"]
    assert ceil["ceil_mode"] is True and ceil["ceil_extension"] == [1, 1] and ceil["output_size"] == [4, 4]
    assert got["avgpool_include"]["count_include_pad"] is True
    assert got["deconv"]["output_padding"] == [1, 1] and got["deconv"]["output_size"] == [16, 16]
    assert got["conv_stride2"]["pads"] == [[1, 1], [1, 1]]
    for r in rep["nodes"]:  # one plain sentence each (capitalised unless it opens with an identifier)
        first = r["reason"].split(" ", 1)[0]
        assert not (first.isalpha() and first.islower()), r["reason"]
        assert r["reason"].endswith(".") and ". " not in r["reason"] and "\n" not in r["reason"], r["reason"]
    assert "'same' would pad (0, 1)" in got["maxpool_pad"]["reason"]


def test_markdown_has_counts_and_one_row_per_node(network, tmp_path):
    _, result = network
    path = tmp_path / "report.md"
    report.write_report(result, path)
    text = path.read_text()
    assert "**7 spatial node(s)** (2 Conv, 1 ConvTranspose, 2 MaxPool, 2 AveragePool)" in text
    assert "1 same, 1 valid, 2 zero_pad, 1 -inf_pad, 1 divisor_map, 1 crop." in text
    assert "1 pooling node(s) extended at the end for ceil_mode." in text
    padding_part, layout_part = text.split("## Layout")  # the layout section lists moves by node too
    rows = [line for line in padding_part.splitlines() if line.startswith("| ") and " | " in line]
    for name in NODES:
        assert sum(f"| {name} |" in line for line in rows) == 1, name
    assert "ceil_mode, +[1, 1] at the end" in text and "count_include_pad" in text


def test_unrecorded_node_is_flagged(network):
    _, result = network
    partial = dataclasses.replace(result, decisions=[d for d in result.decisions if d["node"] != "deconv"])
    rep = report.to_json(partial)
    assert rep["unrecorded"] == [{"node": "deconv", "op_type": "ConvTranspose"}]
    assert "**Warning:** 1 spatial node(s) without a recorded decision: deconv (ConvTranspose)." \
        in report.to_markdown(partial)


def test_tiny_resnet_report_through_the_cli(tmp_path):
    md, js = tmp_path / "report.md", tmp_path / "report.json"
    assert konnx_main(["convert", str(EXAMPLE), "-o", str(tmp_path / "tiny.keras"), "--report", str(md), "-q"]) == 0
    result = konnx.convert_detailed(str(EXAMPLE))
    report.write_report(result, js)
    rep = json.loads(js.read_text())
    graph = onnx.load(str(EXAMPLE)).graph
    spatial = [n for n in graph.node if n.op_type in report.SPATIAL_OPS]
    assert [r["node"] for r in rep["nodes"]] == [n.name for n in spatial]
    assert sum(rep["counts"].values()) == len(spatial) and rep["unrecorded"] == []
    # Conv decisions agree with explain() computed from the ONNX attributes alone
    for node, row in zip(spatial, rep["nodes"]):
        if node.op_type != "Conv":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ex = explain(row["input_size"], list(attrs["kernel_shape"]), list(attrs.get("strides", [1, 1])),
                     list(attrs.get("dilations", [1, 1])), pads=list(attrs.get("pads", [0, 0, 0, 0])))
        want = "valid" if not any(attrs.get("pads", [])) else ("same" if ex.same_matches else "zero_pad")
        assert row["decision"] == want, (node.name, row)
        assert row["output_size"] == list(ex.explicit_out)
    text = md.read_text()
    counts = ", ".join(f"{n} {k}" for k, n in rep["counts"].items())
    assert f"**{len(spatial)} spatial node(s)**" in text and counts in text
