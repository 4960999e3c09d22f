"""Output paths of the command line: every one is checked before any conversion work, and all of
them are written together or none (each staged under a temporary name next to its destination,
then renamed into place once everything is built)."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from .cli_common import CliError


@dataclass(frozen=True)
class Target:
    option: str                      # how the user named it: "-o", "--report", ...
    path: Path
    suffixes: Sequence[str] = ()     # allowed extensions (empty: any)
    directory: bool = False          # a folder (SavedModel), not a file

    def fail(self, why: str) -> CliError:
        return CliError(f"{self.option} {self.path}: {why} (nothing written)")


def _probe_folder(t: Target, folder: Path) -> None:
    """Create and remove a file in `folder`: the only honest test that we may write there."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".konnx-probe-", dir=folder)
    except OSError as e:
        raise t.fail(f"cannot create files in {folder}/: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(probe)


def check_target(t: Target) -> None:
    """Raise a CliError saying what is wrong with one output path."""
    path = t.path
    if t.suffixes and path.suffix.lower() not in t.suffixes:
        raise t.fail(f"must end in {' or '.join(t.suffixes)}")
    parent = path.parent
    if not parent.exists():
        raise t.fail(f"the folder {parent}/ does not exist")
    if not parent.is_dir():
        raise t.fail(f"{parent} is not a folder")
    if t.directory:
        if path.exists() and not path.is_dir():
            raise t.fail("exists and is not a folder")
    elif path.is_dir():
        raise t.fail("is a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise t.fail("exists and is not writable")
    _probe_folder(t, parent)


def check_targets(targets: Sequence[Target], inputs: Sequence[Optional[str]] = ()) -> None:
    """Check every target; refuse two outputs on one path, or an output over an input."""
    seen = {}
    for p in inputs:
        if p:
            seen[Path(p).resolve()] = "the input"
    for t in targets:
        check_target(t)
        key = t.path.resolve()
        if key in seen:
            raise t.fail(f"is also {seen[key]}")
        seen[key] = t.option


def stage_text(path, text: str):
    """A text file staged next to its destination (see konnx.export.Staged)."""
    from .export import Staged

    return Staged(path, lambda tmp: Path(tmp).write_text(text))


def stage_report(result, path):
    """The --report file (.md or .json), staged."""
    from .export import Staged
    from .report import write_report

    return Staged(path, lambda tmp: write_report(result, tmp))


def commit_all(staged: list) -> None:
    """Rename every staged output into place (or discard them all if one cannot be)."""
    try:
        for _, s in staged:
            s.commit()
    except OSError as e:
        for _, s in staged:
            s.discard()
        raise CliError(f"cannot write the outputs: {e}") from None


def discard_all(staged: list) -> None:
    for _, s in staged:
        s.discard()
