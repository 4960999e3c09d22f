"""verify: run onnxruntime and the Keras model on the same inputs and compare every output;
bisect: expose every intermediate tensor on both sides and name the first diverging node."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import onnx

from . import layout as L
from . import loader
from .errors import ConversionError
from .inputs import check_input_shapes
from .verify_inputs import check_inputs
from .tolerances import DEFAULT_ATOL, DEFAULT_RTOL


@dataclass
class OutputComparison:
    name: str
    shape: list
    max_abs: float
    max_rel: float
    mismatch: float  # share of elements beyond the tolerance
    tolerance: float
    ok: bool
    note: str = ""


@dataclass
class Divergence:
    """The first diverging node (topological order) and what is known about why."""
    node: str
    op_type: str
    output: str
    attributes: dict
    input_shapes: list
    max_abs: float
    tolerance: float
    padding: Optional[dict] = None
    module: Optional[str] = None
    source: Optional[str] = None
    origin: str = ""
    causes: list = field(default_factory=list)


@dataclass
class VerifyResult:
    ok: bool
    outputs: list
    bisect: Optional[Divergence] = None
    bisect_checked: int = 0
    input_shapes: dict = field(default_factory=dict)
    nodes: list = field(default_factory=list)  # diagnose.NodeError per ONNX node output (bisect)
    worst: list = field(default_factory=list)  # names of the worst diverging nodes
    samples: list = field(default_factory=list)  # per sample: ok, outputs, first diverging node

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- inputs
def _index_limits(model: onnx.ModelProto) -> dict:
    """Graph inputs used as indices: name -> exclusive upper bound (size of the indexed axis)."""
    shapes = {}
    for vi in list(model.graph.input) + list(model.graph.value_info):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    limits = {}
    for node in model.graph.node:
        if node.op_type in ("Gather", "GatherElements") and len(node.input) > 1:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            data = shapes.get(node.input[0])
            if data and data[axis % len(data)]:
                limits[node.input[1]] = min(limits.get(node.input[1], 1 << 30), data[axis % len(data)])
        if node.op_type == "OneHot" and len(node.input) > 1:
            limits.setdefault(node.input[0], 2)
    return limits


def make_inputs(model: onnx.ModelProto, input_shapes: Optional[dict] = None, seed: int = 0) -> dict:
    """Seeded random inputs that fit the model: floats ~ N(0, 1), index inputs within range,
    declared dims honoured, dynamic dims from `input_shapes` or a sensible default."""
    rng = np.random.default_rng(seed)
    init = {i.name for i in model.graph.initializer}
    limits = _index_limits(model)
    feeds = {}
    for vi in model.graph.input:
        if vi.name in init:
            continue
        tt = vi.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        fixed = (input_shapes or {}).get(vi.name)
        shape = []
        for axis, d in enumerate(dims):
            if fixed is not None and fixed[axis] is not None:
                shape.append(int(fixed[axis]))
            elif d:
                shape.append(d)
            else:
                shape.append(2 if axis == 0 else (32 if len(dims) >= 4 else 8))
        if np.issubdtype(dtype, np.floating):
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[vi.name] = rng.random(shape) < 0.5
        else:
            high = limits.get(vi.name, 10)
            feeds[vi.name] = rng.integers(0, max(high, 1), size=shape).astype(dtype)
    return feeds


# ----------------------------------------------------------------------------- running
def run_onnxruntime(model: onnx.ModelProto, feeds: dict, outputs: Optional[list] = None) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if outputs:
        model = _with_outputs(model, outputs)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def _with_outputs(model: onnx.ModelProto, names: list) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.ValueInfoProto(name=n))
    return m


def run_keras(keras_model, model: onnx.ModelProto, feeds: dict, channels_last_io: bool = False) -> list:
    init = {i.name for i in model.graph.initializer}
    args = []
    for vi in model.graph.input:
        if vi.name in init:
            continue
        x = feeds[vi.name]
        if channels_last_io and x.ndim >= 3:
            x = np.transpose(x, L.channels_last(x.ndim))
        args.append(x)
    out = keras_model(args[0] if len(args) == 1 else args)
    outs = out if isinstance(out, (list, tuple)) else [out]
    res = []
    for o in outs:
        o = _numpy(o)
        if channels_last_io and o.ndim >= 3:
            o = np.transpose(o, L.inverse(L.channels_last(o.ndim)))
        res.append(o)
    return res


def _numpy(x) -> np.ndarray:
    """A backend tensor as numpy (torch tensors that require grad included)."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x))


