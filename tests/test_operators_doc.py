"""docs/operators.md is generated from the converter registry: it must match what
`python -m tools.opsdoc` renders now (regenerate it after adding or changing a converter)."""
from tools import opsdoc


def test_operators_doc_is_current():
    assert opsdoc.DOC.exists(), "docs/operators.md is missing: run python -m tools.opsdoc"
    assert opsdoc.DOC.read_text() == opsdoc.render(), "docs/operators.md is stale: run python -m tools.opsdoc"


def test_every_registered_op_is_listed():
    from konnx.ops.registry import REGISTRY

    listed = {row[0] for row in opsdoc.rows()}
    assert {op if not dom else f"{dom}.{op}" for dom, op in REGISTRY} == listed
