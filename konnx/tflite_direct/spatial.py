"""Conv (dense and depthwise, BatchNormalization folded in, fused ReLU/ReLU6), MaxPool,
AveragePool, GlobalAveragePool, BatchNormalization: 2D, channels-last, static sizes.

Paddings come from the plan's PaddingDecision (padding.decide_for); TFLite's SAME pads exactly
as TensorFlow's (odd element at the end), so 'same' maps to SAME, 'valid' to VALID, anything else
to a PAD (zeros; -inf's stand-in for max pooling) then VALID."""
from __future__ import annotations

import numpy as np

from .. import layout as L
from .. import padding as P
from ..graph import Node
from .lower import NONE, Lowering

SAME, VALID = 0, 1
CL4 = L.channels_last(4)


def _schema():
    from ai_edge_litert import schema_py_generated as S

    return S


def _geometry(lw: Lowering, node: Node, kernel) -> tuple:
    x = lw.shape(node.inputs[0])
    if len(x) != 4:
        raise lw.unsupported(f"only 2D (rank-4) inputs are written directly, got rank {len(x)}")
    sizes = list(x[2:])
    strides = list(node.ints("strides") or [1, 1])
    dilations = list(node.ints("dilations") or [1, 1])
    return sizes, strides, dilations


def decision(lw: Lowering, node: Node, sizes, kernel, strides, dilations, pads) -> P.PaddingDecision:
    """The plan's decision for this node when it was decided on this geometry with the ONNX
    strides (a TensorFlow-only oneDNN workaround may have changed them), else padding.decide."""
    planned = lw.plan.padding.get(node.name)
    d = planned.decision if planned is not None else None
    if (d is not None and planned.decided_on == P.geometry_key(sizes, kernel, strides, dilations, pads)
            and list(d.strides or strides) == list(strides)):
        return d
    return P.decide(sizes, kernel, strides, dilations, pads, op=node.op_type)


def pad(lw: Lowering, x: int, pads, name: str) -> int:
    """x (NHWC) zero-padded by per-axis (before, after) pads (PAD)."""
    if any(b < 0 or a < 0 for b, a in pads):
        raise lw.unsupported(f"negative pads (a crop) {pads}")
    n, h, w, c = lw.b.shape(x)
    (t, bo), (le, r) = pads
    out = lw.b.tensor([n, h + t + bo, w + le + r, c], f"{name}/padded")
    lw.b.op("PAD", [x, lw.int32([[0, 0], [t, bo], [le, r], [0, 0]], f"{name}/pads")], [out])
    return out


def max_pool_pad(lw: Lowering, x: int, pads, name: str) -> int:
    """x padded for a max pool whose windows each hold at least one input element, exactly as
    padding with -inf: zeros when x cannot be negative (after a ReLU: max(window) >= 0), else the
    edge row/column repeated (a window reaching into the padding holds that edge element, so the
    copies never change its max). XNNPACK takes PAD, STRIDED_SLICE and CONCATENATION; it leaves
    PADV2 (a pad value) to TFLite's own kernel, splitting the delegated graph."""
    if x in lw.b.nonneg:
        return pad(lw, x, pads, name)
    for axis, (before, after) in zip((1, 2), pads):
        if not before and not after:
            continue
        shape = list(lw.b.shape(x))
        parts = []
        for k, count in ((0, before), (shape[axis] - 1, after)):
            if not count:
                continue
            begin, end = [0, 0, 0, 0], list(shape)
            begin[axis], end[axis] = k, k + 1
            edge = lw.b.tensor([1 if a == axis else d for a, d in enumerate(shape)], f"{name}/edge{axis}_{k}")
            lw.b.op("STRIDED_SLICE", [x, lw.int32(begin, f"{name}/begin"), lw.int32(end, f"{name}/end"),
                                      lw.int32([1, 1, 1, 1], f"{name}/strides")], [edge], _schema().StridedSliceOptionsT())
            parts.append((k, [edge] * count))
        pieces = (parts[0][1] if before else []) + [x] + (parts[-1][1] if after else [])
        shape[axis] += before + after
        out = lw.b.tensor(shape, f"{name}/padded{axis}")
        o = _schema().ConcatenationOptionsT()
        o.axis = axis
        lw.b.op("CONCATENATION", pieces, [out], o)
        x = out
    return x


