"""load -> check -> normalize: everything before Keras objects are built."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import numpy as np
import onnx
import onnx.inliner  # a submodule `import onnx` does not load
from google.protobuf.message import DecodeError

from .errors import ConversionError, InvalidModelError, UnsupportedNode
from .einsum_grammar import check_equations
from .infer_guard import check_before_inference
from .graph import Node
from .ops.registry import lookup

MIN_OPSET = 6


def max_opset() -> int:
    return onnx.defs.onnx_opset_version()


def load(model: Union[str, os.PathLike, onnx.ModelProto, bytes]) -> onnx.ModelProto:
    """Read a model, resolving external data only inside the model's own folder."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        return _parse(bytes(model), "<bytes>")
    if not isinstance(model, (str, os.PathLike)):
        raise InvalidModelError(f"expected an ONNX model as a path, bytes or onnx.ModelProto, got "
                                f"{type(model).__name__} {str(model)[:80]!r}")
    path = Path(model)
    if not path.exists():
        raise InvalidModelError(f"model file not found: {path}")
    if not path.is_file():
        raise InvalidModelError(f"not a file: {path}")
    data = path.read_bytes()
    if not data:
        raise InvalidModelError(f"{path}: the file is empty")
    proto = _parse(data, str(path))
    base = path.resolve().parent
    for tensor in onnx.external_data_helper._get_all_tensors(proto):
        if onnx.external_data_helper.uses_external_data(tensor):
            _check_external(path, base, tensor)
    try:
        onnx.external_data_helper.load_external_data_for_model(proto, str(base))
    except (OSError, ValueError, RuntimeError, onnx.checker.ValidationError) as e:
        raise InvalidModelError(f"{path}: cannot read external data: {e}") from e
    return proto


def _check_external(path: Path, base: Path, tensor) -> None:
    """Tensor's external data: a regular file inside the model's folder, at a valid offset."""
    where = f"{path}: tensor '{tensor.name}'"
    try:
        info = onnx.external_data_helper.ExternalDataInfo(tensor)
    except (ValueError, TypeError) as e:
        raise InvalidModelError(f"{where}: invalid external data entry (offset and length must be non-negative integers): {e}") from e
    loc = str(info.location)
    if "\0" in loc or not loc or any(len(part.encode()) > 255 for part in Path(loc).parts):
        raise InvalidModelError(f"{where}: invalid external data location {loc[:80]!r} (expected a file name "
                                "in the model's folder, without NUL bytes, each part at most 255 bytes)")
    for key in ("offset", "length"):
        value = getattr(info, key, None)
        if value is not None and int(value) < 0:
            raise InvalidModelError(f"{where}: external data {key} {value} is negative (expected >= 0)")
    try:
        target = (base / loc).resolve(strict=False)
    except (OSError, RuntimeError) as e:  # symlink loops
        raise InvalidModelError(f"{where}: cannot resolve external data location {loc!r}: {e}") from e
    if base not in target.parents:
        raise InvalidModelError(f"{where} points to external data outside the model's folder ({loc}); "
                                "refusing to read it")
    if not target.exists():
        raise InvalidModelError(f"{path}: external data file missing: {loc}")
    if not target.is_file():
        raise InvalidModelError(f"{where}: external data {loc} is not a regular file (a FIFO, device or folder)")


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    if not data:
        raise InvalidModelError(f"{where}: the model is empty (0 bytes)")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise InvalidModelError(
            f"{where}: not a readable ONNX model (the file is not ONNX protobuf or is truncated): {e}"
        ) from e
    if not proto.HasField("graph") or (not proto.graph.node and not proto.graph.output):
        raise InvalidModelError(f"{where}: not an ONNX model (no graph found; is the file truncated?)")
    return proto


def default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    raise InvalidModelError("the model imports no version of the default ONNX domain")


def check(model: onnx.ModelProto) -> int:
    """Validate the model; return its default-domain opset."""
    opset = default_opset(model)
    if not MIN_OPSET <= opset <= max_opset():
        raise InvalidModelError(
            f"opset {opset} is outside the range konnx supports ({MIN_OPSET}..{max_opset()})")
    _check_elem_types(model.graph)
    check_before_inference(model.graph)  # the checker below may run shape inference
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        msg = str(e)
        if "is deprecated in domain_version" in msg:
            # e.g. GroupNormalization-18: deprecated in the spec, still defined and run by
            # onnxruntime; konnx converts what the op means at the model's opset.
            return opset
        if "of 'type' is required" in msg or "of 'value_info' is required" in msg:
            # Graph outputs without a declared type/shape are accepted by onnxruntime; check
            # the rest of the model after shape inference has filled them in.
            try:
                onnx.checker.check_model(_with_output_types(model))
                return opset
            except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e2:
                msg = str(e2)
            except MemoryError as e2:  # onnx's inference allocating a size an attribute asks for
                msg = f"shape inference ran out of memory ({e2}): an attribute asks for a huge size"
        first = msg.strip().splitlines()[0] if msg.strip() else repr(e)
        raise InvalidModelError(f"invalid ONNX graph: {first}") from e
    return opset


