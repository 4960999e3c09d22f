"""verify: run onnxruntime and the Keras model on the same inputs and compare every output;
bisect: expose every intermediate tensor on both sides and name the first diverging node."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np
import onnx
from onnx import numpy_helper

from . import layout as L
from . import loader
from .errors import ConversionError
from .inputs import check_input_shapes
from .verify_inputs import check_inputs, check_tolerances, keras_model_arg, samples_arg
from .oracle import (  # noqa: F401  (re-exported: konnx.verify's public helpers)
    Divergence, OutputComparison, VerifyResult, to_numpy, compare, make_inputs, run_keras, run_onnxruntime,
)
from .reference import REFERENCE_TIMEOUT, deviation_note, judge
from .tolerances import DEFAULT_ATOL, DEFAULT_RTOL


def verify(onnx_model, keras_model=None, inputs=None, *, rtol: float = DEFAULT_RTOL,
           atol: float = DEFAULT_ATOL, input_shapes: Optional[dict] = None, channels_last_io: bool = False,
           bisect: bool = False, seed: int = 0, conversion=None,
           reference_timeout: float = REFERENCE_TIMEOUT) -> VerifyResult:
    """Compare a Keras model (converted now if not given) with onnxruntime on the same inputs.

    `inputs` maps input names to arrays, or is a list of such dicts (several samples: the
    result's outputs are the worst over the samples, `samples` has each one's figures); seeded
    random inputs that fit the model if None.
    An output agrees when max|keras - onnxruntime| <= atol + rtol * max(1, max|onnxruntime|).
    Where it does not, the ONNX reference implementation judges (in a child process stopped after
    `reference_timeout` seconds; 0 never consults it): an output konnx computes as the reference
    does is ok, judged by 'onnx.reference', and `result.note` says onnxruntime deviates from the
    spec on this model.
    With bisect=True, every intermediate tensor OF THIS KERAS MODEL (through the tensor map
    konnx saved in it) is compared with onnxruntime's, per node, and the first diverging node
    named with its likely cause. `keras_model` may also be the path of a .tflite file konnx
    exported: it runs in the LiteRT interpreter, bisected through the map in its metadata."""
    from .api import convert_detailed

    proto = loader.load(onnx_model)
    input_shapes = check_input_shapes(proto, input_shapes)
    check_tolerances(rtol, atol)
    given, keras_model = keras_model is not None, keras_model_arg(keras_model)
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
            ref = _run(run_onnxruntime, "onnxruntime cannot run this model on these inputs", proto, feeds)
            got = _run(run_keras, "the Keras model does not run on the ONNX model's inputs (a model converted from "
                       "another ONNX file, or channels_last_io missing?)" if given else None,
                       keras_model, proto, feeds, channels_last_io)
        else:  # one onnxruntime run and one Keras run give the outputs and every intermediate tensor
            ref, got, rows = _run(probe.run, "running onnxruntime and the model for the bisect failed",
                                  feeds, rtol, atol, reference_timeout)
            per_sample_rows.append(rows)
        cs = [compare(o.name, ref[o.name], g, rtol, atol) for o, g in zip(proto.graph.output, got)]
        if reference_timeout > 0:
            cs = judge(proto, feeds, got, cs, rtol, atol, reference_timeout, ort=ref)
        per_sample.append(cs)
    outs = [max(cs, key=lambda c: (not c.ok, c.max_abs)) for cs in zip(*per_sample)]
    result = VerifyResult(all(o.ok for o in outs), outs,
                          input_shapes={k: list(v.shape) for k, v in samples[0].items()},
                          note=deviation_note([c for cs in per_sample for c in cs]))
    if len(samples) > 1:
        result.samples = [{"index": i, "ok": all(c.ok for c in cs), "outputs": [asdict(c) for c in cs]}
                          for i, cs in enumerate(per_sample)]
    if bisect:
        _bisect(result, proto, per_sample_rows, samples)
    return result


def _samples(proto, inputs, input_shapes, seed) -> list:
    if inputs is None:
        return [make_inputs(proto, input_shapes, seed)]
    return samples_arg(inputs)


def _run(fn, what, *args):
    """fn(*args); a failure becomes a ConversionError saying `what` failed (the user's model or
    inputs), or an internal konnx error when `what` is None (konnx's own conversion failed to
    run), the original exception chained."""
    try:
        return fn(*args)
    except ConversionError:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime, Keras and TensorFlow raise many types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        if what is None:
            raise ConversionError(f"internal error (a konnx bug, please report it): the converted model failed to "
                                  f"run on the inputs: {type(e).__name__}: {first}") from e
        raise ConversionError(f"{what}: {type(e).__name__}: {first}") from e


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

    def run(self, feeds: dict, rtol: float, atol: float, timeout: float = REFERENCE_TIMEOUT):
        """(onnxruntime values by name, the model's outputs in ONNX layout, per-node rows)."""
        names = list(dict.fromkeys(self.entries[i]["onnx"] for i in self.keep))
        ref = run_onnxruntime(self.proto, feeds, names)
        args = [np.transpose(np.asarray(feeds[i["onnx"]]), i["perm"]) for i in self.record["inputs"]]
        got = self.model(args[0] if len(args) == 1 else args)
        got = [to_numpy(g) for g in (got if isinstance(got, (list, tuple)) else [got])]
        outs = [np.transpose(g, L.inverse(tuple(o["perm"]))) for g, o in zip(got, self.record["outputs"])]
        return ref, outs, _node_rows(self.proto, self.record, self.entries, self.keep, got[self.n_out:], ref, feeds,
                                     rtol, atol, timeout)


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

    def run(self, feeds: dict, rtol: float, atol: float, timeout: float = REFERENCE_TIMEOUT):
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
        return ref, outs, _node_rows(self.proto, self.record, self.entries, self.keep, got, ref, feeds, rtol, atol,
                                     timeout)


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


def _node_rows(proto, record, entries, keep, got, ref, feeds, rtol, atol, timeout=REFERENCE_TIMEOUT) -> list:
    """One diagnose.NodeError per recorded node output, in topological order. A node diverging
    from onnxruntime whose output, on konnx's own inputs, is what the ONNX reference
    implementation computes is ok (onnxruntime deviates there, or upstream of it)."""
    from . import diagnose, source_names

    nodes = {o: n for n in proto.graph.node for o in n.output if o}
    rows, values = [], {}
    for i in keep:
        e, node = entries[i], nodes[entries[i]["onnx"]]
        out = e["onnx"]
        g = got[i] if got[i].ndim != len(e["perm"]) else np.transpose(got[i], L.inverse(tuple(e["perm"])))
        c = compare(out, ref[out], g, rtol, atol)
        rmse, cosine = diagnose.rmse_cosine(ref[out], g)
        rows.append(diagnose.NodeError(len(rows), node.name or out, node.op_type, out, c.shape, c.max_abs, c.max_rel,
                                       rmse, cosine, c.mismatch, c.tolerance, c.ok, source_names.module_path(node),
                                       source_names.source_line(node),
                                       decisions=list(record["decisions"].get(node.name or out, []))))
        values[out] = g
    _judge_rows(proto, nodes, rows, values, ref, feeds, rtol, atol, timeout)
    by_out = {}
    for row in rows:
        node = nodes[row.output]
        if not row.ok:
            ins = [n for n in node.input if n]
            diagnose.explain(row, [by_out.get(n) for n in ins], [ref.get(n, feeds.get(n)) for n in ins],
                             [values.get(n, feeds.get(n)) for n in ins], ref[row.output], values[row.output])
            if source_names.rewrite_rule(node):
                row.causes.append(f"the exporter's optimizer built this node (rule {source_names.rewrite_rule(node)}): "
                                  "it stands for several PyTorch ops, named after the last one it absorbed")
        by_out[row.output] = row
    return rows


def _judge_rows(proto, nodes, rows, values, ref, feeds, rtol, atol, timeout) -> None:
    """Mark ok the diverging rows the reference implementation sides with konnx on (reference.judge_nodes),
    unless an input already diverges for another reason: a correct node fed by a broken one
    inherits the break, it is not onnxruntime deviating. Two child runs at most: the rows where a
    divergence is created, then (only if some of those were excused) the rows downstream of
    excused ones alone; a real break costs one run of the nodes it is created at."""
    if timeout <= 0 or all(r.ok for r in rows):
        return
    by_out = {r.output: r for r in rows}

    def upstream(r):
        return [by_out[n] for n in nodes[r.output].input if n in by_out]

    created = [r for r in rows if not r.ok and all(u.ok for u in upstream(r))]
    if not _excuse(proto, nodes, created, upstream, values, ref, feeds, rtol, atol, timeout):
        return
    later, pending = [], set()
    for r in rows:
        if not r.ok and r not in created and all(u.ok or u.output in pending for u in upstream(r)):
            pending.add(r.output)
            later.append(r)
    _excuse(proto, nodes, later, upstream, values, ref, feeds, rtol, atol, timeout)


def _excuse(proto, nodes, rows, upstream, values, ref, feeds, rtol, atol, timeout) -> int:
    """Judge `rows` (topological order) by the reference on konnx's inputs; returns how many were excused."""
    from .reference import judge_nodes, overflows

    init = {t.name: t for t in proto.graph.initializer}

    def value(name):
        if name in values or name in feeds:
            return values.get(name, feeds.get(name))
        if name in init:
            return numpy_helper.to_array(init[name])
        return ref.get(name)  # not recorded by konnx (folded while converting): onnxruntime's value

    cases = [(nodes[r.output], [value(n) for n in nodes[r.output].input if n], r.output, values[r.output])
             for r in rows]
    # konnx overflowing finite inputs where onnxruntime stays finite is lost precision: never excused
    cases = [c for c in cases if not overflows(ref[c[2]], c[3], {str(i): v for i, v in enumerate(c[1])
                                                                 if v is not None})]
    judged = judge_nodes(proto, cases, rtol, atol, timeout) if cases else {}
    excused = 0
    for r in rows:  # an input's row is settled before its consumers'
        if r.output in judged and all(u.ok for u in upstream(r)):
            r.ok, r.judge, excused = True, "onnx.reference", excused + 1
            r.causes = [f"onnxruntime differs here by {r.max_abs:.3g}, but on this node's own inputs konnx computes "
                        f"what the ONNX reference implementation computes (max abs error {judged[r.output]:.3g}): "
                        "onnxruntime deviates from the ONNX spec here or upstream"]
    return excused


def _plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (int, float, str)):
        return v
    return str(type(v).__name__)
