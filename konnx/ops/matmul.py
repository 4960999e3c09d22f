"""Linear algebra: Gemm, MatMul, Einsum and Det. A constant right operand becomes a
keras.layers.Dense."""
from __future__ import annotations

import numpy as np
from ..lazy_keras import keras

from .. import layout as L
from ..values import Const, Tensor, static_dim
from ..weights import initial_values
from .elementwise import broadcast, dtype_of
from .registry import AXIS, converter


def _dense(ctx, kt, kernel, bias=None):
    layer = keras.layers.Dense(kernel.shape[1], use_bias=bias is not None, kernel_initializer="zeros",
                               bias_initializer="zeros", name=ctx.name())
    # the variables are created from the values (konnx.weights: no zero-filled variable replaced)
    with initial_values(layer, kernel_initializer=kernel, bias_initializer=bias):
        return ctx.layer(layer, kt)


def _static_last(a, axis=-1) -> bool:
    """Dense needs its input's contracted dim to be static, in ONNX's inferred shape and in the
    Keras tensor (a reshape to a shape computed at run time may leave it unknown there)."""
    if not a.onnx_shape or static_dim(a.onnx_shape[axis]) is None:
        return False
    return a.kt.shape[L.keras_axis(a.perm, axis)] is not None


def _arg(ctx, v, perm=None):
    return ctx.keras(v, perm) if isinstance(v, Tensor) else np.asarray(v.value)


# ----------------------------------------------------------------------------- Gemm
@converter("Gemm")
def gemm(ctx, node):
    a, b, c = ctx.input(0), ctx.input(1), ctx.input(2)
    alpha, beta = float(node.attr("alpha")), float(node.attr("beta"))
    ta, tb = int(node.attr("transA")), int(node.attr("transB"))
    if beta == 0.0:
        c = None
    if (isinstance(a, Tensor) and isinstance(b, Const) and a.rank == 2 and dtype_of(a) == "float32"
            and _static_last(a, 0 if ta else 1)):
        w = np.asarray(b.value)
        w = w.T if tb else w
        if alpha != 1.0:  # scale in float64, round once; alpha == 1 needs no (2x-size) float64 copy
            w = np.asarray(w, np.float64) * alpha
        n = w.shape[1]
        bias = None
        if isinstance(c, Const):
            cb = np.asarray(c.value, np.float64) * beta
            if cb.ndim <= 1 or cb.shape[0] == 1:
                bias = np.broadcast_to(cb.reshape(cb.shape[-1:] if cb.ndim else ()), (n,))
                c = None
        # the Keras value of A with perm (1, 0) is A^T: transA costs nothing then
        y = _dense(ctx, ctx.keras(a, (1, 0) if ta else (0, 1)), w, bias)
        ctx.record(kind="gemm", decision="keras.layers.Dense", reason="constant B")
        if c is None:
            return ctx.tensor(y, (0, 1))
        yt = ctx.tensor(y, (0, 1))
        if isinstance(c, Const):
            c = Const(np.asarray(c.value * beta, dtype="float32"))
            args, perm, _ = broadcast(ctx, [yt, c])
            return ctx.tensor(ctx.op("binary", args, suffix="c", op="add"), perm)
        (kc, ky), perm, _ = broadcast(ctx, [c, yt])
        return ctx.tensor(ctx.op("math.affine", [kc, np.asarray(beta, "float32"), ky], suffix="c"), perm)
    dt = dtype_of(a)
    args = [_arg(ctx, a, (0, 1)), _arg(ctx, b, (0, 1))]
    if c is not None:
        args.append(_arg(ctx, c, L.identity(c.rank)) if isinstance(c, Tensor) else np.asarray(c.value, dt))
    y = ctx.op("math.gemm", args, alpha=alpha, beta=beta, trans_a=ta, trans_b=tb)
    return ctx.tensor(y, (0, 1))


# ----------------------------------------------------------------------------- MatMul
def _out_rank(ra: int, rb: int) -> int:
    if ra == 1 and rb == 1:
        return 0
    if ra == 1:
        return rb - 1
    if rb == 1:
        return ra - 1
    return max(ra, rb)