def compare(name: str, ref: np.ndarray, got: np.ndarray, rtol: float, atol: float) -> OutputComparison:
    ref, got = np.asarray(ref), np.asarray(got)
    if ref.shape != got.shape:
        return OutputComparison(name, list(ref.shape), float("inf"), float("inf"), 1.0, 0.0, False,
                                f"shape {tuple(got.shape)} != onnxruntime {tuple(ref.shape)}")
    if ref.size == 0:
        return OutputComparison(name, list(ref.shape), 0.0, 0.0, 0.0, 0.0, True)
    r = ref.astype(np.float64) if ref.dtype != bool else ref.astype(np.float64)
    g = got.astype(np.float64)
    scale = max(1.0, float(np.max(np.abs(r)))) if np.all(np.isfinite(r)) else 1.0
    tol = atol + rtol * scale
    diff = np.abs(g - r)
    both_nan = np.isnan(r) & np.isnan(g)
    same_inf = np.isinf(r) & (r == g)
    diff = np.where(both_nan | same_inf, 0.0, diff)
    diff = np.where(np.isnan(diff), np.inf, diff)
    max_abs = float(np.max(diff))
    max_rel = float(np.max(diff / np.maximum(np.abs(r), 1e-12)))
    if not np.issubdtype(ref.dtype, np.floating):
        tol = 0.0
    mismatch = float(np.mean(diff > tol))
    return OutputComparison(name, list(ref.shape), max_abs, max_rel, mismatch, tol, max_abs <= tol)


# ----------------------------------------------------------------------------- verify
def verify(onnx_model, keras_model=None, inputs=None, *, rtol: float = DEFAULT_RTOL,
           atol: float = DEFAULT_ATOL, input_shapes: Optional[dict] = None, channels_last_io: bool = False,
           bisect: bool = False, seed: int = 0, conversion=None) -> VerifyResult:
    """Compare a Keras model (converted now if not given) with onnxruntime on the same inputs.

    `inputs` maps input names to arrays, or is a list of such dicts (several samples: the
    result's outputs are the worst over the samples, `samples` has each one's figures); seeded
    random inputs that fit the model if None.
    An output agrees when max|keras - onnxruntime| <= atol + rtol * max(1, max|onnxruntime|).
    With bisect=True, every intermediate tensor OF THIS KERAS MODEL (through the tensor map
    konnx saved in it) is compared with onnxruntime's, per node, and the first diverging node
    named with its likely cause. `keras_model` may also be the path of a .tflite file konnx
    exported: it runs in the LiteRT interpreter, bisected through the map in its metadata."""
    from .api import convert_detailed

    proto = loader.load(onnx_model)
    input_shapes = check_input_shapes(proto, input_shapes)
    samples = _samples(proto, inputs, input_shapes, seed)
    if inputs is not None:  # refused with the expected names, shapes and dtypes when they do not fit
        samples = [check_inputs(proto, feeds, input_shapes) for feeds in samples]
    if keras_model is None:
        if conversion is None:
            conversion = convert_detailed(proto, input_shapes=input_shapes, channels_last_io=channels_last_io)
        keras_model = conversion.model
    if str(keras_model).endswith(".tflite"):  # a .tflite file: its interpreter, through its tensor map
        probe = TFLiteProbe(proto, Path(keras_model).read_bytes())
    else:
        probe = _Probe(proto, keras_model) if bisect else None  # no tensor map: says so before running anything
    per_sample, per_sample_rows = [], []
    for feeds in samples:
        if probe is None:
            ref, got = run_onnxruntime(proto, feeds), run_keras(keras_model, proto, feeds, channels_last_io)
        else:  # one onnxruntime run and one Keras run give the outputs and every intermediate tensor
            ref, got, rows = probe.run(feeds, rtol, atol)
            per_sample_rows.append(rows)
        per_sample.append([compare(o.name, ref[o.name], g, rtol, atol) for o, g in zip(proto.graph.output, got)])
    outs = [max(cs, key=lambda c: (not c.ok, c.max_abs)) for cs in zip(*per_sample)]
    result = VerifyResult(all(o.ok for o in outs), outs,
                          input_shapes={k: list(v.shape) for k, v in samples[0].items()})
    if len(samples) > 1:
        result.samples = [{"index": i, "ok": all(c.ok for c in cs), "outputs": [asdict(c) for c in cs]}
                          for i, cs in enumerate(per_sample)]
    if bisect:
        _bisect(result, proto, per_sample_rows, samples)
    return result


def _samples(proto, inputs, input_shapes, seed) -> list:
    if inputs is None:
        return [make_inputs(proto, input_shapes, seed)]
    if isinstance(inputs, dict):
        return [dict(inputs)]
    samples = [dict(s) for s in inputs]
    if not samples:
        raise ConversionError("no input sample given: expected a dict of arrays or a non-empty list of them")
    return samples


class _Probe:
    """The Keras model's own intermediate tensors (through its tensor map) next to onnxruntime's."""

    def __init__(self, proto, keras_model):
        from . import tensor_map

        self.proto, self.record = proto, tensor_map.read(keras_model)
        self.model, self.entries = tensor_map.probe_model(keras_model, self.record)
        self.n_out = len(keras_model.outputs)
        position = {o: i for i, n in enumerate(proto.graph.node) for o in n.output if o}
        self.keep = sorted((i for i, e in enumerate(self.entries) if e["onnx"] in position),
                           key=lambda i: position[self.entries[i]["onnx"]])

    def run(self, feeds: dict, rtol: float, atol: float):
        """(onnxruntime values by name, the model's outputs in ONNX layout, per-node rows)."""
        names = list(dict.fromkeys(self.entries[i]["onnx"] for i in self.keep))
        ref = run_onnxruntime(self.proto, feeds, names)
        args = [np.transpose(np.asarray(feeds[i["onnx"]]), i["perm"]) for i in self.record["inputs"]]
        got = self.model(args[0] if len(args) == 1 else args)
        got = [_numpy(g) for g in (got if isinstance(got, (list, tuple)) else [got])]
        outs = [np.transpose(g, L.inverse(tuple(o["perm"]))) for g, o in zip(got, self.record["outputs"])]
        return ref, outs, _node_rows(self.proto, self.record, self.entries, self.keep, got[self.n_out:], ref, feeds,
                                     rtol, atol)


