"""Names from the source (issue 16 item 1): a converted model's layers are named after the PyTorch
modules that produced them, its inputs and outputs keep their ONNX names, and its weights can be
found by their PyTorch parameter names.

Small nets in plain torch.nn (blocks in an nn.Sequential in an nn.ModuleList, a head whose
forward adds ops of its own) are exported with both exporters: TorchScript (scope names in the
node names) and dynamo (the `pkg.torch.onnx.name_scopes` metadata, kept by saving
`onnx_program.model_proto`). The module path each layer must contain comes from the ONNX file
(konnx.source_names), checked against the torch module's own named_modules()."""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")

import keras  # noqa: E402

import konnx  # noqa: E402
from konnx.naming import sanitize  # noqa: E402
from konnx.source_names import module_path  # noqa: E402
from tests.util import assert_matches_ort  # noqa: E402

nn = torch.nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv1(x)) + x)


class Head(nn.Module):
    def __init__(self, c, n):
        super().__init__()
        self.proj = nn.Linear(c, n)

    def forward(self, x):
        return torch.softmax(self.proj(x), -1) * 2.0  # ops of the head's own forward


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        self.stages = nn.ModuleList([nn.Sequential(Block(8), Block(8)) for _ in range(2)])
        self.head = Head(8, 5)

    def forward(self, pixels):
        x = self.stem(pixels)
        for stage in self.stages:
            x = stage(x)
        pooled = x.mean((2, 3))
        return self.head(pooled), pooled


OUTPUTS = ["logits", "features"]


def _export(dynamo: bool, path: str) -> onnx.ModelProto:
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(1, 3, 16, 16)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            prog = torch.onnx.export(net, (x,), dynamo=True, input_names=["pixels"], output_names=OUTPUTS)
            onnx.save(prog.model_proto, path)  # the model proto keeps the nodes' metadata
        else:
            torch.onnx.export(net, (x,), path, dynamo=False, opset_version=17, input_names=["pixels"],
                              output_names=OUTPUTS)
    return onnx.load(path)


@pytest.fixture(scope="module", params=["torchscript", "dynamo"])
def converted(request, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("names") / f"net_{request.param}.onnx")
    proto = _export(request.param == "dynamo", path)
    return request.param, proto, konnx.convert(proto)


def _compute_layers(model):
    return [la for la in model.layers if not isinstance(la, keras.layers.InputLayer) and la.name not in OUTPUTS]


def test_every_layer_name_contains_its_module_path(converted):
    exporter, proto, model = converted
    paths = {n.name: module_path(n) for n in proto.graph.node}
    record = model.konnx_tensor_map["layers"]
    with_path = 0
    for layer in _compute_layers(model):
        node = record[layer.name]["node"]
        path = paths[node]
        expected = sanitize(path) if path else sanitize(node)
        assert expected in layer.name, f"{exporter}: layer {layer.name!r} (node {node!r}) lacks {expected!r}"
        with_path += path is not None
    # the module paths the file gives are the torch module's own
    torch_paths = {name for name, _ in Net().named_modules() if name}
    assert {p for p in paths.values() if p} <= torch_paths
    assert with_path >= len(_compute_layers(model)) - 3  # only the top-level mean has no module


def test_names_from_nested_modules_read_like_the_source(converted):
    exporter, _, model = converted
    names = {la.name for la in model.layers}
    # a module that is one node keeps its path; glue ops of a module with submodules get the op kind
    for expected in ["stem_0", "stem_1", "head_proj", "stages_1_1_act", "stages_0_1_add", "head_softmax"]:
        assert expected in names, f"{exporter}: no layer {expected!r} in {sorted(names)}"
    assert any(n.startswith("head_mul") for n in names), sorted(names)  # a KonnxOp: `head_mul_binary`
    assert not any("." in n for n in names)  # the torch backend refuses "." in variable paths


def test_helper_layers_carry_their_nodes_name(converted):
    exporter, _, model = converted
    record = model.konnx_tensor_map["layers"]
    by_node = {}
    for layer in _compute_layers(model):
        by_node.setdefault(record[layer.name]["node"], []).append(layer.name)
    helpers = 0
    for node, names in by_node.items():
        stem = min(names, key=len)
        for n in names:
            assert n.startswith(stem), f"{exporter}: layer {n!r} of node {node!r} not named after {stem!r}"
        helpers += len(names) - 1
    assert helpers >= 2  # the input permute and the pad of the stem conv
    assert {"stem_0_permute", "stem_0_pad"} <= set(record)


