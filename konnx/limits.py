"""Resource limits konnx applies to hostile or very large graphs (issue 14).

Keras walks a functional graph recursively when it builds a `keras.Model` (about four Python
frames per layer of depth), so a chain of more than ~1,000 layers exceeds Python's default
recursion limit. konnx itself walks nodes iteratively; `recursion_room(n)` raises the limit for
the duration of a build over `n` nodes and restores it afterwards.
"""
from __future__ import annotations

import contextlib
import sys
import threading

FRAMES_PER_NODE = 12
_lock = threading.Lock()


@contextlib.contextmanager
def recursion_room(nodes: int):
    """Allow at least FRAMES_PER_NODE x `nodes` + 2,000 frames inside the block (never lowers
    the limit), restored on exit."""
    with _lock:
        before = sys.getrecursionlimit()
        sys.setrecursionlimit(max(before, FRAMES_PER_NODE * nodes + 2000))
    try:
        yield
    finally:
        with _lock:
            sys.setrecursionlimit(before)


# elements one tensor of a converted model may hold (2**31 - 1: TensorFlow's CPU kernels index
# many tensors with int32; 8 GB of float32): larger static output shapes are refused in the plan
TENSOR_BUDGET = 2**31 - 1

# elements a converter may allocate at conversion time from an op's attributes (index tables,
# one-hot matrices, static random tensors): the same bound as constant folding's
ATTRIBUTE_BUDGET = 1 << 27


def over_budget(elements, what: str):
    """The reason to refuse a node whose attributes ask konnx to build `elements` values for
    `what`, or None when they fit in ATTRIBUTE_BUDGET."""
    if elements > ATTRIBUTE_BUDGET:
        return (f"{what} would take {float(elements):.3g} elements, over konnx's budget of "
                f"{ATTRIBUTE_BUDGET} for tables built from attributes")
    return None
