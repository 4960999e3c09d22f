"""verify: run onnxruntime and the Keras model on the same inputs and compare every output;
bisect: expose every intermediate tensor on both sides and name the first diverging node."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np
import onnx

from . import layout as L
from . import loader
from .errors import ConversionError
from .inputs import check_input_shapes, dims_of, dims_text, real_inputs
from .tolerances import DEFAULT_ATOL, DEFAULT_RTOL
from .values import Tensor


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
    node: str
    op_type: str
    output: str
    attributes: dict
    input_shapes: list
    max_abs: float
    tolerance: float
    padding: Optional[dict] = None


@dataclass
class VerifyResult:
    ok: bool
    outputs: list
    bisect: Optional[Divergence] = None
    bisect_checked: int = 0
    input_shapes: dict = field(default_factory=dict)

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
def verify(onnx_model, keras_model=None, inputs: Optional[dict] = None, *, rtol: float = DEFAULT_RTOL,
           atol: float = DEFAULT_ATOL, input_shapes: Optional[dict] = None, channels_last_io: bool = False,
           bisect: bool = False, seed: int = 0, conversion=None) -> VerifyResult:
    """Compare a Keras model (converted now if not given) with onnxruntime on the same inputs.

    `inputs` maps input names to arrays (seeded random ones that fit the model if None).
    An output agrees when max|keras - onnxruntime| <= atol + rtol * max(1, max|onnxruntime|).
    With bisect=True, every intermediate tensor is compared and the first diverging node named."""
    from .api import convert_detailed

    proto = loader.load(onnx_model)
    input_shapes = check_input_shapes(proto, input_shapes)
    if inputs is not None:
        feeds = check_inputs(proto, inputs, input_shapes)
    else:
        feeds = make_inputs(proto, input_shapes, seed)
    if keras_model is None or bisect:
        if conversion is None:
            conversion = convert_detailed(proto, input_shapes=input_shapes, channels_last_io=channels_last_io)
        if keras_model is None:
            keras_model = conversion.model
    ref = run_onnxruntime(proto, feeds)
    got = run_keras(keras_model, proto, feeds, channels_last_io)
    outs = [compare(o.name, ref[o.name], g, rtol, atol) for o, g in zip(proto.graph.output, got)]
    result = VerifyResult(all(o.ok for o in outs), outs,
                          input_shapes={k: list(v.shape) for k, v in feeds.items()})
    if bisect:
        result.bisect, result.bisect_checked = _bisect(proto, conversion, feeds, rtol, atol)
    return result


def _bisect(proto, conversion, feeds, rtol, atol):
    """First node, in topological order, whose output differs beyond the tolerance."""
    import keras

    order = []
    for node in proto.graph.node:
        for out in node.output:
            v = conversion.values.get(out)
            if out and isinstance(v, Tensor):
                order.append((node, out, v))
    if not order:
        return None, 0
    ref = run_onnxruntime(proto, feeds, [o for _, o, _ in order])
    probe = keras.Model(conversion.model.inputs, [v.kt for _, _, v in order])
    init = {i.name for i in proto.graph.initializer}
    args = [feeds[vi.name] for vi in proto.graph.input if vi.name not in init]
    if conversion.channels_last_io:
        args = [np.transpose(a, L.channels_last(a.ndim)) if a.ndim >= 3 else a for a in args]
    got = probe(args)
    got = got if isinstance(got, (list, tuple)) else [got]
    decisions = {d["node"]: d for d in conversion.decisions}
    for i, ((node, out, v), g) in enumerate(zip(order, got)):
        g = np.transpose(_numpy(g), L.inverse(v.perm))
        c = compare(out, ref[out], g, rtol, atol)
        if not c.ok:
            attrs = {a.name: _plain(onnx.helper.get_attribute_value(a)) for a in node.attribute}
            shapes = [list(conversion.values[n].onnx_shape) if n in conversion.values and hasattr(
                conversion.values[n], "onnx_shape") else list(getattr(conversion.values.get(n), "shape", []))
                for n in node.input if n]
            name = node.name or out
            return Divergence(name, node.op_type, out, attrs, shapes, c.max_abs, c.tolerance,
                              decisions.get(name)), i + 1
    return None, len(order)


def _plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (int, float, str)):
        return v
    return str(type(v).__name__)


def load_inputs(path) -> dict:
    """Arrays keyed by input name from an .npz file (np.savez(path, name=array, ...))."""
    if not os.path.exists(path):
        raise ConversionError(f"inputs file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ConversionError(f"{path}: not a readable .npz file ({e}); write one with "
                              "numpy.savez(path, input_name=array, ...)") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ConversionError(f"{path}: expected an .npz file keyed by input name, got a single array; "
                              "write it with numpy.savez(path, input_name=array, ...)")
    with data:
        try:
            return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as e:
            raise ConversionError(f"{path}: cannot read its arrays ({e})") from None


def expected_inputs(model: onnx.ModelProto, input_shapes: Optional[dict] = None) -> dict:
    """The model's real inputs (initializers excluded): name -> (numpy dtype, dims with None for
    a dynamic dim), `input_shapes` applied."""
    out = {}
    for name, vi in real_inputs(model).items():
        if not vi.type.HasField("tensor_type"):
            continue
        dims = dims_of(vi)
        fixed = (input_shapes or {}).get(name)
        if fixed is not None and len(fixed) == len(dims):
            dims = [f if f is not None else d for f, d in zip(fixed, dims)]
        out[name] = (np.dtype(onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)), dims)
    return out


def _describe(expected: dict) -> str:
    return ", ".join(f"{n} {dt} {dims_text(dims)}" for n, (dt, dims) in expected.items())


def check_inputs(model: onnx.ModelProto, feeds: dict, input_shapes: Optional[dict] = None) -> dict:
    """Refuse inputs that do not fit the model, naming what it expects; returns them as arrays."""
    expected = expected_inputs(model, input_shapes)
    want = f"the model expects {_describe(expected)} (ONNX layout)"
    missing = [n for n in expected if n not in feeds]
    unknown = [n for n in feeds if n not in expected]
    if missing or unknown:
        parts = ([f"missing {missing}"] if missing else []) + ([f"unknown {unknown}"] if unknown else [])
        raise ConversionError(f"inputs: {'; '.join(parts)}: {want}")
    arrays = {}
    for name, (dtype, dims) in expected.items():
        x = np.asarray(feeds[name])
        if len(x.shape) != len(dims) or any(d is not None and d != s for d, s in zip(dims, x.shape)):
            hint = ""
            as_nhwc = [dims[p] for p in L.channels_last(len(dims))]
            if len(x.shape) == len(dims) >= 3 and all(d is None or d == s for d, s in zip(as_nhwc, x.shape)):
                hint = " (it looks channels-last: the inputs are given in ONNX layout, NCHW, even with " \
                       "--channels-last-io)"
            raise ConversionError(f"input '{name}' has shape {list(x.shape)}{hint}: {want}")
        if x.dtype != dtype:
            raise ConversionError(f"input '{name}' has dtype {x.dtype}, expected {dtype} "
                                  f"(convert it with .astype('{dtype}')): {want}")
        arrays[name] = x
    return arrays