def _check_elem_types(graph: onnx.GraphProto) -> None:
    """Refuse element types ONNX does not define (the checker accepts any number)."""
    known = set(onnx.TensorProto.DataType.values())
    for kind, vis in (("input", graph.input), ("output", graph.output), ("value_info", graph.value_info)):
        for vi in vis:
            t = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
            if t and t not in known:
                raise InvalidModelError(f"graph {kind} '{vi.name}' declares element type {t}, which is not an "
                                        f"ONNX TensorProto.DataType (expected one of {sorted(known)})")
    for init in graph.initializer:
        if init.data_type not in known:
            raise InvalidModelError(f"initializer '{init.name}' has element type {init.data_type}, which is "
                                    "not an ONNX TensorProto.DataType")


def _with_output_types(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    inferred = onnx.shape_inference.infer_shapes(copy)
    known = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in copy.graph.output:
        vi = known.get(out.name)
        if vi is not None and vi.type.tensor_type.HasField("shape"):
            out.type.CopyFrom(vi.type)
        elif not out.type.tensor_type.HasField("shape"):
            # a rank that only the graph knows at run time: satisfy the checker on this copy
            if vi is not None and vi.type.tensor_type.elem_type:
                out.type.tensor_type.elem_type = vi.type.tensor_type.elem_type
            if not out.type.tensor_type.elem_type:
                out.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
            out.type.tensor_type.shape.SetInParent()
    return copy


def unsupported_nodes(model: onnx.ModelProto, opset: int, weights=()) -> list[UnsupportedNode]:
    """Every node that has no converter (the check stage, before shape inference). Nodes whose
    inputs are all constants are folded, so they need no converter. The converters' declared
    checks run later, in the plan, where the inferred shapes are known. Model-local functions
    are inlined first: their bodies' ops are what must convert, not the calls."""
    model = inline_functions(model)
    g = model.graph
    known = {i.name for i in g.initializer} | set(weights) | {""}
    domain_opset = {imp.domain: imp.version for imp in model.opset_import}  # a custom op's own opset
    out = []
    for idx, proto in enumerate(g.node):
        node = Node(proto, opset, idx)
        foldable = all(i in known for i in node.inputs) and node.op_type not in NONDETERMINISTIC
        if lookup(node.op_type, opset, node.domain) is None and not (foldable and node.domain == ""):
            reason = ("no converter for this op" if node.domain == ""
                      else f"custom domain '{node.domain}' is not supported")
            out.append(UnsupportedNode(node.op_type, node.name, domain_opset.get(node.domain, opset), reason,
                                       node.domain))
        if foldable:
            known.update(node.outputs)
    return out


# ops whose outputs are random: never folded at conversion time
NONDETERMINISTIC = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                              "Multinomial", "Bernoulli"})


_LIGHT_LIMIT = 1024  # elements; larger initializers are weights, never shape values


