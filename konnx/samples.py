"""Real inputs for verify: .npz files, folders of .npy files (one per input name), and several
samples (several files/folders, or a leading sample axis one beyond the input's rank)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx

from .errors import ConversionError


def _graph_inputs(proto: onnx.ModelProto) -> dict:
    init = {i.name for i in proto.graph.initializer}
    return {vi.name: len(vi.type.tensor_type.shape.dim) for vi in proto.graph.input if vi.name not in init}


def _read_folder(path: Path, names: dict) -> dict:
    files = {p.stem: p for p in sorted(path.glob("*.npy"))}
    missing = [n for n in names if n not in files]
    if missing:
        raise ConversionError(f"inputs folder {path}: expected one .npy file per model input "
                              f"({', '.join(n + '.npy' for n in names)}); missing {', '.join(missing)}; "
                              f"found {', '.join(p.name for p in files.values()) or 'no .npy file'}")
    return {n: np.load(files[n], allow_pickle=False) for n in names}


def _read(path: str, names: dict) -> dict:
    from .verify_inputs import load_inputs

    p = Path(path)
    if p.is_dir():
        return _read_folder(p, names)
    if p.suffix == ".npy" and os.path.exists(p):
        if len(names) != 1:
            raise ConversionError(f"{p}: one .npy file feeds a one-input model; this model has inputs "
                                  f"{', '.join(names)} (use an .npz file or a folder of .npy files)")
        return {next(iter(names)): np.load(p, allow_pickle=False)}
    return load_inputs(path)


def _split(arrays: dict, names: dict, source: str) -> list:
    """One dict per sample: arrays one rank above the model's input hold a leading sample axis."""
    extra = {n: a.ndim == names[n] + 1 for n, a in arrays.items() if n in names and names[n]}
    if not extra or not any(extra.values()):
        return [arrays]
    if not all(extra.values()):
        raise ConversionError(f"{source}: some inputs have a leading sample axis and some do not "
                              f"(ranks { {n: a.ndim for n, a in arrays.items()} }, model ranks {names})")
    counts = {a.shape[0] for n, a in arrays.items() if n in names}
    if len(counts) != 1:
        raise ConversionError(f"{source}: inputs disagree on the number of samples: "
                              f"{ {n: a.shape[0] for n, a in arrays.items()} }")
    return [{n: a[i] for n, a in arrays.items()} for i in range(counts.pop())]


def load_samples(paths, proto: onnx.ModelProto) -> list:
    """A list of feeds (input name -> array), one per sample, from one or several paths."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    names = _graph_inputs(proto)
    samples = []
    for path in paths:
        arrays = _read(str(path), names)
        # names, shapes and dtypes are checked per sample by verify_inputs.check_inputs, which lists
        # what the model expects
        samples.extend(_split(arrays, names, str(path)))
    return samples
