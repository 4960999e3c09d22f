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
