"""Comparison and model-structure checks for the end-to-end tests."""
from __future__ import annotations

import numpy as np

from tests.util import tolerance


def assert_close(got, ref, what: str) -> None:
    """Shapes equal, and max |got - ref| <= 1e-4 x max(1, max |ref|) (tests.util.tolerance)."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert tuple(got.shape) == tuple(ref.shape), f"{what}: shape {got.shape}, expected {ref.shape}"
    if not np.issubdtype(ref.dtype, np.floating):
        np.testing.assert_array_equal(got.astype(ref.dtype), ref, err_msg=what)
        return
    assert np.all(np.isfinite(got)), f"{what}: {np.sum(~np.isfinite(got))} non-finite values"
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
    tol = tolerance(ref)
    if err > tol:
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(got.astype(np.float64) - ref)), ref.shape))
        raise AssertionError(f"{what}: max abs error {err:.3g} > {tol:.3g} at {idx} "
                             f"(got {got[idx]:.6g}, expected {ref[idx]:.6g})")


# ---------------------------------------------------------------- layout rule

_SPATIAL_FNS = {"max_pool", "avg_pool", "resize_axis", "depth_to_space", "space_to_depth"}


def _keras_classes():
    import keras
    from keras.src.layers.convolutional.base_conv import BaseConv
    from keras.src.layers.convolutional.base_conv_transpose import BaseConvTranspose
    from keras.src.layers.convolutional.base_depthwise_conv import BaseDepthwiseConv
    from keras.src.layers.pooling.base_global_pooling import BaseGlobalPooling
    from keras.src.layers.pooling.base_pooling import BasePooling

    spatial = (BaseConv, BaseConvTranspose, BaseDepthwiseConv, BasePooling, BaseGlobalPooling,
               keras.layers.UpSampling1D, keras.layers.UpSampling2D, keras.layers.UpSampling3D)
    return spatial, keras.layers.Permute


def is_spatial(layer) -> bool:
    spatial, _ = _keras_classes()
    if isinstance(layer, spatial):
        return True
    return _is_konnx_op(layer) and getattr(layer, "fn", None) in _SPATIAL_FNS


def is_transpose(layer) -> bool:
    _, permute = _keras_classes()
    return isinstance(layer, permute) or (_is_konnx_op(layer) and getattr(layer, "fn", None) == "transpose")


def _is_konnx_op(layer) -> bool:
    """A KonnxOp or one of konnx's named layers (a KonnxOp whose function its class fixes)."""
    from konnx.layers.op import KonnxOp

    return isinstance(layer, KonnxOp)


def layer_graph(model) -> dict:
    """layer -> set of parent layers, over the functional model's own nodes."""
    parents = {id(layer): set() for layer in model.layers}
    by_id = {id(layer): layer for layer in model.layers}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for t in node.input_tensors:
                hist = getattr(t, "_keras_history", None)
                if hist is not None and id(hist.operation) in by_id:
                    parents[id(layer)].add(id(hist.operation))
    return parents, by_id


def inner_transposes(model) -> list[str]:
    """Transposes with a spatial layer upstream AND a spatial layer downstream (not at an edge)."""
    parents, by_id = layer_graph(model)
    children = {k: set() for k in parents}
    for k, ps in parents.items():
        for p in ps:
            children[p].add(k)

    def reach(start, nexts):
        seen, stack = set(), list(nexts[start])
        while stack:
            k = stack.pop()
            if k not in seen:
                seen.add(k)
                stack.extend(nexts[k])
        return seen

    bad = []
    for k, layer in by_id.items():
        if not is_transpose(layer):
            continue
        up = any(is_spatial(by_id[a]) for a in reach(k, parents))
        down = any(is_spatial(by_id[d]) for d in reach(k, children))
        if up and down:
            perm = getattr(layer, "params", {}).get("axes", getattr(layer, "dims", None))
            bad.append(f"{layer.name} ({type(layer).__name__}, perm={perm})")
    return bad


# ---------------------------------------------------------------- sequence layout rule

_SEQ_FNS = {"math.matmul", "math.einsum", "math.gemm", "math.moments_norm", "math.rms_norm"}


def transposes(model) -> list:
    """Every transpose layer of the model (keras Permute and konnx 'transpose' ops)."""
    return [layer for layer in model.layers if is_transpose(layer)]


def _seq_op_rank(layer):
    """The input rank when `layer` is a MatMul/Dense/LayerNorm/RMSNorm-like layer, else None."""
    import keras

    kinds = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.LayerNormalization,
             keras.layers.RMSNormalization)
    if not (isinstance(layer, kinds) or (_is_konnx_op(layer) and getattr(layer, "fn", None) in _SEQ_FNS)):
        return None
    ranks = [len(t.shape) for node in layer._inbound_nodes for t in node.input_tensors]
    return max(ranks) if ranks else None


def transposes_next_to_seq_ops(model, rank: int = 3) -> list[str]:
    """Transposes that feed, or are fed by, a MatMul/Dense/LayerNorm/RMSNorm on rank-`rank` tensors."""
    parents, by_id = layer_graph(model)
    children = {k: set() for k in parents}
    for k, ps in parents.items():
        for p in ps:
            children[p].add(k)
    bad = []
    for k, layer in by_id.items():
        if not is_transpose(layer):
            continue
        near = [by_id[n] for n in parents[k] | children[k] if _seq_op_rank(by_id[n]) == rank]
        if near:
            bad.append(f"{layer.name} next to {', '.join(n.name for n in near)}")
    return bad
