"""A thin read-only view of ONNX nodes with attribute defaults taken from the schema."""
from __future__ import annotations

import builtins
from functools import lru_cache
from typing import Any, Optional

import numpy as np
import onnx
from onnx import helper


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):  # invalid UTF-8 stays visible (and matches no valid mode name)
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


@lru_cache(maxsize=None)
def _schema_defaults(op_type: str, opset: int, domain: str) -> dict[str, Any]:
    try:
        schema = onnx.defs.get_schema(op_type, opset, domain)
    except onnx.defs.SchemaError:
        return {}
    out = {}
    for name, attr in schema.attributes.items():
        if attr.default_value is not None and attr.default_value.type != onnx.AttributeProto.UNDEFINED:
            out[name] = _decode(helper.get_attribute_value(attr.default_value))
    return out


class Node:
    """One ONNX node: op type, name, inputs/outputs and attributes (with schema defaults)."""

    def __init__(self, proto: onnx.NodeProto, opset: int, index: int = 0):
        self.proto = proto
        self.op_type = proto.op_type
        self.domain = "" if proto.domain in ("", "ai.onnx") else proto.domain
        self.name = proto.name or f"{proto.op_type}_{index}"
        self.inputs = list(proto.input)
        self.outputs = list(proto.output)
        self.opset = opset
        attrs = dict(_schema_defaults(self.op_type, opset, self.domain))
        self.explicit_attrs = set()
        for a in proto.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                attrs[a.name] = onnx.numpy_helper.to_array(a.t)
            elif a.type == onnx.AttributeProto.GRAPH:
                attrs[a.name] = a.g
            else:
                attrs[a.name] = _decode(helper.get_attribute_value(a))
            self.explicit_attrs.add(a.name)
        self.attrs = attrs

    def attr(self, name: str, default: Any = None) -> Any:
        """An attribute's raw value: the node's, else the schema's default, else `default`
        (only for attributes whose schema has no default, e.g. kernel_shape)."""
        return self.attrs.get(name, default)

    # Typed accessors: the node's value or the schema's default; None when neither exists.
    def ints(self, name: str) -> Optional[list]:
        v = self.attrs.get(name)
        return None if v is None else [builtins.int(x) for x in np.asarray(v).reshape(-1)]

    def int(self, name: str) -> Optional[builtins.int]:
        v = self.attrs.get(name)
        return None if v is None else builtins.int(v)

    def flag(self, name: str) -> bool:
        return bool(builtins.int(self.attrs.get(name) or 0))

    def floats(self, name: str) -> Optional[list]:
        v = self.attrs.get(name)
        return None if v is None else [builtins.float(x) for x in np.asarray(v).reshape(-1)]

    def float(self, name: str) -> Optional[builtins.float]:
        v = self.attrs.get(name)
        return None if v is None else builtins.float(v)

    def string(self, name: str) -> Optional[str]:
        v = self.attrs.get(name)
        return None if v is None else str(v)

    def has_input(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] != ""

    def __repr__(self) -> str:
        return f"<{self.op_type} '{self.name}' opset={self.opset}>"
