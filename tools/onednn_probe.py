"""Probe which convolution / pooling geometries TensorFlow's oneDNN kernels get wrong.

Every case runs the Keras op (keras.ops.conv, depthwise_conv, separable_conv, conv_transpose,
max_pool, average_pool: exactly what the Keras layers call) on random data and compares it
with a float64 numpy reference written from the ONNX definitions (explicit pads, then a window
sum / max / mean). Run it twice, with oneDNN on (TensorFlow's default on x86) and with
TF_ENABLE_ONEDNN_OPTS=0; the second run shows that the reference itself is right.

    python tools/onednn_probe.py --out on.json                      # oneDNN as installed
    TF_ENABLE_ONEDNN_OPTS=0 python tools/onednn_probe.py --out off.json
    python tools/onednn_probe.py --both --out probe.json            # both, in subprocesses
    python tools/onednn_probe.py --covered on.json                  # konnx's rules vs the failures

Geometries: for every op and rank, one "probed" axis takes every (size 1..8, kernel 1..5,
stride 1..4, dilation 1..3 for convolutions) while the other axes take a few fixed shapes
(length 1, long stride 1, ...); padding 'same' and 'valid' ('valid' only where a window fits);
batch/channels (N, C_in, C_out) in (1, 1, 1), (2, 1, 1), (2, 3, 2). --random N adds N
geometries where every axis is drawn at random. docs/onednn.md has the findings.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

OPS = ("conv", "depthwise", "separable", "conv_transpose", "max_pool", "avg_pool")
RANKS = {"conv": (1, 2, 3), "depthwise": (1, 2), "separable": (1, 2), "conv_transpose": (1, 2, 3),
         "max_pool": (1, 2, 3), "avg_pool": (1, 2, 3)}
CHANNELS = ((1, 1, 1), (2, 1, 1), (2, 3, 2))  # (batch, C_in, C_out)
OTHER_AXES = ((1, 1, 1, 1), (5, 1, 1, 1), (6, 3, 1, 1), (7, 3, 2, 1), (1, 3, 2, 1))


def same_pads(n, k, s, d=1):
    """TF's SAME (before, after) on one axis."""
    eff = (k - 1) * d + 1
    total = max((-(-n // s) - 1) * s + eff - n, 0)
    return total // 2, total - total // 2


# ------------------------------------------------------------------ numpy reference (float64)

def _windows(x, kernel, strides, dilations, pads, fill):
    """x: N, spatial..., C -> windows N, out..., C, k... (dilated taps only)."""
    nsp = x.ndim - 2
    xp = np.pad(x, [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)], constant_values=fill)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    w = sliding_window_view(xp, eff, axis=tuple(range(1, 1 + nsp)))
    w = w[(slice(None),) + tuple(slice(None, None, s) for s in strides)]
    return w[(Ellipsis,) + tuple(slice(None, None, d) for d in dilations)]


def ref_conv(x, w, strides, dilations, pads):
    """x: N, sp..., Cin; w: k..., Cin, Cout."""
    nsp = x.ndim - 2
    win = _windows(x, w.shape[:nsp], strides, dilations, pads, 0.0)
    kk = np.moveaxis(w, nsp, 0)  # Cin, k..., Cout
    return np.tensordot(win, kk, axes=(list(range(1 + nsp, 2 + 2 * nsp)), list(range(1 + nsp))))


def ref_depthwise(x, w, strides, dilations, pads):
    """w: k..., C, mult -> N, out..., C * mult."""
    nsp = x.ndim - 2
    win = _windows(x, w.shape[:nsp], strides, dilations, pads, 0.0)  # N, o..., C, k...
    kk = np.moveaxis(w, nsp, 0)  # C, k..., M
    outs, taps = "opq"[:nsp], "ijk"[:nsp]
    y = np.einsum(f"n{outs}c{taps},c{taps}m->n{outs}cm", win, kk)
    return y.reshape(y.shape[:-2] + (-1,))


def ref_conv_transpose(x, w, strides, pads):
    """Keras conv_transpose: w: k..., Cout, Cin. 'valid' = the full output; 'same' = crop to
    in * stride (TF's rule: extra crop at the end)."""
    nsp = x.ndim - 2
    k = w.shape[:nsp]
    full = [(n - 1) * s + kk for n, s, kk in zip(x.shape[1:-1], strides, k)]
    y = np.zeros((x.shape[0], *full, w.shape[-2]))
    for pos in np.ndindex(*x.shape[1:-1]):
        contrib = np.tensordot(x[(slice(None), *pos)], w, axes=([1], [nsp + 1]))  # N, k..., Cout
        y[(slice(None), *[slice(p * s, p * s + kk) for p, s, kk in zip(pos, strides, k)])] += contrib
    return y[(slice(None), *[slice(b, f - e) for (b, e), f in zip(pads, full)])]


def ref_pool(x, kernel, strides, pads, kind):
    win = _windows(x, kernel, strides, [1] * len(kernel), pads, -np.inf if kind == "max" else np.nan)
    axes = tuple(range(win.ndim - len(kernel), win.ndim))
    return win.max(axis=axes) if kind == "max" else np.nanmean(win, axis=axes)  # 'same' avg excludes pads


def transpose_crops(n, k, s, padding):
    full = (n - 1) * s + k
    if padding == "valid":
        return 0, 0
    total = full - n * s  # TF/Keras 'same' for transposed convs: output = in * stride
    return max(total, 0) // 2, max(total, 0) - max(total, 0) // 2


# ------------------------------------------------------------------------------ the cases

def axis_options(op):
    """Every (size, kernel, stride, dilation) of the probed axis."""
    dils = (1, 2, 3) if op in ("conv", "depthwise", "separable") else (1,)
    return list(itertools.product(range(1, 9), range(1, 6), range(1, 5), dils))


def fits(op, axes, padding):
    """Whether a geometry is a legal call: a 'valid' window must fit; Keras refuses stride > 1
    with dilation > 1; a 'same' transposed conv is probed only where kernel >= stride."""
    if any(s > 1 for _, _, s, _ in axes) and any(d > 1 for _, _, _, d in axes):
        return False
    if op == "conv_transpose":
        return padding == "valid" or all(k >= s for _, k, s, _ in axes)
    return padding == "same" or all(n >= (k - 1) * d + 1 for n, k, _, d in axes)


def structured_cases(op, nsp):
    """The probed axis in every position, the other axes from OTHER_AXES."""
    for probe in axis_options(op):
        for pos in range(nsp):
            for other in (itertools.product(OTHER_AXES, repeat=nsp - 1) if nsp > 1 else [()]):
                axes = list(other)
                axes.insert(pos, probe)
                if nsp == 3 and len(set(other)) > 1:
                    continue  # 3D: the two other axes alike, to keep the count down
                yield tuple(axes)


def random_cases(op, nsp, count, seed):
    rng = np.random.default_rng(seed)
    opts = axis_options(op)
    for _ in range(count):
        yield tuple(opts[i] for i in rng.integers(0, len(opts), nsp))


def build_case(op, axes, padding, channels, rng):
    """(fn, x, expected): fn(x) runs the Keras op; expected comes from the numpy reference."""
    import keras

    n_b, c_in, c_out = channels
    nsp = len(axes)
    sizes, kernel, strides, dils = (tuple(a[i] for a in axes) for i in range(4))
    x = rng.standard_normal((n_b, *sizes, c_in))
    pads = [same_pads(n, k, s, d) if padding == "same" else (0, 0) for n, k, s, d in axes]
    x32 = x.astype(np.float32)
    if op == "conv":
        w = rng.standard_normal((*kernel, c_in, c_out))
        fn = lambda t: keras.ops.conv(t, w.astype(np.float32), strides, padding, dilation_rate=dils)  # noqa: E731
        want = ref_conv(x32.astype(np.float64), w.astype(np.float32).astype(np.float64), strides, dils, pads)
    elif op in ("depthwise", "separable"):
        w = rng.standard_normal((*kernel, c_in, c_out)).astype(np.float32)
        if op == "depthwise":
            fn = lambda t: keras.ops.depthwise_conv(t, w, strides, padding, dilation_rate=dils)  # noqa: E731
            want = ref_depthwise(x32.astype(np.float64), w.astype(np.float64), strides, dils, pads)
        else:
            pw = rng.standard_normal((*(1,) * nsp, c_in * c_out, 2)).astype(np.float32)
            fn = lambda t: keras.ops.separable_conv(t, w, pw, strides, padding, dilation_rate=dils)  # noqa: E731
            want = ref_depthwise(x32.astype(np.float64), w.astype(np.float64), strides, dils, pads)
            want = want @ pw.reshape(c_in * c_out, 2).astype(np.float64)
    elif op == "conv_transpose":
        w = rng.standard_normal((*kernel, c_out, c_in)).astype(np.float32)
        # konnx's layers pass output_padding (0 here): the full output, (n - 1) * s + k
        op_pad = (0,) * nsp if padding == "valid" else None
        fn = lambda t: keras.ops.conv_transpose(t, w, strides, padding, output_padding=op_pad)  # noqa: E731
        crops = [transpose_crops(n, k, s, padding) for n, k, s in zip(sizes, kernel, strides)]
        want = ref_conv_transpose(x32.astype(np.float64), w.astype(np.float64), strides, crops)
    else:
        pool = keras.ops.max_pool if op == "max_pool" else keras.ops.average_pool
        fn = lambda t: pool(t, kernel, strides, padding)  # noqa: E731
        want = ref_pool(x32.astype(np.float64), kernel, strides, pads, op[:3])
    return fn, x32, want


def compare(got, want):
    """None if equal to float32 rounding, else a short description."""
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    if not got.size:
        return None
    err = float(np.max(np.abs(got - want)))
    tol = 1e-4 * max(1.0, float(np.max(np.abs(want))))
    return None if err <= tol else f"max error {err:.3g} (max |expected| {float(np.max(np.abs(want))):.3g})"


def probe(ops, ranks, count_random, graph, seed=0):
    """Run every case; returns {"runs": {key: [cases, failures]}, "failures": [...]}."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    runs, failures = {}, []
    for op in ops:
        for nsp in [r for r in RANKS[op] if r in ranks]:
            cases = list(structured_cases(op, nsp)) if count_random == 0 else \
                list(random_cases(op, nsp, count_random, seed + nsp))
            for axes, padding, channels in itertools.product(cases, ("same", "valid"), CHANNELS):
                if not fits(op, axes, padding):
                    continue
                fn, x, want = build_case(op, axes, padding, channels, rng)
                try:
                    got = tf.function(fn)(x) if graph else fn(x)
                    bad = compare(np.asarray(got, dtype=np.float64), want)
                except tf.errors.InvalidArgumentError as e:  # a kernel that refuses the geometry
                    bad = "refused: " + str(e.message).split(" [Op:")[0][-120:]
                key = f"{op} {nsp}d {padding}"
                runs.setdefault(key, [0, 0])
                runs[key][0] += 1
                if bad:
                    runs[key][1] += 1
                    failures.append({"op": op, "axes": [list(a) for a in axes], "padding": padding,
                                     "channels": list(channels), "error": bad})
    return {"runs": runs, "failures": failures}


def covered(path):
    """Which wrong cases of a probe result konnx's rules (konnx.padding) flag; 0 means konnx never
    emits any of them. Returns the number of wrong cases no rule flags."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from konnx import padding as P

    with open(path) as f:
        failures = json.load(f)["failures"]
    counts = {}
    for case in failures:
        sizes, kernel, strides, dils = ([a[i] for a in case["axes"]] for i in range(4))
        same = case["padding"] == "same"
        pads = [P.tf_same_pads(*a) if same else (0, 0) for a in case["axes"]]
        if case["error"].startswith("refused"):
            rule = "depthwise_strides_portable" if not P.depthwise_strides_portable(strides) else None
        elif case["op"] == "conv" and P.single_window_strided_axes(sizes, kernel, strides, dils, pads):
            rule = "single_window_strided_axes"
        elif same and P.eigen_unsafe_same(sizes, kernel, strides, dils):
            rule = "eigen_unsafe_same"
        else:
            rule = None
        counts[(case["op"], rule)] = counts.get((case["op"], rule), 0) + 1
    for (op, rule), n in sorted(counts.items(), key=str):
        print(f"{op:16s} {n:6d} wrong, flagged by {rule or 'NOTHING'}")
    return sum(n for (_, rule), n in counts.items() if rule is None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="JSON file for the results")
    ap.add_argument("--covered", metavar="JSON", help="check konnx's rules against a probe result")
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--ranks", default="1,2,3")
    ap.add_argument("--random", type=int, default=0, help="N random geometries per op and rank instead")
    ap.add_argument("--graph", action="store_true", help="run the ops inside tf.function")
    ap.add_argument("--both", action="store_true", help="oneDNN on and off, each in a subprocess")
    args = ap.parse_args(argv)
    if args.covered:
        return 1 if covered(args.covered) else 0
    if not args.out:
        ap.error("--out is required")
    if args.both:
        return run_both(args, argv if argv is not None else sys.argv[1:])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    start = time.time()
    result = probe(args.ops.split(","), [int(r) for r in args.ranks.split(",")], args.random, args.graph)
    result.update(onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"), graph=args.graph,
                  seconds=round(time.time() - start, 1))
    with open(args.out, "w") as f:
        json.dump(result, f)
    for key, (n, bad) in sorted(result["runs"].items()):
        print(f"{key:28s} {n:6d} cases {bad:5d} wrong")
    return 0


def run_both(args, argv):
    """The same probe with oneDNN on (default) and off, in two subprocesses."""
    rest = [a for a in argv if a != "--both"]
    out = {}
    for name, env_value in (("on", None), ("off", "0")):
        env = dict(os.environ)
        env.pop("TF_ENABLE_ONEDNN_OPTS", None)
        if env_value is not None:
            env["TF_ENABLE_ONEDNN_OPTS"] = env_value
        path = f"{args.out}.{name}.json"
        i = rest.index("--out") if "--out" in rest else None
        cmd = [sys.executable, __file__] + (rest[:i] + rest[i + 2:] if i is not None else rest) + ["--out", path]
        print(f"oneDNN {name}:", flush=True)
        subprocess.run(cmd, env=env, check=True)
        with open(path) as f:
            out[name] = json.load(f)
    with open(args.out, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
