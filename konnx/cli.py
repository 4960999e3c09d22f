"""The `konnx` command line: convert, ops."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_UNSUPPORTED, EXIT_MISMATCH = 0, 1, 2, 3


def _parse_shapes(items):
    """--input-shape name=1,3,224,224 (use ? or -1 for a dim that stays dynamic)."""
    shapes = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--input-shape expects NAME=D1,D2,..., got {item!r}")
        name, dims = item.split("=", 1)
        shapes[name] = tuple(None if d.strip() in ("?", "-1", "") else int(d) for d in dims.split(","))
    return shapes


def _console(quiet: bool):
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


def save_atomic(model, path: Path) -> None:
    """Write the .keras file next to its destination, then rename: never a half-written file."""
    path = Path(path)
    if path.suffix != ".keras":
        raise SystemExit(f"output must end in .keras, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _convert(console, args, model_path):
    """Convert with a progress bar; returns the Conversion or an exit code."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import ConversionError, UnsupportedOpError
    from .api import convert_detailed

    try:
        with Progress(TextColumn("[bold]converting[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task(Path(model_path).name, total=None)
            return convert_detailed(model_path, input_shapes=_parse_shapes(args.input_shape),
                                    channels_last_io=args.channels_last_io,
                                    fold_bn=getattr(args, "fold_bn", False),  # convert --fold-bn
                                    progress=lambda i, n: progress.update(task, completed=i, total=n))
    except UnsupportedOpError as e:
        console.print(f"[bold red]cannot convert {model_path}[/]: {len(e.nodes)} unsupported node(s)")
        for n in e.nodes:
            console.print(f"  - {n}", markup=False, highlight=False)
        return EXIT_UNSUPPORTED
    except ConversionError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False)
        return EXIT_ERROR


def _verify(console, args, model_path, keras_model=None, conversion=None):
    from .verify import load_inputs, verify

    inputs = load_inputs(args.inputs) if getattr(args, "inputs", None) else None
    with console.status("verifying against onnxruntime"):
        return verify(model_path, keras_model, inputs, rtol=args.rtol, atol=args.atol,
                      input_shapes=_parse_shapes(args.input_shape), channels_last_io=args.channels_last_io,
                      bisect=getattr(args, "bisect", False), conversion=conversion)


def _print_verify(console, result) -> None:
    from rich.table import Table

    table = Table(title="konnx vs onnxruntime", title_justify="left")
    for col in ("output", "shape", "max abs err", "max rel err", "mismatch", "tolerance", ""):
        table.add_column(col, justify="right" if col not in ("output", "") else "left")
    for o in result.outputs:
        status = "[green]ok[/]" if o.ok else f"[red]DIFFERS[/] {o.note}"
        table.add_row(o.name, "x".join(map(str, o.shape)), f"{o.max_abs:.3g}", f"{o.max_rel:.3g}",
                      f"{o.mismatch:.2%}", f"{o.tolerance:.3g}", status)
    console.print(table)
    if result.bisect is not None:
        d = result.bisect
        console.print(f"[bold red]first diverging node[/] (of {result.bisect_checked} checked): "
                      f"[bold]{d.node}[/] ({d.op_type}) output '{d.output}'", highlight=False)
        console.print(f"  max abs error {d.max_abs:.3g} > tolerance {d.tolerance:.3g}", highlight=False)
        console.print(f"  input shapes: {d.input_shapes}", highlight=False, markup=False)
        console.print(f"  attributes: {d.attributes}", highlight=False, markup=False)
        if d.padding:
            console.print(f"  padding decision: {d.padding.get('decision')}: {d.padding.get('reason')}",
                          highlight=False, markup=False)
    elif getattr(result, "bisect_checked", 0):
        console.print(f"bisect: all {result.bisect_checked} intermediate tensors agree", highlight=False)


def _write_json(path, payload) -> None:
    import json

    Path(path).write_text(json.dumps(payload, indent=2, default=str))


def cmd_convert(args) -> int:
    console = _console(args.quiet)
    from .cli_export import check_arguments, write_outputs  # -o / --saved-model / --tflite

    bad = check_arguments(args)
    if bad:
        console.print(f"[bold red]error:[/] {bad}", highlight=False)
        return EXIT_ERROR
    result = _convert(console, args, args.model)
    if isinstance(result, int):
        return result
    payload = {"model": str(args.model)}
    if not args.no_verify:
        check = _verify(console, args, args.model, result.model, conversion=result)
        _print_verify(console, check)
        payload["verify"] = check.to_dict()
        if not check.ok and not args.force:
            console.print("[bold red]outputs differ from onnxruntime: nothing written[/] "
                          "(--force writes anyway, --bisect names the first diverging node)")
            if args.json:
                _write_json(args.json, payload)
            return EXIT_MISMATCH
    code = write_outputs(console, args, result, payload)  # all outputs or none, each written atomically
    if code != EXIT_OK:
        if args.json:
            _write_json(args.json, payload)
        return code
    if args.report:
        from .report import write_report

        write_report(result, args.report)
        console.print(f"[green]wrote[/] {args.report}")
    if args.json:
        _write_json(args.json, payload)
    return EXIT_OK


def cmd_verify(args) -> int:
    console = _console(args.quiet)
    from . import ConversionError

    keras_model = None
    if args.keras_model:
        import keras

        import konnx  # noqa: F401  (registers konnx layers for loading)

        try:
            keras_model = keras.models.load_model(args.keras_model, safe_mode=True)
        except (OSError, ValueError) as e:
            console.print(f"[bold red]error:[/] cannot load {args.keras_model}: {e}", highlight=False)
            return EXIT_ERROR
    conversion = None
    if keras_model is None or args.bisect:
        conversion = _convert(console, args, args.model)
        if isinstance(conversion, int):
            return conversion
    try:
        result = _verify(console, args, args.model, keras_model, conversion=conversion)
    except ConversionError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False)
        return EXIT_ERROR
    _print_verify(console, result)
    if args.json:
        _write_json(args.json, {"model": str(args.model), "verify": result.to_dict()})
    return EXIT_OK if result.ok else EXIT_MISMATCH