def split_weights(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    """A copy of the model without its large initializers (declared as graph inputs instead),
    and those initializers by name. The checker and shape inference serialize the model they
    are given, so running them on the light copy saves copying every weight several times."""
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.producer_name, light.producer_version = model.producer_name, model.producer_version
    light.domain, light.model_version, light.doc_string = model.domain, model.model_version, model.doc_string
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    light.metadata_props.extend(model.metadata_props)
    g, lg = model.graph, light.graph
    lg.name, lg.doc_string = g.name, g.doc_string
    lg.node.extend(g.node)
    lg.output.extend(g.output)
    lg.value_info.extend(g.value_info)
    lg.sparse_initializer.extend(g.sparse_initializer)
    declared = {i.name for i in g.input}
    weights = {}
    extra_inputs = []
    for init in g.initializer:
        n = 1
        for d in init.dims:
            n *= d
        if n <= _LIGHT_LIMIT:
            lg.initializer.append(init)
            continue
        weights[init.name] = init
        if init.name not in declared:
            extra_inputs.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    lg.input.extend(g.input)
    lg.input.extend(extra_inputs)
    return light, weights


def inline_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its model-local functions (ModelProto.functions) inlined; as given when it
    has none."""
    if not model.functions:
        return model
    try:
        return onnx.inliner.inline_local_functions(model)
    except (RuntimeError, ValueError, TypeError, onnx.checker.ValidationError) as e:
        raise InvalidModelError(f"cannot inline the model's local functions "
                                f"({', '.join(f.name for f in model.functions)}): {str(e)[:300]}") from e


def normalize(model: onnx.ModelProto, input_shapes: Optional[dict] = None) -> onnx.ModelProto:
    """Inline local functions, fix requested input dims, and run shape inference."""
    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    model = inline_functions(model_copy)
    init_names = {i.name for i in model.graph.initializer}
    if input_shapes:
        inputs = {i.name: i for i in model.graph.input if i.name not in init_names}
        unknown = set(input_shapes) - set(inputs)
        if unknown:
            raise InvalidModelError(
                f"input_shapes names unknown inputs {sorted(unknown)}; the model's inputs are {sorted(inputs)}")
        for name, shape in input_shapes.items():
            dims = inputs[name].type.tensor_type.shape.dim
            if len(dims) != len(shape):
                raise InvalidModelError(
                    f"input_shapes['{name}'] has rank {len(shape)}, the model's input has rank {len(dims)}")
            for d, s in zip(dims, shape):
                if s is None:
                    continue
                if d.HasField("dim_value") and d.dim_value != s:
                    raise InvalidModelError(
                        f"input_shapes['{name}'] = {tuple(shape)} conflicts with the model's fixed dims")
                d.dim_value = int(s)
    check_equations(model.graph)  # onnx's Einsum inference loops on some hostile equations
    check_before_inference(model.graph)  # ... and crashes the process on some attribute values
    try:
        # strict: shapes and types that cannot agree (an Add of (2, 3) and (2, 4), a Conv whose
        # weights do not match its input) are refused here, as onnxruntime refuses them, instead
        # of failing inside Keras
        model = _infer_strict(model)
    except Exception as e:  # noqa: BLE001 - onnx raises several types; all stop the conversion with a konnx error
        raise InvalidModelError(f"ONNX shape inference failed (shapes or types that cannot agree): "
                                f"{str(e).strip()[:600]}") from e
    from .fuse import fuse
    from .type_check import check_type_constraints

    check_type_constraints(model)  # an Add of float and int64: onnxruntime refuses it too
    return fuse(model)  # GELU decompositions -> one onnxruntime contrib node (fuse.py)


def _infer_strict(model: onnx.ModelProto) -> onnx.ModelProto:
    """Strict shape inference. Declared output and value_info shapes that contradict what the
    graph computes are dropped (onnxruntime ignores them too) and inference runs again; only a
    graph whose own ops cannot agree is refused."""
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except onnx.shape_inference.InferenceError as e:
        if str(e).count("Inference error(s)") > 1:
            # raised inside an op's function body (onnx's own expansion, e.g. MVN's Constant
            # in onnx 1.23): not the model's fault; infer what can be inferred
            return onnx.shape_inference.infer_shapes(model, data_prop=True)
        if "existing shape differ" not in str(e):
            raise
    for vi in list(model.graph.output) + list(model.graph.value_info):
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")
    return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)


def fold_constants(model: onnx.ModelProto, opset: int, weights: dict) -> list[Node]:
    """normalize's constant folding: every node whose inputs are all initializers (or outputs of
    nodes folded before it) is evaluated once (the converter's `fold`, else onnx's reference
    implementation) and replaced by initializers holding its outputs; large ones join `weights`.
    Nodes that produce graph outputs, random ops and nodes that cannot be evaluated here stay
    for emit. Shape values holding dynamic dims are folded by emit, where those dims are built.
    Returns the folded nodes."""
    from .evaluate import fold_node

    g = model.graph
    protos = {i.name: i for i in g.initializer}
    protos.update(weights)
    arrays: dict = {}
    graph_outputs = {o.name for o in g.output}
    keep, folded = [], []
    for idx, proto in enumerate(g.node):
        node = Node(proto, opset, idx)
        if (node.op_type in NONDETERMINISTIC or any(o in graph_outputs for o in node.outputs)
                or not all(i == "" or i in protos for i in node.inputs)):
            keep.append(proto)
            continue
        for i in node.inputs:
            if i and i not in arrays:
                arrays[i] = onnx.numpy_helper.to_array(protos[i])
        ins = [arrays[i] if i else None for i in node.inputs]
        try:
            res = fold_node(node, lookup(node.op_type, opset, node.domain), ins)
        except (ConversionError, ValueError, TypeError):
            res = None  # emit meets the node again and reports it
        tensors = _initializers(node, res)
        if tensors is None:
            keep.append(proto)
            continue
        for t, arr in tensors:
            protos[t.name], arrays[t.name] = t, arr
            if arr.size > _LIGHT_LIMIT:
                weights[t.name] = t
            else:
                g.initializer.append(t)
        folded.append(node)
    if folded:
        del g.node[:]
        g.node.extend(keep)
    return folded


def _initializers(node: Node, res) -> Optional[list]:
    """(TensorProto, array) for each named output of a folded node; None when a value cannot be
    an initializer (no result, strings or dynamic dims, a type onnx cannot store)."""
    if res is None:
        return None
    res = res if isinstance(res, (list, tuple)) else [res]
    out = []
    for name, value in zip(node.outputs, res):
        if not name:
            continue
        arr = np.asarray(value)
        if arr.dtype == object:
            return None
        try:
            out.append((onnx.numpy_helper.from_array(arr, name), arr))
        except (TypeError, ValueError, KeyError):
            return None
    return out if len(out) == len([o for o in node.outputs if o]) else None


def value_info(model: onnx.ModelProto) -> tuple[dict, dict]:
    """name -> ONNX shape tuple (int | dim_param str | None) and name -> elem_type."""
    shapes, types = {}, {}
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            continue
        types[vi.name] = tt.elem_type
        if tt.HasField("shape"):
            shapes[vi.name] = tuple(
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)
    return shapes, types
