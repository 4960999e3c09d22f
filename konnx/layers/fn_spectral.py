"""Signal processing with keras.ops only: DFT and STFT as matrix products with cosine/sine
tables (no complex dtype: the last axis of size 1 (real) or 2 (real, imaginary) holds the
complex parts, as in ONNX), and the Hann / Hamming / Blackman windows."""
from __future__ import annotations

import numpy as np
from keras import ops
from keras.backend import standardize_dtype

from .functions import function


def dft_tables(m: int, n: int, inverse: bool, onesided: bool):
    """(M, K) cos/sin tables of a length-n DFT applied to m input samples (zero-padded or cut),
    K output bins. The inverse one-sided case (irfft) folds the Hermitian half into weights."""
    if inverse and onesided:
        k = np.arange(m)[:, None]
        t = np.arange(n)[None, :]
        ang = 2 * np.pi * k * t / n
        w = np.full((m, 1), 2.0)
        w[0] = 1.0
        if n % 2 == 0 and m > n // 2:
            w[n // 2] = 1.0
        w[k[:, 0] > n // 2] = 0.0
        return w * np.cos(ang) / n, w * np.sin(ang) / n
    bins = n // 2 + 1 if onesided else n
    t = np.arange(min(m, n))[:, None]
    k = np.arange(bins)[None, :]
    ang = 2 * np.pi * t * k / n
    cos, sin = np.cos(ang), np.sin(ang)
    if inverse:
        cos, sin = cos / n, sin / n
    else:
        sin = -sin
    if m > n:
        pad = np.zeros((m - n, bins))
        cos, sin = np.concatenate([cos, pad]), np.concatenate([sin, pad])
    return cos, sin


def _apply(xr, xi, cos, sin, inverse_onesided, dt):
    """Complex product along the last axis: (xr + i xi) @ (cos + i sin)."""
    c, s = ops.cast(cos, dt), ops.cast(sin, dt)
    yr = ops.matmul(xr, c)
    yi = ops.matmul(xr, s)
    if xi is not None:
        yr = yr - ops.matmul(xi, s)
        yi = yi + ops.matmul(xi, c)
    if inverse_onesided:
        return yr, None
    return yr, yi


@function("dft")
def dft(x, *, axis, n, inverse, onesided):
    dt = standardize_dtype(x.dtype)
    rank = len(x.shape)
    perm = [i for i in range(rank - 1) if i != axis] + [axis, rank - 1]
    xt = ops.transpose(x, perm)                          # (..., M, 1|2)
    xr = xt[..., 0]
    xi = xt[..., 1] if x.shape[-1] == 2 else None
    m = x.shape[axis]
    cos, sin = dft_tables(m, n, inverse, onesided)
    yr, yi = _apply(xr, xi, cos, sin, inverse and onesided, dt)
    y = ops.expand_dims(yr, -1) if yi is None else ops.stack([yr, yi], axis=-1)
    inv = [perm.index(i) for i in range(rank)]
    return ops.transpose(y, inv)


@function("stft")
def stft(signal, window=None, *, step, length, onesided):
    """signal (B, L, 1|2) -> (B, frames, bins, 2)."""
    dt = standardize_dtype(signal.dtype)
    frames = (signal.shape[1] - length) // step + 1
    idx = np.arange(frames)[:, None] * step + np.arange(length)[None, :]
    framed = ops.take(signal, ops.convert_to_tensor(idx.reshape(-1)), axis=1)
    b = signal.shape[0] if signal.shape[0] is not None else ops.shape(signal)[0]
    framed = ops.reshape(framed, (b, frames, length, signal.shape[2]))
    if window is not None:
        framed = framed * ops.reshape(ops.cast(window, dt), (1, 1, length, 1))
    xr = framed[..., 0]
    xi = framed[..., 1] if signal.shape[2] == 2 else None
    cos, sin = dft_tables(length, length, False, onesided)
    yr, yi = _apply(xr, xi, cos, sin, False, dt)
    return ops.stack([yr, yi], axis=-1)


@function("window")
def window(size, *, kind, periodic, dtype):
    """Hann / Hamming / Blackman window of a run-time length."""
    n = ops.cast(ops.reshape(size, ()), "int64")
    i = ops.cast(ops.arange(n), "float64")
    denom = ops.cast(n if periodic else n - 1, "float64")
    t = 2.0 * np.pi * i / denom
    if kind == "hann":
        y = ops.square(ops.sin(np.pi * i / denom))
    elif kind == "hamming":
        alpha = 25.0 / 46.0
        y = alpha - ops.cos(t) * (1.0 - alpha)
    else:
        y = 0.42 - 0.5 * ops.cos(t) + 0.08 * ops.cos(2.0 * t)
    return ops.cast(y, dtype)