def cmd_ops(args) -> int:
    from .ops import load_all
    from .ops.registry import REGISTRY

    load_all()
    for (domain, op), specs in sorted(REGISTRY.items()):
        since = ", ".join(str(s.since) for s in specs)
        print(f"{(domain + '.') if domain else ''}{op}\t(since opset {since})")
    return EXIT_OK


def cmd_check(args) -> int:
    """konnx check: support status of every op and every refusal known before building; no Keras."""
    from .check import run
    from .errors import ConversionError

    try:
        return run(args.model, _parse_shapes(args.input_shape), args.json, sys.stdout)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR


def _common(p) -> None:
    from .verify import DEFAULT_ATOL, DEFAULT_RTOL

    p.add_argument("--rtol", type=float, default=DEFAULT_RTOL,
                   help="relative tolerance, scaled by max(1, max|reference|) (default %(default)g)")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="absolute tolerance (default %(default)g)")
    p.add_argument("--json", metavar="FILE", help="write the whole result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="konnx", description="Convert ONNX models to Keras 3, exactly.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command")

    c = sub.add_parser("convert", help="convert an ONNX model to a .keras file")
    c.add_argument("model", help="path to the .onnx file")
    c.add_argument("-o", "--output", help="output .keras path (default: next to the model, "
                   "unless only --saved-model/--tflite are asked for)")
    c.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                   help="fix an input's shape (repeatable; ? keeps a dim dynamic)")
    c.add_argument("--channels-last-io", action="store_true",
                   help="NHWC inputs/outputs instead of ONNX's NCHW (best for deployment)")
    c.add_argument("--report", metavar="FILE", help="write the padding/layout decisions (.md or .json)")
    _common(c)
    c.add_argument("--no-verify", action="store_true", help="skip the check against onnxruntime")
    c.add_argument("--force", action="store_true", help="write the output even if verification fails")
    from .cli_export import add_arguments as add_export_arguments

    add_export_arguments(c)  # --saved-model, --tflite, --fp16, --fold-bn
    c.set_defaults(func=cmd_convert)

    v = sub.add_parser("verify", help="compare a conversion with onnxruntime (exit 3 if they differ)")
    v.add_argument("model", help="path to the .onnx file")
    v.add_argument("keras_model", nargs="?", help="a .keras file to check (default: convert now)")
    v.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                   help="fix an input's shape (repeatable; ? keeps a dim dynamic)")
    v.add_argument("--channels-last-io", action="store_true", help="the Keras model has NHWC inputs/outputs")
    v.add_argument("--inputs", metavar="NPZ", help="inputs as an .npz file keyed by input name")
    v.add_argument("--bisect", action="store_true", help="name the first node whose output diverges")
    _common(v)
    v.set_defaults(func=cmd_verify)

    k = sub.add_parser("check", help="list a model's ops and every refusal known before building "
                       "(no TensorFlow; exit 4 if some node cannot be converted)")
    k.add_argument("model", help="path to the .onnx file")
    k.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                   help="fix an input's shape (repeatable; ? keeps a dim dynamic)")
    k.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE ('-': only JSON, on stdout)")
    k.set_defaults(func=cmd_check)

    o = sub.add_parser("ops", help="list the supported ONNX ops")
    o.set_defaults(func=cmd_ops)

    from .cli_padding import register as register_padding

    register_padding(sub)
    return p


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return EXIT_OK
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
