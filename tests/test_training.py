"""A converted model can be fine-tuned (issue 7): its weights are trainable Keras variables,
BatchNormalization stays a keras.layers.BatchNormalization (unless fold_bn=True), and one training
step changes the weights and lowers the loss."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import konnx
from konnx.verify import make_inputs, run_onnxruntime

from .test_export import onnx_nets


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    return onnx_nets(tmp_path_factory.getbasetemp() / "issue7_nets")["resnet"]


def _batch(path, n=8):
    proto = onnx.load(str(path))
    x = make_inputs(proto, {"x": (n, 3, 32, 32)}, seed=11)["x"]
    ref = run_onnxruntime(proto, {"x": x})[proto.graph.output[0].name]
    # a target the network does not already produce: fine-tuning has something to learn
    y = (ref + np.random.default_rng(0).standard_normal(ref.shape)).astype(np.float32)
    return x, y


def _mse(model, x, y) -> float:
    """The loss the training step minimises: BatchNormalization in training mode uses the
    batch's statistics (inference mode would also see the moving statistics the step updates)."""
    import keras

    return float(np.mean((keras.ops.convert_to_numpy(model(x, training=True)) - y) ** 2))


@pytest.mark.parametrize("fold_bn", [False, True])
def test_one_training_step_changes_weights_and_lowers_the_loss(resnet, fold_bn):
    import keras

    model = konnx.convert(str(resnet), fold_bn=fold_bn)
    bns = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    n_bn = sum(n.op_type == "BatchNormalization" for n in onnx.load(str(resnet)).graph.node)
    assert len(bns) == (0 if fold_bn else n_bn)
    for bn in bns:
        assert bn.trainable and bn.gamma.trainable and bn.beta.trainable
        assert not bn.moving_mean.trainable and not bn.moving_variance.trainable
    kernels = [la.kernel for la in model.layers if isinstance(la, (keras.layers.Conv2D, keras.layers.Dense))]
    trainable = {id(w) for w in model.trainable_weights}
    assert kernels and all(id(k) in trainable for k in kernels)

    x, y = _batch(resnet)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    loss0 = _mse(model, x, y)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3), loss="mse")
    model.train_on_batch(x, y)
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    changed = sum(not np.array_equal(a, b) for a, b in zip(before, after))
    assert changed == len(before), f"only {changed} of {len(before)} trainable weights changed"
    loss1 = _mse(model, x, y)
    assert loss1 < loss0, f"loss went from {loss0:.6g} to {loss1:.6g}"
