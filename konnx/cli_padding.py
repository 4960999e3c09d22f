"""`konnx padding`: explain Keras 'same' vs 'valid' vs explicit pads for one window geometry.

    konnx padding --size 5 --kernel 2 --stride 2
    konnx padding --size 224,225 --kernel 7,7 --stride 2,2 --pads 3,3,3,3 --png pads.png
    konnx padding --size 5,5 --kernel 2 --stride 2 --json

Wired into `konnx` by konnx/cli.py (`register(sub)`); also runs alone as
`python -m konnx.cli_padding ...`.
"""
from __future__ import annotations

import argparse
import json
import sys

EXIT_OK, EXIT_ERROR = 0, 1

EXAMPLES = """examples:
  konnx padding --size 5 --kernel 2 --stride 2
  konnx padding --size 224,225 --kernel 7,7 --stride 2,2 --pads 3,3,3,3 --png pads.png
pads are in ONNX order: all begins, then all ends (--pads top,left,bottom,right in 2D);
negative pads crop (write --pads=-1,0 so the minus sign is not read as an option)."""


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def register(subparsers) -> argparse.ArgumentParser:
    """Add the `padding` subcommand to a `konnx` argparse subparsers object."""
    p = subparsers.add_parser(
        "padding", help="explain Keras 'same' vs 'valid' vs explicit pads (with pictures)",
        description="Output sizes for Keras 'valid', Keras 'same' and explicit pads, where 'same' puts "
                    "its zeros, and which Keras layers reproduce the explicit pads exactly.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=cmd_padding)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=_ints, required=True, metavar="N[,N...]", help="input size per spatial axis")
    p.add_argument("--kernel", type=_ints, required=True, metavar="K[,K...]", help="kernel size per axis")
    p.add_argument("--stride", type=_ints, default=[1], metavar="S[,S...]", help="stride per axis (default 1)")
    p.add_argument("--dilation", type=_ints, default=[1], metavar="D[,D...]", help="dilation per axis (default 1)")
    p.add_argument("--pads", type=_ints, default=None, metavar="B...,E...",
                   help="explicit pads, ONNX order: begins then ends (default: none)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--png", metavar="FILE", help="draw 'same' and the explicit pads side by side (PNG)")
    p.add_argument("--svg", metavar="FILE", help="the same picture as SVG")


def _one(vals: list[int]):
    return vals[0] if len(vals) == 1 else vals


def explanation_from_args(args):
    from .padding_explain import explain

    pads = args.pads
    if pads is not None and len(pads) == 1:
        pads = pads[0]
    return explain(_one(args.size), _one(args.kernel), _one(args.stride), _one(args.dilation), pads)


def _dims(values) -> str:
    return "x".join(str(v) for v in values)


def render_text(ex, console) -> None:
    """The human answer: a summary line, a table (rows: quantities, columns: axes), one
    sentence per axis, and the Keras layers that reproduce the explicit pads."""
    from rich.table import Table

    from .padding_explain import side_names

    axes = ex.axes
    n = len(axes)
    pads = [a.explicit_pads for a in axes]
    console.print(f"input {_dims(a.size for a in axes)}, kernel {_dims(a.kernel for a in axes)}, "
                  f"stride {_dims(a.stride for a in axes)}, dilation {_dims(a.dilation for a in axes)}",
                  highlight=False, soft_wrap=True)
    console.print(f"'valid' -> {_dims(ex.valid_out)}, 'same' -> {_dims(ex.same_out)}, "
                  f"explicit pads {pads} -> {_dims(ex.explicit_out)}", highlight=False, soft_wrap=True)
    table = Table(show_header=True, header_style="bold")
    table.add_column("")
    for i in range(n):
        name, before, after, _ = side_names(i, n)
        table.add_column(f"{name} (axis {i})", justify="right")
    rows = [
        ("input size", [a.size for a in axes]),
        ("kernel / stride / dilation", [f"{a.kernel} / {a.stride} / {a.dilation}" for a in axes]),
        ("'valid' output", [a.valid_out for a in axes]),
        ("'same' output", [a.same_out for a in axes]),
        ("'same' zeros before, after", [f"{a.same_before}, {a.same_after}" for a in axes]),
        ("explicit pads before, after", [f"{a.explicit_before}, {a.explicit_after}" for a in axes]),
        ("explicit output", [a.explicit_out for a in axes]),
        ("'same' = explicit?", ["yes" if a.same_matches else "no" for a in axes]),
    ]
    for label, vals in rows:
        table.add_row(label, *[str(v) for v in vals])
    console.print(table)
    for sentence in ex.advice():
        console.print(sentence, highlight=False, soft_wrap=True, markup=False)
    console.print("Keras, exactly: " + " then ".join(ex.keras_layers()), highlight=False, soft_wrap=True,
                  markup=False)


def _check_pictures(args) -> None:
    """--png/--svg paths are checked before anything is drawn (CliError: one line, exit 1)."""
    from pathlib import Path

    from .cli_common import CliError
    from .cli_outputs import Target, check_targets

    check_targets([Target(f"--{fmt}", Path(path), (f".{fmt}",)) for path, fmt in ((args.png, "png"), (args.svg, "svg"))
                   if path])
    if args.png:
        import importlib.util

        from .cli_common import PLOT_EXTRA

        if importlib.util.find_spec("matplotlib") is None:
            raise CliError(f"--png needs matplotlib, which is not installed: {PLOT_EXTRA} (--svg needs nothing)")


def cmd_padding(args) -> int:
    from rich.console import Console

    from rich.markup import escape

    from .cli_common import PLOT_EXTRA, CliError

    err = Console(stderr=True)
    try:
        _check_pictures(args)
        ex = explanation_from_args(args)
    except CliError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        return EXIT_ERROR
    except ValueError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(ex.to_dict()))
    else:
        render_text(ex, Console())
    for path, fmt in ((args.png, "png"), (args.svg, "svg")):
        if path:
            from .plot import draw

            try:
                draw(ex, path, fmt=fmt)
            except ModuleNotFoundError as e:
                if (e.name or "").split(".")[0] != "matplotlib":
                    raise
                err.print(f"[bold red]error:[/] --{fmt} needs matplotlib, which is not installed: "
                          f"{escape(PLOT_EXTRA)}", highlight=False, soft_wrap=True)
                return EXIT_ERROR
            except OSError as e:
                err.print(f"[bold red]error:[/] cannot write {path}: {e}", highlight=False)
                return EXIT_ERROR
            err.print(f"[green]wrote[/] {path}", highlight=False)
    return EXIT_OK


def main(argv=None) -> int:
    """`python -m konnx.cli_padding ...`: the subcommand on its own."""
    parser = argparse.ArgumentParser(prog="konnx padding", epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return cmd_padding(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