class TFLiteProbe:
    """verify's probe over a .tflite file: its outputs and mapped intermediate tensors per run."""

    def __init__(self, proto, data: bytes):
        self.proto, self.data = proto, data
        from .tflite_map import read

        self.record = read(data)
        self.entries = self.record["tensors"]
        position = {o: i for i, n in enumerate(proto.graph.node) for o in n.output if o}
        self.keep = sorted((i for i, e in enumerate(self.entries) if e["onnx"] in position),
                           key=lambda i: position[self.entries[i]["onnx"]])

    def run(self, feeds: dict, rtol: float, atol: float):
        from .tflite_map import interpreter, signature_runner

        ref = run_onnxruntime(self.proto, feeds, list(dict.fromkeys(self.entries[i]["onnx"] for i in self.keep)))
        interp = interpreter(self.data)
        runner, _ = signature_runner(interp)
        args = {i["keras"]: np.ascontiguousarray(np.transpose(np.asarray(feeds[i["onnx"]]), i["perm"]))
                for i in self.record["inputs"]}
        out = runner(**args)
        order = sorted(out, key=lambda n: int(n.rpartition("_")[2]) if n.rpartition("_")[2].isdigit() else 0)
        outs = [np.transpose(out[n], L.inverse(tuple(o["perm"]))) for n, o in zip(order, self.record["outputs"])]
        got = [interp.get_tensor(e["tflite_index"]) for e in self.entries]
        return ref, outs, _node_rows(self.proto, self.record, self.entries, self.keep, got, ref, feeds, rtol, atol)


def _bisect(result: VerifyResult, proto, per_sample: list, samples: list) -> None:
    """Fill result.nodes (worst over the samples), .bisect (first diverging node), .worst."""
    from . import diagnose

    if len(samples) > 1:
        for s, rows in zip(result.samples, per_sample):
            s["first_diverging"] = next((r.node for r in rows if not r.ok), None)
    rows = diagnose.merge_samples(per_sample) if per_sample[0] else []
    result.nodes, result.bisect_checked = rows, len(rows)
    result.worst = [r.node for r in diagnose.worst(rows)]
    first = next((r for r in rows if not r.ok), None)
    if first is not None:
        node = next(n for n in proto.graph.node if first.output in n.output)
        attrs = {a.name: _plain(onnx.helper.get_attribute_value(a)) for a in node.attribute}
        shapes = [list(samples[0][n].shape) if n in samples[0] else _shape_of(n, rows) for n in node.input if n]
        padding = next((d for d in first.decisions if d.get("decision")), None)
        result.bisect = Divergence(first.node, first.op_type, first.output, attrs, shapes, first.max_abs,
                                   first.tolerance, padding, first.module, first.source, first.origin,
                                   list(first.causes))


def _shape_of(name: str, rows: list) -> list:
    return next((list(r.shape) for r in rows if r.output == name), [])


def _node_rows(proto, record, entries, keep, got, ref, feeds, rtol, atol) -> list:
    """One diagnose.NodeError per recorded node output, in topological order."""
    from . import diagnose, source_names

    nodes = {o: n for n in proto.graph.node for o in n.output if o}
    rows, by_out, got_by = [], {}, {}
    for i in keep:
        e, node = entries[i], nodes[entries[i]["onnx"]]
        out = e["onnx"]
        g = got[i] if got[i].ndim != len(e["perm"]) else np.transpose(got[i], L.inverse(tuple(e["perm"])))
        c = compare(out, ref[out], g, rtol, atol)
        rmse, cosine = diagnose.rmse_cosine(ref[out], g)
        row = diagnose.NodeError(len(rows), node.name or out, node.op_type, out, c.shape, c.max_abs, c.max_rel,
                                 rmse, cosine, c.mismatch, c.tolerance, c.ok, source_names.module_path(node),
                                 source_names.source_line(node),
                                 decisions=list(record["decisions"].get(node.name or out, [])))
        if not c.ok:
            ins = [n for n in node.input if n]
            diagnose.explain(row, [by_out.get(n) for n in ins], [ref.get(n, feeds.get(n)) for n in ins],
                             [got_by.get(n, feeds.get(n)) for n in ins], ref[out], g)
            if source_names.rewrite_rule(node):
                row.causes.append(f"the exporter's optimizer built this node (rule {source_names.rewrite_rule(node)}): "
                                  "it stands for several PyTorch ops, named after the last one it absorbed")
        rows.append(row)
        by_out[out], got_by[out] = row, g
    return rows


def _plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (int, float, str)):
        return v
    return str(type(v).__name__)
