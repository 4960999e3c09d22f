"""The tensor map: which ONNX tensor each Keras tensor of a konnx model computes, and in which
layout (perm: keras_value = transpose(onnx_value, perm)).

konnx builds its models as `KonnxModel`, a registered functional `keras.Model` whose config
carries the map, so it survives `.keras` save/load on every Keras backend and a user's own
load / edit / fine-tune / save. `verify --bisect` probes THAT model's intermediate tensors
(`probe_model`), never a fresh conversion.

A tensor is named the way Keras' functional config names it: (operation name, node index
among the model's own nodes of that operation, tensor index), so the names still hold after
a reload, where each operation only has the nodes the model kept.
"""
from __future__ import annotations

import json
from typing import Optional

import keras
import numpy as np

from keras.src.ops.function import make_node_key  # how keras names a model's nodes (get_config uses it)

from .errors import ConversionError

MAP_KEY = "konnx_tensor_map"
MAP_VERSION = 1


@keras.saving.register_keras_serializable(package="konnx")
class KonnxModel(keras.src.models.functional.Functional):
    """A functional model built by konnx: a plain functional model plus the tensor map."""

    _konnx_map_json: Optional[str] = None  # a string: Keras/TF tracking wraps dict attributes

    @property
    def konnx_tensor_map(self) -> Optional[dict]:
        return None if self._konnx_map_json is None else json.loads(self._konnx_map_json)

    @konnx_tensor_map.setter
    def konnx_tensor_map(self, value: Optional[dict]) -> None:
        self._konnx_map_json = None if value is None else json.dumps(_plain(value))

    def get_config(self):
        config = super().get_config()
        if self._konnx_map_json is not None:
            config[MAP_KEY] = json.loads(self._konnx_map_json)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        record = config.pop(MAP_KEY, None)
        model = super().from_config(config, custom_objects=custom_objects)
        model.konnx_tensor_map = record
        return model


def _model_node_keys(model) -> set:
    return set(model._nodes)  # keras' own record of the nodes the model holds (what get_config keeps)


def _kept_index(op, node_index: int, keys: set) -> Optional[int]:
    """`node_index` renumbered among the nodes of `op` the model keeps (None: not in the model)."""
    kept = 0
    for i in range(len(op._inbound_nodes)):
        if make_node_key(op, i) in keys:
            if i == node_index:
                return kept
            kept += 1
    return None


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if v is None or isinstance(v, str):
        return v
    return str(v)


def build_map(model, proto, values: dict, decisions: list, input_perms: list) -> dict:
    """The record for `model` built from the conversion's values (ONNX name -> Tensor/Const)."""
    from .values import Tensor

    keys = _model_node_keys(model)
    tensors = []
    for node in proto.graph.node:
        for out in node.output:
            v = values.get(out)
            if not out or not isinstance(v, Tensor) or not hasattr(v.kt, "_keras_history"):
                continue
            op, node_index, tensor_index = v.kt._keras_history
            kept = _kept_index(op, node_index, keys)
            if kept is None or isinstance(op, keras.layers.InputLayer):
                continue  # folded away, dead, or a graph input passed through
            tensors.append({"onnx": out, "node": node.name or out, "op_type": node.op_type,
                            "layer": op.name, "node_index": kept, "tensor_index": int(tensor_index),
                            "perm": [int(p) for p in v.perm]})
    by_node = {}
    for d in decisions:
        by_node.setdefault(str(d.get("node")), []).append(_plain(d))
    return {"version": MAP_VERSION, "inputs": input_perms, "tensors": tensors, "decisions": by_node}


def _layer_records(model, layer_nodes: dict) -> tuple[dict, dict]:
    """(layer name -> its ONNX node and op type, Keras variable path -> ONNX initializer name).
    A layer's variables take the names of the initializers its node reads when both count the
    same (Conv: kernel, bias <- W, B; BatchNormalization: gamma, beta, moving mean/variance <-
    scale, B, mean, var: both in the order ONNX and Keras declare them)."""
    layers, weights = {}, {}
    for layer in model.layers:
        rec = layer_nodes.get(layer.name)
        if rec is None:
            continue
        layers[layer.name] = {"node": rec["node"], "op_type": rec["op_type"]}
        variables = list(layer.weights)
        if variables and len(variables) == len(rec["weights"]):
            weights.update({v.path: w for v, w in zip(variables, rec["weights"])})
    return layers, weights


def attach(model, proto, values: dict, decisions: list, channels_last_io: bool, layer_nodes: Optional[dict] = None):
    """`model` rebuilt as a KonnxModel (same layers, same tensors) carrying its tensor map."""
    from . import layout as L

    init = {i.name for i in proto.graph.initializer}
    input_perms = []
    for vi, kin in zip([vi for vi in proto.graph.input if vi.name not in init], model.inputs):
        rank = len(kin.shape)
        perm = L.channels_last(rank) if channels_last_io and rank >= 3 else L.identity(rank)
        input_perms.append({"onnx": vi.name, "keras": kin.name, "perm": [int(p) for p in perm]})
    output_perms = []
    for vo, kout in zip(proto.graph.output, model.outputs):
        rank = len(kout.shape)
        perm = L.channels_last(rank) if channels_last_io and rank >= 3 else L.identity(rank)
        output_perms.append({"onnx": vo.name, "perm": [int(p) for p in perm]})
    out = KonnxModel(inputs=model.input, outputs=model.output, name=model.name)
    record = build_map(out, proto, values, decisions, input_perms)
    record["outputs"] = output_perms
    record["layers"], record["weights"] = _layer_records(out, layer_nodes or {})
    out.konnx_tensor_map = record
    return out


def add_decisions(model, decisions: list) -> None:
    """Decisions taken outside emit (e.g. BatchNorm folding), filed under their node's name."""
    record = model.konnx_tensor_map
    for d in decisions:
        record["decisions"].setdefault(str(d.get("node")), []).append(_plain(d))
    model.konnx_tensor_map = record


class NoTensorMapError(ConversionError):
    """The Keras model carries no konnx tensor map: it cannot be bisected."""


def read(model) -> dict:
    record = getattr(model, "konnx_tensor_map", None)
    if not isinstance(record, dict) or record.get("version") != MAP_VERSION:
        raise NoTensorMapError(
            f"this Keras model ({type(model).__name__} '{getattr(model, 'name', '?')}') carries no konnx tensor "
            f"map (version {MAP_VERSION}): it was not built by this konnx, or was saved by an older konnx or "
            "rebuilt outside konnx, so its intermediate tensors cannot be matched to ONNX tensors. Convert the "
            "ONNX file again with this konnx (and apply your edits to that model) to bisect it; "
            "plain verification of the outputs still works without --bisect.")
    return record


def probe_model(model, record: dict):
    """A keras.Model over `model`'s outputs then its own intermediate tensors named by the record;
    returns (probe, entries reached): one run gives the outputs and every intermediate."""
    ops = {op.name: op for op in model.operations}
    entries, outs = [], []
    for e in record["tensors"]:
        op = ops.get(e["layer"])
        if op is None or e["node_index"] >= len(op._inbound_nodes):
            continue
        node = op._inbound_nodes[e["node_index"]]
        if e["tensor_index"] >= len(node.output_tensors):
            continue
        entries.append(e)
        outs.append(node.output_tensors[e["tensor_index"]])
    if not outs:
        raise ConversionError("the model's tensor map names no tensor of this model: nothing to bisect")
    return keras.Model(model.input, list(model.outputs) + outs), entries
