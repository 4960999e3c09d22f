"""Text features: TfIdfVectorizer over integer token ids."""
from __future__ import annotations

import numpy as np

from ..values import static_dim
from .registry import converter


def _tfidf_windows(length, min_n, max_n, max_skip):
    """Token positions of every counted window, per n-gram size (the reference's enumeration:
    unigrams once, longer grams once per skip distance)."""
    out = {n: [] for n in range(1, max_n + 1)}
    start_n = min_n
    for d in range(1, max_skip + 2):
        for n in range(max(start_n, 1), max_n + 1):
            for s in range(length):
                if s + d * (n - 1) < length:
                    out[n].append([s + d * k for k in range(n)])
        if start_n == 1:
            start_n = 2
            if start_n > max_n:
                break
    return out


def _check_tfidf(node, facts):
    if node.attr("pool_int64s") is None:
        return "string pools are not supported (Keras has no string tensors)"
    return None


@converter("TfIdfVectorizer", since=9, check=_check_tfidf, limits="integer pools; static sequence length")
def tfidf_vectorizer(ctx, node):
    x = ctx.input(0)
    pool = node.attr("pool_int64s")
    length = static_dim(x.onnx_shape[-1])
    if length is None:
        raise ctx.error("TfIdfVectorizer needs a static sequence length")
    min_n, max_n = int(node.attr("min_gram_length")), int(node.attr("max_gram_length"))
    starts = list(node.attr("ngram_counts")) + [len(pool)]
    grams = []
    for n in range(1, len(starts)):
        chunk = [int(v) for v in pool[starts[n - 1]:starts[n]]]
        if chunk:
            grams.append([n, [chunk[i:i + n] for i in range(0, len(chunk), n)]])
    indexes = [int(i) for i in node.attr("ngram_indexes")]
    n_out = max(indexes) + 1
    matrix = np.zeros((len(indexes), n_out), np.float32)
    for row, col in enumerate(indexes):
        matrix[row, col] = 1.0
    weights = node.attr("weights")
    weights = [1.0] * n_out if weights is None else [float(v) for v in weights]
    win = _tfidf_windows(length, min_n, max_n, int(node.attr("max_skip_count", 0)))
    wanted = {n for n, _ in grams}
    windows = {str(n): (win[n] if min_n <= n <= max_n else []) for n in wanted}
    y = ctx.op("tfidf", [ctx.onnx_layout(x)], grams=grams, windows=windows, index_matrix=matrix.tolist(),
               weights=weights, mode=node.attr("mode"))
    return ctx.tensor(y, dtype="float32")
