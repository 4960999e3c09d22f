"""Loss functions (keras.ops only): NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss."""
from __future__ import annotations

from keras import ops
from keras.backend import standardize_dtype

from .functions import function


@function("nll_loss")
def nll_loss(x, target, weight=None, *, ignore_index=None, reduction="mean", log_softmax=False):
    """ONNX NegativeLogLikelihoodLoss on x (N, C, d1, ...) and target (N, d1, ...); with
    log_softmax=True, SoftmaxCrossEntropyLoss (x holds scores; also returns the log-probs)."""
    dt = standardize_dtype(x.dtype)
    logp = None
    if log_softmax:
        m = ops.max(x, axis=1, keepdims=True)
        e = ops.exp(x - m)
        logp = ops.log(e / ops.sum(e, axis=1, keepdims=True))
        x = logp
    c = x.shape[1]
    t = ops.cast(target, "int64")
    valid = ops.ones_like(t, dtype="bool") if ignore_index is None else ops.not_equal(t, ignore_index)
    safe = ops.clip(ops.where(valid, t, ops.zeros_like(t)), 0, c - 1)
    picked = ops.squeeze(ops.take_along_axis(x, ops.expand_dims(safe, 1), axis=1), 1)
    loss = ops.where(valid, ops.negative(picked), ops.zeros_like(picked))
    w = None
    if weight is not None:
        w = ops.where(valid, ops.take(weight, safe, axis=0), ops.zeros_like(picked))
    elif ignore_index is not None:
        w = ops.cast(valid, dt)
    if w is not None:
        loss = loss * w
    if reduction == "sum":
        loss = ops.sum(loss)
    elif reduction == "mean":
        loss = ops.sum(loss) / ops.sum(w) if w is not None else ops.mean(loss)
    loss = ops.cast(loss, dt)
    return loss if logp is None else [loss, logp]
