"""The `konnx` command line: convert, verify, codegen, padding, ops.

Only what a subcommand needs is imported inside it: `konnx --help`, `--version`, `padding` and
usage errors never load Keras or TensorFlow. Every user error is one line and an exit code
(konnx.cli_common.EXIT_*); an unexpected exception is reported as an internal error."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import InputsTooLargeError
from .cli_common import (EXIT_CODES_HELP, EXIT_ERROR, EXIT_INTERNAL, EXIT_MISMATCH, EXIT_OK, EXIT_UNSUPPORTED,
                         EXIT_USAGE, CliError, konnx_output_only, load_backend, parse_shapes, quiet_environment)

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_MISMATCH", "EXIT_UNSUPPORTED",
           "EXIT_INTERNAL"]


def _console(quiet: bool):
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


def _convert(console, args, model):
    """Convert with a progress bar; returns the Conversion (konnx errors propagate to main)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .api import convert_detailed

    with Progress(TextColumn("[bold]converting[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(Path(args.model).name, total=None)
        return convert_detailed(model, input_shapes=parse_shapes(args.input_shape),
                                channels_last_io=args.channels_last_io,
                                fold_bn=getattr(args, "fold_bn", False),  # convert --fold-bn
                                progress=lambda i, n: progress.update(task, completed=i, total=n))


def _verify(console, args, model, keras_model=None, conversion=None, inputs=None):
    from .verify import verify

    with console.status("verifying against onnxruntime"):
        return verify(model, keras_model, inputs, rtol=args.rtol, atol=args.atol,
                      input_shapes=parse_shapes(args.input_shape), channels_last_io=args.channels_last_io,
                      bisect=getattr(args, "bisect", False), conversion=conversion)


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _json_text(payload) -> str:
    return __import__("json").dumps(payload, indent=2, default=str) + "\n"


def _check_paths(args, extra_targets=()) -> None:
    """Every output path, before any work: refused up front with one line."""
    from .cli_outputs import Target, check_targets

    targets = list(extra_targets)
    if getattr(args, "report", None):
        targets.append(Target("--report", Path(args.report), (".md", ".json")))
    if args.json:
        targets.append(Target("--json", Path(args.json), (".json",)))
    if getattr(args, "csv", None):
        targets.append(Target("--csv", Path(args.csv), (".csv",)))
    check_targets(targets, inputs=[args.model, getattr(args, "keras_model", None), *(getattr(args, "inputs", None) or [])])
    model = Path(args.model)
    if not model.is_file():
        raise CliError(f"model file not found: {model}" if not model.exists() else f"not a file: {model}")


def _load_model(args):
    """Read the ONNX model once and check --input-shape against its inputs (no Keras needed)."""
    from . import loader
    from .inputs import check_input_shapes

    from .errors import ConversionError

    proto = loader.load(args.model)
    try:
        check_input_shapes(proto, parse_shapes(args.input_shape))
    except ConversionError as e:
        raise CliError(f"--input-shape: {e}") from None
    return proto


def cmd_convert(args) -> int:
    from .cli_export import check_arguments, print_written, stage_outputs, targets
    from .cli_outputs import commit_all, discard_all, stage_report, stage_text
    from .cli_tflite import convert_direct, direct_requested

    _check_paths(args, targets(args))
    bad = check_arguments(args)  # combinations of options (--fp16 without --tflite, ...)
    if bad:
        raise CliError(f"{bad} (nothing written)")
    proto = _load_model(args)  # a bad model or --input-shape is refused before Keras loads
    if direct_requested(args) and convert_direct(_console(args.quiet), args, proto):
        return EXIT_OK  # --tflite alone: written directly, neither Keras nor TensorFlow imported
    keras = load_backend(args.verbose)
    if (args.saved_model or args.tflite) and keras.backend.backend() != "tensorflow":
        raise CliError(f"--saved-model and --tflite need the TensorFlow Keras backend (KERAS_BACKEND=tensorflow); "
                       f"the active backend is {keras.backend.backend()!r} (nothing written)")
    console = _console(args.quiet)
    result = _convert(console, args, proto)
    payload = {"model": str(args.model)}
    check = None if args.no_verify else _default_check(console, args, proto, result, payload)
    if check is not None:
        from .cli_bisect import print_verify

        print_verify(console, check)
        payload["verify"] = check.to_dict()
        if not check.ok and not args.force:
            raise CliError(f"outputs differ from onnxruntime: nothing written (`konnx verify {args.model} --bisect` "
                           "names the first diverging node; --force writes anyway)", EXIT_MISMATCH)
    staged = []
    try:  # every output built under a temporary name; none is in place until all are
        staged = stage_outputs(console, args, result, payload)
        if args.report:
            staged.append(("report", stage_report(result, args.report)))
            payload["report"] = str(args.report)
        if args.json:
            staged.append(("json", stage_text(args.json, _json_text(payload))))
    except OSError as e:
        discard_all(staged)
        raise CliError(f"cannot write the outputs: {e} (nothing written)") from None
    except BaseException:
        discard_all(staged)
        raise
    commit_all(staged)
    print_written(console, args, result.model, staged)
    return EXIT_OK


def _default_check(console, args, proto, result, payload):
    """convert's check; None (skipped, said why) when its seeded inputs would be too large."""
    try:
        return _verify(console, args, proto, result.model, conversion=result)
    except InputsTooLargeError as e:
        console.print(f"[yellow]check against onnxruntime skipped:[/] {e}", highlight=False, soft_wrap=True)
        payload["verify"] = {"skipped": str(e)}  # and None: no check result


def cmd_verify(args) -> int:
    _check_paths(args)
    parse_shapes(args.input_shape)
    for path in args.inputs or []:
        if not Path(path).exists():
            raise CliError(f"--inputs {path}: no such file or folder")
    if args.keras_model and not Path(args.keras_model).is_file():
        raise CliError(f"Keras model file not found: {args.keras_model}")
    if args.csv and not args.bisect:
        raise CliError("--csv writes the per-node table of --bisect; add --bisect")
    proto = _load_model(args)
    inputs = None
    if args.inputs:  # checked against the model before anything is converted
        from .samples import load_samples
        from .verify_inputs import check_inputs

        inputs = [check_inputs(proto, feeds, parse_shapes(args.input_shape))
                  for feeds in load_samples(args.inputs, proto)]
    console = _console(args.quiet)
    keras = load_backend(args.verbose)
    keras_model = None
    if args.keras_model and args.keras_model.endswith(".tflite"):
        keras_model = args.keras_model  # verify runs it in the LiteRT interpreter, through its tensor map
    elif args.keras_model:
        import zipfile

        try:
            keras_model = keras.models.load_model(args.keras_model, safe_mode=True)
        except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as e:
            raise CliError(f"cannot load {args.keras_model} as a Keras model: {_first_line(e)}") from None
    conversion = None
    if keras_model is None:  # --bisect probes the given model itself (its tensor map), never a fresh conversion
        conversion = _convert(console, args, proto)
    try:
        result = _verify(console, args, proto, keras_model, conversion=conversion, inputs=inputs)
    except (ValueError, TypeError) as e:
        if keras_model is None:
            raise
        raise CliError(f"{args.keras_model} does not run on {args.model}'s inputs (a model converted from another "
                       f"ONNX file, or --channels-last-io missing?): {_first_line(e)}") from None
    from .cli_bisect import print_verify

    print_verify(console, result)
    if args.json:
        from .cli_outputs import commit_all, stage_text

        commit_all([("json", stage_text(args.json, _json_text({"model": str(args.model),
                                                                 "verify": result.to_dict()})))])
    if args.csv:
        from .cli_bisect import write_csv
        from .cli_outputs import commit_all
        from .export import Staged

        commit_all([("csv", Staged(args.csv, lambda tmp: write_csv(tmp, result)))])
    if not result.ok:
        console.print(f"outputs differ from onnxruntime (exit {EXIT_MISMATCH})"
                      + ("" if args.bisect else f"; `konnx verify {args.model} --bisect` names the first "
                         "diverging node"), highlight=False, soft_wrap=True)
    return EXIT_OK if result.ok else EXIT_MISMATCH


def cmd_codegen(args) -> int:
    """Convert; write DIR/model.py and model.weights.h5 in a staged folder; build the generated module and
    check it against onnxruntime; rename the folder into place (all or none)."""
    from . import codegen
    from .cli_outputs import Target, commit_all
    from .export import Staged

    out = Path(args.output)
    _check_paths(args, [Target("-o", out, directory=True)])
    others = codegen.foreign_files(out)  # the folder is replaced as a whole: only an earlier output may be
    if others:
        raise CliError(f"-o {out}: holds other files than {codegen.MODULE_FILE} and {codegen.WEIGHTS_FILE} "
                       f"({', '.join(others)}); give a new or empty folder (nothing written)")
    proto = _load_model(args)
    load_backend(args.verbose)
    console = _console(args.quiet)
    result = _convert(console, args, proto)

    def write(folder: Path) -> None:
        folder.mkdir()
        codegen.write(result, folder, Path(args.model).name)
        if not args.no_verify:
            check = _verify(console, args, proto, codegen.load_generated(folder))
            from .cli_bisect import print_verify

            print_verify(console, check)
            if not check.ok:
                raise CliError("the generated module's model differs from onnxruntime: nothing written "
                               "(--no-verify writes it anyway)", EXIT_MISMATCH)
    try:
        commit_all([("codegen", Staged(out, write, directory=True))])
    except OSError as e:
        raise CliError(f"cannot write {out}: {e} (nothing written)") from None
    console.print(f"wrote {out / codegen.MODULE_FILE} (build() loads the weights next to it)", highlight=False)
    return EXIT_OK


def _register_codegen(sub) -> None:
    g = sub.add_parser("codegen", help="write the converted model as a readable Keras module (DIR/model.py)",
                       epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("model", help="path to the .onnx file")
    g.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder for model.py and model.weights.h5 (replaced as a whole)")
    g.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                   help="fix an input's shape, NAME=1,3,224,224 (repeatable; ? keeps a dim dynamic)")
    g.add_argument("--channels-last-io", action="store_true", help="NHWC inputs/outputs instead of NCHW")
    g.add_argument("--no-verify", action="store_true", help="skip building the generated module and checking it")
    _common(g)
    g.set_defaults(func=cmd_codegen)


def _common(p) -> None:
    from .tolerances import DEFAULT_ATOL, DEFAULT_RTOL

    p.add_argument("--rtol", type=float, default=DEFAULT_RTOL,
                   help="relative tolerance, scaled by max(1, max|reference|) (default %(default)g)")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="absolute tolerance (default %(default)g)")
    p.add_argument("--json", metavar="FILE.json", help="write the whole result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="let TensorFlow/Keras log and warn; show tracebacks of internal errors")


class _Parser(argparse.ArgumentParser):
    """argparse, with a hint for the most common slip (the output given without -o)."""

    def error(self, message):
        if "unrecognized arguments" in message and ".keras" in message:
            message += " (write the output as -o FILE.keras)"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="konnx", description="Convert ONNX models to Keras 3, exactly.", epilog=EXIT_CODES_HELP,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="let TensorFlow/Keras log and warn; show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    c = sub.add_parser("convert", help="convert an ONNX model to a .keras file", epilog=EXIT_CODES_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("model", help="path to the .onnx file")
    c.add_argument("-o", "--output", help="output .keras path (default: next to the model, "
                   "unless only --saved-model/--tflite are asked for)")
    c.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...", help="fix an input's shape, "
                   "NAME=1,3,224,224 or NAME:1,3,224,224 (repeatable; ? keeps a dim dynamic)")
    c.add_argument("--channels-last-io", action="store_true",
                   help="NHWC inputs/outputs instead of ONNX's NCHW (best for deployment)")
    c.add_argument("--report", metavar="FILE", help="write the padding/layout decisions (.md or .json)")
    _common(c)
    c.add_argument("--no-verify", action="store_true", help="skip the check against onnxruntime")
    c.add_argument("--force", action="store_true", help="write the output even if verification fails")
    from .cli_export import add_arguments as add_export_arguments

    add_export_arguments(c)  # --saved-model, --tflite, --fp16, --fold-bn
    c.set_defaults(func=cmd_convert)

    v = sub.add_parser("verify", help="compare a conversion with onnxruntime (exit 3 if they differ)",
                       epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("model", help="path to the .onnx file")
    v.add_argument("keras_model", nargs="?", help="a .keras (or konnx-exported .tflite) file to check "
                   "(default: convert now)")
    v.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                   help="fix an input's shape, NAME=1,3,224,224 or NAME:1,3,224,224 (repeatable; ? keeps a dim "
                        "dynamic)")
    v.add_argument("--channels-last-io", action="store_true", help="the Keras model has NHWC inputs/outputs")
    v.add_argument("--inputs", metavar="PATH", action="append",
                   help="real inputs (ONNX layout): an .npz file keyed by input name, a folder of NAME.npy files "
                        "or one .npy for a one-input model; repeat for several samples (an array one rank above "
                        "the input also holds several samples)")
    v.add_argument("--bisect", action="store_true", help="compare every node of the given model with "
                   "onnxruntime; name the first diverging node and its likely cause")
    v.add_argument("--csv", metavar="FILE", help="with --bisect: write the per-node error table as CSV")
    _common(v)
    v.set_defaults(func=cmd_verify)

    from .cli_check import register as register_check

    register_check(sub)  # check, ops: no Keras, no TensorFlow

    _register_codegen(sub)

    from .cli_padding import register as register_padding

    register_padding(sub)
    return p


def _report_error(e: Exception, args, code: int) -> int:
    from .errors import UnsupportedOpError

    out = sys.stderr
    if isinstance(e, UnsupportedOpError):
        print(f"error: cannot convert {getattr(args, 'model', 'the model')}: {len(e.nodes)} unsupported node(s) "
              "(nothing written)", file=out)
        for n in e.nodes:
            print(f"  - {n}", file=out)
    else:
        print(f"error: {e}", file=out)
    return code


def _run(args) -> int:
    """Run a subcommand; every outcome becomes an exit code and at most a few lines on stderr."""
    from .errors import ConversionError, UnsupportedOpError

    try:
        return args.func(args)
    except CliError as e:
        return _report_error(e, args, e.code)
    except UnsupportedOpError as e:
        return _report_error(e, args, EXIT_UNSUPPORTED)
    except ConversionError as e:
        return _report_error(e, args, EXIT_ERROR)
    except KeyboardInterrupt:
        print("interrupted (nothing written)", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - anything else is a bug in konnx: say so in one line
        if getattr(args, "verbose", False):
            import traceback

            traceback.print_exc()
        print(f"internal error: {type(e).__name__}: {_first_line(e)} - this is a bug "
              "in konnx; please report it with the command and the model"
              + ("" if getattr(args, "verbose", False) else " (--verbose shows the traceback)"), file=sys.stderr)
        return EXIT_INTERNAL


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: exit 2
    if args.version:
        from ._version import __version__

        print(__version__)
        return EXIT_OK
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    verbose = getattr(args, "verbose", False)
    quiet_environment(verbose)
    if verbose:
        return _run(args)
    import warnings

    with warnings.catch_warnings(), konnx_output_only(True):
        warnings.simplefilter("ignore")  # Keras/TensorFlow warnings; konnx reports through its console
        return _run(args)


if __name__ == "__main__":
    sys.exit(main())
