"""`konnx check` and `konnx ops`: what konnx can convert, known without building anything (no
Keras, no TensorFlow)."""
from __future__ import annotations

import sys
from pathlib import Path

from .cli_common import EXIT_OK, EXIT_UNSUPPORTED, CliError, parse_shapes


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
    import json

    from .check import check_model, render

    if args.json and args.json != "-":
        from .cli_outputs import Target, check_targets

        check_targets([Target("--json", Path(args.json), (".json",))], inputs=[args.model])
    model = Path(args.model)
    if not model.is_file():
        raise CliError(f"model file not found: {model}" if not model.exists() else f"not a file: {model}")
    result = check_model(args.model, parse_shapes(args.input_shape))  # konnx errors: main's handler
    text = json.dumps(result.to_dict(), indent=2) + "\n"
    if args.json == "-":  # the JSON alone on stdout, for tools
        sys.stdout.write(text)
    else:
        print(render(result))
        if args.json:
            from .cli_outputs import commit_all, stage_text

            commit_all([("json", stage_text(args.json, text))])
    return EXIT_OK if result.ok else EXIT_UNSUPPORTED


def register(sub) -> None:
    """Add the `check` and `ops` subcommands to a `konnx` argparse subparsers object."""
    k = sub.add_parser("check", help="list a model's ops and every refusal known before building "
                       "(no TensorFlow; exit 4 if some node cannot be converted)")
    k.add_argument("model", help="path to the .onnx file")
    k.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                   help="fix an input's shape, NAME=1,3,224,224 or NAME:1,3,224,224 (repeatable; ? keeps a dim "
                        "dynamic)")
    k.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE ('-': only JSON, on stdout)")
    k.set_defaults(func=cmd_check)

    o = sub.add_parser("ops", help="list the supported ONNX ops")
    o.set_defaults(func=cmd_ops)
