"""Text functions (keras.ops only): TfIdfVectorizer on integer tokens."""
from __future__ import annotations

import numpy as np
from keras import ops

from .functions import function


@function("tfidf")
def tfidf(x, *, grams, windows, index_matrix, weights, mode):
    """TfIdfVectorizer on integer tokens: `grams` maps each n to the pooled n-grams, `windows`
    each n to the token positions of every (start, skip) window; counts are mapped to the
    output slots by `index_matrix` (pool entries x outputs)."""
    one_d = len(x.shape) == 1
    if one_d:
        x = ops.expand_dims(x, 0)
    x = ops.cast(x, "int64")
    counts = []
    for n, pool in grams:
        pos = windows[str(n)]
        if not pos:
            counts.append(ops.zeros((ops.shape(x)[0], len(pool)), dtype="float32"))
            continue
        win = ops.take(x, ops.convert_to_tensor(np.asarray(pos, np.int64).reshape(-1)), axis=1)
        win = ops.reshape(win, (-1, len(pos), n))                                  # (B, W, n)
        pool_t = ops.convert_to_tensor(np.asarray(pool, np.int64).reshape(-1, n))
        hit = ops.all(ops.equal(ops.expand_dims(win, 2), pool_t[None, None]), axis=-1)  # (B, W, P)
        counts.append(ops.sum(ops.cast(hit, "float32"), axis=1))
    freq = ops.concatenate(counts, axis=1) if len(counts) > 1 else counts[0]
    out = ops.matmul(freq, ops.convert_to_tensor(np.asarray(index_matrix, np.float32)))
    w = ops.convert_to_tensor(np.asarray(weights, np.float32))
    if mode == "IDF":
        out = ops.where(ops.greater(out, 0.0), ops.broadcast_to(w, ops.shape(out)), ops.zeros_like(out))
    elif mode == "TFIDF":
        out = out * w
    return out[0] if one_d else out
