"""konnx.from_torch(): a PyTorch module to a Keras model in one call, checked against the module itself.

Export with `torch.onnx.export` (the dynamo exporter by default, whose ONNX model keeps the node
metadata; the TorchScript exporter on request), convert, then run both the module (eval mode,
no_grad) and the Keras model on the example inputs: every output must agree at the conversion
tolerance, or a konnx error names the outputs that differ. Exports happen in a temporary folder
that is removed afterwards. Needs `pip install "konnx[torch]"` (torch and onnxscript)."""
from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import tempfile
import warnings
from pathlib import Path

from .errors import ConversionError
from .tolerances import DEFAULT_ATOL, DEFAULT_RTOL

EXPORTERS = ("dynamo", "torchscript")
TORCHSCRIPT_OPSET = 17
TORCH_EXTRA = 'pip install "konnx[torch]"'


class TorchExportError(ConversionError):
    """PyTorch is missing, or torch.onnx.export failed (says which exporter and why)."""


class TorchMismatchError(ConversionError):
    """The converted Keras model's outputs differ from the PyTorch module's own outputs."""

    def __init__(self, message: str, comparisons):
        super().__init__(message)
        self.comparisons = list(comparisons)


def _require(exporter: str):
    missing = [m for m in (["torch"] + (["onnxscript"] if exporter == "dynamo" else []))
               if importlib.util.find_spec(m) is None]
    if missing:
        raise TorchExportError(f"konnx.from_torch needs {' and '.join(missing)}, which "
                               f"{'is' if len(missing) == 1 else 'are'} not installed: {TORCH_EXTRA}")
    import torch

    return torch


def _flatten(torch, out) -> list:
    """The module's outputs in order (tensors in tuples/lists/dicts, as the exporters flatten them)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(torch, o)]
    raise TorchExportError(f"the module returned a {type(out).__name__}; konnx.from_torch expects tensors "
                           "(or tuples, lists, dicts of them)")


def _input_names(module, count: int) -> list:
    try:
        params = [p.name for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return params[:count] if len(params) >= count else [f"input_{i}" for i in range(count)]


def _dynamic_axes(dynamic_shapes, names) -> dict:
    """torch.export-style dynamic_shapes (a dict per input, axis -> Dim) as TorchScript dynamic_axes."""
    if dynamic_shapes is None:
        return {}
    if isinstance(dynamic_shapes, dict):  # keyed by the forward's argument names
        pairs = [(n, dynamic_shapes.get(n)) for n in names]
    else:
        pairs = list(zip(names, dynamic_shapes))
    axes = {}
    for name, spec in pairs:
        if spec:
            axes[name] = {int(a): str(getattr(d, "__name__", None) or f"{name}_{a}") for a, d in spec.items()}
    return axes


def _export(torch, module, args, exporter: str, dynamic_shapes, opset, folder: Path):
    import onnx

    names = _input_names(module, len(args))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            program = torch.onnx.export(module, args, dynamo=True, dynamic_shapes=dynamic_shapes,
                                        opset_version=opset, input_names=names, verbose=False,
                                        artifacts_dir=str(folder))
            return program.model_proto  # in memory, with the exporter's node metadata
        path = folder / "model.onnx"
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset or TORCHSCRIPT_OPSET,
                          input_names=names, dynamic_axes=_dynamic_axes(dynamic_shapes, names) or None,
                          do_constant_folding=True)
        return onnx.load(str(path))  # external data (if any) read before the folder goes


def _check_options(exporter: str, convert_options: dict) -> None:
    from .api import convert_detailed

    if exporter not in EXPORTERS:
        raise ConversionError(f"exporter={exporter!r}: expected one of {', '.join(map(repr, EXPORTERS))}")
    allowed = [p for p in inspect.signature(convert_detailed).parameters if p not in ("model", "progress")]
    unknown = sorted(set(convert_options) - set(allowed))
    if unknown:
        raise ConversionError(f"konnx.from_torch got unknown option(s) {', '.join(unknown)}: the conversion "
                              f"options are {', '.join(allowed)}")


def _compare(torch, proto, keras_model, args, expected, channels_last_io: bool):
    import numpy as np

    from .oracle import compare, run_keras

    init = {i.name for i in proto.graph.initializer}
    inputs = [vi.name for vi in proto.graph.input if vi.name not in init]
    if len(inputs) != len(args):
        raise TorchExportError(f"the exported ONNX model has {len(inputs)} input(s) ({', '.join(inputs)}) for "
                               f"{len(args)} example input(s): konnx.from_torch cannot pair them")
    feeds = {n: a.detach().cpu().numpy() for n, a in zip(inputs, args)}
    got = run_keras(keras_model, proto, feeds, channels_last_io)
    outs = [o.name for o in proto.graph.output]
    if len(got) != len(expected):
        raise TorchExportError(f"the module returns {len(expected)} tensor(s), the exported model "
                               f"{len(got)} ({', '.join(outs)})")
    return [compare(n, np.asarray(e.detach().cpu().numpy()), g, DEFAULT_RTOL, DEFAULT_ATOL)
            for n, e, g in zip(outs, expected, got)]


def from_torch(module, example_inputs, *, dynamic_shapes=None, exporter: str = "dynamo", opset=None,
               **convert_options):
    """Export `module` with torch.onnx.export, convert it, and check the Keras model against the module.

    example_inputs: a tensor or a tuple of tensors (the module's positional arguments).
    dynamic_shapes: torch.export style, one dict per input mapping an axis to a `torch.export.Dim`
        (for exporter="torchscript" it becomes `dynamic_axes`).
    exporter: "dynamo" (torch.export based; keeps the node metadata) or "torchscript" (opset 17 unless
        `opset` is given). convert_options: konnx.convert's options (input_shapes, channels_last_io, fold_bn).
    Returns the keras.Model; raises TorchMismatchError naming the outputs that differ from the module's."""
    torch = _require(exporter)
    _check_options(exporter, convert_options)
    args = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise TorchExportError("example_inputs must be a tensor or a non-empty tuple of tensors, got "
                               f"{[type(a).__name__ for a in args]}")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            expected = _flatten(torch, module(*args))
        with tempfile.TemporaryDirectory(prefix="konnx-from-torch-") as folder:
            try:
                proto = _export(torch, module, args, exporter, dynamic_shapes, opset, Path(folder))
            except Exception as e:  # noqa: BLE001 - any exporter failure becomes one konnx error
                other = "torchscript" if exporter == "dynamo" else "dynamo"
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise TorchExportError(f"torch.onnx.export ({exporter} exporter) failed: {type(e).__name__}: "
                                       f"{first} (exporter={other!r} may export it)") from e
    finally:
        module.train(was_training)
    return _convert_and_check(torch, proto, args, expected, convert_options)


def _convert_and_check(torch, proto, args, expected, convert_options):
    from .api import convert_detailed

    conversion = convert_detailed(proto, **convert_options)
    comparisons = _compare(torch, proto, conversion.model, args, expected,
                           conversion.channels_last_io)
    bad = [c for c in comparisons if not c.ok]
    if bad:
        detail = "; ".join(f"'{c.name}' max abs error {c.max_abs:.3g} > {c.tolerance:.3g}"
                           + (f" ({c.note})" if c.note else "") for c in bad)
        raise TorchMismatchError(f"the converted model differs from the PyTorch module on the example inputs: "
                                 f"{detail}", comparisons)
    return conversion.model