def _matmul_layout(pa, pb, sa, sb, ra: int, rb: int, dense_ok: bool) -> tuple:
    """(how, perm): how a MatMul is built and its output's layout, from the operands' layouts
    (None for a constant), ONNX shapes and ranks. The plan decides with it on the inferred
    shapes, the converter builds with it on the built ones."""
    if pa is not None and pb is None and rb == 2 and ra >= 2 and dense_ok:
        # Dense acts on the last Keras axis: keep a layout whose last axis is ONNX's last axis
        return "dense", (tuple(pa) if pa[-1] == ra - 1 else L.identity(ra))
    if (pa is not None and pb is not None and ra == rb and ra > 2 and tuple(pa) == tuple(pb)
            and tuple(pa[-2:]) == (ra - 2, ra - 1)):
        # both operands share a layout that permutes only batch axes: multiply as stored
        return "stored", tuple(pa)
    if _einsum_ok(pa, pb, sa, sb, ra, rb):
        return "einsum", _einsum_layout(pa, pb, ra, sa, sb)[3]
    return "onnx", L.identity(_out_rank(ra, rb))


def _matmul_perm(node, perms, facts):
    pa, pb = perms[0], perms[1]
    ra = facts.rank(0) if facts.rank(0) is not None else (len(pa) if pa else None)
    rb = facts.rank(1) if facts.rank(1) is not None else (len(pb) if pb else None)
    if ra is None or rb is None or (facts.computed(0) and pa is None) or (facts.computed(1) and pb is None):
        return [None]
    dense_ok = facts.dtype(0) == "float32" and facts.dim(0, -1) is not None
    return [_matmul_layout(pa, pb, facts.shape(0), facts.shape(1), ra, rb, dense_ok)[1]]


@converter("MatMul", layout=AXIS, perm=_matmul_perm)
def matmul(ctx, node):
    a, b = ctx.input(0), ctx.input(1)
    pa, pb = (v.perm if isinstance(v, Tensor) else None for v in (a, b))
    dense_ok = isinstance(a, Tensor) and dtype_of(a) == "float32" and _static_last(a)
    how, perm = _matmul_layout(pa, pb, a.onnx_shape if pa else None, b.onnx_shape if pb else None,
                               a.rank, b.rank, dense_ok)
    if how == "dense":
        y = _dense(ctx, ctx.keras(a, perm), np.asarray(b.value))
        ctx.record(kind="matmul", decision="keras.layers.Dense", reason="constant 2-D right operand")
        return ctx.tensor(y, perm)
    if how == "stored":
        return ctx.tensor(ctx.op("math.matmul", [ctx.keras(a), ctx.keras(b)]), perm)
    if how == "einsum":
        return _matmul_as_stored(ctx, a, b)
    args = [_arg(ctx, v, L.identity(v.rank)) for v in (a, b)]
    return ctx.tensor(ctx.op("math.matmul", args), perm)


def _einsum_ok(pa, pb, sa, sb, ra: int, rb: int) -> bool:
    """Batched MatMul of two tensors of one rank (>= 3), at least one stored in a permuted
    layout, whose batch dims need no broadcasting (equal static sizes, or both dynamic)."""
    if pa is None or pb is None or ra != rb or ra < 3:
        return False
    if L.is_identity(pa) and L.is_identity(pb):
        return False
    if sa is None or sb is None or len(sa) != ra or len(sb) != rb:
        return False
    for da, db in zip(sa[:-2], sb[:-2]):
        xa, xb = static_dim(da), static_dim(db)
        if (xa is None) != (xb is None) or (xa is not None and xa != xb):
            return False
    return True


def _expanding(sa, sb) -> bool:
    """The contraction is shorter than both the rows and the columns (static sizes): the output
    is larger than either operand, as attention's scores (L x L from L x d and d x L)."""
    m, k, n = static_dim(sa[-2]), static_dim(sa[-1]), static_dim(sb[-1])
    return None not in (m, k, n) and m > k and n > k


