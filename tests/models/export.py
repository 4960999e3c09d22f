"""Export torch modules to ONNX with both PyTorch exporters (TorchScript and dynamo)."""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import onnx
import torch

LEGACY_OPSET = 17


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def output_names(model, example_inputs) -> list[str]:
    with torch.no_grad():
        out = model(*_as_tuple(example_inputs))
    n = len(out) if isinstance(out, (tuple, list)) else 1
    return ["y"] if n == 1 else [f"y{i}" for i in range(n)]


def export(model, example_inputs, dynamo: bool, dynamic_batch: bool, path) -> Path:
    """Export `model` to `path` and return the path.

    dynamo=False: the TorchScript exporter at opset 17. dynamo=True: torch.export-based
    exporter at its default opset. dynamic_batch makes dim 0 of every input and output
    symbolic ('batch'); with dynamo the example batch must not be 1 (torch.export
    specializes size-1 dims), the callers use 2.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    args = _as_tuple(example_inputs)
    in_names = ["x"] if len(args) == 1 else [f"x{i}" for i in range(len(args))]
    out_names = output_names(model, args)
    model = model.eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            kwargs = {}
            if dynamic_batch:
                batch = torch.export.Dim("batch", min=1, max=4096)
                kwargs["dynamic_shapes"] = tuple({0: batch} for _ in args)
            prog = torch.onnx.export(model, args, dynamo=True, input_names=in_names, output_names=out_names,
                                     verbose=False, **kwargs)
            prog.save(str(path))
        else:
            kwargs = {}
            if dynamic_batch:
                kwargs["dynamic_axes"] = {n: {0: "batch"} for n in in_names + out_names}
            torch.onnx.export(model, args, str(path), dynamo=False, opset_version=LEGACY_OPSET,
                              input_names=in_names, output_names=out_names, do_constant_folding=True, **kwargs)
    onnx.checker.check_model(str(path))
    return path


def model_opset(path) -> int:
    m = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))


class ExportCache:
    """Exports each (network, exporter, dynamic batch) once per session under `root`."""

    def __init__(self, root):
        self.root = Path(root)
        self._done: dict = {}

    def _once(self, key, what: str, make) -> Path:
        """make() once per key; its failure is re-raised for every test that needs it."""
        if key not in self._done:
            try:
                self._done[key] = (make(), None)
            except Exception as e:  # noqa: BLE001 - re-raised below
                self._done[key] = (None, e)
        path, err = self._done[key]
        if err is not None:
            raise RuntimeError(f"{what} failed: {type(err).__name__}: {err}") from err
        return path

    def get_seq(self, name: str, exporter: str) -> Path:
        """The sequence/transformer net `name` (nets_seq), exported once per session by
        `exporter` ("legacy", "dynamo" or "dynamo23")."""
        path = self.root / f"seq_{name}_{exporter}" / "model.onnx"
        return self._once(("seq", name, exporter), f"torch.onnx.export ({exporter}) for {name}",
                          lambda: export_seq(name, exporter, path))

    def get(self, name: str, dynamo: bool, dynamic_batch: bool = True) -> Path:
        from . import nets

        tag = f"{name}_{'dynamo' if dynamo else 'legacy'}_{'dyn' if dynamic_batch else 'static'}"
        path = self.root / tag / "model.onnx"
        batch = 2 if (dynamo and dynamic_batch) else 1
        return self._once((name, dynamo, dynamic_batch), f"torch.onnx.export(dynamo={dynamo}) for {name}",
                          lambda: export(nets.build(name), nets.example_input(name, batch), dynamo, dynamic_batch,
                                         path))


def tensor_inputs(onnx_model) -> list:
    init = {i.name for i in onnx_model.graph.initializer}
    return [i for i in onnx_model.graph.input if i.name not in init]


def model_size(path) -> int:
    return os.path.getsize(path)


SEQ_DYNAMO_OPSETS = {"dynamo": None, "dynamo23": 23}


def export_seq(name: str, exporter: str, path) -> Path:
    """Export the sequence/transformer net `name` (tests.models.nets_seq) with its dynamic axes.

    exporter "legacy": TorchScript at opset 17 with `dynamic_axes`; "dynamo": torch.export-based
    at its default opset, "dynamo23": the same at opset 23 (Attention, RMSNormalization), with
    `dynamic_shapes` (torch.export Dims shared by name; image sides as multiples of 16).
    Inputs keep their spec names."""
    from . import nets_seq

    spec = nets_seq.SEQ_NETS[name]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = nets_seq.build(name)
    batch, size = spec.example[0], spec.example[1] or spec.sizes[0]
    feeds = nets_seq.make_inputs(name, batch, size)
    args = tuple(torch.from_numpy(feeds[i.name]) for i in spec.inputs)
    in_names = [i.name for i in spec.inputs]
    out_names = output_names(model, args)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter != "legacy":
            dims = {}

            def dim(label, multiple):
                if label not in dims:
                    hi = 64 if label == "seq" else (1024 if label == "batch" else 8)
                    dims[label] = torch.export.Dim(label, min=1 if label != "seq" else 2, max=hi)
                return dims[label] * multiple if multiple != 1 else dims[label]

            shapes = tuple({ax: dim(*d) for ax, d in i.dynamic.items()} for i in spec.inputs)
            opset = SEQ_DYNAMO_OPSETS[exporter]
            prog = torch.onnx.export(model, args, dynamo=True, input_names=in_names, output_names=out_names,
                                     dynamic_shapes=shapes, verbose=False,
                                     **({"opset_version": opset} if opset else {}))
            prog.save(str(path))
        else:
            axes = {i.name: {ax: d[0] for ax, d in i.dynamic.items()} for i in spec.inputs}
            axes.update({n: {0: "batch"} for n in out_names})
            torch.onnx.export(model, args, str(path), dynamo=False, opset_version=LEGACY_OPSET,
                              input_names=in_names, output_names=out_names, do_constant_folding=True,
                              dynamic_axes=axes)
    onnx.checker.check_model(str(path))
    return path
