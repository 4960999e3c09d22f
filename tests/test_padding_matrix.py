"""The padding matrix: every spatial op over kernel x stride x dilation x padding style x
input parity x rank, against onnxruntime. Many nodes share one graph (one output each) so a
whole slice of the matrix costs one conversion; failures name every failing configuration."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from onnx import helper

from tests.util import make_model, rand, run_keras, run_ort, tolerance

import konnx

KERNELS = {1: [1, 2, 3, 4, 5, 6, 7], 2: [1, 2, 3, 4, 5, 6, 7], 3: [1, 2, 3]}
STRIDES = [1, 2, 3]
DILATIONS = [1, 2]
SIZES = {1: {"odd": 15, "even": 16}, 2: {"odd": 13, "even": 14}, 3: {"odd": 7, "even": 8}}
PAD_STYLES = ["sym", "asym_end", "asym_begin", "SAME_UPPER", "SAME_LOWER", "VALID"]


def _pads(style, k, nsp, pool):
    """Explicit pads for a style; pooling needs pads < kernel (onnxruntime enforces it)."""
    limit = k - 1 if pool else k
    p = min(k // 2, limit)
    if style == "sym":
        return [p] * nsp + [p] * nsp
    q = min(p + 1, limit)
    if style == "asym_end":
        return [min(p, q - 1 if q else 0)] * nsp + [q] * nsp
    return [q] * nsp + [max(q - 1, 0)] * nsp


def _node_attrs(style, k, s, d, nsp, pool):
    attrs = dict(kernel_shape=[k] * nsp, strides=[s] * nsp)
    if d != 1:
        attrs["dilations"] = [d] * nsp
    if style in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        attrs["auto_pad"] = style
    else:
        attrs["pads"] = _pads(style, k, nsp, pool)
    return attrs


def _valid_geometry(size, k, s, d, attrs):
    eff = (k - 1) * d + 1
    pads = attrs.get("pads", [0, 0])
    return size + pads[0] + pads[len(pads) // 2] >= eff


def _oracle(model, feeds):
    """Per-output reference: onnxruntime, or the ONNX reference implementation for the
    configurations onnxruntime refuses (dilated Conv with auto_pad SAME; SAME pooling where
    the kernel is smaller than the stride, which onnxruntime pads negatively)."""
    from onnx.reference import ReferenceEvaluator

    refs, oracles = [], []
    inits = {i.name: i for i in model.graph.initializer}
    for node, out in zip(model.graph.node, model.graph.output):
        single = make_model([node], [("x", np.float32, feeds["x"].shape)], [(out.name, np.float32, None)],
                            opset=model.opset_import[0].version)
        single.graph.initializer.extend(inits[i] for i in node.input[1:] if i)
        try:
            refs.append(run_ort(single, feeds)[0])
            oracles.append("onnxruntime")
        except Exception as e:  # noqa: BLE001 - onnxruntime refuses this configuration
            refs.append(ReferenceEvaluator(single).run(None, feeds)[0])
            oracles.append(f"onnx.reference ({str(e).splitlines()[0][-80:]})")
    return refs, oracles


def _compare(model, feeds):
    km = konnx.convert(model)
    ref, oracles = _oracle(model, feeds)
    got = run_keras(km, feeds, model)
    bad = []
    for out, r, g, o in zip(model.graph.output, ref, got, oracles):
        if r.shape != g.shape:
            bad.append(f"{out.name}: shape {g.shape} vs {o} {r.shape}")
            continue
        err = float(np.max(np.abs(g - r))) if r.size else 0.0
        if err > tolerance(r):
            bad.append(f"{out.name}: max abs error {err:.3g} against {o}")
    return bad, len(ref)


def _graph(op, nsp, parity, cases, extra_inputs=(), channels=3, shift=0.0, opset=19):
    size = SIZES[nsp][parity]
    shape = (2, channels) + (size,) * nsp
    nodes, outs, inits = [], [], []
    for i, (name, attrs, node_inputs, init) in enumerate(cases):
        nodes.append(helper.make_node(op, ["x"] + node_inputs, [name], name=f"n{i}", **attrs))
        outs.append((name, np.float32, None))
        inits.extend(init)
    model = make_model(nodes, [("x", np.float32, shape)], outs, inits, opset=opset)
    feeds = {"x": rand(*shape, seed=nsp * 10 + len(cases)) + shift}
    return model, feeds


def _id(style, k, s, d):
    return f"{style}_k{k}_s{s}_d{d}"


@pytest.mark.parametrize("nsp", [1, 2, 3])
@pytest.mark.parametrize("parity", ["odd", "even"])
def test_conv_padding_matrix(nsp, parity):
    size = SIZES[nsp][parity]
    cases = []
    for style, k, s, d in itertools.product(PAD_STYLES, KERNELS[nsp], STRIDES, DILATIONS):
        attrs = _node_attrs(style, k, s, d, nsp, pool=False)
        if not _valid_geometry(size, k, s, d, attrs):
            continue
        i = len(cases)
        w = (rand(4, 3, *([k] * nsp), seed=i) / np.sqrt(3 * k ** nsp)).astype(np.float32)
        cases.append((_id(style, k, s, d), attrs, [f"w{i}", f"b{i}"], [(f"w{i}", w), (f"b{i}", rand(4, seed=i + 1))]))
    model, feeds = _graph("Conv", nsp, parity, cases)
    bad, n = _compare(model, feeds)
    assert n == len(cases) and not bad, "\n".join(bad)


@pytest.mark.parametrize("nsp", [1, 2, 3])
@pytest.mark.parametrize("parity", ["odd", "even"])
def test_conv_transpose_padding_matrix(nsp, parity):
    size = SIZES[nsp][parity] // 2
    cases = []
    for style, k, s, d in itertools.product(PAD_STYLES + ["output_padding", "output_shape"], KERNELS[nsp], STRIDES,
                                            DILATIONS):
        if style == "output_padding":
            if s == 1:
                continue
            attrs = dict(kernel_shape=[k] * nsp, strides=[s] * nsp, pads=_pads("sym", k, nsp, False),
                         output_padding=[s - 1] * nsp)
        elif style == "output_shape":
            if (k - 1) * d + 1 < s:
                continue  # the requested shape would exceed the full output: invalid
            attrs = dict(kernel_shape=[k] * nsp, strides=[s] * nsp, output_shape=[size * s] * nsp)
        else:
            attrs = _node_attrs(style, k, s, d, nsp, pool=False)
            if "pads" in attrs and max(attrs["pads"]) >= (k - 1) * d + 1:
                continue
        if d != 1:
            attrs["dilations"] = [d] * nsp
        i = len(cases)
        w = (rand(3, 4, *([k] * nsp), seed=i) / np.sqrt(3 * k ** nsp)).astype(np.float32)
        cases.append((f"{style}_k{k}_s{s}_d{d}", attrs, [f"w{i}", f"b{i}"],
                      [(f"w{i}", w), (f"b{i}", rand(4, seed=i + 1))]))
    nodes, outs, inits = [], [], []
    shape = (2, 3) + (size,) * nsp
    for i, (name, attrs, node_inputs, init) in enumerate(cases):
        nodes.append(helper.make_node("ConvTranspose", ["x"] + node_inputs, [name], name=f"n{i}", **attrs))
        outs.append((name, np.float32, None))
        inits.extend(init)
    model = make_model(nodes, [("x", np.float32, shape)], outs, inits, opset=17)
    bad, n = _compare(model, {"x": rand(*shape, seed=3)})
    assert n == len(cases) and not bad, "\n".join(bad)


def test_grouped_conv_transpose():
    w = rand(4, 3, 3, 3, seed=1)
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], group=2, strides=[2, 2], pads=[1, 0, 0, 1],
                              output_padding=[1, 0], kernel_shape=[3, 3])]
    model = make_model(nodes, [("x", np.float32, (1, 4, 5, 6))], [("y", np.float32, None)],
                       [("w", w), ("b", rand(6, seed=2))])
    bad, _ = _compare(model, {"x": rand(1, 4, 5, 6)})
    assert not bad, bad


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool_exclude", "AveragePool_include"])
@pytest.mark.parametrize("nsp", [1, 2, 3])
@pytest.mark.parametrize("parity", ["odd", "even"])
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_pool_padding_matrix(op, nsp, parity, ceil_mode):
    size = SIZES[nsp][parity]
    onnx_op = op.split("_")[0]
    cases = []
    dilations = DILATIONS if onnx_op == "MaxPool" else [1]
    for style, k, s, d in itertools.product(PAD_STYLES, KERNELS[nsp], STRIDES, dilations):
        attrs = _node_attrs(style, k, s, d, nsp, pool=True)
        if not _valid_geometry(size, k, s, d, attrs) or _ambiguous_same_pool(style, k, s, d, size):
            continue
        if ceil_mode:
            attrs["ceil_mode"] = 1
        if onnx_op == "AveragePool":
            attrs["count_include_pad"] = int(op.endswith("include"))
        cases.append((_id(style, k, s, d), attrs, [], []))
    # MaxPool is fed negative inputs: a zero pad would win and show up as an error.
    model, feeds = _graph(onnx_op, nsp, parity, cases, shift=-4.0 if onnx_op == "MaxPool" else 0.0)
    bad, n = _compare(model, feeds)
    assert n == len(cases) and not bad, "\n".join(bad)


def _ambiguous_same_pool(style, k, s, d, size):
    """SAME pooling with dilation, or with a negative total padding (kernel smaller than the
    stride): onnxruntime pads a dilated SAME pool as if undilated (and refuses negative pads in
    MaxPool) while the reference implementation follows the spec formula (and fails on
    AveragePool). With no agreed oracle konnx refuses these; tested below."""
    if style not in ("SAME_UPPER", "SAME_LOWER"):
        return False
    out = -(-size // s)
    return d > 1 or (out - 1) * s + (k - 1) * d + 1 - size < 0


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("k,s,d", [(1, 3, 1), (3, 2, 2)])
def test_ambiguous_same_pooling_is_refused(op, k, s, d):
    attrs = dict(kernel_shape=[k, k], strides=[s, s], auto_pad="SAME_UPPER")
    if d > 1:
        attrs["dilations"] = [d, d]
    model = make_model([helper.make_node(op, ["x"], ["y"], name="the_pool", **attrs)],
                       [("x", np.float32, (1, 2, 14, 14))], [("y", np.float32, None)], opset=19)
    with pytest.raises(konnx.NodeConversionError, match="the_pool.*refuses"):
        konnx.convert(model)


@pytest.mark.parametrize("opset", [19])
def test_average_pool_dilations(opset):
    cases = []
    for k, s, d, style in itertools.product([2, 3], [1, 2], [2, 3], ["sym", "asym_end", "VALID"]):
        for cip in (0, 1):
            attrs = _node_attrs(style, k, s, d, 2, pool=True)
            attrs.update(dilations=[d, d], count_include_pad=cip)
            cases.append((f"{style}_k{k}_s{s}_d{d}_cip{cip}", attrs, [], []))
    model, feeds = _graph("AveragePool", 2, "odd", cases, opset=opset)
    bad, n = _compare(model, feeds)
    assert n == len(cases) and not bad, "\n".join(bad)
