"""Text features: TfIdfVectorizer over integer token ids."""
from __future__ import annotations

import numpy as np

from ..limits import over_budget
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
    """The attributes onnxruntime's kernel enforces (and the spec implies: one output slot per
    pooled n-gram), and konnx's budget for its window and index tables."""
    if node.attr("pool_int64s") is None:
        return "string pools are not supported (Keras has no string tensors)"
    return _tfidf_attr_reason(node) or _tfidf_pool_reason(node) or _tfidf_budget_reason(node, facts)


def _tfidf_attr_reason(node):
    mode = node.attr("mode")
    if mode not in ("TF", "IDF", "TFIDF"):
        return f"attribute mode={mode!r}: expected TF, IDF or TFIDF"
    lo, hi, skip = node.attr("min_gram_length"), node.attr("max_gram_length"), node.attr("max_skip_count", 0)
    counts, indexes = list(node.attr("ngram_counts") or []), list(node.attr("ngram_indexes") or [])
    if not isinstance(lo, int) or not isinstance(hi, int) or not 1 <= lo <= hi <= len(counts):
        return (f"attributes min_gram_length={lo}, max_gram_length={hi}: expected "
                f"1 <= min <= max <= {len(counts)} (one ngram_counts entry per n-gram length)")
    if not isinstance(skip, int) or skip < 0:
        return f"attribute max_skip_count={skip}: expected a non-negative integer"
    if not indexes or min(indexes) < 0:
        return f"attribute ngram_indexes={indexes[:8]}: expected a non-empty list of non-negative output slots"
    weights = node.attr("weights")
    if weights is not None and len(weights) != len(indexes):
        return f"attribute weights has {len(weights)} entries, ngram_indexes {len(indexes)}: expected one per n-gram"
    return None


def _tfidf_pool_reason(node):
    """ngram_counts cut the pool into whole n-grams of lengths 1, 2, ...; ngram_indexes gives
    each pooled n-gram its output slot; no n-gram is pooled twice."""
    pool, counts = list(node.attr("pool_int64s")), list(node.attr("ngram_counts"))
    bounds = counts + [len(pool)]
    total = 0
    for n in range(1, len(bounds)):
        start, end = bounds[n - 1], bounds[n]
        if not 0 <= start <= end <= len(pool) or (end - start) % n:
            return (f"attribute ngram_counts={counts}: the {n}-grams take pool entries [{start}, {end}), "
                    f"expected a range inside the {len(pool)} entries holding whole {n}-grams")
        grams = {tuple(pool[i:i + n]) for i in range(start, end, n)}
        if len(grams) != (end - start) // n:
            return f"attribute pool_int64s holds a {n}-gram twice (expected distinct n-grams)"
        total += (end - start) // n
    indexes = node.attr("ngram_indexes")
    if len(indexes) != total:
        return (f"attribute ngram_indexes has {len(indexes)} entries, the pool holds {total} n-grams "
                "(expected one output slot per pooled n-gram)")
    return None


def _tfidf_budget_reason(node, facts):
    indexes = node.attr("ngram_indexes")
    why = over_budget(len(indexes) * (max(indexes) + 1), "the n-gram to output-slot table")
    length = facts.dim(0, -1) if facts.rank(0) else None
    if why or length is None:
        return why
    skips = min(int(node.attr("max_skip_count", 0)), length) + 1
    grams = int(node.attr("max_gram_length"))
    return over_budget(length * skips * grams * grams, "the n-gram windows over the sequence")


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
    # a skip of `length` or more fits no window of 2+ tokens: larger counts change nothing
    win = _tfidf_windows(length, min_n, max_n, min(int(node.attr("max_skip_count", 0)), length))
    wanted = {n for n, _ in grams}
    windows = {str(n): (win[n] if min_n <= n <= max_n else []) for n in wanted}
    y = ctx.op("tfidf", [ctx.onnx_layout(x)], grams=grams, windows=windows, index_matrix=matrix.tolist(),
               weights=weights, mode=node.attr("mode"))
    return ctx.tensor(y, dtype="float32")