def _einsum_layout(pa, pb, r: int, sa=None, sb=None) -> tuple:
    """(A's stored subscripts, B's, the output's, its perm) of a MatMul contracted as stored.
    An expanding product (see _expanding) keeps ONNX's layout, the batched matmul's own: an
    einsum lowers to transposes around one BatchMatMul (TensorFlow, TFLite), so a permuted
    output costs a transpose of the largest tensor, and another when the next MatMul takes it
    back. Otherwise the output takes the layout of a permuted operand, B's first (contracted
    axis -> A's row axis), then A's (contracted axis -> B's column axis), preferring one that
    ends with the column axis: the usual transpose + reshape back to (B, L, H*d) then finds the
    heads in place (Softmax, masks and the next MatMul see rows as ONNX does)."""
    batch = "abcdefgh"[:r - 2]
    ta, tb, to = batch + "mk", batch + "kn", batch + "mn"
    ka = "".join(ta[p] for p in pa)
    kb = "".join(tb[p] for p in pb)
    if sa is not None and sb is not None and _expanding(sa, sb):
        return ka, kb, to, L.identity(r)
    from_a, from_b = ka.replace("k", "n"), kb.replace("k", "m")
    ordered = ([from_b] if not L.is_identity(pb) else []) + ([from_a] if not L.is_identity(pa) else [])
    cands = [o for o in ordered + [from_a] if o.endswith("n")] + ordered
    order = cands[0]
    return ka, kb, order, tuple(to.index(ch) for ch in order)


def _matmul_as_stored(ctx, a, b):
    """MatMul as an einsum over the operands' stored layouts: attention's head split/merge
    (q, k, v kept as (B, L, H, d) while ONNX sees (B, H, L, d)) then needs no Permute layers."""
    ka, kb, order, perm = _einsum_layout(a.perm, b.perm, a.rank, a.onnx_shape, b.onnx_shape)
    y = ctx.op("math.einsum", [ctx.keras(a), ctx.keras(b)], equation=f"{ka},{kb}->{order}")
    ctx.record(kind="matmul", decision="einsum on stored layouts", perm=perm,
               reason="operands stored in permuted layouts: contract them as stored, no transposes")
    return ctx.tensor(y, perm)


# ----------------------------------------------------------------------------- Einsum
def _parse(equation: str, n: int):
    eq = equation.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != n:
        return None
    if "->" not in eq:
        letters = "".join(terms)
        rhs = "".join(sorted(ch for ch in set(letters) if letters.count(ch) == 1))
    return terms, rhs


def _check_einsum(node, facts):
    equation = node.string("equation")
    parsed = _parse(equation, len(node.inputs))
    if parsed is None:
        return f"cannot parse equation {equation!r} for {len(node.inputs)} inputs"
    for i, term in enumerate(parsed[0]):
        r = facts.rank(i)
        if r is not None and "." not in term and len(term) != r:
            return f"equation {equation!r}: term {term!r} has {len(term)} letters for input {i} of rank {r}"
    return None


@converter("Einsum", since=12, check=_check_einsum)
def einsum(ctx, node):
    vals = [ctx.input(i) for i in range(ctx.n_inputs)]
    equation = node.attr("equation")
    terms, rhs = _parse(equation, len(vals))
    if "." in equation or any(len(t) != v.rank for t, v in zip(terms, vals)):
        args = [_arg(ctx, v, L.identity(v.rank)) for v in vals]
        y = ctx.op("math.einsum", args, equation=equation)
        return ctx.tensor(y, L.identity(len(y.shape)))
    # subscripts follow each operand's stored layout: no transposes
    args, kterms = [], []
    for t, v in zip(terms, vals):
        perm = v.perm if isinstance(v, Tensor) else L.identity(v.rank)
        args.append(_arg(ctx, v))
        kterms.append("".join(t[p] for p in perm))
    y = ctx.op("math.einsum", args, equation=",".join(kterms) + "->" + rhs)
    return ctx.tensor(y, L.identity(len(rhs)))


@converter("Det", since=11)
def det(ctx, node):
    x = ctx.input(0)
    return ctx.tensor(ctx.op("det", [ctx.onnx_layout(x)]), dtype=dtype_of(x))
