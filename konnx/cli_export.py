"""`konnx convert` outputs: .keras (-o), TensorFlow SavedModel (--saved-model), TFLite (--tflite,
--fp16), in any combination. Every output is staged under a temporary name next to its destination
and renamed into place only once all of them are built and checked: a failed call writes nothing."""
from __future__ import annotations

from pathlib import Path
from typing import Optional


def add_arguments(parser) -> None:
    """The convert sub-command's export options."""
    g = parser.add_argument_group("deployment outputs (any combination; -o alone is the default)")
    g.add_argument("--saved-model", metavar="DIR", help="also write a TensorFlow SavedModel folder "
                   "(endpoint 'serve', signature 'serving_default')")
    g.add_argument("--tflite", metavar="FILE", help="also write a .tflite file (builtin ops), checked in the LiteRT "
                   "interpreter against onnxruntime; asked for alone, konnx writes it directly (no TensorFlow) when "
                   "its writer covers the model, else with TensorFlow's converter")
    g.add_argument("--tflite-converter", action="store_true", help="write --tflite with TensorFlow's converter even "
                   "when konnx's direct writer covers the model")
    g.add_argument("--fp16", action="store_true", help="TFLite with float16 weights (half the size; "
                   "checked with a looser tolerance, see konnx.export.FP16_RTOL)")
    g.add_argument("--int8", action="store_true", help="full-integer (int8) TFLite from --calibration samples, "
                   "checked on held-out samples against onnxruntime; the most sensitive layers stay float "
                   "until --int8-budget holds (see konnx.quantize)")
    g.add_argument("--calibration", metavar="DATA", help="int8 calibration samples in the ONNX layout: a .npy, "
                   ".npz (arrays keyed by input name) or a folder of them; one in five is held out")
    g.add_argument("--int8-budget", metavar="SPEC", default=None, help="int8 error budget per output, "
                   "default 'cos=0.99,top1=0.99': every held-out sample's cosine similarity to onnxruntime, "
                   "and the top-1 agreement of (batch, classes) outputs")
    g.add_argument("--dynamic-batch", action="store_true", help="keep a dynamic batch dim in the .tflite "
                   "(default: fixed to 1, or to --input-shape: static shapes run faster in LiteRT)")
    g.add_argument("--fold-bn", action="store_true", help="fold BatchNormalization into the preceding Conv "
                   "(faster inference; by default it stays a trainable BatchNormalization layer)")


def keras_target(args) -> Optional[Path]:
    """-o, or the .keras file next to the model when no other output is asked for."""
    if args.output:
        return Path(args.output)
    if getattr(args, "saved_model", None) or getattr(args, "tflite", None):
        return None
    return Path(args.model).with_suffix(".keras")


def check_arguments(args) -> Optional[str]:
    """What is wrong with the combination of options (None when nothing), before converting anything;
    each output path is checked by `targets` (konnx.cli_outputs)."""
    if getattr(args, "tflite_converter", False) and not args.tflite:
        return "--tflite-converter applies to the TFLite output: add --tflite FILE"
    if args.fp16 and not args.tflite:
        return "--fp16 applies to the TFLite output: add --tflite FILE"
    if (args.int8 or args.calibration) and not (args.int8 and args.calibration and args.tflite and not args.fp16):
        return "--int8 needs --calibration DATA and --tflite FILE (and not --fp16)"
    if args.int8:
        from .quantize import Budget, QuantizationError

        try:
            Budget.parse(args.int8_budget)
        except QuantizationError as e:
            return str(e)
    if args.saved_model and Path(args.saved_model).exists() and not Path(args.saved_model).is_dir():
        return f"--saved-model {args.saved_model} exists and is not a folder"
    return None


def _print_check(console, title: str, result) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("output", "shape", "max abs err", "max rel err", "tolerance", ""):
        table.add_column(col, justify="right" if col not in ("output", "") else "left")
    for o in result.outputs:
        status = "[green]ok[/]" if o.ok else f"[red]DIFFERS[/] {o.note}"
        table.add_row(o.name, "x".join(map(str, o.shape)), f"{o.max_abs:.3g}", f"{o.max_rel:.3g}",
                      f"{o.tolerance:.3g}", status)
    console.print(table)


