"""Calibration samples for int8 quantization (konnx.quantize): read from .npy/.npz files, a
folder of them or a dict, checked against the model's inputs, and split into the samples that
calibrate and the held-out ones that check the int8 model."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .export import ExportError

HOLD_OUT_EVERY = 5


class QuantizationError(ExportError):
    """The int8 model could not be produced (bad calibration data, converter refusal)."""


def _files(path: Path) -> list:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".npy", ".npz"))
        if not files:
            raise QuantizationError(f"calibration folder {path} holds no .npy or .npz file")
        return files
    if path.suffix not in (".npy", ".npz") or not path.exists():
        raise QuantizationError(f"calibration data must be a .npy or .npz file or a folder of them, got {path}")
    return [path]


def _arrays(path: Path, names: list) -> dict:
    if path.suffix == ".npy":
        if len(names) != 1:
            raise QuantizationError(f"{path}: a .npy holds one array, the model has inputs {names}: use .npz "
                                    "files keyed by input name")
        return {names[0]: np.load(path, allow_pickle=False)}
    with np.load(path, allow_pickle=False) as z:
        keys = list(z.keys())
        if len(names) == 1 and len(keys) == 1:
            return {names[0]: z[keys[0]]}
        missing = [n for n in names if n not in keys]
        if missing:
            raise QuantizationError(f"{path} has arrays {keys}; expected one per model input {names}")
        return {n: z[n] for n in names}


def load_calibration(data, inputs: dict) -> dict:
    """Samples per input name, stacked on axis 0. `data`: a .npy/.npz path, a folder of them, or a
    dict of arrays keyed by input name. `inputs` maps each ONNX input name to its shape (None for
    dynamic dims); an array of the input's rank is a batch of samples, one rank lower a sample."""
    names = list(inputs)
    if isinstance(data, dict):
        sources = [("the calibration dict", {n: np.asarray(data[n]) for n in names if n in data})]
        if len(sources[0][1]) != len(names):
            raise QuantizationError(f"the calibration dict has keys {sorted(data)}; expected {names}")
    else:
        sources = [(str(f), _arrays(f, names)) for f in _files(Path(data))]
    stacks = {n: [] for n in names}
    for source, arrays in sources:
        for name, a in arrays.items():
            shape = inputs[name]
            if a.ndim == len(shape) - 1:
                a = a[None]
            if a.ndim != len(shape) or any(d is not None and d != s for d, s in zip(shape[1:], a.shape[1:])):
                raise QuantizationError(f"{source}: input '{name}' expects samples of shape {list(shape)} "
                                        f"(a leading sample axis), got {list(a.shape)}")
            stacks[name].append(a)
    samples = {n: np.concatenate(v) for n, v in stacks.items()}
    counts = {n: len(v) for n, v in samples.items()}
    if len(set(counts.values())) != 1:
        raise QuantizationError(f"calibration inputs hold different sample counts: {counts}")
    if next(iter(counts.values())) < 2:
        raise QuantizationError("calibration needs at least 2 samples (some are held out to check the int8 model)")
    return samples


def split(samples: dict) -> tuple:
    """(calibration, held-out): every HOLD_OUT_EVERY-th sample is held out (at least one)."""
    n = len(next(iter(samples.values())))
    held = np.arange(n) % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1
    if not held.any():
        held[-1] = True
    return {k: v[~held] for k, v in samples.items()}, {k: v[held] for k, v in samples.items()}
