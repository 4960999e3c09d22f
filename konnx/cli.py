"""The `konnx` command line: convert, ops."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_UNSUPPORTED = 0, 1, 2


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


def cmd_convert(args) -> int:
    console = _console(args.quiet)
    from . import ConversionError, UnsupportedOpError
    from .api import convert_detailed

    try:
        with console.status(f"converting {args.model}"):
            result = convert_detailed(args.model, input_shapes=_parse_shapes(args.input_shape),
                                      channels_last_io=args.channels_last_io)
    except UnsupportedOpError as e:
        console.print(f"[bold red]cannot convert {args.model}[/]: {len(e.nodes)} unsupported node(s)")
        for n in e.nodes:
            console.print(f"  - {n}", markup=False, highlight=False)
        return EXIT_UNSUPPORTED
    except ConversionError as e:
        console.print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
        return EXIT_ERROR
    out = Path(args.output) if args.output else Path(args.model).with_suffix(".keras")
    save_atomic(result.model, out)
    n_layers = len(result.model.layers)
    console.print(f"[green]wrote[/] {out} ({n_layers} layers, {result.model.count_params():,} parameters)")
    if args.report:
        from .report import write_report

        write_report(result, args.report)
        console.print(f"[green]wrote[/] {args.report}")
    return EXIT_OK


def cmd_ops(args) -> int:
    from .ops import load_all
    from .ops.registry import REGISTRY

    load_all()
    for (domain, op), specs in sorted(REGISTRY.items()):
        since = ", ".join(str(s.since) for s in specs)
        print(f"{(domain + '.') if domain else ''}{op}\t(since opset {since})")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="konnx", description="Convert ONNX models to Keras 3, exactly.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command")

    c = sub.add_parser("convert", help="convert an ONNX model to a .keras file")
    c.add_argument("model", help="path to the .onnx file")
    c.add_argument("-o", "--output", help="output .keras path (default: next to the model)")
    c.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                   help="fix an input's shape (repeatable; ? keeps a dim dynamic)")
    c.add_argument("--channels-last-io", action="store_true",
                   help="NHWC inputs/outputs instead of ONNX's NCHW (best for deployment)")
    c.add_argument("--report", metavar="FILE", help="write the padding/layout decisions (.md or .json)")
    c.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    c.set_defaults(func=cmd_convert)

    o = sub.add_parser("ops", help="list the supported ONNX ops")
    o.set_defaults(func=cmd_ops)
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
