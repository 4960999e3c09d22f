"""The konnx layer format as data, and the golden file that pins it.

    python -m tests.golden.format        # rewrite tests/golden/konnx_functions.json

tests/test_layer_format.py fails when the live registry differs from the golden file, so a
change to the format (a function or parameter renamed, added or removed, a default changed, a
config key changed) shows up as a reviewed diff of that file. See docs/file-format.md.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "konnx_functions.json"
REQUIRED = "<required>"


def _signature(fn) -> dict:
    """Operands (positional, in order; `?` optional, `*` variadic) and JSON parameters
    (keyword-only: name -> default, or REQUIRED)."""
    operands, params = [], {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            operands.append(f"*{p.name}")
        elif p.kind is p.KEYWORD_ONLY:
            params[p.name] = REQUIRED if p.default is p.empty else p.default
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            operands.append(p.name if p.default is p.empty else f"{p.name}?")
        else:  # **kwargs would leave the parameter names open: not a declared format
            raise TypeError(f"konnx function {fn.__name__}: **{p.name} is not allowed")
    return {"operands": operands, "params": params}


def describe() -> dict:
    """Format version, KonnxOp's registered class name and config keys, slot kinds, the named
    layers (registered name -> the function each applies) and every registered function's
    operands and parameters, read from the live code."""
    import keras
    import numpy as np

    from konnx.layers import FUNCTIONS, NAMED_LAYERS
    from konnx.layers.functions import CHOICES
    from konnx.layers.format import FORMAT_VERSION
    from konnx.layers.op import INLINE_MAX, KonnxOp, make_slots

    big, small = np.zeros(INLINE_MAX + 1, "float32"), np.zeros(2, "int64")
    _, slots, specs, _ = make_slots([object(), big, small, None])
    layer = KonnxOp("identity", slots=slots, weight_specs=specs, name="probe")
    base = set(keras.layers.Layer().get_config())  # Keras' own keys (name, dtype, trainable, ...)
    return {
        "format_version": FORMAT_VERSION,
        "registered_name": keras.saving.get_registered_name(KonnxOp),
        "konnx_op_config_keys": sorted(set(layer.get_config()) - base),
        "slot_kinds": [next(iter(s)) for s in slots],
        "inline_const_keys": sorted(slots[2]["c"]),
        "weight_spec_keys": sorted(specs[0]),
        "named_layers": {keras.saving.get_registered_name(cls): cls.FN for cls in NAMED_LAYERS},
        "functions": {name: dict(_signature(FUNCTIONS[name]), **({"choices": CHOICES[name]} if name in CHOICES else {}))
                      for name in sorted(FUNCTIONS)},
    }


def render(desc: dict | None = None) -> str:
    """JSON with one line per function, so a format change is a one-line diff."""
    desc = describe() if desc is None else desc
    head = {k: v for k, v in desc.items() if k != "functions"}
    lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v, sort_keys=True)}," for k, v in sorted(head.items())]
    lines.append(' "functions": {')
    fns = sorted(desc["functions"].items())
    lines += [f"  {json.dumps(n)}: {json.dumps(sig, sort_keys=True)}" + ("," if i < len(fns) - 1 else "")
              for i, (n, sig) in enumerate(fns)]
    return "\n".join(lines + [" }", "}"]) + "\n"


if __name__ == "__main__":
    GOLDEN.write_text(render())
    print(f"wrote {GOLDEN}")
