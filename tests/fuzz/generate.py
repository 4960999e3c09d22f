"""Deterministic hostile cases for the fuzz suite (issue 14).

A case is named by a string id and rebuilt from it alone, so the runner only ships ids to its
worker processes:
- ``node:<base>:<kind>:<k>``: the ONNX backend node test case <base> (the eligible, passing
  ones: tests/backend_exclusions.py), mutated by <kind> with seed (<base>, <kind>, <k>):
  ``attr`` (an attribute set out of range, to zero, negative, huge, NaN or the wrong type),
  ``shape`` (a declared input shape changed, data regenerated to match), ``dtype`` (an input's
  element type changed, data cast), ``data`` (NaN/Inf/huge/zero values in the float inputs),
  ``drop`` (a node input dropped) or ``none`` (the case as shipped);
- ``file:<net>:<kind>:<k>``: the serialized bytes of a test network (examples/tiny_resnet.onnx,
  or a node case) ``trunc``-ated or with bytes ``flip``-ped.
`build(case_id)` gives (ModelProto or bytes, feeds).
"""
from __future__ import annotations

import functools
import random
import warnings
import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
NODE_KINDS = ("attr", "attr", "shape", "dtype", "data", "drop", "none")
FILE_KINDS = ("trunc", "flip")
FILE_NETS = ("tiny_resnet",)
_INT_VALUES = (0, -1, -3, 2, 7, 1 << 31, -(1 << 31), 1 << 40)
_FLOAT_VALUES = (float("nan"), float("inf"), -float("inf"), 0.0, -1.0, 1e30, -1e-30)
_DATA_VALUES = (np.nan, np.inf, -np.inf, 3.0e38, -3.0e38, 0.0, 1e-40)
_DTYPES = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT64,
           TensorProto.INT32, TensorProto.BOOL, TensorProto.UINT8, 999)


@functools.lru_cache(maxsize=1)
def base_cases() -> dict:
    """name -> (model, input arrays) of every eligible node case konnx passes, parameter inputs
    (weights, shapes: konnx.backend.parameter_inputs) bound as initializers as the backend does."""
    from onnx.backend.test.loader import load_model_tests

    from konnx.backend import _bind, parameter_inputs
    from tests import backend_exclusions as X

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = load_model_tests(kind="node")
    skip = X.excluded()
    out = {}
    for case in cases:
        if case.name in skip or X.ineligible_reason(case.model, case.data_sets) is not None:
            continue
        model = case.model
        # onnx's loader hands some inputs (the Cast/CastLike cases) over as TensorProto
        inputs = [numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v for v in case.data_sets[0][0]]
        names = [i.name for i in model.graph.input]
        values = dict(zip(names, inputs))
        bound = {n: values[n] for n in parameter_inputs(model) if n in values}
        model = _bind(model, bound) if bound else model
        out[case.name] = (model, {n: v for n, v in values.items() if n not in bound})
    return out


def all_ids(per_base: int = 2) -> list[str]:
    """Every case id of the full run: `per_base` mutations of each kind per base case, plus
    the file cases."""
    ids = []
    for base in sorted(base_cases()):
        for j in range(per_base):
            kind = NODE_KINDS[zlib.crc32(f"{base}:{j}".encode()) % len(NODE_KINDS)]
            ids.append(f"node:{base}:{kind}:{j}")
        ids.append(f"node:{base}:attr:{per_base}")
    for net in FILE_NETS:
        for kind in FILE_KINDS:
            ids.extend(f"file:{net}:{kind}:{k}" for k in range(40))
    return ids


def sample_ids(n: int = 300) -> list[str]:
    """A fixed, evenly spread subset of `all_ids()` (the default test run)."""
    ids = all_ids()
    step = max(1, len(ids) // n)
    return ids[::step][:n]


def build(case_id: str):
    """(model, feeds): the model is a ModelProto, or bytes for a file case."""
    source, name, kind, k = case_id.split(":")
    rng = random.Random(f"{case_id}")
    if source == "file":
        return _file_case(name, kind, rng)
    model, feeds = base_cases()[name]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    feeds = {n: np.array(v) for n, v in feeds.items()}
    MUTATORS[kind](m, feeds, rng)
    return m, feeds


def _file_case(name: str, kind: str, rng: random.Random):
    data = bytearray((ROOT / "examples" / f"{name}.onnx").read_bytes())
    if kind == "trunc":
        data = data[:rng.randrange(0, len(data))]
    else:
        for _ in range(rng.choice((1, 2, 8, 64))):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data), None