def _int8(console, args, model, payload: dict) -> bytes:
    """The int8 .tflite (konnx.quantize), its per-output error and the layers kept float printed;
    a CliError (exit 3) when it misses the budget and --force is not given."""
    from .quantize import Budget, quantize_int8

    with console.status("quantizing to int8 and checking on held-out samples") as status:
        res = quantize_int8(model, args.model, args.calibration, channels_last_io=args.channels_last_io,
                            budget=Budget.parse(args.int8_budget), log=lambda m: status.update(f"int8: {m}"))
    payload["int8"] = res.to_dict()
    for o in res.outputs:
        top1 = "" if o.top1_agreement is None else f", top-1 agreement {o.top1_agreement:.3f}"
        console.print(f"int8 {o.name}: worst cosine {o.min_cosine:.5f}{top1} "
                      f"({res.held_out_samples} held-out samples) {'ok' if o.ok else 'OUTSIDE THE BUDGET'}")
    if res.float_ops:
        console.print(f"  kept float for speed: {', '.join(res.float_ops)} (XNNPACK has no int8 kernel for them)")
    for f in res.float_layers:
        console.print(f"  kept float: {f.op} {f.tensor} (int8 error {f.sensitivity:.3g} steps)", highlight=False)
    if not res.ok:
        if not args.force:
            from .cli_common import EXIT_MISMATCH, CliError

            raise CliError(f"int8 model outside the budget: {res.reason}: nothing written (--force writes anyway)",
                           EXIT_MISMATCH)
        console.print(f"[bold red]int8 model outside the budget[/]: {res.reason} (written anyway: --force)")
    return res.data


def targets(args) -> list:
    """Every file or folder this call may write, for the checks made before any conversion."""
    from .cli_outputs import Target

    out = []
    keras_out = keras_target(args)
    if keras_out is not None:
        out.append(Target("-o" if args.output else "output (default)", keras_out, (".keras",)))
    if args.saved_model:
        out.append(Target("--saved-model", Path(args.saved_model), directory=True))
    if args.tflite:
        out.append(Target("--tflite", Path(args.tflite), (".tflite",)))
    return out


def stage_outputs(console, args, result, payload: dict) -> list:
    """Build and check every requested model output, staged under temporary names: a list of
    (payload key, konnx.export.Staged). Nothing is in place until the caller commits them all."""
    from .cli_common import EXIT_MISMATCH, CliError, native_stderr_silenced, parse_shapes
    from .export import FP16_RTOL, check_tflite, stage_keras, stage_saved_model, stage_tflite, tflite_model

    model = result.model
    staged = []
    try:
        out = keras_target(args)
        if out is not None:
            staged.append(("output", stage_keras(model, out)))
        if args.saved_model:
            with console.status("exporting a TensorFlow SavedModel"):
                staged.append(("saved_model", stage_saved_model(model, args.saved_model)))
        if args.tflite and args.int8:
            data = _int8(console, args, model, payload)
        elif args.tflite:
            if getattr(args, "verbose", False):
                console.print("TFLite: TensorFlow's converter (from the Keras model)", highlight=False)
            with console.status("converting to TFLite" + (" (float16 weights)" if args.fp16 else "")):
                data = tflite_model(model, fp16=args.fp16, batch_size=None if args.dynamic_batch else 1)
            if not args.no_verify:
                rtol = max(args.rtol, FP16_RTOL) if args.fp16 else args.rtol
                with console.status("checking the .tflite in the LiteRT interpreter against onnxruntime"), \
                        native_stderr_silenced(not getattr(args, "verbose", False)):
                    check = check_tflite(data, args.model, model, input_shapes=parse_shapes(args.input_shape),
                                         channels_last_io=args.channels_last_io, rtol=rtol, atol=args.atol)
                _print_check(console, "TFLite (LiteRT interpreter) vs onnxruntime"
                             + (" [float16 weights]" if args.fp16 else ""), check)
                payload["tflite_verify"] = check.to_dict()
                if not check.ok and not args.force:
                    raise CliError("the .tflite model differs from onnxruntime: nothing written "
                                   "(--force writes anyway)", EXIT_MISMATCH)
        if args.tflite:
            staged.append(("tflite", stage_tflite(model, args.tflite, content=data)))
    except BaseException:
        for _, s in staged:
            s.discard()
        raise
    for key, s in staged:
        payload[key] = str(s.path)
    return staged


def print_written(console, args, model, staged) -> None:
    """One line per output written."""
    for key, s in staged:
        path = s.path
        if key == "output":
            console.print(f"[green]wrote[/] {path} ({len(model.layers)} layers, "
                          f"{model.count_params():,} parameters)", highlight=False, soft_wrap=True)
        elif key == "tflite":
            console.print(f"[green]wrote[/] {path} ({path.stat().st_size:,} bytes"
                          + (", float16 weights" if args.fp16 else ", int8" if args.int8 else "") + ")", highlight=False, soft_wrap=True)
        elif key == "saved_model":
            console.print(f"[green]wrote[/] {path}/ (SavedModel, signature 'serving_default')", highlight=False,
                          soft_wrap=True)
        else:
            console.print(f"[green]wrote[/] {path}", highlight=False, soft_wrap=True)
