"""The oracle's primitives: seeded inputs that fit a model, onnxruntime and Keras runs, and the
per-output comparison at konnx's tolerance. `konnx.verify` (which may convert first) and
`konnx.convert(..., verify=True)` both build on them; this module converts nothing, so the
converter can use it without an import cycle."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np
import onnx

from . import layout as L


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
    # who judged `ok`: onnxruntime, or the ONNX reference implementation where konnx and
    # onnxruntime disagree and konnx matches the reference (onnxruntime deviates from the spec)
    judge: str = "onnxruntime"
    reference_max_abs: Optional[float] = None  # konnx vs the reference, when it was consulted


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
    note: str = ""  # onnxruntime deviating from the spec where konnx follows the reference implementation

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
    limits = _index_limits(model)
    shapes = seeded_shapes(model, input_shapes)
    _check_size(shapes)
    feeds = {}
    for name, (dtype, shape) in shapes.items():
        if np.issubdtype(dtype, np.floating):
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[name] = rng.random(shape) < 0.5
        else:
            high = limits.get(name, 10)
            feeds[name] = rng.integers(0, max(high, 1), size=shape).astype(dtype)
    return feeds


MAX_SEEDED_ELEMENTS = 1 << 26  # all seeded inputs together (256 MB of float32)


def seeded_shapes(model: onnx.ModelProto, input_shapes: Optional[dict] = None) -> dict:
    """name -> (numpy dtype, shape) of the inputs make_inputs builds: declared dims honoured,
    dynamic dims from `input_shapes` or a default (2 for the batch, 32 or 8 for the rest)."""
    from .errors import ConversionError

    init = {i.name for i in model.graph.initializer}
    out = {}
    for vi in model.graph.input:
        if vi.name in init:
            continue
        tt = vi.type.tensor_type
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))
        except (KeyError, TypeError, ValueError) as e:
            raise ConversionError(f"graph input '{vi.name}' has element type {tt.elem_type}, which has no numpy "
                                  "equivalent: seeded inputs cannot be made for it; pass inputs={...}") from e
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
        out[vi.name] = (dtype, shape)
    return out


def _check_size(shapes: dict) -> None:
    """Refuse seeded inputs too large to allocate, naming the inputs and their sizes."""
    from .errors import InputsTooLargeError

    sizes = {n: int(np.prod(s, dtype=object)) for n, (_, s) in shapes.items()}
    total = sum(sizes.values())
    if total <= MAX_SEEDED_ELEMENTS:
        return
    big = sorted(sizes, key=sizes.get, reverse=True)
    listing = ", ".join(f"'{n}' {list(shapes[n][1])} ({sizes[n]:,} elements, "
                        f"{sizes[n] * shapes[n][0].itemsize / 2**30:.3g} GiB)" for n in big[:3])
    raise InputsTooLargeError(
        f"seeded inputs for the check against onnxruntime would hold {total:,} elements, above the limit of "
        f"{MAX_SEEDED_ELEMENTS:,}: {listing}; nothing was allocated. Check the model at a smaller size "
        "(input_shapes / --input-shape for dynamic dims, or real inputs: konnx.verify(..., inputs=...), "
        "konnx verify --inputs)")


# ----------------------------------------------------------------------------- running
def run_onnxruntime(model, feeds: dict, outputs: Optional[list] = None) -> dict:
    """onnxruntime's outputs (all, or `outputs` exposed) on `feeds`. `model` is a ModelProto, or
    the path of an ONNX file (read by onnxruntime itself: no serialized copy of a large model in
    this process; not with `outputs`)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if outputs:
        model = _with_outputs(model, outputs)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = str(model) if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
    sess = ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])
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
        o = to_numpy(o)
        if channels_last_io and o.ndim >= 3:
            o = np.transpose(o, L.inverse(L.channels_last(o.ndim)))
        res.append(o)
    return res


def to_numpy(x) -> np.ndarray:
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
    with np.errstate(invalid="ignore"):  # inf - inf and NaN: decided below
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
