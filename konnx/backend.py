"""konnx as an ONNX backend (``onnx.backend.base.Backend``), so the official ONNX backend test
suite can run against it:

    from konnx.backend import KonnxBackend
    rep = KonnxBackend.prepare(model)          # converts with konnx.convert
    outputs = rep.run([x, y])                   # runs the Keras model; numpy arrays in ONNX order

Parameter inputs. Some ONNX inputs are parameters that fix the output's shape or rank (Reshape's
shape, Reduce's axes, TopK's k, ...). A Keras model needs them at conversion time; real models
carry them as initializers or Constant nodes. When a graph input feeds only such slots (as in the
ONNX node tests), `run` binds it to the value it is given, converts the model specialized to that
value (cached per value) and feeds the remaining inputs. `rep.bound_inputs` says which were bound.

Outputs are returned as the Keras model computes them, never cast: an output whose dtype differs
from the ONNX one is recorded in `rep.dtype_mismatches` (and fails the suite's dtype check).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from . import loader
from .api import convert
from .errors import ConversionError
from .ops import load_all
from .ops.registry import parameter_inputs

# op type -> indices of inputs konnx needs at conversion time (parameters that fix an output's
# shape or rank, and convolution weights), from the converters' declared contracts
load_all()
PARAMETER_INPUTS: dict[str, tuple[int, ...]] = parameter_inputs()


_SHAPE_ONLY = {"Shape", "Size"}  # read only the shape of their input, never its values


def parameter_inputs(model: onnx.ModelProto) -> list[str]:
    """Graph inputs whose values reach only parameter slots (see PARAMETER_INPUTS), directly or
    through shape arithmetic (e.g. Max(Shape(x), shape) -> Sub -> Concat -> Pad's pads)."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    names = [i.name for i in g.input if i.name not in inits]
    uses: dict[str, list] = {}
    for node in g.node:
        for k, name in enumerate(node.input):
            uses.setdefault(name, []).append((node, k))
        for name in _subgraph_inputs(node):
            uses.setdefault(name, []).append((None, -1))
    graph_outputs = {o.name for o in g.output}
    memo: dict[str, tuple] = {}

    def reach(name: str) -> tuple:
        """(only parameters or shape reads use the value, at least one parameter does)."""
        if name in memo:
            return memo[name]
        memo[name] = (False, False)  # cycles (invalid graphs) count as data
        ok, param = name not in graph_outputs, False
        for node, k in uses.get(name, []):
            if not ok:
                break
            if node is None or node.domain not in ("", "ai.onnx"):
                ok = False
            elif node.op_type in _SHAPE_ONLY:
                continue
            elif k in PARAMETER_INPUTS.get(node.op_type, ()):
                param = True
            else:
                outs = [reach(o) for o in node.output if o]
                ok = bool(outs) and all(o[0] for o in outs)
                param = param or any(o[1] for o in outs)
        memo[name] = (ok and param, ok and param)
        return memo[name]

    def param_only(name: str) -> bool:
        return reach(name)[0]

    # consumers first (ONNX nodes are in topological order): every reach() then finds the
    # values downstream already answered, so the recursion stays shallow on deep graphs
    for node in reversed(g.node):
        for o in node.output:
            if o:
                reach(o)
    return [n for n in names if param_only(n)]


def _subgraph_inputs(node: onnx.NodeProto) -> set:
    """Names read inside a node's subgraphs (If/Loop/Scan bodies): data, never bound."""
    names = set()
    for a in node.attribute:
        graphs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
        for sub in graphs:
            for n in sub.node:
                names.update(n.input)
                names |= _subgraph_inputs(n)
    return names


def _bind(model: onnx.ModelProto, values: dict) -> onnx.ModelProto:
    """A copy of `model` where the inputs in `values` are initializers holding those values."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = [i for i in m.graph.input if i.name not in values]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    for name, arr in values.items():
        m.graph.initializer.append(numpy_helper.from_array(np.asarray(arr), name))
    return m


def _np_dtype(elem_type: int):
    if not elem_type:
        return None
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return None


class BackendError(ConversionError, ValueError):
    """A bad argument to the backend (device, inputs) or a model that fails to run on them; a
    ValueError too, as callers of the ONNX backend API expect."""


class KonnxBackendRep(BackendRep):
    """A model converted by konnx, ready to run (see the module docstring for bound inputs)."""

    def __init__(self, model: onnx.ModelProto, **convert_kwargs):
        model = loader.load(model)  # a path, bytes or ModelProto; anything else refused
        self.onnx_model = model
        self._kwargs = convert_kwargs
        g = model.graph
        inits = {i.name for i in g.initializer}
        self.input_names = [i.name for i in g.input if i.name not in inits]
        self.output_names = [o.name for o in g.output]
        self.bound_inputs = parameter_inputs(model)
        if len(self.bound_inputs) == len(self.input_names):
            self.bound_inputs = []  # a Keras model needs at least one input: bind nothing
        self._out_dtypes = self._output_dtypes(model)
        self._models: dict[bytes, Any] = {}
        self.dtype_mismatches: set = set()  # (output, Keras dtype, ONNX dtype) seen by run()
        self.keras_model = None
        if not self.bound_inputs:
            self.keras_model = convert(model, **convert_kwargs)

    @staticmethod
    def _output_dtypes(model):
        types = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
        if any(not t for t in types.values()):
            try:
                inferred = onnx.shape_inference.infer_shapes(model)
            except (onnx.shape_inference.InferenceError, ValueError, RuntimeError):
                return [_np_dtype(types[o.name]) for o in model.graph.output]  # convert refuses it, naming why
            for o in inferred.graph.output:
                types[o.name] = types[o.name] or o.type.tensor_type.elem_type
        return [_np_dtype(types[n]) for n in (o.name for o in model.graph.output)]

    def _model_for(self, feeds: dict):
        if not self.bound_inputs:
            return self.keras_model
        values = {n: np.asarray(feeds[n]) for n in self.bound_inputs}
        key = b"".join(str(v.dtype).encode() + str(v.shape).encode() + v.tobytes() for v in values.values())
        if key not in self._models:
            self._models[key] = convert(_bind(self.onnx_model, values), **self._kwargs)
        return self._models[key]

    def run(self, inputs: Any, **kwargs: Any):
        feeds = self._feeds(inputs)
        model = self._model_for(feeds)
        args = [feeds[n] for n in self.input_names if n not in self.bound_inputs]
        try:
            out = model(args[0] if len(args) == 1 else args)
        except Exception as e:  # noqa: BLE001 - Keras and its backends raise many types
            raise BackendError(f"the converted model failed to run on inputs "
                               f"{ {n: (str(v.dtype), list(v.shape)) for n, v in feeds.items()} }: "
                               f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}") from e
        if not isinstance(out, (list, tuple)):
            out = [out]
        results = [np.asarray(o) for o in out]
        for i, (a, dt) in enumerate(zip(results, self._out_dtypes)):
            if dt is not None and a.dtype != dt:  # reported, never hidden by a cast
                self.dtype_mismatches.add((self.output_names[i], str(a.dtype), str(dt)))
        return namedtupledict("Outputs", self.output_names)(*results)

    def _feeds(self, inputs) -> dict:
        """The inputs by name, checked against the model's names, shapes and dtypes."""
        from .verify_inputs import check_inputs

        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray) or not isinstance(inputs, Sequence):
                inputs = [inputs]
            if len(inputs) != len(self.input_names):
                raise BackendError(f"the model has {len(self.input_names)} inputs {self.input_names}, "
                                   f"got {len(inputs)} values")
            feeds = dict(zip(self.input_names, inputs))
        try:
            return check_inputs(self.onnx_model, feeds)
        except ConversionError as e:
            raise BackendError(str(e)) from None


