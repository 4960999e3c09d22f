"""A node's name in its author's terms: the PyTorch module path and the source line.

Two exporters leave them in the ONNX file:
- the dynamo exporter (torch.onnx.export(..., dynamo=True)) writes, in each node's
  metadata_props, `pkg.torch.onnx.name_scopes` (e.g. "['', 'layer1', 'layer1.0', 'layer1.0.bn',
  '_native_batch_norm_legit_no_training']"), `pkg.torch.onnx.class_hierarchy` (the class of each
  scope, the last one often the aten op) and `pkg.torch.onnx.stack_trace` (Python frames);
- the TorchScript exporter names nodes after the module scope: `/layer1/layer1.0/conv1/Conv`.
"""
from __future__ import annotations

import ast
import re
from typing import Optional

NAME_SCOPES = "pkg.torch.onnx.name_scopes"
CLASS_HIERARCHY = "pkg.torch.onnx.class_hierarchy"
STACK_TRACE = "pkg.torch.onnx.stack_trace"
REWRITE_RULE = "pkg.onnxscript.rewriter.rule_name"

_TORCH_FRAME = re.compile(r"[/\\](site|dist)-packages[/\\]torch[/\\]")  # torch's own code, not the model's
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)\n?(?:\s*(.*))?')


def _meta(node_proto) -> dict:
    return {p.key: p.value for p in getattr(node_proto, "metadata_props", [])}


def _literal_list(text: Optional[str]) -> Optional[list]:
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else None


def _is_op_class(name: str) -> bool:
    """A class_hierarchy entry naming an operator call rather than an nn.Module."""
    return name.startswith(("aten.", "prims.", "torch.ops.", "<built-in")) or "." not in name


def _from_name_scopes(meta: dict) -> Optional[str]:
    scopes = _literal_list(meta.get(NAME_SCOPES))
    if not scopes:
        return None
    classes = _literal_list(meta.get(CLASS_HIERARCHY))
    if classes and len(classes) == len(scopes):
        modules = [s for s, c in zip(scopes, classes) if not _is_op_class(c)]
    else:
        modules = scopes[:-1]  # the last scope is the op call itself
    modules = [s for s in modules if s]
    return modules[-1] if modules else None


def _from_torchscript_name(name: str) -> Optional[str]:
    """`/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`. Each scope part is an attribute name,
    qualified by its parent's attribute when the parent is a container (`features.0` under
    `features`, `down.0` under `layer1.0.down`): it then replaces that attribute, so no prefix
    is doubled (`/layers/layers.1/down/down.0/Conv` -> `layers.1.down.0`)."""
    if not name.startswith("/"):
        return None
    parts = [p for p in name.split("/")[1:-1] if p]
    path = ""
    for part in parts:
        pieces = path.split(".") if path else []
        for k in range(len(pieces)):
            tail = ".".join(pieces[k:])
            if part.startswith(tail + "."):
                path = ".".join(pieces[:k] + [part])
                break
        else:
            path = f"{path}.{part}" if path else part
    return path or None


def module_path(node_proto) -> Optional[str]:
    """The PyTorch module path that produced this node, where the ONNX file says it."""
    return _from_name_scopes(_meta(node_proto)) or _from_torchscript_name(node_proto.name or "")


def source_line(node_proto) -> Optional[str]:
    """`file.py:LINE in function: code` of the innermost frame the dynamo exporter recorded
    outside torch's own code (the model's line that called the op or module)."""
    trace = _meta(node_proto).get(STACK_TRACE)
    if not trace:
        return None
    frames = list(_FRAME.finditer(trace))
    if not frames:
        return None
    own = [f for f in frames if not _TORCH_FRAME.search(f.group(1))]
    path, line, func, code = (own or frames)[-1].groups()
    where = f"{path.rsplit('/', 1)[-1]}:{line} in {func}"
    return f"{where}: {code.strip()}" if code and code.strip() else where


def rewrite_rule(node_proto) -> Optional[str]:
    """The onnxscript rewrite rule that produced this node (e.g. FuseBatchNormIntoConv), if any."""
    return _meta(node_proto).get(REWRITE_RULE) or None


def describe(node_proto) -> dict:
    return {"module": module_path(node_proto), "source": source_line(node_proto), "rule": rewrite_rule(node_proto)}
