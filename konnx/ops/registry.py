"""The converter registry and the converters' declared contracts.

``@converter("Conv", consts=(1, 2), layout=SPATIAL, check=_check_conv)`` registers `fn` for an op
type and declares, before anything is built, what the converter needs:

- ``consts``: input indices that must be known at conversion time (weights, shape parameters)
  when they are present; the plan refuses a node whose such input is computed by the graph.
- ``params``: inputs that fix an output's shape and are best known at conversion time, but
  that the converter also handles when computed (e.g. Slice's starts/ends). Together with
  ``consts`` they make up `parameter_inputs()` (what the ONNX backend binds).
- ``layout``: what layout the op wants: SPATIAL (channels-last images), FOLLOWS (element-wise:
  takes its inputs' layout), AXIS (remaps its axes to any layout) or ONNX (needs the ONNX layout).
- ``check(node, facts) -> str | None``: the reason the converter refuses this node, from its
  attributes and the inferred shapes (`Facts`), or None. It runs in the plan, before anything
  is built, so every refusal of a model is reported at once.
- ``perm(node, in_perms, facts) -> [perm | None per output]``: for an AXIS op, the layout of
  its outputs from its inputs' layouts (None for a constant input) and the inferred shapes; the
  plan decides with it before building (layout_plan.py) and the converter builds with the same
  function. SPATIAL, FOLLOWS and ONNX ops have a fixed rule and need none.
- ``value(node, facts) -> [array per output] | None``: for an op whose outputs are
  conversion-time values computed from its input's inferred shape (Shape, Size), those values
  (with `values.Dim` entries for dynamic dims), so the plan sees the shape arithmetic emit will
  fold (e.g. a Reshape target computed from `Shape(x)`).
- ``fold(node, *arrays)``: evaluate the node at conversion time when all inputs are constants
  (including shape values with dynamic Dim entries).

A converter is ``fn(ctx, node) -> Value | list[Value]``. This module imports neither Keras nor
TensorFlow: `konnx check` and `konnx ops` read the registry without them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

SPATIAL = "spatial"
FOLLOWS = "follows inputs"
AXIS = "axis op"
ONNX = "onnx layout"
LAYOUTS = (SPATIAL, FOLLOWS, AXIS, ONNX)


@dataclass(frozen=True)
class ConverterSpec:
    op_type: str
    domain: str
    fn: Callable
    since: int
    check: Optional[Callable] = None
    fold: Optional[Callable] = None
    limits: str = ""
    consts: tuple = ()
    params: tuple = ()
    layout: str = ONNX
    perm: Optional[Callable] = None
    value: Optional[Callable] = None


class Facts:
    """What a check sees of one node besides its attributes: the ONNX shapes of its inputs and
    outputs (tuples of int | dim_param str | None, or None when unknown), the values of inputs
    known at conversion time and which inputs are computed at run time. The plan gives the
    inferred shapes (before building); emit gives the built ones."""

    def __init__(self, node, shapes: dict, known: dict, computed=frozenset(), built: bool = False,
                 types: Optional[dict] = None):
        self.node = node
        self._types = types or {}
        # False in the plan (inferred shapes: an unknown size may still become static when
        # built), True at emit (a size unknown now stays dynamic)
        self.built = built
        self._shapes = shapes
        self._known = known
        self._computed = computed

    def shape(self, i: int) -> Optional[tuple]:
        return self._shapes.get(self.node.inputs[i]) if self.node.has_input(i) else None

    def out_shape(self, k: int = 0) -> Optional[tuple]:
        outs = self.node.outputs
        return self._shapes.get(outs[k]) if k < len(outs) and outs[k] else None

    def rank(self, i: int) -> Optional[int]:
        s = self.shape(i)
        return None if s is None else len(s)

    def dim(self, i: int, axis: int) -> Optional[int]:
        """A static size of input i's ONNX `axis`, or None."""
        s = self.shape(i)
        if s is None or not -len(s) <= axis < len(s):
            return None
        d = s[axis]
        return int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None

    def dtype(self, i: int) -> Optional[str]:
        """Input i's element type as a numpy dtype name ('float32', 'int64', ...), or None."""
        return self._types.get(self.node.inputs[i]) if self.node.has_input(i) else None

    def computed(self, i: int) -> bool:
        """Input i is computed by the graph at run time (not a conversion-time value)."""
        return self.node.has_input(i) and self.node.inputs[i] in self._computed

    def value(self, i: int) -> Optional[np.ndarray]:
        """Input i's value when it is known before building (an initializer or Constant)."""
        return self._known.get(self.node.inputs[i]) if self.node.has_input(i) else None


REGISTRY: dict[tuple[str, str], list[ConverterSpec]] = {}


def converter(*op_types: str, since: int = 1, domain: str = "", check=None, fold=None, limits: str = "",
              consts: tuple = (), params: tuple = (), layout: str = ONNX, perm=None, value=None):
    """Register `fn` for each op type, valid from opset `since` until a later registration."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")

    full_check = _with_common_rules(check) if domain == "" else check

    def deco(fn):
        for op in op_types:
            specs = REGISTRY.setdefault((domain, op), [])
            if any(s.since == since for s in specs):
                raise ValueError(f"duplicate converter for {op} since opset {since}")
            specs.append(ConverterSpec(op, domain, fn, since, full_check, fold, limits, tuple(consts),
                                       tuple(params), layout, perm, value))
            specs.sort(key=lambda s: s.since)
        return fn
    return deco


def _with_common_rules(check):
    """The converter's check preceded by the spec's rules shared by many ops (attr_rules)."""
    from .attr_rules import common_reason

    def checked(node, facts):
        return common_reason(node, facts) or (check(node, facts) if check is not None else None)
    checked.declared = check
    return checked


def lookup(op_type: str, opset: int, domain: str = "") -> Optional[ConverterSpec]:
    best = None
    for spec in REGISTRY.get((domain, op_type), []):
        if spec.since <= opset:
            best = spec
    return best


def supported_ops() -> list[tuple[str, str]]:
    return sorted(REGISTRY)


def parameter_inputs() -> dict[str, tuple[int, ...]]:
    """op type -> input indices konnx needs (or prefers) at conversion time, from the declared
    contracts of the default domain's converters (union over opset versions)."""
    out: dict[str, set] = {}
    for (domain, op), specs in REGISTRY.items():
        if domain:
            continue
        for s in specs:
            if s.consts or s.params:
                out.setdefault(op, set()).update(s.consts + s.params)
    return {op: tuple(sorted(v)) for op, v in sorted(out.items())}
