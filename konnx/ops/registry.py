"""The converter registry: ``@converter("Conv", ...)`` registers a function per op type.

A converter is ``fn(ctx, node) -> Value | list[Value]``. Optional hooks:
- ``check(node) -> str | None``: a reason the node cannot be converted, found before anything
  is built (so every unsupported node is reported at once);
- ``fold(node, *arrays) -> array | list[array]``: evaluate the node at conversion time when all
  inputs are constants (including shape values with dynamic Dim entries).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class ConverterSpec:
    op_type: str
    domain: str
    fn: Callable
    since: int
    check: Optional[Callable] = None
    fold: Optional[Callable] = None
    limits: str = ""


REGISTRY: dict[tuple[str, str], list[ConverterSpec]] = {}


def converter(*op_types: str, since: int = 1, domain: str = "", check=None, fold=None, limits: str = ""):
    """Register `fn` for each op type, valid from opset `since` until a later registration."""
    def deco(fn):
        for op in op_types:
            specs = REGISTRY.setdefault((domain, op), [])
            if any(s.since == since for s in specs):
                raise ValueError(f"duplicate converter for {op} since opset {since}")
            specs.append(ConverterSpec(op, domain, fn, since, check, fold, limits))
            specs.sort(key=lambda s: s.since)
        return fn
    return deco


def lookup(op_type: str, opset: int, domain: str = "") -> Optional[ConverterSpec]:
    best = None
    for spec in REGISTRY.get((domain, op_type), []):
        if spec.since <= opset:
            best = spec
    return best


def supported_ops() -> list[tuple[str, str]]:
    return sorted(REGISTRY)