def _mutate_attr(m: onnx.ModelProto, feeds: dict, rng: random.Random) -> None:
    nodes = [n for n in m.graph.node if n.attribute]
    if not nodes:
        return _mutate_data(m, feeds, rng)
    attr = rng.choice(list(rng.choice(nodes).attribute))
    if rng.random() < 0.15:  # the wrong type: an int where a float is expected and vice versa
        new = helper.make_attribute(attr.name, 2.5 if attr.type == onnx.AttributeProto.INT else 3)
    elif attr.type == onnx.AttributeProto.INT:
        new = helper.make_attribute(attr.name, rng.choice(_INT_VALUES))
    elif attr.type == onnx.AttributeProto.INTS and attr.ints:
        vals = list(attr.ints)
        vals[rng.randrange(len(vals))] = rng.choice(_INT_VALUES)
        new = helper.make_attribute(attr.name, vals)
    elif attr.type == onnx.AttributeProto.FLOAT:
        new = helper.make_attribute(attr.name, rng.choice(_FLOAT_VALUES))
    elif attr.type == onnx.AttributeProto.STRING:
        new = helper.make_attribute(attr.name, rng.choice((b"bogus", b"", b"\xff\xfe")))
    else:
        return _mutate_data(m, feeds, rng)
    attr.CopyFrom(new)


def _graph_input(m: onnx.ModelProto, feeds: dict, rng: random.Random):
    names = [i for i in m.graph.input if i.name in feeds]
    return rng.choice(names) if names else None


def _mutate_shape(m: onnx.ModelProto, feeds: dict, rng: random.Random) -> None:
    vi = _graph_input(m, feeds, rng)
    if vi is None:
        return
    shape = list(feeds[vi.name].shape)
    choice = rng.randrange(3)
    if choice == 0 and shape:
        i = rng.randrange(len(shape))
        shape[i] = rng.choice((1, shape[i] + 1, max(shape[i] - 1, 0)))
    elif choice == 1 and shape:
        shape.pop(rng.randrange(len(shape)))
    else:
        shape.insert(rng.randrange(len(shape) + 1), rng.choice((1, 2)))
    dims = vi.type.tensor_type.shape
    dims.Clear()
    for d in shape:
        dims.dim.add().dim_value = d
    old = feeds[vi.name]
    np_rng = np.random.default_rng(rng.randrange(1 << 30))
    feeds[vi.name] = np_rng.standard_normal(shape).astype(old.dtype) if old.dtype.kind == "f" \
        else np_rng.integers(0, 3, shape).astype(old.dtype)


def _mutate_dtype(m: onnx.ModelProto, feeds: dict, rng: random.Random) -> None:
    vi = _graph_input(m, feeds, rng)
    if vi is None:
        return
    new = rng.choice([t for t in _DTYPES if t != vi.type.tensor_type.elem_type])
    vi.type.tensor_type.elem_type = new
    if new != 999:
        try:
            feeds[vi.name] = feeds[vi.name].astype(helper.tensor_dtype_to_np_dtype(new))
        except (TypeError, ValueError):  # inputs onnx stores as objects (float8, ...): data as is
            pass


def _mutate_data(m: onnx.ModelProto, feeds: dict, rng: random.Random) -> None:
    floats = [n for n, v in feeds.items() if v.dtype.kind == "f" and v.size]
    if not floats:
        return
    v = feeds[rng.choice(floats)]
    flat = v.reshape(-1)
    for _ in range(rng.choice((1, 2, max(1, flat.size // 4)))):
        with np.errstate(over="ignore"):
            flat[rng.randrange(flat.size)] = rng.choice(_DATA_VALUES)


def _mutate_drop(m: onnx.ModelProto, feeds: dict, rng: random.Random) -> None:
    nodes = [n for n in m.graph.node if any(n.input)]
    if not nodes:
        return
    node = rng.choice(nodes)
    ins = list(node.input)
    i = rng.randrange(len(ins))
    if i == len(ins) - 1:
        ins.pop()
    else:
        ins[i] = ""
    del node.input[:]
    node.input.extend(ins)
    used = {x for n in m.graph.node for x in n.input}
    keep = [vi for vi in m.graph.input if vi.name in used]
    for vi in m.graph.input:
        if vi.name not in used:
            feeds.pop(vi.name, None)
    del m.graph.input[:]
    m.graph.input.extend(keep)


MUTATORS = {"attr": _mutate_attr, "shape": _mutate_shape, "dtype": _mutate_dtype, "data": _mutate_data,
            "drop": _mutate_drop, "none": lambda m, feeds, rng: None}


def random_feeds(model: onnx.ModelProto, seed: int = 0) -> dict:
    """Seeded inputs from the declared shapes (unknown dims: 2), for file cases that still parse."""
    rng = np.random.default_rng(seed)
    init = {i.name for i in model.graph.initializer}
    out = {}
    for vi in model.graph.input:
        if vi.name in init:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") and 0 < d.dim_value < 4096 else 2 for d in tt.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
        out[vi.name] = rng.standard_normal(shape).astype(dtype)
    return out


__all__ = ["all_ids", "sample_ids", "build", "base_cases", "random_feeds", "numpy_helper"]
