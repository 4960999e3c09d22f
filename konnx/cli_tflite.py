"""`konnx convert model.onnx --tflite FILE` alone: the direct TFLite writer (konnx.tflite_direct),
with neither Keras nor TensorFlow imported, its file checked in the LiteRT interpreter against
onnxruntime. That check replaces the Keras verification (the file is what is delivered) and
is also what guards the fallback: whatever the writer does not cover, or a file that misses the
check, goes to the Keras -> TensorFlow converter path with one line saying why."""
from __future__ import annotations

import json


def direct_requested(args) -> bool:
    """Only a float32 .tflite asked for, with a static batch: the direct writer's case."""
    return bool(args.tflite) and not (args.output or args.saved_model or args.fp16 or args.int8 or args.calibration
                                      or args.dynamic_batch or args.report or getattr(args, "tflite_converter", False))


def _fallback(console, args, why: str) -> bool:
    console.print(f"[yellow]TFLite:[/] the direct writer does not cover this model ({why}); "
                  "using TensorFlow's converter", highlight=False, soft_wrap=True)
    return False


def convert_direct(console, args, proto) -> bool:
    """Write --tflite directly and check it; True when written, False when the caller must take
    the converter path (one line printed why). A konnx error of the check itself is a fallback
    too: the converter path then reports it as it always did."""
    from .cli_common import native_stderr_silenced, parse_shapes
    from .errors import ConversionError
    from .tflite_direct import DirectUnsupported, plan_for_tflite, write

    shapes = parse_shapes(args.input_shape)
    try:
        with console.status("writing the TFLite file (direct writer)"):
            normalized, plan, weights, opset = plan_for_tflite(proto, shapes, args.channels_last_io)
            data = write(normalized, plan, weights, opset, channels_last_io=args.channels_last_io)
            del normalized, weights
    except DirectUnsupported as e:
        return _fallback(console, args, str(e))
    except ConversionError as e:
        return _fallback(console, args, f"planning failed: {e}")
    except Exception as e:  # noqa: BLE001 - a bug in the writer: the converter path still delivers
        return _fallback(console, args, f"internal error, a konnx bug, please report it: {type(e).__name__}: {e}")
    names = _signature_inputs(data)
    try:
        from .export import check_tflite

        with console.status("checking the .tflite in the LiteRT interpreter against onnxruntime"), \
                native_stderr_silenced(not args.verbose):
            check = check_tflite(data, proto, None, input_shapes=shapes, channels_last_io=args.channels_last_io,
                                 rtol=args.rtol, atol=args.atol, input_names=names, oracle_path=args.model)
    except (ConversionError, ValueError, RuntimeError) as e:
        return _fallback(console, args, f"its check could not run: {str(e).splitlines()[0] if str(e) else e}")
    if not check.ok:
        worst = max(check.outputs, key=lambda o: o.max_abs)
        return _fallback(console, args, f"its file differs from onnxruntime: {worst.name} max abs error "
                                        f"{worst.max_abs:.3g} > {worst.tolerance:.3g}")
    _deliver(console, args, data, check)
    return True


def _signature_inputs(data: bytes) -> list:
    """The serving signature's input names in the file's input order (the ONNX inputs' order)."""
    from .tflite_map import read

    return [i["keras"] for i in read(data)["inputs"]]


def _deliver(console, args, data: bytes, check) -> None:
    """Print the check, stage the file (and --json), commit them all."""
    from .cli_export import _print_check
    from .cli_outputs import commit_all, discard_all, stage_text
    from .export import stage_tflite

    if args.verbose:
        console.print("TFLite: direct writer (no Keras, no TensorFlow); checked in LiteRT against onnxruntime",
                      highlight=False)
    _print_check(console, "TFLite (LiteRT interpreter) vs onnxruntime", check)
    payload = {"model": str(args.model), "tflite_writer": "direct", "tflite_verify": check.to_dict()}
    staged = []
    try:
        staged.append(("tflite", stage_tflite(None, args.tflite, content=data)))
        payload["tflite"] = str(staged[0][1].path)
        if args.json:
            staged.append(("json", stage_text(args.json, json.dumps(payload, indent=2, default=str) + "\n")))
    except BaseException:
        discard_all(staged)
        raise
    commit_all(staged)
    path = staged[0][1].path
    console.print(f"[green]wrote[/] {path} ({path.stat().st_size:,} bytes)", highlight=False, soft_wrap=True)
