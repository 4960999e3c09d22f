"""Losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss, in the ONNX layout."""
from __future__ import annotations

from .elementwise import dtype_of
from .args import input_arg
from .registry import converter


def _check_loss(node, facts):
    rank = facts.rank(0)
    if rank is not None and rank < 2:
        return f"the input must have rank >= 2 (N, C, ...), got rank {rank}"
    if node.string("reduction") not in ("none", "sum", "mean"):
        return f"unknown reduction {node.string('reduction')!r}"
    return _loss_shapes(facts)


def _loss_shapes(facts):
    """The spec: input (N, C, d1..dk), target (N, d1..dk), weight (C,); onnxruntime's shape
    inference refuses other ranks and target sizes."""
    x, t = facts.shape(0), facts.shape(1)
    if x is not None and t is not None:
        if len(t) != len(x) - 1:
            return f"target has rank {len(t)}, expected {len(x) - 1} (the input's rank {len(x)} without C)"
        for ax_t, ax_x in zip(range(len(t)), [0] + list(range(2, len(x)))):
            a, b = facts.dim(1, ax_t), facts.dim(0, ax_x)
            if a is not None and b is not None and a != b:
                return f"target has shape {list(t)}, expected the input's {list(x)} without axis 1 (C)"
    w = facts.shape(2)
    if w is not None and len(w) != 1:
        # its length is not checked: onnxruntime and the reference run a shorter or longer
        # weight while the targets index inside it
        return f"weight has rank {len(w)} (shape {list(w)}), expected 1: one weight per class"
    return None


def _loss(log_softmax: bool):
    def loss(ctx, node):
        x = ctx.input(0)
        ii = node.attr("ignore_index") if "ignore_index" in node.explicit_attrs else None
        reduction = node.string("reduction")
        args = [input_arg(ctx, 0), input_arg(ctx, 1), input_arg(ctx, 2)]
        out = ctx.op("nll_loss", args, ignore_index=None if ii is None else int(ii), reduction=reduction,
                     log_softmax=log_softmax)
        dt = dtype_of(x)
        if not log_softmax:
            return ctx.tensor(out, dtype=dt)
        return [ctx.tensor(o, dtype=dt) for o in out][:len(node.outputs)]
    return loss


converter("NegativeLogLikelihoodLoss", since=12, check=_check_loss)(_loss(False))
converter("SoftmaxCrossEntropyLoss", since=12, check=_check_loss)(_loss(True))