def test_io_names_kept(converted):
    exporter, _, model = converted
    assert model.output_names == OUTPUTS, exporter
    assert [t.name for t in model.inputs] == ["pixels"], exporter
    assert len({la.name for la in model.layers}) == len(model.layers)


def test_weights_carry_their_parameter_names(converted):
    exporter, proto, model = converted
    names = konnx.weight_names(model)
    variables = {v.path: v for v in model.weights}
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    assert names["head_proj/kernel"] == "head.proj.weight", exporter
    assert names["stem_0/kernel"] == "stem.0.weight" and names["stem_0/bias"] == "stem.0.bias", exporter
    if exporter == "dynamo":  # TorchScript renames a conv with its BatchNorm folded in (onnx::Conv_N)
        assert {f"stages.{i}.{j}.conv1.weight" for i in (0, 1) for j in (0, 1)} <= set(names.values())
    for path, init in names.items():
        assert path in variables and init in inits, (exporter, path, init)
        assert int(np.prod(variables[path].shape)) == inits[init].size, (exporter, path, init)


def test_names_survive_save_load_and_outputs_match(converted):
    _, proto, model = converted
    feeds = {"pixels": np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)}
    assert_matches_ort(proto, feeds, keras_model=model)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.keras")
        model.save(path)
        again = keras.models.load_model(path, safe_mode=True)
    assert [la.name for la in again.layers] == [la.name for la in model.layers]
    assert again.output_names == OUTPUTS
    assert konnx.weight_names(again) == konnx.weight_names(model)
    assert_matches_ort(proto, feeds, keras_model=again)


def test_namer_is_one_lookup_per_node():
    """1,000 nodes of one module: names are unique, suffixed, and computed once per node."""
    from onnx import helper

    from konnx.graph import Node
    from konnx.naming import Namer

    protos = [helper.make_node("Relu", [f"a{i}"], [f"a{i + 1}"], name=f"/blocks/blocks.0/Relu_{i}")
              for i in range(1000)]
    namer = Namer(protos)
    nodes = [Node(p, 17, i) for i, p in enumerate(protos)]
    names = [namer.name(n) for n in nodes] + [namer.name(nodes[0], "pad")]
    assert len(set(names)) == len(names)
    assert names[0] == "blocks_0_relu" and names[1] == "blocks_0_relu_2" and names[-1] == "blocks_0_relu_pad"
    assert namer.name(nodes[1], "pad") == "blocks_0_relu_2_pad"  # a helper follows its node's own name
    assert [n._konnx_layer_stem for n in nodes[:3]] == ["blocks_0_relu", "blocks_0_relu_2", "blocks_0_relu_3"]


def test_output_layout_move_takes_the_output_name():
    """An NCHW output needs a permute back from konnx's NHWC: that layer, made for the output
    alone, is named after it (no extra Identity); names the file lacks scopes for stay ONNX names."""
    from onnx import TensorProto, helper

    from tests.util import rand

    w = helper.make_tensor("enc.conv.weight", TensorProto.FLOAT, (4, 3, 3, 3), rand(4, 3, 3, 3).ravel())
    nodes = [helper.make_node("Conv", ["image", "enc.conv.weight"], ["feat"], name="/enc/conv/Conv",
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["feat"], ["act"], name="/enc/act/Relu")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 8, 8]) for n in ("feat", "act")],
                          [w])
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model = assert_matches_ort(proto, {"image": rand(1, 3, 8, 8)})
    assert model.output_names == ["feat", "act"]
    assert not any(isinstance(la, keras.layers.Identity) for la in model.layers)
    assert {"enc_conv", "enc_act"} <= {la.name for la in model.layers}
    assert konnx.weight_names(model) == {"enc_conv/kernel": "enc.conv.weight"}
    assert set(model.konnx_tensor_map["layers"]) == {la.name for la in model.layers[1:]} - {"feat", "act"}
