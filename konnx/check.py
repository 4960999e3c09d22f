"""`konnx check`: every op of a model with its support status, and every refusal konnx can know
without building anything (ops without a converter, inputs that must be constants but are
computed by the graph, attribute values or shapes a converter refuses), all at once.

It runs load -> check -> normalize -> plan and stops there: no Keras, no TensorFlow.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from . import loader
from .plan import Plan, plan_model


@dataclass
class OpStatus:
    op_type: str
    domain: str
    count: int
    status: str  # "supported" | "folded" (evaluated at conversion time) | "refused"
    refused: int = 0


@dataclass
class CheckResult:
    model: str
    opset: int
    ops: list = field(default_factory=list)  # OpStatus, in first-use order
    refusals: list = field(default_factory=list)  # plan.Refusal

    @property
    def ok(self) -> bool:
        return not self.refusals

    def to_dict(self) -> dict:
        return {"model": self.model, "opset": self.opset, "supported": self.ok,
                "ops": [asdict(o) for o in self.ops], "refusals": [asdict(r) for r in self.refusals]}


def check_model(model, input_shapes: Optional[dict] = None) -> CheckResult:
    """Plan the conversion of `model` (a path or ModelProto) and summarise it."""
    proto = loader.load(model)
    light, weights = loader.split_weights(proto)
    opset = loader.check(light)
    _, the_plan = plan_model(light, opset, weights, input_shapes)
    return summarize(str(model) if not hasattr(model, "graph") else "<ModelProto>", opset, the_plan)


def summarize(name: str, opset: int, the_plan: Plan) -> CheckResult:
    seen: dict = {}  # (domain, op type) -> statuses of its nodes, in first-use order
    for node, status in the_plan.nodes:
        seen.setdefault((node.domain, node.op_type), []).append(status)
    ops = []
    for (dom, op), sts in seen.items():
        refused = sts.count("refused")
        status = ("refused" if refused == len(sts) else "supported" if "supported" in sts else "folded")
        ops.append(OpStatus(op, dom, len(sts), status, refused))
    return CheckResult(name, opset, ops, list(the_plan.refusals))


def render(result: CheckResult) -> str:
    lines = [f"{result.model}: opset {result.opset}, {sum(o.count for o in result.ops)} nodes, "
             f"{len(result.ops)} op types"]
    width = max((len(_op_name(o)) for o in result.ops), default=0)
    for o in result.ops:
        note = f" ({o.refused} refused)" if o.refused and o.status != "refused" else ""
        lines.append(f"  {_op_name(o).ljust(width)}  x{o.count:<4} {o.status}{note}")
    if result.refusals:
        lines.append(f"{len(result.refusals)} node(s) cannot be converted:")
        for r in result.refusals:
            lines.append(f"  - {r.unsupported()}")
    else:
        lines.append("every node can be converted")
    return "\n".join(lines)


def _op_name(o: OpStatus) -> str:
    return f"{o.domain}.{o.op_type}" if o.domain else o.op_type