class KonnxBackend(Backend):
    """ONNX -> Keras through konnx; runs on the CPU with whatever Keras backend is active."""

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> KonnxBackendRep:
        if not cls.supports_device(device):
            raise BackendError(f"konnx's backend runs on CPU, not {device}")
        convert_kwargs = {k: kwargs[k] for k in ("input_shapes",) if k in kwargs}
        return KonnxBackendRep(model, **convert_kwargs)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Optional[Sequence] = None, **kwargs: Any):
        """Run one node: wrap it in a model whose inputs have the given arrays' types and shapes."""
        arrays = [np.asarray(a) for a in inputs]
        names = [n for n in node.input if n]
        ins = [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
               for n, a in zip(names, arrays)]
        outs = []
        for k, n in enumerate(o for o in node.output if o):
            if outputs_info and k < len(outputs_info):
                dt, shape = outputs_info[k]
                outs.append(onnx.helper.make_tensor_value_info(
                    n, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dt)), shape))
            else:
                outs.append(onnx.helper.make_empty_tensor_value_info(n))
        opset = kwargs.pop("opset_version", onnx.defs.onnx_opset_version())
        graph = onnx.helper.make_graph([node], "run_node", ins, outs)
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        return cls.run_model(model, arrays, device, **kwargs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU


prepare = KonnxBackend.prepare
run_model = KonnxBackend.run_model
run_node = KonnxBackend.run_node
supports_device = KonnxBackend.supports_device
