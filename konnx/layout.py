"""Layout permutations.

Every converted tensor carries `perm`, meaning ``keras_value = transpose(onnx_value, perm)``.
These are pure helpers on tuples; no Keras here.
"""
from __future__ import annotations

from collections.abc import Sequence

Perm = tuple[int, ...]


def identity(rank: int) -> Perm:
    return tuple(range(rank))


def channels_last(rank: int) -> Perm:
    """NC(D)HW -> N(D)HWC."""
    if rank < 3:
        return identity(rank)
    return (0,) + tuple(range(2, rank)) + (1,)


def inverse(perm: Perm) -> Perm:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def is_identity(perm: Perm) -> bool:
    return all(i == p for i, p in enumerate(perm))


def transition(src: Perm, dst: Perm) -> Perm:
    """The transpose that turns a tensor stored with perm `src` into one stored with `dst`."""
    inv = inverse(src)
    return tuple(inv[d] for d in dst)


def extend(perm: Perm, rank: int) -> Perm:
    """`perm` of a rank-r tensor seen as rank `rank` with leading size-1 axes (broadcasting)."""
    k = rank - len(perm)
    return tuple(range(k)) + tuple(p + k for p in perm)


def broadcast_perm(perms: Sequence, ranks: Sequence):
    """The layout of a multidirectional broadcast: `perms[i]` is input i's layout (None for a
    constant or a missing input), `ranks[i]` its rank (None when missing). The output follows
    the highest-rank tensor input, the first one not in the ONNX layout among equals, with
    leading axes added for a higher-rank constant."""
    present = [r for r in ranks if r is not None]
    if not present:
        return None
    rank = max(present)
    tensors = [p for p in perms if p is not None]
    if not tensors:
        return identity(rank)
    top = max(len(p) for p in tensors)
    cands = [p for p in tensors if len(p) == top]
    pick = next((p for p in cands if not is_identity(p)), cands[0])
    return extend(pick, rank)


def keras_axis(perm: Perm, onnx_axis: int) -> int:
    """Where ONNX axis `onnx_axis` lives in the Keras tensor."""
    rank = len(perm)
    if onnx_axis < 0:
        onnx_axis += rank
    return inverse(perm)[onnx_axis]


def drop_axes(perm: Perm, onnx_axes) -> Perm:
    """Perm after removing ONNX axes (e.g. a reduction without keepdims)."""
    removed = {a % len(perm) for a in onnx_axes}
    kept = [p for p in perm if p not in removed]
    order = sorted(kept)
    remap = {a: i for i, a in enumerate(order)}
    return tuple(remap[p] for p in kept)


def compose_transpose(perm: Perm, onnx_transpose: Perm) -> Perm:
    """Perm of ``Transpose(x, onnx_transpose)`` when x is stored with `perm` (no data movement)."""
    inv_t = inverse(onnx_transpose)
    return tuple(inv_t[p] for p in perm)


def order_preserving(perm: Perm, shape) -> bool:
    """True when the Keras tensor holds its elements in the same row-major order as the
    ONNX tensor: the axes whose size is not 1 appear in the same relative order.
    Then a Reshape/Flatten can act on the Keras tensor directly."""
    non_unit = [p for p in perm if shape[p] != 1]
    return non_unit == sorted(non_unit)