def _fold_batchnorm(lw: Lowering, name: str, w, b):
    """(output name, kernel, bias) with a BatchNormalization that alone reads `name` folded in
    (w * s per output channel, (b - mean) * s + beta; s = gamma / sqrt(var + eps), in float64)."""
    r = lw.sole_reader(name)
    if r is None or r.op_type != "BatchNormalization" or r.input[0] != name or len(r.output) != 1 \
            or not all(lw.is_const(i) for i in r.input[1:5]):
        return name, w, b
    bn = Node(r, lw.opset)
    if bn.int("training_mode"):
        return name, w, b
    gamma, beta, mean, var = (lw.const(i).astype(np.float64) for i in r.input[1:5])
    s = gamma / np.sqrt(var + float(bn.attr("epsilon", 1e-5)))
    w = (w.astype(np.float64) * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
    b = ((b.astype(np.float64) - mean) * s + beta).astype(np.float32)
    lw.absorbed.add(r.output[0])
    return r.output[0], w, b


def conv(lw: Lowering, node: Node) -> None:
    w = lw.const(node.inputs[1])
    if w.ndim != 4 or w.dtype != np.float32:
        raise lw.unsupported(f"a {w.ndim - 2}D / {w.dtype} convolution (2D float32 is written directly)")
    c_out, c_in_g, kh, kw = (int(d) for d in w.shape)
    kernel = [kh, kw]
    sizes, strides, dilations = _geometry(lw, node, kernel)
    group = int(node.attr("group") or 1)
    c_in = c_in_g * group
    depthwise = group > 1 and group == c_in and c_in_g == 1
    b = lw.const(node.inputs[2]) if node.has_input(2) else np.zeros(c_out, np.float32)
    pads = P.node_pads(node.attrs, sizes, kernel, strides, dilations)
    d = decision(lw, node, sizes, kernel, strides, dilations, pads)
    x = lw.view(node.inputs[0], CL4)
    if d.mode == "explicit":
        x = pad(lw, x, d.pads, node.outputs[0])
    out_name, w, b = _fold_batchnorm(lw, node.outputs[0], w, b)
    out_name, act = lw.fused_activation(out_name)
    S = _schema()
    if depthwise:  # ONNX output channel o = c * mult + m is TFLite's [1, kh, kw, c * mult + m]
        weight = np.transpose(w.reshape(c_out, kh, kw), (1, 2, 0))[None]
        opts = S.DepthwiseConv2DOptionsT()
        opts.depthMultiplier = c_out // c_in
    else:
        weight = np.transpose(w, (0, 2, 3, 1))  # OHWI
        opts = S.Conv2DOptionsT()
    opts.padding = SAME if d.mode == "same" else VALID
    opts.strideH, opts.strideW = strides
    opts.dilationHFactor, opts.dilationWFactor = dilations
    opts.fusedActivationFunction = act
    ins = [x, lw.b.constant(np.ascontiguousarray(weight, np.float32), node.inputs[1]),
           lw.b.constant(np.asarray(b, np.float32), f"{node.outputs[0]}/bias")]
    out = lw.new(out_name, CL4)
    # CONV_2D version 6 reads its groups from the filter's input channels (ONNX group > 1)
    version = (2 if max(dilations) > 1 else 1) if depthwise else (6 if group > 1 else 1)
    lw.b.op("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", ins, [out], opts, version)


def _pool_options(kernel, strides, padding: int, act: int = NONE):
    o = _schema().Pool2DOptionsT()
    o.padding, o.strideH, o.strideW = padding, strides[0], strides[1]
    o.filterHeight, o.filterWidth, o.fusedActivationFunction = kernel[0], kernel[1], act
    return o


def _ceil_extension(lw, sizes, kernel, strides, pads, ceil_mode: bool) -> list:
    """Per axis, the extra end positions ceil_mode needs (never counted): pooling's rule
    (padding.conv_out_size) against what 'valid' on the padded input gives."""
    ext = []
    for n, k, s, p in zip(sizes, kernel, strides, pads):
        out = P.conv_out_size(n, k, s, 1, p, ceil_mode)
        ext.append(max((out - 1) * s + k - (n + p[0] + p[1]), 0))
        if (n + p[0] + p[1] + ext[-1] - k) // s + 1 != out:
            raise lw.unsupported(f"ceil_mode pooling whose last window starts in the padding (axis size {n})")
    return ext


def pool(lw: Lowering, node: Node) -> None:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise lw.unsupported("MaxPool's Indices output")
    kernel = list(node.ints("kernel_shape"))
    sizes, strides, dilations = _geometry(lw, node, kernel)
    if any(d != 1 for d in dilations):
        raise lw.unsupported(f"dilated pooling {dilations}")
    if (node.string("auto_pad") or "NOTSET") not in ("NOTSET", "VALID"):
        raise lw.unsupported(f"auto_pad={node.string('auto_pad')} pooling")
    pads = [tuple(p) for p in P.node_pads(node.attrs, sizes, kernel, strides, dilations, clamp=False)]
    if any(max(p) >= k for p, k in zip(pads, kernel)):
        raise lw.unsupported(f"pads {pads} as large as the window {kernel}: a window may hold only padding")
    ext = _ceil_extension(lw, sizes, kernel, strides, pads, node.flag("ceil_mode"))
    d = decision(lw, node, sizes, kernel, strides, dilations, pads)
    is_max = node.op_type == "MaxPool"
    include = node.flag("count_include_pad")
    x = lw.view(node.inputs[0], CL4)
    mode = d.mode if not any(ext) else "explicit"
    if mode == "same" and not is_max and include:
        mode = "explicit"  # TFLite's SAME average excludes the padding
    if mode == "explicit":
        if not is_max and not include and any(map(any, pads)):
            raise lw.unsupported("average pooling that excludes padding other than 'same'")
        if not is_max and any(ext):
            raise lw.unsupported("ceil_mode average pooling")
        full = [(b, a + e) for (b, a), e in zip(pads, ext)]
        x = (max_pool_pad if is_max else pad)(lw, x, full, node.outputs[0])
    out_name, act = (lw.fused_activation(node.outputs[0]) if is_max else (node.outputs[0], NONE))
    out = lw.new(out_name, CL4)
    lw.b.op("MAX_POOL_2D" if is_max else "AVERAGE_POOL_2D", [x], [out],
            _pool_options(kernel, strides, SAME if mode == "same" else VALID, act))


def global_average_pool(lw: Lowering, node: Node) -> None:
    if len(lw.shape(node.inputs[0])) != 4:
        raise lw.unsupported("global pooling of a non-2D input")
    perm = lw.planned(node.outputs[0])
    x = lw.view(node.inputs[0], perm)
    axes = [L.keras_axis(perm, a) for a in (2, 3)]
    o = _schema().ReducerOptionsT()
    o.keepDims = True
    lw.b.op("MEAN", [x, lw.int32(axes, f"{node.outputs[0]}/axes")], [lw.new(node.outputs[0], perm)], o)


def batch_norm(lw: Lowering, node: Node) -> None:
    """A BatchNormalization not folded into a conv: x * s + (beta - mean * s)."""
    if len(node.outputs) > 1 and any(node.outputs[1:]) or node.int("training_mode"):
        raise lw.unsupported("BatchNormalization in training mode")
    gamma, beta, mean, var = (lw.const(i).astype(np.float64) for i in node.inputs[1:5])
    s = gamma / np.sqrt(var + float(node.attr("epsilon", 1e-5)))
    shift = beta - mean * s
    rank = len(lw.shape(node.inputs[0]))
    perm = lw.planned(node.outputs[0])
    shape = (1, -1) + (1,) * (rank - 2)
    x = lw.view(node.inputs[0], perm)
    scale = lw.b.constant(np.transpose(s.astype(np.float32).reshape(shape), perm), f"{node.name}/scale")
    offset = lw.b.constant(np.transpose(shift.astype(np.float32).reshape(shape), perm), f"{node.name}/offset")
    mid = lw.b.tensor(lw.b.shape(x), f"{node.outputs[0]}/scaled")
    lw.b.op("MUL", [x, scale], [mid], _schema().MulOptionsT())
    out_name, act = lw.fused_activation(node.outputs[0])
    o = _schema().AddOptionsT()
    o.fusedActivationFunction = act
    lw.b.op("ADD", [mid, offset], [lw.new(out_name, perm)], o)
