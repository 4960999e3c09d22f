"""Type constraints of the ONNX op schemas, checked on the inferred graph: each tensor bound to a
type parameter has one of the types the schema allows for it (Relu's T is a float type), and the
inputs and outputs bound to one parameter (Add's A and B are both T) have one element type.
onnx's shape inference does not check this (an Add of float and int64 passes it); onnxruntime
refuses such a model when it loads it, and so does konnx, naming the node, its inputs and types."""
from __future__ import annotations

import onnx

from .errors import InvalidModelError


def _types(model: onnx.ModelProto) -> dict:
    g = model.graph
    out = {i.name: i.data_type for i in g.initializer}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            out.setdefault(vi.name, vi.type.tensor_type.elem_type)
    return out


def _schema(node: onnx.NodeProto, opsets: dict):
    domain = "" if node.domain in ("", "ai.onnx") else node.domain
    if domain not in opsets:
        return None
    try:
        return onnx.defs.get_schema(node.op_type, opsets[domain], domain)
    except onnx.defs.SchemaError:
        return None


def _bindings(node: onnx.NodeProto, schema) -> list:
    """(type parameter, tensor name, 'input i' | 'output i') for every named input/output (the
    tensors of a variadic formal share its type only when it is homogeneous)."""
    variadic = onnx.defs.OpSchema.FormalParameterOption.Variadic
    out = []
    for names, formals, kind in ((node.input, schema.inputs, "input"), (node.output, schema.outputs, "output")):
        for i, name in enumerate(names):
            if not name or not formals:
                continue
            formal = formals[i] if i < len(formals) else formals[-1]
            if i >= len(formals) and formal.option != variadic:
                continue
            if formal.option == variadic and not formal.is_homogeneous:
                continue
            out.append((formal.type_str, name, f"{kind} {i}"))
    return out


def _wants(param: str, allowed: list) -> str:
    if allowed == [param]:  # a fixed type, not a type parameter
        return f"wants {param} there"
    return f"allows '{param}' to be only {', '.join(allowed)}"


def check_type_constraints(model: onnx.ModelProto) -> None:
    """Refuse a node whose tensors bound to one schema type parameter have different types."""
    types = _types(model)
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    names = {v: k for k, v in onnx.TensorProto.DataType.items()}
    for node in model.graph.node:
        schema = _schema(node, opsets)
        if schema is None:
            continue
        allowed = {c.type_param_str: [a for a in c.allowed_type_strs if a.startswith("tensor(")]
                   for c in schema.type_constraints}
        seen: dict = {}
        for param, name, where in _bindings(node, schema):
            t = types.get(name)
            if param.startswith("tensor(") and param not in allowed:  # a fixed type: NMS's boxes are tensor(float)
                allowed[param] = [param]
            if param not in allowed or not t:
                continue
            if allowed[param] and f"tensor({names.get(t, '?').lower()})" not in allowed[param]:
                raise InvalidModelError(
                    f"{node.op_type} node '{node.name or node.output[0]}': {where} '{name}' is {names.get(t, t)}, "
                    f"but the op's schema {_wants(param, allowed[param])} "
                    "(onnxruntime refuses this model too)")
            if param in seen and seen[param][0] != t:
                t0, name0, where0 = seen[param]
                raise InvalidModelError(
                    f"{node.op_type} node '{node.name or node.output[0]}': {where0} '{name0}' is {names.get(t0, t0)} "
                    f"and {where} '{name}' is {names.get(t, t)}, but the op's schema binds both to one type "
                    f"'{param}' (expected the same element type; onnxruntime refuses this model too)")
            seen.setdefault(param, (t, name, where))
