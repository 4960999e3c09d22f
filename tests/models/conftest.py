"""Session caches shared by the end-to-end model tests.

Tests marked `slow` are skipped here unless the run selects them with `-m` (e.g. `-m slow`
or `-m "slow or not slow"`) or KONNX_SLOW=1 is set, as pyproject's marker says.
"""
from __future__ import annotations

import os

import pytest

from .export import ExportCache


def pytest_collection_modifyitems(config, items):
    markexpr = config.getoption("-m", default="") or ""
    if "slow" in markexpr or os.environ.get("KONNX_SLOW") == "1":
        return
    here = os.path.dirname(__file__)
    skip = pytest.mark.skip(reason="slow model test: run with -m slow (or KONNX_SLOW=1)")
    for item in items:
        if str(item.fspath).startswith(here) and "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def exports(tmp_path_factory) -> ExportCache:
    return ExportCache(tmp_path_factory.mktemp("onnx_exports"))


class ConversionCache:
    """konnx.convert once per ONNX file; a failure is re-raised for every test that needs it."""

    def __init__(self):
        self._done: dict = {}

    def get(self, path):
        import konnx

        key = str(path)
        if key not in self._done:
            try:
                self._done[key] = (konnx.convert(key), None)
            except Exception as e:  # noqa: BLE001 - re-raised below, with the original chained
                self._done[key] = (None, e)
        model, err = self._done[key]
        if err is not None:
            raise err
        return model


@pytest.fixture(scope="session")
def conversions() -> ConversionCache:
    return ConversionCache()
