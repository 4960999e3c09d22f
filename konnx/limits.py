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


# elements a node may create in one tensor (2**31 - 1: TensorFlow's CPU kernels index many
# tensors with int32; 8 GB of float32), or INPUT_GROWTH times the largest graph input when the
# user declared inputs that large (their tensors grow with them: channels, upsampling)
TENSOR_BUDGET = 2**31 - 1
INPUT_GROWTH = 1024

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


def elements(shape):
    """The number of elements of a static shape, None when a dim is not a known size."""
    if shape is None or not all(isinstance(d, int) and d >= 0 for d in shape):
        return None
    n = 1
    for d in shape:
        n *= d
    return n


def output_budget_reason(out_shapes, ceiling: int):
    """Why a node whose outputs have the inferred `out_shapes` may not be built: an output
    holding more than `ceiling` elements (plan.py: TENSOR_BUDGET, or INPUT_GROWTH times the
    largest declared graph input when that is more). Such a size comes from the model's attributes or
    constants (Resize scales, Tile repeats, OneHot depth, ...): building its tables or the
    tensor itself would exhaust memory or overflow. None when every output fits."""
    for k, shape in enumerate(out_shapes):
        n = elements(shape)
        if n is not None and n > ceiling:
            return (f"output {k} would hold {float(n):.3g} elements (shape {list(shape)}), over konnx's "
                    f"budget of {ceiling} elements per tensor")
    return None
