"""The version of konnx's layer format (what a `.keras` file written by konnx holds in each
KonnxOp config) and the upgrade path from older versions (see docs/file-format.md;
tests/golden/konnx_functions.json pins the format).

A config without "format_version" was written before the key existed: it is version 1, the
format as it was then and still is. A config from a newer or unknown version is refused with a
FileFormatError naming both versions, never run with guessed semantics.
"""
from __future__ import annotations

from typing import Callable

from ..errors import ConversionError

FORMAT_VERSION = 2
VERSION_KEY = "format_version"

# version k -> function turning a version-k KonnxOp config into a version-(k+1) one. A future
# rename (of a function, a parameter, a slot key) is one entry here plus FORMAT_VERSION += 1;
# see rename_function / rename_param for the usual shapes of such an entry.
UPGRADES: dict[int, Callable[[dict], dict]] = {
    # version 2 adds konnx's named layers (konnx/layers/named.py: Slice, Einsum, Recurrent, ...)
    # next to KonnxOp; a version-1 KonnxOp config means the same in version 2
    1: lambda config: config,
}


class FileFormatError(ConversionError):
    """A saved KonnxOp config that this konnx cannot load (newer or unknown format version,
    or a function that is not in the registry)."""


def rename_function(old: str, new: str) -> Callable[[dict], dict]:
    """An upgrade step: configs naming function `old` name `new` instead."""
    def step(config: dict) -> dict:
        return {**config, "fn": new} if config.get("fn") == old else config
    return step


def rename_param(fn: str, old: str, new: str) -> Callable[[dict], dict]:
    """An upgrade step: function `fn`'s parameter `old` is called `new`."""
    def step(config: dict) -> dict:
        params = config.get("params") or {}
        if config.get("fn") != fn or old not in params:
            return config
        params = {(new if k == old else k): v for k, v in params.items()}
        return {**config, "params": params}
    return step


def config_version(config: dict) -> int:
    """The format version a config was written with (1 when it has none)."""
    v = config.get(VERSION_KEY, 1)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1 or v > FORMAT_VERSION:
        raise FileFormatError(
            f"layer {config.get('name', '?')!r}: KonnxOp config of format version {v!r}, but this "
            f"konnx writes format version {FORMAT_VERSION} and reads versions 1 to {FORMAT_VERSION}: "
            "the file was written by a newer (or a different) konnx; load it with that konnx")
    return v


def upgrade_config(config: dict) -> dict:
    """`config` (any version this konnx reads) in the current format, version key included."""
    version = config_version(config)
    out = dict(config)
    while version < FORMAT_VERSION:
        out = UPGRADES[version](out)
        version += 1
    out[VERSION_KEY] = FORMAT_VERSION
    return out
