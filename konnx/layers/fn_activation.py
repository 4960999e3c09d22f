"""Activation functions Keras has no exact equivalent for, with keras.ops only: PRelu,
LeakyRelu, HardSigmoid, ThresholdedRelu, Elu, Selu, Celu, Gelu, Softmax / LogSoftmax, Hardmax,
Swish, SwiGLU, Shrink. (The one-operand activations Keras has, Relu, Sigmoid, Tanh, ..., are
`math.unary` in fn_math.py.) The "math." names are kept from when these lived in fn_math.py:
they are the names saved files hold."""
from __future__ import annotations

from keras import ops

from .fn_math import first_index, float32_inside, reduce_extreme
from .functions import function


@function("math.prelu")
@float32_inside
def prelu(x, slope):
    return ops.where(ops.less(x, 0), ops.multiply(x, slope), x)


@function("math.leaky_relu")
@float32_inside
def leaky_relu(x, *, alpha):
    return ops.where(ops.less(x, 0), ops.multiply(x, alpha), x)


@function("math.hard_sigmoid")
@float32_inside
def hard_sigmoid(x, *, alpha, beta):
    return ops.clip(ops.add(ops.multiply(x, alpha), beta), 0.0, 1.0)


@function("math.thresholded_relu")
@float32_inside
def thresholded_relu(x, *, alpha):
    return ops.where(ops.greater(x, alpha), x, ops.zeros_like(x))


@function("math.elu")
@float32_inside
def elu(x, *, alpha):
    return ops.where(ops.greater(x, 0), x, ops.multiply(alpha, ops.expm1(x)))


@function("math.selu")
@float32_inside
def selu(x, *, alpha, gamma):
    return ops.multiply(gamma, ops.where(ops.greater(x, 0), x, ops.multiply(alpha, ops.expm1(x))))


@function("math.celu")
@float32_inside
def celu(x, *, alpha):
    return ops.add(ops.maximum(x, 0.0), ops.minimum(0.0, ops.multiply(alpha, ops.expm1(ops.divide(x, alpha)))))


@function("math.gelu")
@float32_inside
def gelu(x, *, approximate):
    # keras.ops.gelu: one TFLite GELU op (TensorFlow's converter recognises tf.nn.gelu), either form
    return ops.gelu(x, approximate=bool(approximate))


@function("math.softmax")
@float32_inside
def softmax(x, *, axes, log=False):
    m = ops.stop_gradient(reduce_extreme(x, "max", tuple(axes), True))  # an empty input too
    z = ops.subtract(x, m)
    s = ops.sum(ops.exp(z), axis=tuple(axes), keepdims=True)
    if log:
        return ops.subtract(z, ops.log(s))
    return ops.divide(ops.exp(z), s)


@function("math.softmax_nan_rows")
def softmax_nan_rows(x, y, *, axis):
    """y (Keras' Softmax of x) made NaN on every row whose maximum is not finite: the rows where
    the spec's exp(x - max(x)) / sum(...) is NaN throughout (a NaN, a +inf, or only -inf).
    One reduction and one add beside the fused Softmax kernel (max propagates NaN on every
    Keras backend)."""
    m = reduce_extreme(x, "max", axis, True)
    return ops.add(y, ops.subtract(m, m))


@function("math.hardmax")
def hardmax(x, *, axis, trailing=False):
    """One-hot of the first maximum along `axis`, or (trailing=True, x in ONNX layout) over
    all axes >= axis flattened in row-major order."""
    if not trailing:
        return ops.one_hot(first_index(x, axis), x.shape[axis], axis=axis, dtype=x.dtype)
    shape = ops.shape(x)
    n = 1
    for d in x.shape[axis:]:
        n *= d
    flat = ops.reshape(x, tuple(shape[:axis]) + (n,))
    hot = ops.one_hot(first_index(flat, -1), n, dtype=x.dtype)
    return ops.reshape(hot, shape)


@function("swish")
@float32_inside
def swish(x, *, alpha=1.0):
    return x * ops.sigmoid(x * alpha)


@function("swiglu")
@float32_inside
def swiglu(a, b, *, alpha=1.0):
    return a * ops.sigmoid(a * alpha) * b


@function("shrink")
@float32_inside
def shrink(x, *, lambd, bias):
    lo = ops.cast(x + bias, x.dtype)
    hi = ops.cast(x - bias, x.dtype)
    zero = ops.zeros_like(x)
    return ops.where(ops.less(x, -lambd), lo, ops.where(ops.greater(x, lambd), hi, zero))
